"""Convert oneDNN benchdnn layer-shape lists into cnnbench case files (cases/shapes/), reproducibly.

    python tools/benchdnn_to_cases.py [--data DIR] [--out cases/shapes]

Each conv layer becomes one functional conv case, each pooling layer three (max, avg with and without the
padding counted), checked against the NumPy float64 reference with exact-by-construction inputs (`fill: exact`):
zero tolerance in float32, the scaled tolerances in float16/bfloat16. The output is a pure function of the
shape lists and the constants below, so tests/tools/test_benchdnn_to_cases.py can regenerate it and diff against the
committed files.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(REPO))

from cnnbench.ops.arithmetic import conv_output_size, pool_output_size  # noqa: E402

__all__ = [
    "DEFAULT_DATA",
    "SUITES",
    "Layer",
    "Suite",
    "convert",
    "derive_outputs",
    "main",
    "parse_descriptor",
    "parse_file",
    "reduced_input",
    "render_suite",
]

#: Where the shape lists are (oneDNN tests/benchdnn/inputs, Apache-2.0, commit 3f27bec).
DEFAULT_DATA = Path("/work/shared/data/benchdnn")
_PROVENANCE = "oneDNN benchdnn (Apache-2.0, commit 3f27bec)"

#: A conv layer runs with its output cut to at most this many positions per spatial dim: the channels, groups,
#: kernel, stride, padding and dilation are the layer's, the spatial size is not (see reduced_input).
MAX_CONV_OUTPUT = 4
#: Low-precision conv variants on the CPU cost about 3-10 ns per multiply-add (no native bfloat16/float16
#: kernel here, measured on 2 cores): above this many multiply-adds they are skipped on the CPU, with the
#: reason in the case. Accelerators run them all.
MAX_LOW_PRECISION_MACS_CPU = 1_000_000
#: ... and a grouped float16/bfloat16 conv runs group by group there (up to milliseconds per group): above this
#: many groups it is skipped on the CPU too.
MAX_LOW_PRECISION_GROUPS_CPU = 64
_LOW_PRECISION = ("float16", "bfloat16")
_CONV_DTYPES = ("float32", "float16", "bfloat16")
_POOL_DTYPES = ("float64", "float32", "float16", "bfloat16")

_NO_HALF_AVG3D = (
    'PyTorch has no float16/bfloat16 avg_pool3d CPU kernel ("avg_pool3d_out_frame" not implemented)'
)
_TOKEN_RE = re.compile(r'_|n"([^"]*)"|(mb|g|ic|oc|i[dhw]|o[dhw]|k[dhw]|s[dhw]|p[dhw]|d[dhw])(\d+)')
_DIMS = "dhw"
_ID_UNSAFE = re.compile(r"[^A-Za-z0-9_.+-]")


@dataclass(frozen=True)
class Layer:
    """One benchdnn descriptor with benchdnn's defaults applied; spatial tuples are in (d,) h, w order."""

    kind: str
    """conv or pool."""
    mb: int
    groups: int
    ic: int
    oc: int
    input: tuple[int, ...]
    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    padding: tuple[int, ...]
    dilation: tuple[int, ...]
    """PyTorch's dilation: benchdnn's dh/dw plus one."""
    output: tuple[int | None, ...]
    """The output size the descriptor gives (None where it leaves it to be derived)."""
    name: str | None = None
    count: int = 1
    """How many times the layer occurs in the network (the name's *N)."""
    text: str = ""
    line: int = 0

    @property
    def ndims(self) -> int:
        """Spatial dims: 1, 2 or 3."""
        return len(self.input)


def parse_descriptor(text: str, kind: str, line: int = 0) -> Layer:
    """Parse one benchdnn descriptor (conv or pool) and apply benchdnn's defaults; ValueError if malformed.

    mb defaults to 2, g to 1, a pool's oc is its ic; w sizes default to h sizes (and h to d for 3-D), strides
    to 1, padding and dilation to 0; benchdnn's dilation counts the gaps (dh0 = no dilation).
    """
    values: dict[str, int] = {}
    name: str | None = None
    pos = 0
    while pos < len(text):
        m = _TOKEN_RE.match(text, pos)
        if m is None:
            raise ValueError(f"line {line}: cannot read {text[pos:]!r} in descriptor {text!r}")
        if m.group(1) is not None:
            name = m.group(1)
        elif m.group(2) is not None:
            if m.group(2) in values:
                raise ValueError(f"line {line}: {m.group(2)} given twice in {text!r}")
            values[m.group(2)] = int(m.group(3))
        pos = m.end()
    if "ic" not in values:
        raise ValueError(f"line {line}: no ic in {text!r}")
    given = {key[1] for key in values if key[0] in "iokspd" and len(key) == 2 and key[1] in _DIMS}
    ndims = 3 if "d" in given else 2 if "h" in given else 1
    dims = _DIMS[3 - ndims :]

    def spatial(prefix: str, default: int | None) -> tuple[int, ...]:
        out: list[int] = []
        for dim in dims:
            value = values.get(prefix + dim)
            if value is None:
                value = out[-1] if out else default
            if value is None:
                raise ValueError(f"line {line}: no {prefix}{dims[0]} in {text!r}")
            out.append(value)
        return tuple(out)

    ic = values["ic"]
    oc = values.get("oc", ic)
    if kind == "pool" and oc != ic:
        raise ValueError(f"line {line}: a pooling layer keeps its channels, but oc {oc} != ic {ic}")
    count = 1
    if name is not None and (star := re.fullmatch(r"(.*)\*(\d+)", name)):
        name, count = star.group(1), int(star.group(2))
    return Layer(
        kind=kind,
        mb=values.get("mb", 2),
        groups=values.get("g", 1),
        ic=ic,
        oc=oc,
        input=spatial("i", None),
        kernel=spatial("k", None),
        stride=spatial("s", 1),
        padding=spatial("p", 0),
        dilation=tuple(d + 1 for d in spatial("d", 0)),
        output=tuple(values.get("o" + dim) for dim in dims),
        name=name,
        count=count,
        text=text,
        line=line,
    )


def parse_file(path: Path, kind: str) -> list[Layer]:
    """Every descriptor of a shape list; # starts a comment (commented-out lines repeat an earlier layer)."""
    layers = []
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        text = raw.split("#", 1)[0].strip()
        if text:
            layers.append(parse_descriptor(text, kind, number))
    return layers


def derive_outputs(layer: Layer, ceil_mode: bool = False) -> tuple[int, ...]:
    """The output size PyTorch gives the layer, per spatial dim (ValueError if PyTorch rejects it)."""
    dims = zip(layer.input, layer.kernel, layer.stride, layer.padding, layer.dilation, strict=True)
    if layer.kind == "conv":
        return tuple(conv_output_size(i, k, s, p, d) for i, k, s, p, d in dims)
    return tuple(pool_output_size(i, k, s, p, d, ceil_mode) for i, k, s, p, d in dims)


def reduced_input(size: int, output: int, stride: int, limit: int) -> int:
    """An input size whose output is at most limit: cut by whole strides, so that the last window's overhang
    (size + 2*padding - effective kernel) mod stride, the right-edge geometry, stays the layer's. The input
    keeps at least one element, so a layer whose output is mostly padding may stay above the limit."""
    cut = min(output - limit, (size - 1) // stride) if output > limit else 0
    return size - stride * cut


@dataclass(frozen=True)
class Suite:
    """One shape list and the case file it becomes."""

    source: str
    """The shape list's file name."""
    kind: str
    tag: str
    """Its name in case ids (shapes.<tag>.<layer>) and the output file's name."""
    title: str


SUITES: tuple[Suite, ...] = (
    Suite("conv_shapes_resnet_50", "conv", "resnet_50", "ResNet-50: every convolution layer"),
    Suite("conv_shapes_mobilenet", "conv", "mobilenet", "MobileNet: the pointwise (1x1) layers and conv1"),
    Suite("conv_shapes_mobilenet_dw", "conv", "mobilenet_dw", "MobileNet: the depthwise 3x3 layers"),
    Suite(
        "conv_shapes_deepbench_inference_server",
        "conv",
        "deepbench_inference_server",
        "DeepBench inference (server) convolutions: speech, vision and face recognition layers",
    ),
    Suite("conv_shapes_dilated", "conv", "dilated", "Dilated convolutions (benchdnn's dilation set)"),
    Suite("pool_shapes_basic", "pool", "pool_basic", "Pooling: benchdnn's basic 1-D, 2-D and 3-D problems"),
)


@dataclass
class _Case:
    id: str
    source: str
    note: str
    lines: list[str] = field(default_factory=list)


def _flow(values: Sequence[int]) -> str:
    return "[" + ", ".join(str(v) for v in values) + "]"


def _dims(values: Sequence[int]) -> str:
    return "x".join(str(v) for v in values)


def _descriptor(layer: Layer) -> str:
    """A canonical descriptor without mb (the batch is cnnbench's): the id of an unnamed layer."""
    dims = _DIMS[3 - layer.ndims :]
    parts = [f"g{layer.groups}" if layer.groups > 1 else "", f"ic{layer.ic}"]
    parts += [f"i{d}{v}" for d, v in zip(dims, layer.input, strict=True)]
    parts += [f"oc{layer.oc}"] if layer.kind == "conv" else []
    for prefix, values in (("k", layer.kernel), ("s", layer.stride), ("p", layer.padding)):
        parts += [f"{prefix}{d}{v}" for d, v in zip(dims, values, strict=True)]
    if any(d > 1 for d in layer.dilation):
        parts += [f"d{d}{v - 1}" for d, v in zip(dims, layer.dilation, strict=True)]
    return "".join(parts)


def _case_id(suite: Suite, layer: Layer) -> str:
    if layer.name is None:
        return f"shapes.{suite.tag}.{_descriptor(layer)}"
    return "shapes." + _ID_UNSAFE.sub("-", layer.name.replace(":", "."))


def _geometry_key(layer: Layer) -> tuple[object, ...]:
    return (
        layer.groups,
        layer.ic,
        layer.oc,
        layer.input,
        layer.kernel,
        layer.stride,
        layer.padding,
        layer.dilation,
    )


def _conv_case(suite: Suite, layer: Layer, warnings: list[str]) -> _Case:
    where = f"{suite.source}:{layer.line}"
    try:
        derived = derive_outputs(layer)
    except ValueError as exc:
        return _rejected_conv_case(suite, layer, str(exc), warnings)
    mismatch = [
        f"o{d}{g} (PyTorch's {o})"
        for d, g, o in zip(_DIMS[3 - layer.ndims :], layer.output, derived, strict=True)
        if g is not None and g != o
    ]
    if mismatch:
        warnings.append(f"{where}: benchdnn gives {', '.join(mismatch)}; the case checks PyTorch's geometry")
    size = tuple(
        reduced_input(i, o, s, MAX_CONV_OUTPUT)
        for i, o, s in zip(layer.input, derived, layer.stride, strict=True)
    )
    small = derive_outputs(replace(layer, input=size))
    macs = layer.oc * (layer.ic // layer.groups) * math.prod(layer.kernel) * math.prod(small)
    occurs = f", {layer.count} times in the network" if layer.count > 1 else ""
    note = f"benchdnn {layer.text} (mb{layer.mb}{occurs}): output {_dims(derived)}"
    if mismatch:
        note += f"; benchdnn states {', '.join(mismatch)}, asymmetric padding PyTorch cannot express"
    if size != layer.input:
        note += (
            f". Run at mb1 on a {_dims(size)} input (output {_dims(small)}) instead of {_dims(layer.input)}: "
            "the spatial size is cut by whole strides, keeping the channels, groups, kernel, stride, padding, "
            "dilation and the right-edge overhang"
        )
    else:
        note += ". Run at mb1"
    case = _Case(_case_id(suite, layer), f"{suite.source}, {layer.name or where}: {_PROVENANCE}", note + ".")
    case.lines += _conv_lines(layer, size, "{reference: numpy}")
    reason = None
    if macs > MAX_LOW_PRECISION_MACS_CPU:
        reason = (
            f"{macs / 1e6:.1f}M multiply-adds: float16/bfloat16 convs have no native CPU kernel here, "
            "too slow for the suite's time budget; run on an accelerator"
        )
    elif layer.groups > MAX_LOW_PRECISION_GROUPS_CPU:
        reason = (
            f"{layer.groups} groups: float16/bfloat16 grouped convs run group by group on the CPU, "
            "too slow for the suite's time budget; run on an accelerator"
        )
    if reason is not None:
        case.lines += [
            "skip:",
            f"  - {{device: cpu, dtype: [float16, bfloat16], reason: {json.dumps(reason)}}}",
        ]
    return case


def _conv_lines(layer: Layer, size: Sequence[int], expect: str) -> list[str]:
    weight = (layer.oc, layer.ic // layer.groups, *layer.kernel)
    return [
        f"op: conv{layer.ndims}d",
        f"args: {{stride: {_flow(layer.stride)}, padding: {_flow(layer.padding)}, "
        f"dilation: {_flow(layer.dilation)}, groups: {layer.groups}}}",
        "inputs:",
        f"  input: {{randn: {_flow((1, layer.ic, *size))}, seed: 1}}",
        f"  weight: {{randn: {_flow(weight)}, seed: 2}}",
        f"  bias: {{randn: [{layer.oc}], seed: 3}}",
        f"expect: {expect}",
    ]


def _rejected_conv_case(suite: Suite, layer: Layer, why: str, warnings: list[str]) -> _Case:
    """A layer benchdnn runs with a larger right padding than left, which PyTorch's symmetric padding
    cannot express: at the stated padding PyTorch must reject it."""
    where = f"{suite.source}:{layer.line}"
    warnings.append(f"{where}: PyTorch rejects it ({why}); the case expects the error")
    stated = _dims([o or 0 for o in layer.output])
    note = (
        f"benchdnn {layer.text} (mb{layer.mb}), run at mb1: benchdnn reaches its output {stated} by padding the "
        f"right edge more than the left, which PyTorch cannot express; at the stated padding PyTorch must "
        f"reject it ({why})."
    )
    case = _Case(_case_id(suite, layer), f"{suite.source}, {layer.name or where}: {_PROVENANCE}", note)
    case.lines += _conv_lines(layer, layer.input, "{error: {type: RuntimeError}}")
    return case


def _pool_cases(suite: Suite, layer: Layer, warnings: list[str]) -> list[_Case]:
    where = f"{suite.source}:{layer.line}"
    base_id = _case_id(suite, layer)
    dims = _DIMS[3 - layer.ndims :]
    occurs = f", {layer.count} times" if layer.count > 1 else ""
    note = f"benchdnn {layer.text} (mb{layer.mb}{occurs}), run at mb1"
    ceil_mode = False
    rejected: str | None = None
    try:
        derived = derive_outputs(layer)
    except ValueError as exc:
        rejected = str(exc)
        derived = ()
    given = tuple(layer.output)
    if rejected is None and any(g is not None and g != o for g, o in zip(given, derived, strict=True)):
        try:
            ceiled = derive_outputs(layer, ceil_mode=True)
        except ValueError:
            ceiled = ()
        if ceiled and all(g is None or g == o for g, o in zip(given, ceiled, strict=True)):
            ceil_mode = True
            note += (
                f"; benchdnn's output {_dims([g or 0 for g in given])} pads the right edge further, which "
                "PyTorch expresses as ceil_mode"
            )
        else:
            stated = ", ".join(f"o{d}{g}" for d, g in zip(dims, given, strict=True) if g is not None)
            note += (
                f"; benchdnn's {stated} needs asymmetric padding PyTorch cannot express, so the case checks "
                f"PyTorch's output {_dims(derived)}"
            )
            warnings.append(
                f"{where}: benchdnn gives {stated} (PyTorch's {_dims(derived)}); the case checks PyTorch's geometry"
            )
    if rejected is not None:
        note += f"; PyTorch rejects this geometry ({rejected}), as the case expects"
        warnings.append(f"{where}: PyTorch rejects it ({rejected}); the cases expect the error")
    shape = _flow((1, layer.ic, *layer.input))
    cases = []
    for alg, op, extra in (
        ("max", "max_pool", ""),
        ("avg_include_pad", "avg_pool", ", count_include_pad: true"),
        ("avg_exclude_pad", "avg_pool", ", count_include_pad: false"),
    ):
        args = f"kernel_size: {_flow(layer.kernel)}, stride: {_flow(layer.stride)}, padding: {_flow(layer.padding)}"
        if op == "max_pool" and any(d > 1 for d in layer.dilation):
            args += f", dilation: {_flow(layer.dilation)}"
        args += f", ceil_mode: {'true' if ceil_mode else 'false'}{extra}"
        case = _Case(f"{base_id}.{alg}", f"{suite.source}, {layer.name or where}: {_PROVENANCE}", note + ".")
        expect = "{error: {type: RuntimeError}}" if rejected is not None else "{reference: numpy}"
        case.lines += [
            f"op: {op}{layer.ndims}d",
            f"args: {{{args}}}",
            f"inputs: {{input: {{randn: {shape}, seed: 1}}}}",
            f"expect: {expect}",
        ]
        if op == "avg_pool" and layer.ndims == 3 and rejected is None:
            case.lines += [
                "xfail:",
                f"  - {{device: cpu, dtype: [float16, bfloat16], reason: {json.dumps(_NO_HALF_AVG3D)}}}",
            ]
        cases.append(case)
    return cases


def _header(suite: Suite, layers: int, cases: int) -> list[str]:
    lines = [
        f"# {suite.title}.",
        f"# GENERATED by tools/benchdnn_to_cases.py from {suite.source}, {_PROVENANCE}. Do not edit; rerun",
        "#   python tools/benchdnn_to_cases.py",
        f"# {layers} layers (repeats of one geometry merged), {cases} cases, each checked against the NumPy float64",
        "# reference with exact-by-construction inputs (fill: exact): zero tolerance where the dtype makes the",
        "# result exact (float64/float32 conv and max pooling), the scaled tolerances otherwise. Every variant",
        "# also checks its output shape against the convolution arithmetic.",
    ]
    if suite.kind == "conv":
        lines += [
            f"# Cost: every layer runs at mb1 with its output cut to at most {MAX_CONV_OUTPUT} positions per",
            "# spatial dim (each case's note gives the original size). float16/bfloat16 convs have no native kernel",
            f"# on this CPU: above {MAX_LOW_PRECISION_MACS_CPU // 1_000_000}M multiply-adds or "
            f"{MAX_LOW_PRECISION_GROUPS_CPU} groups they are skipped",
            "# on the CPU, each with its reason (an accelerator runs them).",
        ]
    else:
        lines += [
            "# Every layer runs at mb1 at its full spatial size; benchdnn's algorithms max, avg_p, avg_np are",
            "# max_pool, avg_pool with count_include_pad true, false.",
        ]
    return lines


def render_suite(suite: Suite, layers: Sequence[Layer]) -> tuple[str, list[str]]:
    """The case file of one shape list, and the warnings (stated outputs PyTorch cannot reproduce)."""
    warnings: list[str] = []
    merged: dict[tuple[object, ...], Layer] = {}
    also: dict[tuple[object, ...], list[str]] = {}
    for layer in layers:
        key = _geometry_key(layer)
        if key in merged:
            also[key].append(layer.name or f"line {layer.line} (mb{layer.mb})")
            continue
        merged[key] = layer
        also[key] = []
    cases: list[_Case] = []
    seen: dict[str, int] = {}
    for key, layer in merged.items():
        made = (
            [_conv_case(suite, layer, warnings)]
            if suite.kind == "conv"
            else _pool_cases(suite, layer, warnings)
        )
        for case in made:
            if also[key]:
                case.note = case.note[:-1] + f"; also stands for {', '.join(also[key])}."
            n = seen.get(case.id, 0) + 1
            seen[case.id] = n
            if n > 1:
                case.id += f"-{n}"
        cases += made
    dtypes = _CONV_DTYPES if suite.kind == "conv" else _POOL_DTYPES
    out = _header(suite, len(merged), len(cases))
    out += [
        "defaults:",
        "  devices: [cpu, cuda]",
        f"  dtypes: [{', '.join(dtypes)}]",
        "  fill: exact",
        "cases:",
    ]
    for case in cases:
        out += [
            f"  - id: {case.id}",
            f"    source: {json.dumps(case.source)}",
            f"    note: {json.dumps(case.note)}",
        ]
        out += [f"    {line}" for line in case.lines]
    return "\n".join(out) + "\n", warnings


def convert(data: Path, out: Path, suites: Sequence[Suite] = SUITES) -> list[str]:
    """Write every suite's case file under out; return the warnings."""
    out.mkdir(parents=True, exist_ok=True)
    warnings: list[str] = []
    for suite in suites:
        text, found = render_suite(suite, parse_file(data / suite.source, suite.kind))
        (out / f"{suite.tag}.yaml").write_text(text, encoding="utf-8")
        warnings += found
    return warnings


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: convert the shape lists; print what PyTorch cannot reproduce as stated."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder of benchdnn shape lists")
    parser.add_argument("--out", type=Path, default=REPO / "cases" / "shapes", help="where the case files go")
    options = parser.parse_args(argv)
    for warning in convert(options.data, options.out):
        print(f"note: {warning}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
