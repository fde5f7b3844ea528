"""ONNX node tests -> torch.nn.functional calls: one mapping per ONNX op type, or the reason there is none.

A mapping reproduces the ONNX node's semantics with one PyTorch call. Where PyTorch has no argument for an ONNX
attribute but an exact equivalent exists, the stored input is transformed instead, and the case's note says so:
asymmetric convolution pads become zero padding of the stored input (exact: the padded positions contribute 0),
asymmetric max-pooling pads become -inf padding (exact outside ceil mode), ONNX's flat max-pooling indices
(over the whole N*C*H*W tensor, row- or column-major by storage_order) become torch's per-plane row-major ones.
Anything without an exact equivalent raises UnmappedError with the reason, which SKIPPED.md lists.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["MAPPERS", "Mapped", "NodeTest", "UnmappedError"]


class UnmappedError(Exception):
    """This node test has no exact torch.nn.functional counterpart; the message says why."""


@dataclass(frozen=True)
class NodeTest:
    """One ONNX node test: its node's op type, opset and attributes, inputs by ONNX position, and outputs."""

    name: str
    op_type: str
    opset: int
    attrs: dict[str, Any]
    inputs: list[np.ndarray[Any, Any] | None]
    """In the op schema's order; None where the node leaves an optional input out."""
    outputs: list[np.ndarray[Any, Any]]
    rtol: float
    atol: float


@dataclass
class Mapped:
    """The torch call a node test becomes."""

    family: str
    """The suite file it goes into (conv, max_pool, norm, resize, activation, ...)."""
    call: dict[str, str]
    """``{"op": "conv2d"}`` or ``{"module": "LayerNorm"}``."""
    inputs: list[tuple[str, np.ndarray[Any, Any]]]
    args: dict[str, Any] = field(default_factory=dict)
    state: list[tuple[str, np.ndarray[Any, Any]]] = field(default_factory=list)
    outputs: list[np.ndarray[Any, Any] | None] = field(default_factory=list)
    """Expected outputs: one, or several for a tuple result (None: not compared)."""
    pinned: list[str | None] = field(default_factory=list)
    """Per output, a dtype to pin (int64 for indices), else None."""
    notes: list[str] = field(default_factory=list)


def _ints(values: Any) -> list[int]:
    return [int(v) for v in values]


def _input(t: NodeTest, i: int) -> np.ndarray[Any, Any] | None:
    return t.inputs[i] if i < len(t.inputs) else None


def _spatial(t: NodeTest, kernel: list[int]) -> tuple[list[int], list[int]]:
    n = len(kernel)
    return _ints(t.attrs.get("strides", [1] * n)), _ints(t.attrs.get("dilations", [1] * n))


def _pads(
    t: NodeTest, sizes: list[int], kernel: list[int], strides: list[int], dil: list[int]
) -> tuple[list[int], list[int]]:
    """ONNX's begin and end pads per spatial dim, from pads or auto_pad (SAME_UPPER/SAME_LOWER/VALID)."""
    n = len(sizes)
    auto = t.attrs.get("auto_pad", "NOTSET")
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        begin, end = [], []
        for size, k, s, d in zip(sizes, kernel, strides, dil, strict=True):
            out = -(-size // s)
            total = max((out - 1) * s + (k - 1) * d + 1 - size, 0)
            small, big = total // 2, total - total // 2
            begin.append(small if auto == "SAME_UPPER" else big)
            end.append(big if auto == "SAME_UPPER" else small)
        return begin, end
    if auto == "VALID":
        return [0] * n, [0] * n
    if auto != "NOTSET":
        raise UnmappedError(f"auto_pad {auto!r} is not an ONNX value")
    pads = _ints(t.attrs.get("pads", [0] * (2 * n)))
    return pads[:n], pads[n:]


def _pad_input(
    x: np.ndarray[Any, Any], begin: list[int], end: list[int], value: float
) -> np.ndarray[Any, Any]:
    widths = [(0, 0), (0, 0), *zip(begin, end, strict=True)]
    return np.pad(x, widths, mode="constant", constant_values=np.array(value, dtype=x.dtype))


def _check_kernel(t: NodeTest, kernel: list[int]) -> None:
    if "kernel_shape" in t.attrs and _ints(t.attrs["kernel_shape"]) != kernel:
        raise UnmappedError(f"kernel_shape {t.attrs['kernel_shape']} differs from the weight's {kernel}")


def _conv(t: NodeTest) -> Mapped:
    x, w, b = _input(t, 0), _input(t, 1), _input(t, 2)
    assert x is not None and w is not None
    nd = x.ndim - 2
    if nd not in (1, 2, 3):
        raise UnmappedError(f"a {nd}-d convolution: F.conv1d/2d/3d take 1 to 3 spatial dims")
    kernel = list(w.shape[2:])
    _check_kernel(t, kernel)
    strides, dil = _spatial(t, kernel)
    begin, end = _pads(t, list(x.shape[2:]), kernel, strides, dil)
    notes = []
    if begin != end:
        x = _pad_input(x, begin, end, 0.0)
        notes.append(f"ONNX pads begin {begin}, end {end}: applied to the stored input as zeros, padding 0")
        begin = [0] * nd
    args: dict[str, Any] = {"stride": strides, "padding": begin, "dilation": dil}
    if int(t.attrs.get("group", 1)) != 1:
        args["groups"] = int(t.attrs["group"])
    inputs = [("input", x), ("weight", w)] + ([("bias", b)] if b is not None else [])
    return Mapped("conv", {"op": f"conv{nd}d"}, inputs, args, outputs=[t.outputs[0]], notes=notes)


def _conv_transpose(t: NodeTest) -> Mapped:
    x, w, b = _input(t, 0), _input(t, 1), _input(t, 2)
    assert x is not None and w is not None
    nd = x.ndim - 2
    if nd not in (1, 2, 3):
        raise UnmappedError(
            f"a {nd}-d transposed convolution: F.conv_transpose1d/2d/3d take 1 to 3 spatial dims"
        )
    kernel = list(w.shape[2:])
    _check_kernel(t, kernel)
    strides, dil = _spatial(t, kernel)
    sizes = list(x.shape[2:])
    out_pad = _ints(t.attrs.get("output_padding", [0] * nd))
    full = [(n - 1) * s + (k - 1) * d + 1 for n, s, k, d in zip(sizes, strides, kernel, dil, strict=True)]
    auto = t.attrs.get("auto_pad", "NOTSET")
    shape = _ints(t.attrs["output_shape"]) if "output_shape" in t.attrs else None
    if "pads" not in t.attrs and auto in ("SAME_UPPER", "SAME_LOWER"):
        target = shape or [n * s for n, s in zip(sizes, strides, strict=True)]
        total = [f + p - o for f, p, o in zip(full, out_pad, target, strict=True)]
        begin = [tp // 2 if auto == "SAME_UPPER" else tp - tp // 2 for tp in total]
        end = [tp - tp // 2 if auto == "SAME_UPPER" else tp // 2 for tp in total]
    else:
        pads = _ints(t.attrs.get("pads", [0] * (2 * nd)))
        begin, end = pads[:nd], pads[nd:]
    length = shape or [f + p - bg - e for f, p, bg, e in zip(full, out_pad, begin, end, strict=True)]
    # torch crops `padding` at both ends of the full output, then output_padding extends the end.
    extra = [n - (f - 2 * bg) for n, f, bg in zip(length, full, begin, strict=True)]
    for bg, q, s, d in zip(begin, extra, strides, dil, strict=True):
        if bg < 0 or not 0 <= q < max(s, d):
            raise UnmappedError(
                f"ONNX pads begin {begin}, end {end} and output length {length} need torch padding {begin} "
                f"with output_padding {extra}: torch needs padding >= 0 and 0 <= output_padding < max(stride, "
                "dilation)"
            )
    args: dict[str, Any] = {"stride": strides, "padding": begin, "output_padding": extra}
    if int(t.attrs.get("group", 1)) != 1:
        args["groups"] = int(t.attrs["group"])
    args["dilation"] = dil
    inputs = [("input", x), ("weight", w)] + ([("bias", b)] if b is not None else [])
    return Mapped("conv_transpose", {"op": f"conv_transpose{nd}d"}, inputs, args, outputs=[t.outputs[0]])


def _pool_geometry(
    t: NodeTest, x: np.ndarray[Any, Any]
) -> tuple[list[int], list[int], list[int], list[int], list[int]]:
    nd = x.ndim - 2
    if nd not in (1, 2, 3):
        raise UnmappedError(f"a {nd}-d pool: torch pools take 1 to 3 spatial dims")
    kernel = _ints(t.attrs["kernel_shape"])
    strides, dil = _spatial(t, kernel)
    begin, end = _pads(t, list(x.shape[2:]), kernel, strides, dil)
    return kernel, strides, dil, begin, end


def _torch_pad_ok(begin: list[int], kernel: list[int], dil: list[int]) -> bool:
    """torch's pooling limit: padding at most half the (dilated) kernel."""
    return all(2 * p <= (k - 1) * d + 1 for p, k, d in zip(begin, kernel, dil, strict=True))


def _max_pool(t: NodeTest) -> Mapped:
    x = _input(t, 0)
    assert x is not None
    kernel, strides, dil, begin, end = _pool_geometry(t, x)
    ceil = bool(t.attrs.get("ceil_mode", 0))
    notes: list[str] = []
    padded = begin != end or not _torch_pad_ok(begin, kernel, dil)
    if padded:
        if ceil:
            raise UnmappedError(
                f"pads begin {begin}, end {end} with ceil_mode: torch pads symmetrically (at most half the "
                "kernel), and padding the input instead changes which last window ceil mode keeps"
            )
        fill = -np.inf if x.dtype.kind == "f" else np.iinfo(x.dtype).min
        x = _pad_input(x, begin, end, fill)
        notes.append(f"ONNX pads begin {begin}, end {end}: applied to the stored input as {fill}, padding 0")
        begin = [0] * len(kernel)
    args: dict[str, Any] = {"kernel_size": kernel, "stride": strides, "padding": begin, "dilation": dil}
    args["ceil_mode"] = ceil
    outputs: list[np.ndarray[Any, Any] | None] = [t.outputs[0]]
    pinned: list[str | None] = [None]
    if len(t.outputs) > 1:
        args["return_indices"] = True
        if padded:
            outputs.append(None)
            notes.append("indices not compared: they would index the padded input")
        else:
            outputs.append(_torch_indices(t.outputs[1], x.shape, int(t.attrs.get("storage_order", 0))))
        pinned.append("int64")
    nd = len(kernel)
    return Mapped(
        "max_pool",
        {"op": f"max_pool{nd}d"},
        [("input", x)],
        args,
        outputs=outputs,
        pinned=pinned,
        notes=notes,
    )


def _torch_indices(
    onnx_idx: np.ndarray[Any, Any], shape: tuple[int, ...], storage_order: int
) -> np.ndarray[Any, Any]:
    """ONNX's flat indices over the whole tensor -> torch's flat row-major indices within each (n, c) plane."""
    plane = math.prod(shape[2:])
    within = onnx_idx.astype(np.int64) % plane
    if storage_order == 1:
        coords = np.unravel_index(within, tuple(shape[2:]), order="F")
        within = np.ravel_multi_index(coords, tuple(shape[2:]), order="C")
    return np.asarray(within, dtype=np.int64)


def _avg_pool(t: NodeTest) -> Mapped:
    x = _input(t, 0)
    assert x is not None
    kernel, strides, dil, begin, end = _pool_geometry(t, x)
    if any(d != 1 for d in dil):
        raise UnmappedError(f"dilations {dil}: F.avg_pool1d/2d/3d have no dilation")
    ceil = bool(t.attrs.get("ceil_mode", 0))
    include = bool(t.attrs.get("count_include_pad", 0))
    notes: list[str] = []
    if begin != end or not _torch_pad_ok(begin, kernel, dil):
        if not include or ceil:
            raise UnmappedError(
                f"pads begin {begin}, end {end} (count_include_pad={int(include)}, ceil_mode={int(ceil)}): "
                "torch pads symmetrically, at most half the kernel; padding the input instead would count the "
                "padded zeros" + (" and change the last window ceil mode keeps" if ceil else "")
            )
        x = _pad_input(x, begin, end, 0.0)
        notes.append(
            f"ONNX pads begin {begin}, end {end} counted in the average: applied to the stored input as zeros"
        )
        begin = [0] * len(kernel)
    args: dict[str, Any] = {"kernel_size": kernel, "stride": strides, "padding": begin}
    args |= {"ceil_mode": ceil, "count_include_pad": include}
    return Mapped(
        "avg_pool",
        {"op": f"avg_pool{len(kernel)}d"},
        [("input", x)],
        args,
        outputs=[t.outputs[0]],
        notes=notes,
    )


def _global_pool(kind: str) -> Callable[[NodeTest], Mapped]:
    def mapper(t: NodeTest) -> Mapped:
        x = _input(t, 0)
        assert x is not None
        nd = x.ndim - 2
        if nd not in (1, 2, 3):
            raise UnmappedError(f"a {nd}-d global pool: torch's adaptive pools take 1 to 3 spatial dims")
        args = {"output_size": [1] * nd}
        return Mapped(
            "global_pool", {"op": f"adaptive_{kind}_pool{nd}d"}, [("input", x)], args, outputs=[t.outputs[0]]
        )

    return mapper


def _batch_norm(t: NodeTest) -> Mapped:
    x, scale, bias, mean, var = (_input(t, i) for i in range(5))
    assert x is not None and scale is not None and bias is not None and mean is not None and var is not None
    training = bool(t.attrs.get("training_mode", 0))
    args: dict[str, Any] = {"training": training, "eps": float(np.float32(t.attrs.get("epsilon", 1e-5)))}
    notes = []
    if training:
        args["momentum"] = float(np.float32(1.0 - t.attrs.get("momentum", 0.9)))
        notes.append(
            "training_mode: only Y is compared (ONNX's running_mean/var outputs are not a torch output)"
        )
    inputs = [("input", x), ("running_mean", mean), ("running_var", var), ("weight", scale), ("bias", bias)]
    return Mapped("norm", {"op": "batch_norm"}, inputs, args, outputs=[t.outputs[0]], notes=notes)


def _instance_norm(t: NodeTest) -> Mapped:
    x, scale, bias = (_input(t, i) for i in range(3))
    assert x is not None and scale is not None and bias is not None
    nd = x.ndim - 2
    module = {1: "InstanceNorm1d", 2: "InstanceNorm2d"}.get(nd)
    if module is None:
        raise UnmappedError(f"a {nd}-d instance norm: the vocabulary has InstanceNorm1d and InstanceNorm2d")
    args = {
        "num_features": int(x.shape[1]),
        "eps": float(np.float32(t.attrs.get("epsilon", 1e-5))),
        "affine": True,
    }
    return Mapped(
        "norm", {"module": module}, [("input", x)], args, [("weight", scale), ("bias", bias)], [t.outputs[0]]
    )


def _layer_norm(t: NodeTest) -> Mapped:
    x, scale, bias = (_input(t, i) for i in range(3))
    assert x is not None and scale is not None
    axis = int(t.attrs.get("axis", -1)) % x.ndim
    shape = list(x.shape[axis:])
    if list(scale.shape) != shape or (bias is not None and list(bias.shape) != shape):
        raise UnmappedError(
            f"scale/bias of shape {list(scale.shape)} broadcast: nn.LayerNorm's weight has shape {shape}"
        )
    if int(t.attrs.get("stash_type", 1)) != 1:
        raise UnmappedError("stash_type other than float32")
    args = {"normalized_shape": shape, "eps": float(np.float32(t.attrs.get("epsilon", 1e-5)))}
    if bias is None:
        args["bias"] = False
    state = [("weight", scale)] + ([("bias", bias)] if bias is not None else [])
    notes = (
        ["only Y is compared (ONNX's Mean and InvStdDev outputs are not a torch output)"]
        if len(t.outputs) > 1
        else []
    )
    return Mapped("norm", {"module": "LayerNorm"}, [("input", x)], args, state, [t.outputs[0]], notes=notes)


def _group_norm(t: NodeTest) -> Mapped:
    x, scale, bias = (_input(t, i) for i in range(3))
    assert x is not None and scale is not None and bias is not None
    if t.opset < 21:
        raise UnmappedError(
            f"opset {t.opset} GroupNormalization scales per group; nn.GroupNorm per channel (opset 21)"
        )
    args = {
        "num_groups": int(t.attrs["num_groups"]),
        "num_channels": int(x.shape[1]),
        "eps": float(np.float32(t.attrs.get("epsilon", 1e-5))),
    }
    return Mapped(
        "norm",
        {"module": "GroupNorm"},
        [("input", x)],
        args,
        [("weight", scale), ("bias", bias)],
        [t.outputs[0]],
    )


def _lrn(t: NodeTest) -> Mapped:
    x = _input(t, 0)
    assert x is not None
    size = int(t.attrs["size"])
    if size % 2 == 0:
        raise UnmappedError(
            f"even size {size}: ONNX centres the window at floor((size-1)/2), torch at size // 2"
        )
    args = {
        "size": size,
        "alpha": float(np.float32(t.attrs.get("alpha", 1e-4))),
        "beta": float(np.float32(t.attrs.get("beta", 0.75))),
        "k": float(np.float32(t.attrs.get("bias", 1.0))),
    }
    return Mapped("norm", {"op": "local_response_norm"}, [("input", x)], args, outputs=[t.outputs[0]])


def _lp_pool(t: NodeTest) -> Mapped:
    x = _input(t, 0)
    assert x is not None
    kernel, strides, dil, begin, end = _pool_geometry(t, x)
    if any(begin) or any(end):
        raise UnmappedError(f"pads begin {begin}, end {end}: F.lp_pool1d/2d have no padding")
    if any(d != 1 for d in dil):
        raise UnmappedError(f"dilations {dil}: F.lp_pool1d/2d have no dilation")
    if len(kernel) not in (1, 2):
        raise UnmappedError(f"a {len(kernel)}-d LpPool: the vocabulary has lp_pool1d and lp_pool2d")
    # F.lp_pool1d multiplies by kernel_size: it takes ints, not lists
    k_arg: Any = kernel[0] if len(kernel) == 1 else kernel
    s_arg: Any = strides[0] if len(kernel) == 1 else strides
    args = {"norm_type": float(t.attrs.get("p", 2)), "kernel_size": k_arg, "stride": s_arg}
    args["ceil_mode"] = bool(t.attrs.get("ceil_mode", 0))
    return Mapped("lp_pool", {"op": f"lp_pool{len(kernel)}d"}, [("input", x)], args, outputs=[t.outputs[0]])


def _unary(op: str, family: str = "activation", **fixed: Any) -> Callable[[NodeTest], Mapped]:
    def mapper(t: NodeTest) -> Mapped:
        x = _input(t, 0)
        assert x is not None
        return Mapped(family, {"op": op}, [("input", x)], dict(fixed), outputs=[t.outputs[0]])

    return mapper


def _with_attr(op: str, attr: str, arg: str, default: float) -> Callable[[NodeTest], Mapped]:
    def mapper(t: NodeTest) -> Mapped:
        x = _input(t, 0)
        assert x is not None
        args = {arg: float(np.float32(t.attrs.get(attr, default)))}
        return Mapped("activation", {"op": op}, [("input", x)], args, outputs=[t.outputs[0]])

    return mapper


#: ONNX's Selu defaults (float32) and torch's fixed constants agree to float32 rounding.
_SELU = (1.67326319217681884765625, 1.05070102214813232421875)


def _selu(t: NodeTest) -> Mapped:
    alpha, gamma = float(t.attrs.get("alpha", _SELU[0])), float(t.attrs.get("gamma", _SELU[1]))
    if not (math.isclose(alpha, _SELU[0], rel_tol=1e-6) and math.isclose(gamma, _SELU[1], rel_tol=1e-6)):
        raise UnmappedError(f"alpha {alpha}, gamma {gamma}: F.selu's constants are fixed (1.6733, 1.0507)")
    return _unary("selu")(t)


def _hardsigmoid(t: NodeTest) -> Mapped:
    alpha, beta = float(t.attrs.get("alpha", 0.2)), float(t.attrs.get("beta", 0.5))
    if not (math.isclose(alpha, 1 / 6, rel_tol=1e-6) and math.isclose(beta, 0.5, rel_tol=1e-6)):
        raise UnmappedError(
            f"alpha {alpha:.7g}, beta {beta:.7g}: F.hardsigmoid is fixed at alpha 1/6, beta 1/2"
        )
    return _unary("hardsigmoid")(t)


def _gelu(t: NodeTest) -> Mapped:
    x = _input(t, 0)
    assert x is not None
    args = {"approximate": str(t.attrs.get("approximate", "none"))}
    return Mapped("activation", {"op": "gelu"}, [("input", x)], args, outputs=[t.outputs[0]])


def _thresholded_relu(t: NodeTest) -> Mapped:
    x = _input(t, 0)
    assert x is not None
    args = {"threshold": float(np.float32(t.attrs.get("alpha", 1.0))), "value": 0.0}
    return Mapped("activation", {"op": "threshold"}, [("input", x)], args, outputs=[t.outputs[0]])


def _prelu(t: NodeTest) -> Mapped:
    x, slope = _input(t, 0), _input(t, 1)
    assert x is not None and slope is not None
    channels = x.shape[1] if x.ndim > 1 else 1
    if slope.size == 1:
        weight = slope.reshape(1)
    elif x.ndim >= 2 and slope.size == channels and slope.shape == (channels,) + (1,) * (slope.ndim - 1):
        weight = slope.reshape(channels)
    else:
        raise UnmappedError(
            f"slope of shape {list(slope.shape)} broadcasts NumPy-style over input {list(x.shape)}; "
            "F.prelu's weight has one value or one per channel (dim 1)"
        )
    return Mapped("activation", {"op": "prelu"}, [("input", x), ("weight", weight)], outputs=[t.outputs[0]])


def _softmax(op: str) -> Callable[[NodeTest], Mapped]:
    def mapper(t: NodeTest) -> Mapped:
        x = _input(t, 0)
        assert x is not None
        if t.opset < 13:
            raise UnmappedError(
                f"opset {t.opset} {t.op_type} flattens to 2-d at axis; torch normalises one dim"
            )
        return Mapped(
            "softmax",
            {"op": op},
            [("input", x)],
            {"dim": int(t.attrs.get("axis", -1))},
            outputs=[t.outputs[0]],
        )

    return mapper


def _flatten(t: NodeTest) -> Mapped:
    x = _input(t, 0)
    assert x is not None
    axis = int(t.attrs.get("axis", 1))
    axis = axis + x.ndim if axis < 0 else axis
    if axis == 1:
        return Mapped("reshape", {"op": "flatten"}, [("input", x)], {"start_dim": 1}, outputs=[t.outputs[0]])
    shape = [math.prod(x.shape[:axis]), math.prod(x.shape[axis:])]
    return Mapped("reshape", {"op": "reshape"}, [("input", x)], {"shape": shape}, outputs=[t.outputs[0]])


_PAD_MODES = {"constant": "constant", "reflect": "reflect", "edge": "replicate", "wrap": "circular"}


def _pad(t: NodeTest) -> Mapped:
    """Pad (opset 11+): pads and axes as input tensors, begin pads then end pads -> F.pad's last-dim-first pairs."""
    x, pads, value, axes = (_input(t, i) for i in range(4))
    assert x is not None and pads is not None
    mode = str(t.attrs.get("mode", "constant"))
    if mode not in _PAD_MODES:
        raise UnmappedError(f"mode {mode!r}")
    dims = [int(a) % x.ndim for a in axes.tolist()] if axes is not None else list(range(x.ndim))
    flat = _ints(pads.tolist())
    pairs = [(0, 0)] * x.ndim
    for d, b, e in zip(dims, flat[: len(dims)], flat[len(dims) :], strict=True):
        pairs[d] = (b, e)
    first = next((d for d, pair in enumerate(pairs) if pair != (0, 0)), x.ndim)
    torch_pad = [v for d in reversed(range(first, x.ndim)) for v in pairs[d]]
    args: dict[str, Any] = {"pad": torch_pad, "mode": _PAD_MODES[mode]}
    if mode == "constant":
        args["value"] = float(value) if value is not None else 0.0
    return Mapped("pad", {"op": "pad"}, [("input", x)], args, outputs=[t.outputs[0]])


MAPPERS: dict[str, Callable[[NodeTest], Mapped]] = {
    "Conv": _conv,
    "ConvTranspose": _conv_transpose,
    "MaxPool": _max_pool,
    "AveragePool": _avg_pool,
    "GlobalAveragePool": _global_pool("avg"),
    "GlobalMaxPool": _global_pool("max"),
    "LpPool": _lp_pool,
    "BatchNormalization": _batch_norm,
    "InstanceNormalization": _instance_norm,
    "LayerNormalization": _layer_norm,
    "GroupNormalization": _group_norm,
    "LRN": _lrn,
    "Relu": _unary("relu"),
    "LeakyRelu": _with_attr("leaky_relu", "alpha", "negative_slope", 0.01),
    "Elu": _with_attr("elu", "alpha", "alpha", 1.0),
    "Celu": _with_attr("celu", "alpha", "alpha", 1.0),
    "Selu": _selu,
    "Sigmoid": _unary("sigmoid"),
    "Tanh": _unary("tanh"),
    "HardSigmoid": _hardsigmoid,
    "HardSwish": _unary("hardswish"),
    "Softplus": _unary("softplus"),
    "Softsign": _unary("softsign"),
    "Mish": _unary("mish"),
    "Gelu": _gelu,
    "ThresholdedRelu": _thresholded_relu,
    "PRelu": _prelu,
    "Softmax": _softmax("softmax"),
    "LogSoftmax": _softmax("log_softmax"),
    "Flatten": _flatten,
    "Pad": _pad,
}
"""ONNX op type -> its mapping (Resize and Upsample: cnnbench.conformance.onnx_resize)."""
