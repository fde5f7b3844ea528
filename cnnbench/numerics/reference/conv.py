"""F.conv{1,2,3}d and F.conv_transpose{1,2,3}d, forward and vector-Jacobian product, as one matmul per tap."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from cnnbench.numerics.reference._common import (
    FloatArray,
    Size,
    _batched,
    _batched_grad,
    _f64,
    _ntuple,
    _tap_slices,
    _trailing,
    _unbatch,
)
from cnnbench.numerics.reference._nd import NdGradient, NdOp
from cnnbench.numerics.reference.padding import _apply_pad, _pad_backward, _padding_mode, _spatial_pairs
from cnnbench.ops.arithmetic import conv_output_size, conv_transpose_output_size, same_padding

__all__ = [
    "conv1d",
    "conv1d_backward",
    "conv2d",
    "conv2d_backward",
    "conv3d",
    "conv3d_backward",
    "conv_transpose1d",
    "conv_transpose1d_backward",
    "conv_transpose2d",
    "conv_transpose2d_backward",
    "conv_transpose3d",
    "conv_transpose3d_backward",
]


# ---------------------------------------------------------------------------------------------------------
# arguments shared by both directions
# ---------------------------------------------------------------------------------------------------------


def _operands(
    nd: int, op: str, input: npt.ArrayLike, weight: npt.ArrayLike, groups: int
) -> tuple[FloatArray, bool, FloatArray]:
    """The batched input, whether it was unbatched, and the weight, checked for rank and groups >= 1."""
    x, unbatched = _batched(_f64(input), nd, op)
    w = _f64(weight)
    if w.ndim != nd + 2:
        raise ValueError(f"{op} expects a {nd + 2}-D weight, got shape {w.shape}")
    if groups < 1:
        raise ValueError(f"groups must be >= 1, got {groups}")
    return x, unbatched, w


def _add_bias(out: FloatArray, bias: npt.ArrayLike | None) -> FloatArray:
    if bias is None:
        return out
    b = _f64(bias)
    if b.shape != (out.shape[1],):
        raise ValueError(f"bias must have shape ({out.shape[1]},), got {b.shape}")
    return out + b.reshape(1, -1, *([1] * (out.ndim - 2)))


def _gradients(
    grad_x: FloatArray, unbatched: bool, grad_w: FloatArray, go: FloatArray, bias: npt.ArrayLike | None
) -> dict[str, FloatArray]:
    """{"input", "weight"}, and "bias" (dy summed over all but the channel dim) when a bias was given."""
    grads = {"input": _unbatch(grad_x, unbatched), "weight": grad_w}
    if bias is not None:
        grads["bias"] = go.sum(axis=(0, *range(2, go.ndim)))
    return grads


# ---------------------------------------------------------------------------------------------------------
# convolution
# ---------------------------------------------------------------------------------------------------------


def _conv_pads(
    padding: Size | str, kernel: tuple[int, ...], stride: tuple[int, ...], dilation: tuple[int, ...]
) -> list[tuple[int, int]]:
    nd = len(kernel)
    if isinstance(padding, str):
        if padding == "valid":
            return [(0, 0)] * nd
        if padding == "same":
            if any(s != 1 for s in stride):
                raise ValueError("padding='same' is not supported for strided convolutions")
            return [same_padding(k, d) for k, d in zip(kernel, dilation, strict=True)]
        raise ValueError(f"invalid padding string {padding!r}; expected 'same' or 'valid'")
    pads = _ntuple(padding, nd, "padding")
    if any(p < 0 for p in pads):
        raise ValueError(f"negative padding is not supported, got {padding!r}")
    return [(p, p) for p in pads]


class _ConvGeometry:
    """Validated arguments of one convolution call (batched input, weight, per-dim stride/dilation/pads)."""

    def __init__(
        self,
        nd: int,
        op: str,
        input: npt.ArrayLike,
        weight: npt.ArrayLike,
        stride: Size,
        padding: Size | str,
        dilation: Size,
        groups: int,
        padding_mode: str,
    ) -> None:
        self.x, self.unbatched, self.w = _operands(nd, op, input, weight, groups)
        self.kernel = tuple(self.w.shape[2:])
        self.stride = _ntuple(stride, nd, "stride")
        self.dilation = _ntuple(dilation, nd, "dilation")
        if any(s < 1 for s in self.stride) or any(d < 1 for d in self.dilation):
            raise ValueError(f"stride and dilation must be >= 1, got {self.stride} and {self.dilation}")
        channels = self.x.shape[1]
        if channels != self.w.shape[1] * groups:
            raise ValueError(
                f"{op}: input has {channels} channels but weight {self.w.shape} with groups={groups} "
                f"expects {self.w.shape[1] * groups}"
            )
        if self.w.shape[0] % groups:
            raise ValueError(f"{op}: out_channels {self.w.shape[0]} is not divisible by groups={groups}")
        self.groups = groups
        self.pads = _conv_pads(padding, self.kernel, self.stride, self.dilation)
        self.mode = _padding_mode(padding_mode)
        self.xp = _apply_pad(self.x, _spatial_pairs(self.pads), self.mode, 0.0)
        self.out_sizes = tuple(
            conv_output_size(s, k, st, 0, d)
            for s, k, st, d in zip(self.xp.shape[2:], self.kernel, self.stride, self.dilation, strict=True)
        )


def _conv_forward(g: _ConvGeometry) -> FloatArray:
    """out[n, o, p] = sum_{c, tap} w[o, c, tap] * xp[n, c, p*stride + tap*dilation], one matmul per tap."""
    n, channels = g.xp.shape[:2]
    groups, out_channels = g.groups, g.w.shape[0]
    cg, og = channels // groups, out_channels // groups
    positions = math.prod(g.out_sizes)
    xg = g.xp.reshape(n, groups, cg, *g.xp.shape[2:])
    wg = g.w.reshape(groups, og, cg, *g.kernel)
    out = np.zeros((n, groups, og, positions), dtype=np.float64)
    for tap in np.ndindex(*g.kernel):
        window = xg[_trailing(_tap_slices(tap, g.stride, g.dilation, g.out_sizes))].reshape(
            n, groups, cg, positions
        )
        out += wg[_trailing(tap)] @ window
    return out.reshape(n, out_channels, *g.out_sizes)


def _conv_backward(g: _ConvGeometry, go: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Input and weight gradients: per tap, dW[tap] = dy @ window^T and d(window) += W[tap]^T @ dy."""
    n, channels = g.xp.shape[:2]
    groups, out_channels = g.groups, g.w.shape[0]
    cg, og = channels // groups, out_channels // groups
    positions = math.prod(g.out_sizes)
    gog = go.reshape(n, groups, og, positions)
    xg = g.xp.reshape(n, groups, cg, *g.xp.shape[2:])
    wt = np.swapaxes(g.w.reshape(groups, og, cg, *g.kernel), 1, 2)
    grad_xp = np.zeros_like(xg)
    grad_w = np.zeros((groups, og, cg, *g.kernel), dtype=np.float64)
    for tap in np.ndindex(*g.kernel):
        sl = _trailing(_tap_slices(tap, g.stride, g.dilation, g.out_sizes))
        window = xg[sl].reshape(n, groups, cg, positions)
        grad_w[_trailing(tap)] = (gog @ np.swapaxes(window, -1, -2)).sum(axis=0)
        grad_xp[sl] += (wt[_trailing(tap)] @ gog).reshape(n, groups, cg, *g.out_sizes)
    grad_x = _pad_backward(grad_xp.reshape(g.xp.shape), g.x.shape, _spatial_pairs(g.pads), g.mode)
    return grad_x, grad_w.reshape(g.w.shape)


class _Conv(NdOp):
    """F.{op} (cross-correlation); padding_mode gives nn.Conv{nd}d's F.pad-then-convolve semantics."""

    pattern = "conv{nd}d"

    def __call__(
        self,
        input: npt.ArrayLike,
        weight: npt.ArrayLike,
        bias: npt.ArrayLike | None = None,
        stride: Size = 1,
        padding: Size | str = 0,
        dilation: Size = 1,
        groups: int = 1,
        padding_mode: str = "zeros",
    ) -> FloatArray:
        g = _ConvGeometry(self.nd, self.op, input, weight, stride, padding, dilation, groups, padding_mode)
        return _unbatch(_add_bias(_conv_forward(g), bias), g.unbatched)


class _ConvBackward(NdGradient):
    """Gradients of {op}: {{"input", "weight"}} and "bias" when a bias was given."""

    pattern = "conv{nd}d"

    def __call__(
        self,
        grad_output: npt.ArrayLike,
        input: npt.ArrayLike,
        weight: npt.ArrayLike,
        bias: npt.ArrayLike | None = None,
        stride: Size = 1,
        padding: Size | str = 0,
        dilation: Size = 1,
        groups: int = 1,
        padding_mode: str = "zeros",
    ) -> dict[str, FloatArray]:
        g = _ConvGeometry(self.nd, self.op, input, weight, stride, padding, dilation, groups, padding_mode)
        go = _batched_grad(grad_output, g.unbatched, (g.xp.shape[0], g.w.shape[0], *g.out_sizes))
        grad_x, grad_w = _conv_backward(g, go)
        return _gradients(grad_x, g.unbatched, grad_w, go, bias)


# ---------------------------------------------------------------------------------------------------------
# transposed convolution
# ---------------------------------------------------------------------------------------------------------


class _ConvTransposeGeometry:
    """Validated arguments of one transposed convolution; `full` is the output before cropping `padding`."""

    def __init__(
        self,
        nd: int,
        op: str,
        input: npt.ArrayLike,
        weight: npt.ArrayLike,
        stride: Size,
        padding: Size,
        output_padding: Size,
        groups: int,
        dilation: Size,
    ) -> None:
        self.x, self.unbatched, self.w = _operands(nd, op, input, weight, groups)
        channels = self.x.shape[1]
        if channels != self.w.shape[0]:
            raise ValueError(
                f"{op}: input has {channels} channels but weight {self.w.shape} expects {self.w.shape[0]}"
            )
        if channels % groups:
            raise ValueError(f"{op}: in_channels {channels} is not divisible by groups={groups}")
        self.groups = groups
        self.kernel = tuple(self.w.shape[2:])
        self.stride = _ntuple(stride, nd, "stride")
        self.padding = _ntuple(padding, nd, "padding")
        self.output_padding = _ntuple(output_padding, nd, "output_padding")
        self.dilation = _ntuple(dilation, nd, "dilation")
        self.in_sizes = tuple(self.x.shape[2:])
        self.out_sizes = tuple(
            conv_transpose_output_size(*args)
            for args in zip(
                self.in_sizes,
                self.kernel,
                self.stride,
                self.padding,
                self.output_padding,
                self.dilation,
                strict=True,
            )
        )
        self.full = tuple(o + 2 * p for o, p in zip(self.out_sizes, self.padding, strict=True))
        self.crop = _trailing((slice(p, p + o) for p, o in zip(self.padding, self.out_sizes, strict=True)))


def _conv_transpose_forward(g: _ConvTransposeGeometry) -> FloatArray:
    """out[n, o, i*stride - padding + tap*dilation] += sum_c x[n, c, i] * w[c, o, tap]."""
    n, channels = g.x.shape[:2]
    groups, og = g.groups, g.w.shape[1]
    cg = channels // groups
    positions = math.prod(g.in_sizes)
    xg = g.x.reshape(n, groups, cg, positions)
    wt = np.swapaxes(g.w.reshape(groups, cg, og, *g.kernel), 1, 2)
    buf = np.zeros((n, groups, og, *g.full), dtype=np.float64)
    for tap in np.ndindex(*g.kernel):
        sl = _trailing(_tap_slices(tap, g.stride, g.dilation, g.in_sizes))
        buf[sl] += (wt[_trailing(tap)] @ xg).reshape(n, groups, og, *g.in_sizes)
    out: FloatArray = buf[g.crop].reshape(n, groups * og, *g.out_sizes)
    return out


def _conv_transpose_backward(g: _ConvTransposeGeometry, go: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Input and weight gradients: the uncropped dy read back through each tap's strided window."""
    n, channels = g.x.shape[:2]
    groups, og = g.groups, g.w.shape[1]
    cg = channels // groups
    positions = math.prod(g.in_sizes)
    buf = np.zeros((n, groups, og, *g.full), dtype=np.float64)
    buf[g.crop] = go.reshape(n, groups, og, *g.out_sizes)
    xg = g.x.reshape(n, groups, cg, positions)
    wg = g.w.reshape(groups, cg, og, *g.kernel)
    grad_x = np.zeros((n, groups, cg, positions), dtype=np.float64)
    grad_w = np.zeros((groups, cg, og, *g.kernel), dtype=np.float64)
    for tap in np.ndindex(*g.kernel):
        window = buf[_trailing(_tap_slices(tap, g.stride, g.dilation, g.in_sizes))].reshape(
            n, groups, og, positions
        )
        grad_x += wg[_trailing(tap)] @ window
        grad_w[_trailing(tap)] = (xg @ np.swapaxes(window, -1, -2)).sum(axis=0)
    return grad_x.reshape(g.x.shape), grad_w.reshape(g.w.shape)


class _ConvTranspose(NdOp):
    """F.{op}; weight is (C_in, C_out/groups, *kernel). Note torch's order: groups before dilation."""

    pattern = "conv_transpose{nd}d"

    def __call__(
        self,
        input: npt.ArrayLike,
        weight: npt.ArrayLike,
        bias: npt.ArrayLike | None = None,
        stride: Size = 1,
        padding: Size = 0,
        output_padding: Size = 0,
        groups: int = 1,
        dilation: Size = 1,
    ) -> FloatArray:
        g = _ConvTransposeGeometry(
            self.nd, self.op, input, weight, stride, padding, output_padding, groups, dilation
        )
        return _unbatch(_add_bias(_conv_transpose_forward(g), bias), g.unbatched)


class _ConvTransposeBackward(NdGradient):
    """Gradients of {op}: {{"input", "weight"}} and "bias" when a bias was given."""

    pattern = "conv_transpose{nd}d"

    def __call__(
        self,
        grad_output: npt.ArrayLike,
        input: npt.ArrayLike,
        weight: npt.ArrayLike,
        bias: npt.ArrayLike | None = None,
        stride: Size = 1,
        padding: Size = 0,
        output_padding: Size = 0,
        groups: int = 1,
        dilation: Size = 1,
    ) -> dict[str, FloatArray]:
        g = _ConvTransposeGeometry(
            self.nd, self.op, input, weight, stride, padding, output_padding, groups, dilation
        )
        expected = (g.x.shape[0], g.groups * g.w.shape[1], *g.out_sizes)
        go = _batched_grad(grad_output, g.unbatched, expected)
        grad_x, grad_w = _conv_transpose_backward(g, go)
        return _gradients(grad_x, g.unbatched, grad_w, go, bias)


conv1d = _Conv(1)
conv2d = _Conv(2)
conv3d = _Conv(3)
conv1d_backward = _ConvBackward(1)
conv2d_backward = _ConvBackward(2)
conv3d_backward = _ConvBackward(3)
conv_transpose1d = _ConvTranspose(1)
conv_transpose2d = _ConvTranspose(2)
conv_transpose3d = _ConvTranspose(3)
conv_transpose1d_backward = _ConvTransposeBackward(1)
conv_transpose2d_backward = _ConvTransposeBackward(2)
conv_transpose3d_backward = _ConvTransposeBackward(3)
