"""`cnnbench import opinfo`: PyTorch's own OpInfo samples of the CNN ops as cases checked against the NumPy reference.

torch.testing._internal.common_methods_invocations.op_db lists every op's OpInfo; its reference_inputs (or
sample_inputs where there are none) yield SampleInput(input, args, kwargs). Each sample becomes one case:
its tensors (generated in float32 on the CPU, torch seeded with 0 per op) are stored, its other arguments
become keyword args, and it is checked with `reference: numpy` (and `match: cpu` on accelerators). A sample the
case format or the reference cannot express is listed in SKIPPED.md with the reason, as is every sample beyond
the per-op cap that keeps the suite within its time budget.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Sequence
from typing import Any

from cnnbench.casefile.vocabulary import DTYPES
from cnnbench.conformance.reference_check import reference_gap
from cnnbench.conformance.suite import ImportLayoutError, Suite, flow
from cnnbench.ops.catalog import traits

__all__ = ["MAX_ELEMENTS", "MAX_SAMPLES", "OPINFO_OPS", "build_opinfo_suite"]

#: Samples imported per OpInfo (evenly spaced over its list), and the largest tensor imported.
MAX_SAMPLES = 6
MAX_ELEMENTS = 4096

_CONV = ("input", "weight", "bias", "stride", "padding", "dilation", "groups")
_CONV_T = ("input", "weight", "bias", "stride", "padding", "output_padding", "groups", "dilation")
_MAX_POOL = ("input", "kernel_size", "stride", "padding", "dilation", "ceil_mode", "return_indices")
_AVG_POOL = (
    "input",
    "kernel_size",
    "stride",
    "padding",
    "ceil_mode",
    "count_include_pad",
    "divisor_override",
)

#: OpInfo name -> (the case's op, its positional parameters, which of them are tensors).
OPINFO_OPS: dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]] = {
    **{f"nn.functional.conv{n}d": (f"conv{n}d", _CONV, ("input", "weight", "bias")) for n in (1, 2, 3)},
    **{
        f"nn.functional.conv_transpose{n}d": (f"conv_transpose{n}d", _CONV_T, ("input", "weight", "bias"))
        for n in (1, 2, 3)
    },
    **{f"nn.functional.max_pool{n}d": (f"max_pool{n}d", _MAX_POOL, ("input",)) for n in (1, 2, 3)},
    "nn.functional.avg_pool1d": ("avg_pool1d", _AVG_POOL[:-1], ("input",)),
    **{f"nn.functional.avg_pool{n}d": (f"avg_pool{n}d", _AVG_POOL, ("input",)) for n in (2, 3)},
    **{
        f"nn.functional.adaptive_{kind}_pool{n}d": (
            f"adaptive_{kind}_pool{n}d",
            ("input", "output_size", *(("return_indices",) if kind == "max" else ())),
            ("input",),
        )
        for kind in ("avg", "max")
        for n in (1, 2, 3)
    },
    "nn.functional.batch_norm": (
        "batch_norm",
        ("input", "running_mean", "running_var", "weight", "bias", "training", "momentum", "eps"),
        ("input", "running_mean", "running_var", "weight", "bias"),
    ),
    "nn.functional.instance_norm": ("instance_norm", ("input",), ("input",)),
    "nn.functional.layer_norm": ("layer_norm", ("input",), ("input",)),
    "nn.functional.group_norm": ("group_norm", ("input",), ("input",)),
    "nn.functional.interpolate": (
        "interpolate",
        ("input", "size", "scale_factor", "mode", "align_corners", "recompute_scale_factor", "antialias"),
        ("input",),
    ),
    "nn.functional.relu": ("relu", ("input", "inplace"), ("input",)),
    "sigmoid": ("sigmoid", ("input",), ("input",)),
    "tanh": ("tanh", ("input",), ("input",)),
    "softmax": ("softmax", ("input", "dim", "_stacklevel", "dtype"), ("input",)),
    "log_softmax": ("log_softmax", ("input", "dim", "_stacklevel", "dtype"), ("input",)),
    **{
        f"nn.functional.{name}": (name, ("input",), ("input",))
        for name in (
            "leaky_relu", "elu", "selu", "celu", "gelu", "silu", "mish", "hardswish", "hardsigmoid", "hardtanh",
            "relu6", "softplus", "softsign", "logsigmoid", "prelu",
        )
    },
    "nn.functional.pad": ("pad", ("input", "pad", "mode", "value"), ("input",)),
    "flatten": ("flatten", ("input", "start_dim", "end_dim"), ("input",)),
    "nn.functional.linear": ("linear", ("input", "weight", "bias"), ("input", "weight", "bias")),
}  # fmt: skip


#: OpInfo variants whose samples repeat another variant's and differ only in a backend a case cannot select.
_SAME_ON_CPU = {
    "without_cudnn": "the samples of batch_norm again, run with cuDNN disabled: a case cannot select that backend",
}


class _UnexpressibleError(Exception):
    pass


@functools.cache
def _op_db() -> tuple[str, tuple[Any, ...]]:
    """torch's version and its OpInfo database; ImportLayoutError when the layout is not the known one."""
    import torch

    version = str(torch.__version__)
    expected = (
        "torch.testing._internal.common_methods_invocations.op_db, a list of OpInfo with name, "
        "variant_test_name, sample_inputs(device, dtype) and reference_inputs(device, dtype) yielding "
        "SampleInput(input, args, kwargs) (as in torch 2.1 to 2.14)"
    )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from torch.testing._internal.common_methods_invocations import op_db
    except ImportError as exc:
        hint = " (torch.testing._internal imports expecttest: pip install 'cnnbench[opinfo]')"
        raise ImportLayoutError(
            f"torch {version}: expected {expected}; {exc}{hint if 'expecttest' in str(exc) else ''}"
        ) from None
    fields = ("name", "variant_test_name", "sample_inputs", "reference_inputs")
    if not op_db or not all(all(hasattr(o, f) for f in fields) for o in op_db):
        raise ImportLayoutError(
            f"torch {version}: expected {expected}; got entries without {', '.join(fields)}"
        )
    return version, tuple(op_db)


def _samples(info: Any) -> list[Any]:
    import torch

    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        samples = list(info.reference_inputs("cpu", torch.float32, requires_grad=False))
    for s in samples[:1]:
        if not all(hasattr(s, f) for f in ("input", "args", "kwargs")):
            version = _op_db()[0]
            raise ImportLayoutError(
                f"torch {version}: expected OpInfo samples with input, args and kwargs; got {type(s).__name__}"
            )
    return samples


def _plain(key: str, value: Any) -> Any:
    """A non-tensor argument as the case file writes it; _UnexpressibleError for what it cannot."""
    import torch

    if isinstance(value, torch.Tensor):
        raise _UnexpressibleError(f"tensor argument {key}: case inputs are positional, in the op's order")
    if isinstance(value, torch.dtype):
        name = str(value).removeprefix("torch.")
        if key != "dtype" or name not in DTYPES:
            raise _UnexpressibleError(f"{key}={value}: a dtype is written only as the dtype argument")
        return name
    if isinstance(value, torch.Size | tuple | list):
        return [_plain(key, v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise _UnexpressibleError(f"{key}={value!r}: a {type(value).__name__} cannot be written in a case file")


def _split(
    sample: Any, params: tuple[str, ...], tensor_params: tuple[str, ...]
) -> tuple[list[tuple[str, Any]], dict[str, Any]]:
    """A sample's tensors in positional order, and its other arguments by name."""
    import torch

    positional = [sample.input, *sample.args]
    if len(positional) > len(params):
        raise _UnexpressibleError(
            f"{len(positional)} positional arguments; the op's signature has {len(params)}"
        )
    values = dict(zip(params, positional, strict=False))
    for key, value in sample.kwargs.items():
        values[key] = value
    tensors: list[tuple[str, Any]] = []
    absent = None
    for name in tensor_params:
        value = values.pop(name, None)
        if value is None:
            absent = absent or name
            continue
        if not isinstance(value, torch.Tensor):
            raise _UnexpressibleError(f"{name} is a {type(value).__name__}, not a tensor")
        if absent is not None:
            raise _UnexpressibleError(f"{name} given with {absent} absent: case inputs are positional")
        tensors.append((name, value))
    args = {key: _plain(key, value) for key, value in values.items() if key != "inplace"}
    return tensors, args


def _case(suite: Suite, info: Any, op: str, index: int, sample: Any, version: str) -> dict[str, Any] | str:
    """One sample as a case, or the reason it cannot be one."""
    _, params, tensor_params = OPINFO_OPS[info.name]
    try:
        tensors, args = _split(sample, params, tensor_params)
    except _UnexpressibleError as exc:
        return str(exc)
    arrays = [(name, t.detach().cpu().numpy()) for name, t in tensors]
    biggest = max(a.size for _, a in arrays)
    if biggest > MAX_ELEMENTS:
        return f"a tensor of {biggest} elements, over the suite's cap of {MAX_ELEMENTS} (its time budget)"
    gap = reference_gap({"op": op}, [a for _, a in arrays], args)
    if gap is not None:
        return gap
    variant = f".{info.variant_test_name}" if info.variant_test_name else ""
    stem = f"{info.name}{variant}.{index:03d}"
    case: dict[str, Any] = {
        "id": f"opinfo.{stem}",
        "source": f"torch {version} OpInfo {info.name}{variant} sample {index}",
    }
    case["op"] = op
    if args:
        case["args"] = flow(args)
    case["inputs"] = {name: suite.tensor(a, f"{stem}.{name}") for name, a in arrays}
    case["dtypes"] = flow(["float32"])
    case["expect"] = flow({"reference": "numpy", "match": "cpu"})
    return case


def _spread(n: int, k: int) -> list[int]:
    """k indices spread evenly over range(n), first and last included."""
    if n <= k:
        return list(range(n))
    return sorted({round(i * (n - 1) / (k - 1)) for i in range(k)})


def build_opinfo_suite(ops: Sequence[str] | None = None) -> Suite:
    """The OpInfo samples of the CNN ops (or of ops: OpInfo names, or case op names) as a Suite."""
    wanted = set(ops) if ops else None
    if wanted is not None:
        known = set(OPINFO_OPS) | {v[0] for v in OPINFO_OPS.values()}
        unknown = wanted - known
        if unknown:
            raise ImportLayoutError(f"--ops {', '.join(sorted(unknown))}: not an OpInfo op the importer maps")
    version, db = _op_db()
    command = "cnnbench import opinfo" + (f" --ops {','.join(ops)}" if ops else "") + " -o DIR"
    suite = Suite(title=f"PyTorch OpInfo samples from torch {version}", command=command)
    suite.notes.append(
        f"Samples are generated in float32 on the CPU with torch.manual_seed(0) per op; at most {MAX_SAMPLES} "
        f"per OpInfo, evenly spaced over its reference_inputs, each tensor at most {MAX_ELEMENTS} elements."
    )
    infos = sorted((o for o in db if o.name in OPINFO_OPS), key=lambda o: (o.name, o.variant_test_name))
    for name in sorted(set(OPINFO_OPS) - {o.name for o in infos}):
        suite.skip("missing", name, f"torch {version} has no OpInfo of this name")
    for info in infos:
        op = OPINFO_OPS[info.name][0]
        if wanted is not None and info.name not in wanted and op not in wanted:
            continue
        if info.variant_test_name in _SAME_ON_CPU:
            suite.skip(
                traits(op).family,
                f"{info.name}.{info.variant_test_name}",
                _SAME_ON_CPU[info.variant_test_name],
            )
            continue
        _import_op(suite, info, op, version)
    return suite


def _import_op(suite: Suite, info: Any, op: str, version: str) -> None:
    """Every sample of one OpInfo: MAX_SAMPLES of the expressible ones (evenly spaced) as cases, the rest listed."""
    from cnnbench.numerics.reference import REFERENCES

    family = traits(op).family
    label = info.name + (f".{info.variant_test_name}" if info.variant_test_name else "")
    samples = _samples(info)
    if op not in REFERENCES:
        suite.skip(family, f"{label} (all {len(samples)} samples)", f"no NumPy reference for {op}")
        return
    cases: list[dict[str, Any]] = []
    for index, sample in enumerate(samples):
        case = _case(suite, info, op, index, sample, version)
        if isinstance(case, str):
            suite.skip(family, f"{label} sample {index}", case)
        else:
            cases.append(case)
    keep = set(_spread(len(cases), MAX_SAMPLES))
    for i, case in enumerate(cases):
        if i in keep:
            suite.add(family, case)
        else:
            suite.drop_tensors(case)
    if len(cases) > len(keep):
        suite.skip(
            family,
            f"{label} ({len(cases) - len(keep)} of {len(cases)} expressible samples)",
            f"over the cap of {MAX_SAMPLES} samples per OpInfo (the suite's time budget); the kept ones are evenly "
            "spaced over the list",
        )
