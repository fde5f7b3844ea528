"""Run variants: build inputs, call the op or module, check every expectation. A variant never raises."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import re
import time
import traceback
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch
from pydantic import TypeAdapter
from torch import nn

from cnnbench import device as device_module
from cnnbench.casefile.case_shape import judge_output_shape
from cnnbench.casefile.format import CaseSpec, ExpectSpec
from cnnbench.casefile.tensors import TensorSpec
from cnnbench.casefile.variants import BenchVariant, Variant
from cnnbench.environment import device_available
from cnnbench.errors import CnnbenchError, first_line
from cnnbench.numerics.build import (
    Chain,
    build_layers,
    build_module,
    convert_args,
    exception_type,
    load_state,
    resolve_op,
    tensor_kwargs,
    to_dtype,
)
from cnnbench.numerics.checks import Check, check_close, check_shape
from cnnbench.numerics.fill import make_tensor
from cnnbench.numerics.oracle import oracle_checks, skip_reason
from cnnbench.numerics.precision import pin_for, variant_compute_precision
from cnnbench.numerics.subject import Subject, case_inputs, fill_parameters, to_memory_format
from cnnbench.numerics.tolerance import tolerance_for
from cnnbench.numerics.training import train
from cnnbench.store.result import Result
from cnnbench.store.rows import base_result, unavailable_reason

__all__ = ["apply_xfail", "base_result", "describe_exception", "output_digest", "run_check"]

#: Longest error message kept in a row; torch can attach whole C++ backtraces.
_MAX_MESSAGE_CHARS = 2000
_TENSOR_SPEC: TypeAdapter[Any] = TypeAdapter(TensorSpec)


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def _expected_tensor(value: Any) -> torch.Tensor:
    """An expected value as an exact tensor (float64, or int64/bool for integer literals)."""
    spec = _TENSOR_SPEC.validate_python(value)
    return make_tensor(spec, getattr(spec, "dtype", None) or _literal_dtype(value))


def _literal_dtype(value: Any) -> str:
    flat: list[Any] = [value]
    while flat and isinstance(flat[0], list):
        flat = [x for item in flat for x in item]
    if flat and all(isinstance(x, bool) for x in flat):
        return "bool"
    if flat and all(isinstance(x, int) and not isinstance(x, bool) for x in flat):
        return "int64"
    return "float64"


class _Call:
    """What a case calls, built for one device and dtype."""

    def __init__(self, spec: CaseSpec, device: str, dtype: str) -> None:
        self.module: nn.Module | None = None
        args = convert_args(spec.args)
        if spec.chain is not None:
            self.fn: Callable[..., Any] = Chain(spec.chain, dtype, device)
            return
        if spec.op is not None:
            keywords = tensor_kwargs(spec.args, dtype, device)
            self.fn = functools.partial(resolve_op(spec.op), **args, **keywords)
            return
        device_module.seed_parameters(spec.seed, device)
        if spec.layers is not None:
            module: nn.Module = build_layers(spec.layers)
        else:
            assert spec.module is not None
            module = build_module(spec.module, args)
        module = to_dtype(module, dtype, device)
        if spec.layers is not None:
            for i, layer in enumerate(spec.layers):
                load_state(module[i], layer.state, device)  # type: ignore[index]
        load_state(module, spec.state, device)
        module.train(spec.mode == "train")
        self.module = module
        self.fn = module
        if spec.call_args:
            call = convert_args(spec.call_args) | tensor_kwargs(spec.call_args, dtype, device)
            self.fn = functools.partial(module, **call)


def _subject(variant: Variant, device: str, dtype: str, memory_format: str) -> Subject:
    """The variant's call and inputs built for device, dtype and memory format (oracles rebuild it elsewhere)."""
    spec = variant.case.spec
    inputs = case_inputs(spec, dtype, device, variant.dtype)
    call = _Call(spec, device, dtype)
    fill_parameters(call.module, spec, variant.dtype, device)
    return to_memory_format(Subject(call.fn, call.module, inputs), memory_format)


def _check_error(build: Callable[[], Subject], expect: ExpectSpec) -> Check:
    """The call must raise; building it counts (a module's constructor refuses groups not dividing channels)."""
    assert expect.error is not None
    wanted = exception_type(expect.error.type)
    pattern = expect.error.match
    want = expect.error.type + (f" matching {pattern!r}" if pattern else "")
    try:
        call = build()
        if not call.inputs:  # a module-only case: the constructor is the whole call
            return Check(False, f"expected {want}, but building the module succeeded (the case has no input)")
        call.fn(*call.inputs)
    except Exception as exc:
        got = f"{type(exc).__name__}: {first_line(exc)}"
        if not isinstance(exc, wanted):
            return Check(False, f"expected {want}, got {got}")
        if pattern and not re.search(pattern, str(exc)):
            return Check(False, f"expected {want}, got {got}")
        return Check(True)
    return Check(False, f"expected {want}, but the call returned normally")


def _check_output(out: Any, expected: Any, spec: CaseSpec, precision: str | None = None) -> list[Check]:
    if isinstance(out, tuple | list) and not isinstance(out, torch.Tensor):
        if not isinstance(expected, list) or len(expected) != len(out):
            n = len(expected) if isinstance(expected, list) else 1
            return [Check(False, f"output: the call returned {len(out)} tensors, expect.output lists {n}")]
        checks = []
        for i, (got, exp) in enumerate(zip(out, expected, strict=True)):
            if exp is not None:
                checks.append(_compare(f"output[{i}]", got, exp, spec, precision))
        return checks
    return [_compare("output", out, expected, spec, precision)]


def _compare(label: str, got: Any, expected: Any, spec: CaseSpec, precision: str | None = None) -> Check:
    if not isinstance(got, torch.Tensor):
        return Check(False, f"{label}: expected a tensor, got {type(got).__name__}")
    want = _expected_tensor(expected)
    return check_close(label, got, want, tolerance_for(_dtype_name(got.dtype), spec.tolerance, precision))


def _shapes(out: Any) -> list[list[int]]:
    if isinstance(out, torch.Tensor):
        return [list(out.shape)]
    return [list(t.shape) for t in out if isinstance(t, torch.Tensor)]


def _check_shape_expect(out: Any, shape: Any) -> list[Check]:
    got = _shapes(out)
    if shape and isinstance(shape[0], list):
        if len(got) != len(shape):
            return [
                Check(False, f"shape: the call returned {len(got)} tensors, expect.shape lists {len(shape)}")
            ]
        return [
            check_shape(f"output[{i}] shape", g, s) for i, (g, s) in enumerate(zip(got, shape, strict=True))
        ]
    return [check_shape("output shape", got[0] if got else [], shape)]


def _check_arithmetic_shape(spec: CaseSpec, out: Any) -> list[Check]:
    """Every conv, transposed-conv and pooling call's output shape against the convolution arithmetic."""
    verdict = judge_output_shape(spec, _shapes(out))
    return [] if verdict is None else [Check(*verdict)]


def _module_tensors(module: nn.Module) -> dict[str, torch.Tensor]:
    return dict(module.named_parameters()) | dict(module.named_buffers())


#: Hex digits kept of an output's sha256: 64 bits tell runs apart and keep rows short.
_DIGEST_CHARS = 16


def output_digest(out: Any) -> str | None:
    """A short sha256 over the dtype, shape and bytes of the output tensor(s), or None if there is none.

    Equal digests mean bitwise-equal outputs; the bytes are those of a contiguous CPU copy.
    """
    if isinstance(out, torch.Tensor):
        tensors = [out]
    elif isinstance(out, tuple | list):
        tensors = [t for t in out if isinstance(t, torch.Tensor)]
    else:
        tensors = []
    if not tensors:
        return None
    h = hashlib.sha256()
    for tensor in tensors:
        t = tensor.detach().to("cpu").contiguous()
        h.update(f"{t.dtype}{list(t.shape)};".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:_DIGEST_CHARS]


def _execute(variant: Variant, result: Result | None = None) -> list[Check]:
    spec = variant.case.spec
    device, dtype = variant.device, variant.dtype
    expect = spec.expect
    if expect.error is not None:
        return [_check_error(lambda: _subject(variant, device, dtype, variant.memory_format), expect)]
    call = _subject(variant, device, dtype, variant.memory_format)
    inputs = call.inputs
    checks: list[Check] = []
    if spec.train is not None:
        train(call, spec, dtype, device, result)
    with torch.no_grad():
        if not inputs:  # a module-only case (repr, state_shapes, state): built, never called
            out: Any = None
        elif expect.layer_shapes is not None and isinstance(call.fn, Chain):
            results = call.fn.trace(*inputs)
            for i, (name, step_out, shape) in enumerate(
                zip(call.fn.names, results, expect.layer_shapes, strict=True)
            ):
                got = _shapes(step_out)
                checks.append(check_shape(f"step {i} ({name}) output", got[0] if got else [], shape))
            out = results[-1]
        elif expect.layer_shapes is not None:
            assert isinstance(call.module, nn.Sequential)
            out = inputs[0]
            for i, (layer, shape) in enumerate(zip(call.module, expect.layer_shapes, strict=True)):
                out = layer(out, *inputs[1:]) if i == 0 else layer(out)
                checks.append(
                    check_shape(f"layer {i} ({type(layer).__name__}) output", list(out.shape), shape)
                )
        else:
            out = call.fn(*inputs)
    if result is not None:
        result.output_digest = output_digest(out)
    if expect.layer_shapes is None and out is not None:
        checks.extend(_check_arithmetic_shape(spec, out))
    if expect.output is not None:
        checks.extend(_check_output(out, expect.output, spec, variant_compute_precision(variant)))
    if expect.shape is not None:
        checks.extend(_check_shape_expect(out, expect.shape))
    if expect.dtype is not None:
        got_dtype = _dtype_name(out.dtype) if isinstance(out, torch.Tensor) else type(out).__name__
        checks.append(
            Check(got_dtype == expect.dtype, f"output dtype: expected {expect.dtype}, got {got_dtype}")
        )
    tensors = _module_tensors(call.module) if call.module is not None else {}
    for name, shape in (expect.state_shapes or {}).items():
        if name not in tensors:
            checks.append(Check(False, f'state_shapes: the module has no parameter or buffer "{name}"'))
        else:
            checks.append(check_shape(f"state {name}", list(tensors[name].shape), shape))
    for name, value in (expect.state or {}).items():
        if name not in tensors:
            checks.append(Check(False, f'state: the module has no parameter or buffer "{name}"'))
        else:
            checks.append(_compare(f"state {name}", tensors[name], value, spec))
    if expect.repr is not None:
        got_repr = str(call.module)
        ok = got_repr == expect.repr
        checks.append(Check(ok, "" if ok else f"repr: expected\n{expect.repr}\ngot\n{got_repr}"))
    checks.extend(oracle_checks(variant, call, out, functools.partial(_subject, variant), result))
    return checks


def describe_exception(exc: BaseException) -> str:
    """An exception as a row's message: type, text and (for errors not cnnbench's own) where it was raised."""
    text = f"{type(exc).__name__}: {exc}".strip()
    if not isinstance(exc, CnnbenchError):
        frames = traceback.extract_tb(exc.__traceback__)
        if frames:
            last = frames[-1]
            text += f"\n  (raised at {last.filename}:{last.lineno})"
    if len(text) > _MAX_MESSAGE_CHARS:
        text = text[:_MAX_MESSAGE_CHARS] + " ..."
    return text


def run_check(variant: Variant) -> Result:
    """Run one numerics variant and return its row. Nothing a variant does escapes as an exception."""
    result = base_result(variant)
    start = time.perf_counter()
    skip = variant.skip_rule
    if skip is not None:
        result.status, result.reason = "skipped", skip.reason
        return result
    if not device_available(variant.device):
        result.status, result.reason = "skipped", unavailable_reason(variant)
        return result
    concrete = device_module.resolve(variant.device) or variant.device
    if concrete != variant.device:
        result.metrics["resolved_device"] = concrete
        variant = dataclasses.replace(variant, device=concrete)
    oracle_skip = skip_reason(variant)
    if oracle_skip is not None:
        result.status, result.reason = "skipped", oracle_skip
        return result
    try:
        with device_module.pin_fp32_precision(pin_for(variant.case.spec)):
            result.compute_precision = variant_compute_precision(variant)
            checks = _execute(variant, result)
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:
        result.status, result.message = "error", describe_exception(exc)
        if device_module.context_poisoned(exc):
            result.metrics["context_poisoned"] = True
    else:
        failed = [c for c in checks if not c.passed]
        untrusted = [c.mistrust for c in checks if c.mistrust]
        result.status = "failed" if failed else "mistrusted" if untrusted else "passed"
        result.message = "\n".join(c.message for c in failed) or "\n".join(
            f"cannot discriminate: {why} (set trust: always if that is the point)" for why in untrusted
        )
        _record_errors(result, checks)
    result.duration_s = time.perf_counter() - start
    return apply_xfail(result, variant)


def apply_xfail(result: Result, variant: Variant | BenchVariant) -> Result:
    """The row with the variant's xfail rule applied: a failure or error becomes xfail, a pass xpass."""
    xfail = variant.xfail_rule
    if xfail is not None:
        result.reason = xfail.reason
        if result.status in ("failed", "error"):
            result.status = "xfail"
        else:
            result.status = "xpass"
            result.message = f"expected to fail ({xfail.reason}) but passed"
    return result


def _record_errors(result: Result, checks: Sequence[Check]) -> None:
    """Keep the largest errors over every tensor check, and the first mismatches of the first failure."""
    measured = [c for c in checks if c.max_abs_err is not None]
    if measured:
        result.max_abs_err = max(c.max_abs_err for c in measured if c.max_abs_err is not None)
        result.max_rel_err = max(c.max_rel_err for c in measured if c.max_rel_err is not None)
        result.mismatches = sum(c.mismatches for c in measured)
        result.numel = sum(c.numel for c in measured)
        result.budget_used = _largest(c.budget_used for c in measured)
        result.ulps_max = _largest(c.ulps_max for c in measured)
        result.ulps_p99 = _largest(c.ulps_p99 for c in measured)
        first = next((c for c in measured if not c.passed), measured[0])
        if first.tolerance is not None:
            result.atol, result.rtol = first.tolerance.atol, first.tolerance.rtol
        result.examples = [
            {"index": list(m.index), "expected": m.expected, "got": m.got} for m in first.examples
        ]


def _largest(values: Iterable[float | None]) -> float | None:
    """The largest of the values recorded (a row's budget and ulps are those of its worst tensor), or None."""
    present = [v for v in values if v is not None]
    return max(present) if present else None
