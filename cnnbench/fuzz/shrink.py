"""``cnnbench shrink``: make a failing variant of a case file smaller while it keeps failing the same way.

Greedy, the idea of hypothesis's shrinker applied to a written case: try without the optional tensors (bias), a
smaller batch, fewer channels (and
groups), smaller spatial sizes and kernels, stride and dilation toward 1, padding toward 0; keep every step
after which the case still fails with the same status and the same kind of expectation (a valid geometry
stays valid: a shrink into a geometry PyTorch rejects would "fail" for another reason), until no step helps.
"""

from __future__ import annotations

import copy
import signal
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from cnnbench.casefile.variants import Variant
from cnnbench.errors import CnnbenchError, UsageError
from cnnbench.fuzz.check import Checked, check_case
from cnnbench.ops.catalog import traits

__all__ = ["Shrunk", "crashes", "shrink_case", "shrink_variant", "variant_case"]

#: At most this many candidate cases are checked.
MAX_CHECKS = 2000
#: Expectation keys kept: those that hold for any size (a written shape or output would not).
_KEPT_EXPECT = ("reference", "error", "grad", "deterministic", "match")
_SHAPED = ("randn", "rand", "ones", "zeros", "full")
Case = dict[str, Any]


@dataclass(frozen=True)
class Shrunk:
    """The smallest still-failing case found."""

    case: Case
    message: str
    checks: int
    summary: str


def variant_case(variant: Variant) -> Case:
    """The variant as a case of its own (one device, dtype and memory format), with the expectation keys
    that hold at any size; UsageError for a case shrinking cannot resize."""
    spec = variant.case.spec
    if spec.op is None:
        raise UsageError(
            f"{variant.id}: shrink resizes functional-op cases (op:), not module or layers cases"
        )
    expect = {k: v for k, v in spec.expect.model_dump(exclude_none=True).items() if k in _KEPT_EXPECT and v}
    if not expect:
        raise UsageError(
            f"{variant.id}: shrink needs a case checked against the reference (or expecting an error)"
        )
    case = spec.model_dump(exclude_defaults=True, exclude_none=True)
    for key in ("sweep", "max_cases", "exclude", "skip", "xfail", "note", "description"):
        case.pop(key, None)
    for name, tensor in case.get("inputs", {}).items():
        if not any(k in tensor for k in _SHAPED):
            raise UsageError(
                f"{variant.id}: input {name} is not generated from a shape; shrink cannot resize it"
            )
    case.update(id=f"{spec.id}-shrunk", devices=[variant.device], dtypes=[variant.dtype], expect=expect)
    case.pop("memory_formats", None)
    if variant.memory_format != "contiguous":
        case["memory_formats"] = [variant.memory_format]
    return case


def _shape(tensor: dict[str, Any]) -> list[int]:
    key = next(k for k in _SHAPED if k in tensor)
    value = tensor[key]
    return list(value["shape"] if isinstance(value, dict) else value)


def _set_shape(tensor: dict[str, Any], shape: list[int]) -> None:
    key = next(k for k in _SHAPED if k in tensor)
    if isinstance(tensor[key], dict):
        tensor[key]["shape"] = shape
    else:
        tensor[key] = shape


def _smaller(n: int, floor: int) -> list[int]:
    """Candidates below n, smallest first: floor, n // 2, n - 1."""
    return [v for v in dict.fromkeys((floor, n // 2, n - 1)) if floor <= v < n]


def _resized(case: Case, name: str, dim: int, value: int) -> Case:
    out = copy.deepcopy(case)
    shape = _shape(out["inputs"][name])
    shape[dim] = value
    _set_shape(out["inputs"][name], shape)
    return out


def _batch_and_spatial(case: Case) -> Iterator[Case]:
    names = list(case["inputs"])
    first = names[0]
    shape = _shape(case["inputs"][first])
    spatial_from = 1 if traits(case["op"]).family in ("activation", "softmax") else 2
    for dim in [0, *range(spatial_from, len(shape))]:
        for value in _smaller(shape[dim], 1):
            yield _resized(case, first, dim, value)


def _per_dim(value: Any, i: int) -> int:
    return int(value[i]) if isinstance(value, list) else int(value)


def _args(case: Case) -> Iterator[Case]:
    """Smaller int args: stride, dilation and kernel toward 1, padding and output_padding toward 0."""
    floors = {
        "stride": 1,
        "dilation": 1,
        "kernel_size": 1,
        "padding": 0,
        "output_padding": 0,
        "divisor_override": 1,
    }
    for key, floor in floors.items():
        value = case["args"].get(key)
        if isinstance(value, bool) or not isinstance(value, int | list):
            continue
        dims = len(value) if isinstance(value, list) else 1
        for i in range(dims):
            for smaller in _smaller(_per_dim(value, i), floor):
                out = copy.deepcopy(case)
                if isinstance(value, list):
                    out["args"][key][i] = smaller
                else:
                    out["args"][key] = smaller
                yield out


def _conv_channels(case: Case) -> Iterator[Case]:
    """Groups, channels per group and filter taps of a (transposed) convolution, shrunk consistently."""
    inputs = case["inputs"]
    if "weight" not in inputs:
        return
    transposed = traits(case["op"]).family == "conv_transpose"
    x, w = _shape(inputs["input"]), _shape(inputs["weight"])
    g = int(case["args"].get("groups", 1))
    if transposed:
        cin_g, cout_g = w[0] // g, w[1]
    else:
        cin_g, cout_g = w[1], w[0] // g
    extra = x[1] - g * cin_g  # a deliberate channel mismatch stays
    options = [(g2, cin_g, cout_g) for g2 in _smaller(g, 1)]
    options += [(g, c, cout_g) for c in _smaller(cin_g, 1)] + [(g, cin_g, c) for c in _smaller(cout_g, 1)]
    for g2, ci, co in options:
        out = copy.deepcopy(case)
        new_x = [x[0], g2 * ci + extra, *x[2:]]
        new_w = [g2 * ci, co, *w[2:]] if transposed else [g2 * co, ci, *w[2:]]
        _set_shape(out["inputs"]["input"], new_x)
        _set_shape(out["inputs"]["weight"], new_w)
        if "bias" in out["inputs"]:
            _set_shape(out["inputs"]["bias"], [g2 * co])
        if g2 > 1:
            out["args"]["groups"] = g2
        else:
            out["args"].pop("groups", None)
        yield out
    for dim in range(2, len(w)):
        for value in _smaller(w[dim], 1):
            yield _resized(case, "weight", dim, value)


def _channels(case: Case) -> Iterator[Case]:
    """The channel dim of the input and of every per-channel tensor (batch norm's statistics and affine)."""
    op = case["op"]
    if traits(op).family in ("conv", "conv_transpose"):
        yield from _conv_channels(case)
        return
    if op in ("layer_norm", "group_norm") or traits(op).family in ("activation", "softmax"):
        return
    x = _shape(case["inputs"]["input"])
    if len(x) < 2:
        return
    for value in _smaller(x[1], 1):
        out = _resized(case, "input", 1, value)
        for name in list(out["inputs"])[1:]:
            if _shape(out["inputs"][name]) == [x[1]]:
                _set_shape(out["inputs"][name], [value])
        yield out


def _optional(case: Case) -> Iterator[Case]:
    """Without the optional tensors: a convolution's bias, batch norm's affine weight and bias (together)."""
    names = set(case["inputs"])
    family = traits(case["op"]).family
    drops: list[tuple[str, ...]] = [("bias",)] if family in ("conv", "conv_transpose") else []
    if case["op"] == "batch_norm" and list(case["inputs"])[-2:] == ["weight", "bias"]:
        drops.append(("weight", "bias"))
    for drop in drops:
        if set(drop) <= names:
            out = copy.deepcopy(case)
            for name in drop:
                del out["inputs"][name]
            yield out


_STEPS: tuple[Callable[[Case], Iterator[Case]], ...] = (_optional, _batch_and_spatial, _channels, _args)


Failing = Callable[[Case], "tuple[Case, str] | None"]
"""A case -> (the case as checked, its failure message) when it still fails the same way, else None."""


def _same_failure(first: Checked, candidate: Checked) -> bool:
    same_expect = ("error" in first.case["expect"]) == ("error" in candidate.case["expect"])
    return candidate.failed and candidate.result.status == first.result.status and same_expect


def _check(case: Case, max_case_bytes: int) -> Checked | None:
    try:
        return check_case(case, max_case_bytes)
    except (CnnbenchError, ValueError, TypeError):
        return None


def _fails_like(first: Checked, max_case_bytes: int) -> Failing:
    def fails(case: Case) -> tuple[Case, str] | None:
        got = _check(case, max_case_bytes)
        return (got.case, got.result.message) if got is not None and _same_failure(first, got) else None

    return fails


def crashes(max_case_bytes: int) -> Failing:
    """A case crashes the process that checks it (a forked child; CPU only)."""
    import multiprocessing

    def run(case: Case) -> None:
        import os
        import warnings

        warnings.simplefilter("ignore")
        _check(case, max_case_bytes)
        os._exit(0)

    def fails(case: Case) -> tuple[Case, str] | None:
        process = multiprocessing.get_context("fork").Process(target=run, args=(case,))
        process.start()
        process.join()
        code = process.exitcode or 0
        if code >= 0:
            return None
        return (
            case,
            f"the process crashed ({signal.Signals(-code).name}) running this configuration: a crash in torch",
        )

    return fails


def _sizes(case: Case) -> str:
    return ", ".join(f"{name} {_shape(t)}" for name, t in case["inputs"].items())


def shrink_case(
    case: Case, max_case_bytes: int, limit: int = MAX_CHECKS, failing: Failing | None = None
) -> Shrunk | None:
    """The smallest case found that fails as case does (or as failing says), or None when case does not fail."""
    if failing is None:
        first = _check(case, max_case_bytes)
        if first is None or not first.failed:
            return None
        failing, best = _fails_like(first, max_case_bytes), (first.case, first.result.message)
    else:
        start = failing(case)
        if start is None:
            return None
        best = start
    checks, improved = 1, True
    while improved and checks < limit:
        improved = False
        for step in _STEPS:
            for candidate in step(best[0]):
                checks += 1
                got = failing(candidate)
                if got is not None:
                    best, improved = got, True
                    break
                if checks >= limit:
                    break
            if improved or checks >= limit:
                break
    summary = f"{_sizes(case)} -> {_sizes(best[0])}; args {best[0]['args']} ({checks} checks)"
    return Shrunk(best[0], best[1], checks, summary)


def shrink_variant(variant: Variant, max_case_bytes: int) -> Shrunk | None:
    """shrink_case of the variant as a case of its own."""
    return shrink_case(variant_case(variant), max_case_bytes)
