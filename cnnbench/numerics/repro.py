"""Standalone reproducers: a plain-torch script that rebuilds one variant's inputs, call and expectation."""

from __future__ import annotations

import builtins
import math
import re
from collections.abc import Iterable, Sequence
from typing import Any

import torch
from pydantic import TypeAdapter

from cnnbench.casefile.case_shape import case_output_shape
from cnnbench.casefile.exact import is_generated
from cnnbench.casefile.format import CaseSpec
from cnnbench.casefile.load import load_paths
from cnnbench.casefile.tensors import (
    ArangeSpec,
    DataSpec,
    FileSpec,
    FullSpec,
    OnesSpec,
    RandnSpec,
    RandSpec,
    TensorSpec,
    ZerosSpec,
    is_tensor_spec,
    literal_shape,
)
from cnnbench.casefile.variants import Variant, expand, rerun_command
from cnnbench.casefile.vocabulary import DTYPES, FUNCTIONAL_OPS, suggest
from cnnbench.errors import UsageError
from cnnbench.numerics.build import as_called, build_module, to_dtype
from cnnbench.numerics.fill import make_tensor
from cnnbench.numerics.subject import case_inputs, fill_parameters
from cnnbench.numerics.tolerance import DEFAULT_TOLERANCES, tolerance_for
from cnnbench.ops.geometry import GeometryError

__all__ = ["find_variant", "parse_variant_id", "repro_snippet", "stored_row"]

_VARIANT_ID_RE = re.compile(
    r"^(?P<case>[^\[\]]+)\[(?P<device>[a-z]+(?::\d+)?)-(?P<dtype>[a-z0-9]+)(?:-(?P<format>[a-z_0-9]+))?\]$"
)
#: The expect keys the snippet checks; the others (cnnbench's oracles) are named in its header instead.
_PLAIN_EXPECT = ("output", "shape", "layer_shapes", "state_shapes", "state", "repr", "error", "dtype")
_TENSOR_SPEC: TypeAdapter[Any] = TypeAdapter(TensorSpec)

_PRELUDE = '''\
import re

import torch
import torch.nn.functional as F
from torch import nn

device = {device!r}
dtype = torch.{dtype}
# (atol, rtol) by the result's dtype, as cnnbench compares: |got - expected| <= atol + rtol * |expected|,
# in float64, NaN matching NaN; a dtype not listed (integers, bool) must match exactly.
TOLERANCES = {tolerances}


def check(label, got, expected):
    """Compare like cnnbench: in float64 on the CPU, at the tolerance of the result's dtype."""
    atol, rtol = TOLERANCES.get(str(got.dtype).removeprefix("torch."), (0.0, 0.0))
    try:
        torch.testing.assert_close(
            got.detach().cpu().double(), expected.double(), atol=atol, rtol=rtol, equal_nan=True
        )
    except AssertionError as exc:
        raise AssertionError(f"{{label}}: {{exc}}") from None
'''

_STATE_HELPER = '''

def set_state(module, name, values, pinned=None):
    """Copy values (cast to the parameter's dtype unless pinned) into a parameter or buffer, by dotted name."""
    target = (dict(module.named_parameters()) | dict(module.named_buffers()))[name]
    value = values.to(dtype=pinned or target.dtype).to(device)
    assert value.shape == target.shape, f"state {name}: shape {list(value.shape)} != {list(target.shape)}"
    with torch.no_grad():
        target.copy_(value)
'''


def parse_variant_id(variant_id: str) -> tuple[str, str, str]:
    """``case_id[device-dtype]`` (or ``case_id[device-dtype-memory_format]``) as (case_id, device, dtype)."""
    m = _VARIANT_ID_RE.match(variant_id.strip())
    if m is None:
        raise UsageError(
            f"{variant_id!r} is not a variant id: expected case_id[device-dtype], e.g. conv[cpu-float32]"
        )
    return m.group("case"), m.group("device"), m.group("dtype")


def find_variant(variant_id: str, paths: Sequence[str]) -> Variant:
    """The variant with this id among the case files under paths."""
    case_id, _, _ = parse_variant_id(variant_id)
    cases = load_paths(paths)
    variants = {v.id: v for v in expand(cases)}
    if variant_id.strip() in variants:
        return variants[variant_id.strip()]
    known = [c.id for c in cases]
    if case_id not in known:
        raise UsageError(f"no case {case_id!r} under {', '.join(paths)}{suggest(case_id, known)}")
    ids = [v for v in variants if v.startswith(case_id + "[")]
    raise UsageError(f"case {case_id} has no variant {variant_id}; it has: {', '.join(ids)}")


def _py(value: Any) -> str:
    """A Python expression for a plain YAML value (floats exactly, NaN and infinities spelled out)."""
    if isinstance(value, bool) or value is None:
        return repr(value)
    if isinstance(value, float):
        if math.isnan(value):  # keep the sign bit: YAML's .nan is a negative NaN, and outputs keep it
            return 'float("nan")' if math.copysign(1.0, value) > 0 else '-float("nan")'
        return repr(value) if math.isfinite(value) else f'float("{value}")'
    if isinstance(value, int | str):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_py(v) for v in value) + "]"
    if isinstance(value, tuple):
        return "(" + ", ".join(_py(v) for v in value) + ("," if len(value) == 1 else "") + ")"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_py(k)}: {_py(v)}" for k, v in value.items()) + "}"
    raise UsageError(f"cannot write {type(value).__name__} {value!r} as a Python literal")


def _flat(value: Any) -> list[Any]:
    items = [value]
    while any(isinstance(x, list) for x in items):
        items = [y for x in items for y in (x if isinstance(x, list) else [x])]
    return items


def _literal_expr(data: Any) -> str:
    """fill._literal: floats (or an empty list) are built as float64, integers and bools keep their type."""
    flat = _flat(data)
    if not flat or any(isinstance(x, float) for x in flat):
        return f"torch.tensor({_py(data)}, dtype=torch.float64)"
    return f"torch.tensor({_py(data)})"


def _values_expr(spec: Any) -> tuple[str, str | None]:
    """The float64 (or integer literal) values a tensor spec describes, and its pinned dtype (fill._values)."""
    if isinstance(spec, DataSpec):
        return _literal_expr(spec.data), spec.dtype
    if isinstance(spec, FileSpec):
        # The file's values, inlined: the snippet must not depend on files beside the case.
        values = make_tensor(spec, "float64")
        return _inline(values), spec.dtype
    if isinstance(spec, ArangeSpec):
        n = math.prod(spec.arange)
        expr = f"({_py(spec.start)} + {_py(spec.step)} * torch.arange({n}, dtype=torch.float64))"
        return f"{expr}.reshape({_py(spec.arange)})", spec.dtype
    if isinstance(spec, OnesSpec):
        return f"torch.ones({_py(spec.ones)}, dtype=torch.float64)", spec.dtype
    if isinstance(spec, ZerosSpec):
        return f"torch.zeros({_py(spec.zeros)}, dtype=torch.float64)", spec.dtype
    if isinstance(spec, FullSpec):
        return f"torch.full({_py(spec.full)}, {_py(spec.value)}, dtype=torch.float64)", spec.dtype
    if isinstance(spec, RandSpec | RandnSpec):
        fn, shape = ("rand", spec.rand) if isinstance(spec, RandSpec) else ("randn", spec.randn)
        gen = f"torch.Generator().manual_seed({spec.seed})"
        return f"torch.{fn}({_py(shape)}, generator={gen}, dtype=torch.float64)", spec.dtype
    return _literal_expr(spec), None


def _inline(values: torch.Tensor) -> str:
    """A tensor's exact values as a literal of its dtype: floats written through float64, exact for every float
    dtype."""
    name = str(values.dtype).removeprefix("torch.")
    if values.dtype.is_floating_point:
        literal = f"torch.tensor({_py(values.to(torch.float64).tolist())}, dtype=torch.float64)"
        return literal if name == "float64" else f"{literal}.to(torch.{name})"
    return f"torch.tensor({_py(values.tolist())}, dtype=torch.{name})"


def _tensor_expr(spec: Any, dtype_expr: str, device: bool = True) -> str:
    """make_tensor: values generated in float64 on the CPU, cast once (unless the spec pins a dtype), moved."""
    values, pinned = _values_expr(spec)
    cast = f"torch.{pinned}" if pinned else dtype_expr
    return f"{values}.to(dtype={cast})" + (".to(device)" if device else "")


def _expected_expr(raw: Any) -> str:
    """runner._expected_tensor: exact values, float64 unless the literal is all integers or all bools."""
    spec = _TENSOR_SPEC.validate_python(raw)
    pinned = getattr(spec, "dtype", None)
    if pinned is None:
        flat = _flat(raw)
        if flat and all(isinstance(x, bool) for x in flat):
            pinned = "bool"
        elif flat and all(isinstance(x, int) and not isinstance(x, bool) for x in flat):
            pinned = "int64"
        else:
            pinned = "float64"
    return _tensor_expr(spec, f"torch.{pinned}", device=False)


def _args(args: dict[str, Any]) -> str:
    """Keyword arguments as build.convert_args passes them: a dtype name given as the dtype argument becomes the
    torch dtype, lists become tuples, and a tensor given by keyword is built like an input."""
    parts = []
    for key, value in args.items():
        if key == "dtype" and isinstance(value, str) and value in DTYPES:
            parts.append(f"{key}=torch.{value}")
        elif is_tensor_spec(value):
            parts.append(f"{key}={_tensor_expr(value, 'dtype')}")
        else:
            parts.append(f"{key}={_py(as_called(value))}")
    return ", ".join(parts)


def _build_module(variant: Variant, lines: list[str]) -> None:
    """runner._Call for modules and layer stacks: seeded construction, cast, state, mode."""
    spec = variant.case.spec
    lines.append(f"torch.manual_seed({spec.seed})  # the module's initial parameters")
    if spec.layers is not None:
        layers = ",\n    ".join(f"nn.{layer.module}({_args(layer.args)})" for layer in spec.layers)
        lines.append(f"module = nn.Sequential(\n    {layers},\n)")
    else:
        lines.append(f"module = nn.{spec.module}({_args(spec.args)})")
    lines += [
        "if dtype.is_floating_point:",
        "    module = module.to(device=device, dtype=dtype)",
        "else:  # nn.Module.to refuses integer dtypes: cast floating tensors one by one",
        "    for p in module.parameters():",
        "        p.requires_grad_(False)",
        "    module = module._apply(lambda t: t.to(device=device, dtype=dtype) if t.is_floating_point() else t.to(device))",
    ]
    for i, layer in enumerate(spec.layers or []):
        for name, value in layer.state.items():
            values, pinned = _values_expr(value)
            lines.append(f"set_state(module[{i}], {name!r}, {values}{_pinned_arg(pinned)})")
    for name, value in spec.state.items():
        values, pinned = _values_expr(value)
        lines.append(f"set_state(module, {name!r}, {values}{_pinned_arg(pinned)})")
    if spec.fill == "exact" and spec.module is not None:
        # fill: exact gives weight and bias seeded integers that every partial sum holds exactly: inlined.
        probe = to_dtype(build_module(spec.module, spec.args), variant.dtype, "cpu")
        fill_parameters(probe, spec, variant.dtype, "cpu")
        for name in ("weight", "bias"):
            param = getattr(probe, name, None)
            if isinstance(param, torch.Tensor) and name not in spec.state:
                lines.append(f"set_state(module, {name!r}, {_inline(param.detach())})  # fill: exact")
    lines.append("module.train()" if spec.mode == "train" else "module.eval()")
    if variant.memory_format != "contiguous":
        lines.append("module = module.to(memory_format=torch.channels_last)")
    if spec.call_args:
        lines += [
            "",
            "def fn(*tensors):  # the forward call's keyword arguments (call_args)",
            f"    return module(*tensors, {_args(spec.call_args)})",
            "",
        ]
    else:
        lines.append("fn = module")


def _pinned_arg(pinned: str | None) -> str:
    return f", pinned=torch.{pinned}" if pinned else ""


def _tuple_output(spec: CaseSpec) -> bool:
    """Whether the call returns several tensors (judged as the runner does at run time, from the case)."""
    last = spec.chain[-1].args if spec.chain else spec.args
    if last.get("return_indices") or any(layer.args.get("return_indices") for layer in spec.layers or []):
        return True
    raw = spec.expect.output
    if isinstance(raw, list) and any(item is None or isinstance(item, dict) for item in raw):
        return True
    try:
        literal_shape(raw)
    except ValueError:
        return isinstance(raw, list)
    return False


def _exception_expr(name: str) -> str:
    """ops.exception_type: builtins first, then torch."""
    return name if isinstance(getattr(builtins, name, None), type) else f"torch.{name}"


def _arithmetic_lines(spec: CaseSpec, lines: list[str]) -> None:
    """The run's own check of a conv/pool call's output shape against the convolution arithmetic, so the script
    and the run cannot disagree about it."""
    if spec.layers is not None or spec.expect.layer_shapes is not None or not spec.inputs:
        return
    label = "output shape vs convolution arithmetic"
    shapes = "[list(t.shape) for t in (out if isinstance(out, (tuple, list)) else [out])]"
    try:
        shape = case_output_shape(spec)
    except GeometryError as exc:
        message = f"{label}: the arithmetic rejects this geometry ({exc}), but the call returned"
        lines.append(f"raise AssertionError({message!r} + f' {{{shapes}}}')")
        return
    if shape is not None:
        lines += [
            f"arithmetic = {list(shape)!r}  # cnnbench/ops/arithmetic.py's output shape for this call",
            f"assert all(s == arithmetic for s in {shapes}), f'{label}: expected {{arithmetic}}, got {{{shapes}}}'",
        ]


def _expectations(spec: CaseSpec, lines: list[str]) -> None:
    _arithmetic_lines(spec, lines)
    expect = spec.expect
    if expect.output is not None:
        if _tuple_output(spec):
            lines.append("outs = list(out)")
            raw = expect.output if isinstance(expect.output, list) else [expect.output]
            lines.append(
                f"assert len(outs) == {len(raw)}, f'the call returned {{len(outs)}} tensors, expected {len(raw)}'"
            )
            for i, item in enumerate(raw):
                if item is not None:
                    lines.append(f"check('output[{i}]', outs[{i}], {_expected_expr(item)})")
        else:
            lines.append(f"expected = {_expected_expr(expect.output)}")
            lines.append("check('output', out, expected)")
    if expect.shape is not None:
        lines.append("shapes = [list(t.shape) for t in (out if isinstance(out, (tuple, list)) else [out])]")
        if expect.shape and isinstance(expect.shape[0], list):
            lines.append(f"assert shapes == {_py(expect.shape)}, f'output shapes {{shapes}}'")
        else:
            lines.append(f"assert shapes[0] == {_py(expect.shape)}, f'output shape {{shapes[0]}}'")
    if expect.dtype is not None:
        lines.append(f"assert out.dtype == torch.{expect.dtype}, f'output dtype {{out.dtype}}'")
    if expect.state_shapes or expect.state:
        lines.append("named = dict(module.named_parameters()) | dict(module.named_buffers())")
    for name, shape in (expect.state_shapes or {}).items():
        lines.append(f"assert list(named[{name!r}].shape) == {_py(shape)}, 'state {name} shape'")
    for name, value in (expect.state or {}).items():
        lines.append(f"check('state {name}', named[{name!r}], {_expected_expr(value)})")
    if expect.repr is not None:
        lines.append(f"expected_repr = {expect.repr!r}")
        lines.append("assert str(module) == expected_repr, f'repr:\\n{module}'")


def _oracles_left(variant: Variant) -> list[str]:
    """The case's expectations a plain-torch script does not carry (cnnbench's own oracles); UsageError when the
    script could check nothing at all (a train: case, or oracle expectations only)."""
    spec = variant.case.spec
    rerun = rerun_command(variant.case.file, variant.id)
    if spec.train is not None:
        raise UsageError(f"{variant.id}: repro does not write training (train:) cases; use {rerun}")
    plain = [k for k in _PLAIN_EXPECT if getattr(spec.expect, k) is not None]
    oracles = [k for k, v in spec.expect if k not in _PLAIN_EXPECT and v not in (None, False)]
    if not plain:
        raise UsageError(
            f"{variant.id}: its expectations ({', '.join(oracles)}) are cnnbench's own oracles, which a plain "
            f"torch snippet does not carry; use {rerun}"
        )
    return oracles


def _header(variant: Variant, stored: dict[str, Any] | None, oracles: Sequence[str]) -> list[str]:
    case, spec = variant.case, variant.case.spec
    header = [
        f"# Reproduces cnnbench variant {variant.id}",
        f"# case {spec.id} at {case.location}" + (f"; source: {spec.source}" if spec.source else ""),
    ]
    if stored:
        first = str(stored.get("message") or "").strip().splitlines()
        header.append(f"# stored status: {stored.get('status')}" + (f": {first[0]}" if first else ""))
    if variant.skip_rule is not None:
        header.append(f"# cnnbench skips this variant: {variant.skip_rule.reason}")
    if variant.xfail_rule is not None:
        header.append(f"# expected to fail: {variant.xfail_rule.reason}")
    if oracles or variant.memory_format != "contiguous":
        left = [f"expect.{k}" for k in oracles]
        if variant.memory_format != "contiguous":
            left.append(f"the {variant.memory_format} vs contiguous comparison")
        header.append(f"# not reproduced here (cnnbench's oracles): {', '.join(left)}")
    header.append(
        "# Needs only torch; exits with an AssertionError (or the call's own error) if it does not hold."
    )
    return header


def _input_lines(variant: Variant) -> list[str]:
    spec = variant.case.spec
    lines = [
        "",
        "",
        "# Inputs: seeded generators draw float64 values on the CPU, then cast, as cnnbench does.",
    ]
    lines.append("inputs = {")
    exact = case_inputs(spec, variant.dtype, "cpu", variant.dtype) if spec.fill == "exact" else None
    for i, (name, value) in enumerate(spec.inputs.items()):
        if exact is not None and is_generated(value):
            lines.append(f"    {name!r}: {_inline(exact[i])}.to(device),  # fill: exact integers")
        else:
            lines.append(f"    {name!r}: {_tensor_expr(value, 'dtype')},")
    lines.append("}")
    if variant.memory_format != "contiguous":
        lines += [
            "# The variant's memory format: 4-D tensors channels_last, 5-D channels_last_3d.",
            "formats = {4: torch.channels_last, 5: torch.channels_last_3d}",
            "inputs = {k: t.contiguous(memory_format=formats[t.dim()]) if t.dim() in formats else t"
            " for k, t in inputs.items()}",
        ]
    return lines


def _call_lines(variant: Variant, lines: list[str]) -> None:
    spec = variant.case.spec
    lines += ["", "# The call."]
    if spec.chain is not None:
        lines.append("steps = [  # the chain: each step is fed the previous step's outputs (a tuple spread)")
        for step in spec.chain:
            namespace = "F" if step.op in FUNCTIONAL_OPS else "torch"
            args = _args(step.args)
            lines.append(f"    lambda *t: {namespace}.{step.op}(*t{', ' + args if args else ''}),")
        lines += [
            "]",
            "",
            "",
            "def fn(*tensors):",
            "    out = tensors",
            "    for step in steps:",
            "        out = step(*(out if isinstance(out, (tuple, list)) else (out,)))",
            "    return out",
            "",
        ]
    elif spec.op is not None:
        namespace = "F" if spec.op in FUNCTIONAL_OPS else "torch"
        args = _args(spec.args)
        lines += [
            "def fn(*tensors):",
            f"    return {namespace}.{spec.op}(*tensors{', ' + args if args else ''})",
            "",
        ]
    else:
        _build_module(variant, lines)


def _outcome_lines(spec: CaseSpec, lines: list[str], build: list[str]) -> None:
    """Build and run the call (build: its lines) and check what the case expects of it: the error it raises, or
    its result."""
    expect = spec.expect
    if expect.error is None:
        lines += build
    else:
        wanted = _exception_expr(expect.error.type)
        # A module is built inside the try: cnnbench counts its constructor as part of the call.
        body = ["    " + line.replace("\n", "\n    ") for line in build if line]
        body += ["    fn(*inputs.values())"] if spec.inputs else []
        lines += ["try:", *body, f"except {wanted} as exc:"]
        if expect.error.match:
            lines.append(
                f"    assert re.search({expect.error.match!r}, str(exc)), f'unexpected message: {{exc}}'"
            )
        else:
            lines.append("    pass")
        lines += [
            "else:",
            f"    raise AssertionError('expected {expect.error.type}, but the call returned normally')",
        ]
        return
    if not spec.inputs:
        lines += ["", "# No input: the module is built, never called; the expectation is about the module."]
        _expectations(spec, lines)
        return
    lines.append("with torch.no_grad():")
    if expect.layer_shapes is not None and spec.chain is not None:
        lines += [
            "    out = tuple(inputs.values())",
            f"    for i, (step, shape) in enumerate(zip(steps, {_py(expect.layer_shapes)})):",
            "        out = step(*(out if isinstance(out, (tuple, list)) else (out,)))",
            "        first = out[0] if isinstance(out, (tuple, list)) else out",
            "        assert list(first.shape) == shape, f'step {i}: shape {list(first.shape)}'",
        ]
    elif expect.layer_shapes is not None:
        lines += [
            "    tensors = list(inputs.values())",
            "    out = tensors[0]",
            f"    for i, (layer, shape) in enumerate(zip(module, {_py(expect.layer_shapes)})):",
            "        out = layer(out, *tensors[1:]) if i == 0 else layer(out)",
            "        assert list(out.shape) == shape, f'layer {i} ({type(layer).__name__}): shape {list(out.shape)}'",
        ]
    else:
        lines.append("    out = fn(*inputs.values())")
    lines += ["", "# The expectation."]
    _expectations(spec, lines)


#: torch.set_float32_matmul_precision's name of each pinned float32 precision.
_MATMUL_PRECISION = {"ieee": "highest", "tf32": "high"}


def _precision_lines(variant: Variant, stored: dict[str, Any] | None) -> list[str]:
    """Pin torch's float32 conv and matmul precision as the variant ran: its case's fp32_precision, else the
    stored row's compute_precision (ieee or tf32)."""
    pinned = variant.case.spec.fp32_precision
    mode = pinned if pinned in _MATMUL_PRECISION else (stored or {}).get("compute_precision")
    if variant.dtype != "float32" or mode not in _MATMUL_PRECISION:
        return []
    return [
        f"# float32 convolutions and matmuls computed in {mode} (cnnbench's compute_precision): pin the flags.",
        f"torch.backends.cudnn.conv.fp32_precision = {mode!r}",
        f"torch.backends.mkldnn.conv.fp32_precision = {mode!r}",
        f"torch.set_float32_matmul_precision({_MATMUL_PRECISION[mode]!r})",
    ]


def repro_snippet(variant: Variant, stored: dict[str, Any] | None = None) -> str:
    """A Python script (plain torch, no cnnbench) that reproduces the variant; it raises if the result is wrong.

    stored, when given, is the variant's stored row (status and message are quoted in the header).
    """
    spec = variant.case.spec
    oracles = _oracles_left(variant)
    tolerances = {d: tolerance_for(d, spec.tolerance) for d in DEFAULT_TOLERANCES}
    tol_text = "{" + ", ".join(f"{d!r}: ({t.atol!r}, {t.rtol!r})" for d, t in tolerances.items()) + "}"
    lines = [
        *_header(variant, stored, oracles),
        _PRELUDE.format(device=variant.device, dtype=variant.dtype, tolerances=tol_text).rstrip(),
    ]
    lines += _precision_lines(variant, stored)
    if spec.op is None:
        lines.append(_STATE_HELPER.rstrip())
    lines += _input_lines(variant)
    build: list[str] = []
    _call_lines(variant, build)
    _outcome_lines(spec, lines, build)
    lines += ["", f"print('ok: {variant.id} reproduces as expected')", ""]
    return "\n".join(lines)


def stored_row(rows: Iterable[Any], variant_id: str) -> dict[str, Any] | None:
    """The stored row of variant_id among a run's results, as a dict."""
    for row in rows:
        if row.variant_id == variant_id:
            return dict(row.to_json())
    return None
