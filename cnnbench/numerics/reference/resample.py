"""F.interpolate with torch's source-index and float32 scale rules: nearest, nearest-exact, (bi/tri)linear,
bicubic (cubic convolution, A = -0.75), area (adaptive average pooling) and antialiased bilinear/bicubic (the
separable PIL-style filter torch uses when downsampling)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from cnnbench.numerics.reference._common import FloatArray, IntArray, Size, _f64, _ntuple
from cnnbench.numerics.reference.adaptive_pool import (
    adaptive_avg_pool1d,
    adaptive_avg_pool2d,
    adaptive_avg_pool3d,
)

__all__ = ["interpolate"]


#: The linear modes and the number of spatial dims each interpolates (torch rejects any other rank).
_LINEAR_MODES = {"linear": 1, "bilinear": 2, "trilinear": 3}


def _nearest_index(n_in: int, n_out: int, scale: float | None, exact: bool) -> IntArray:
    """torch's nearest source index, computed in float32 as ATen does (UpSample.h nearest_idx).

    nearest: out == in copies, out == 2*in halves, else floor(dst * s) with s = float32(1/scale_factor)
    or float32(in)/out; nearest-exact: floor((dst + 0.5) * s). Both are clamped to in - 1.
    """
    dst = np.arange(n_out, dtype=np.int64)
    if not exact:
        if n_out == n_in:
            return dst
        if n_out == 2 * n_in:
            return dst >> 1
    s32 = np.float32(1.0 / scale) if scale is not None and scale > 0 else np.float32(n_in) / np.float32(n_out)
    if exact:
        src = np.floor(((dst + 0.5) * float(s32)).astype(np.float32))
    else:
        src = np.floor(dst.astype(np.float32) * s32)
    return np.minimum(src.astype(np.int64), n_in - 1)


def _linear_weights(
    n_in: int, n_out: int, scale: float | None, align_corners: bool
) -> tuple[IntArray, IntArray, FloatArray, FloatArray]:
    """torch's linear-interpolation source indices and weights (UpSample.h compute_source_index_and_lambda).

    out == in copies. Otherwise align_corners: src = dst*(in-1)/(out-1); else src = (dst+0.5)*s - 0.5,
    clamped at 0, with s = 1/scale_factor when given else in/out. i0 = min(floor(src), in-1),
    i1 = min(i0+1, in-1), lambda1 = clamp(src - i0, 0, 1).
    """
    dst = np.arange(n_out, dtype=np.int64)
    if n_out == n_in:
        return dst, dst, np.ones(n_out), np.zeros(n_out)
    if align_corners:
        ratio = (n_in - 1) / (n_out - 1) if n_out > 1 else 0.0
        real = ratio * dst.astype(np.float64)
    else:
        ratio = 1.0 / scale if scale is not None and scale > 0 else n_in / n_out
        unclamped = ratio * (dst + 0.5) - 0.5
        real = np.where(unclamped < 0, 0.0, unclamped)
    i0 = np.minimum(np.floor(real.astype(np.float32)).astype(np.int64), n_in - 1)
    lambda1 = np.clip(real - i0, 0.0, 1.0)
    i1 = i0 + (i0 < n_in - 1)
    return i0, i1, 1.0 - lambda1, lambda1


#: Keys' cubic convolution coefficient: -0.75 for bicubic (as OpenCV), -0.5 for the antialiased filter (as PIL).
_CUBIC_A = -0.75
_CUBIC_AA_A = -0.5


def _cubic1(x: FloatArray, a: float) -> FloatArray:
    """The cubic convolution kernel on |x| <= 1."""
    return ((a + 2) * x - (a + 3)) * x * x + 1


def _cubic2(x: FloatArray, a: float) -> FloatArray:
    """The cubic convolution kernel on 1 < |x| < 2."""
    return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a


def _source_scale(n_in: int, n_out: int, scale: float | None, align_corners: bool) -> float:
    """torch's area_pixel_compute_scale: (in-1)/(out-1) with align_corners, else 1/scale_factor or in/out."""
    if align_corners:
        return (n_in - 1) / (n_out - 1) if n_out > 1 else 0.0
    return 1.0 / scale if scale is not None and scale > 0 else n_in / n_out


def _cubic_weights(
    n_in: int, n_out: int, scale: float | None, align_corners: bool
) -> tuple[IntArray, FloatArray]:
    """torch's bicubic taps (UpSample.h get_cubic_upsample_coefficients): four source indices per output,
    clamped into the input, with the cubic convolution weights of t = src - floor(src).

    The source index is dst*ratio with align_corners, else (dst + 0.5)*ratio - 0.5, not clamped at 0."""
    dst = np.arange(n_out, dtype=np.float64)
    ratio = _source_scale(n_in, n_out, scale, align_corners)
    real = ratio * dst if align_corners else ratio * (dst + 0.5) - 0.5
    base = np.floor(real)
    t = real - base
    weights = np.stack(
        [_cubic2(t + 1, _CUBIC_A), _cubic1(t, _CUBIC_A), _cubic1(1 - t, _CUBIC_A), _cubic2(2 - t, _CUBIC_A)],
        axis=1,
    )
    taps = base.astype(np.int64)[:, None] + np.arange(-1, 3)[None, :]
    return np.clip(taps, 0, n_in - 1), weights


def _aa_filter(mode: str, x: FloatArray) -> FloatArray:
    """The antialiasing filters: the triangle for bilinear, Keys' cubic with a = -0.5 for bicubic."""
    x = np.abs(x)
    if mode == "bilinear":
        return np.where(x < 1, 1 - x, 0.0)
    return np.where(x < 1, _cubic1(x, _CUBIC_AA_A), np.where(x < 2, _cubic2(x, _CUBIC_AA_A), 0.0))


def _aa_matrix(n_in: int, n_out: int, scale: float | None, align_corners: bool, mode: str) -> FloatArray:
    """torch's antialiased resampling weights (UpSampleKernel.cpp _compute_indices_min_size_weights_aa) as an
    (n_out, n_in) matrix: the filter stretched by the scale when downsampling, each row normalised to sum 1.

    center = scale*(i + 0.5), support = interp_size/2 * max(scale, 1); taps from int(center - support + 0.5)
    (at least 0) to int(center + support + 0.5) (at most n_in), weight filter((j - center + 0.5) / max(scale, 1)).
    """
    ratio = _source_scale(n_in, n_out, scale, align_corners)
    interp_size = 2 if mode == "bilinear" else 4
    support = interp_size / 2 * ratio if ratio >= 1.0 else interp_size / 2
    invscale = 1.0 / ratio if ratio >= 1.0 else 1.0
    max_taps = math.ceil(support) * 2 + 1
    matrix = np.zeros((n_out, n_in))
    for i in range(n_out):
        center = ratio * (i + 0.5)
        lo = max(int(center - support + 0.5), 0)
        size = min(max(min(int(center + support + 0.5), n_in) - lo, 0), max_taps)
        taps = np.arange(lo, lo + size)
        w = _aa_filter(mode, np.asarray((taps - center + 0.5) * invscale, dtype=np.float64))
        total = w.sum()
        matrix[i, taps] = w / total if total != 0 else w
    return matrix


def _check_mode(mode: str, align_corners: bool | None, shape: tuple[int, ...], antialias: bool) -> None:
    """torch's checks of the mode against align_corners, antialias and the input rank."""
    if mode in ("nearest", "nearest-exact", "area"):
        if align_corners is not None:
            raise ValueError(
                "align_corners option can only be set with the interpolating modes: "
                "linear | bilinear | bicubic | trilinear"
            )
    elif mode in _LINEAR_MODES:
        if _LINEAR_MODES[mode] != len(shape) - 2:
            raise ValueError(f"mode {mode!r} expects a {_LINEAR_MODES[mode] + 2}-D input, got shape {shape}")
    elif mode == "bicubic":
        if len(shape) != 4:
            raise ValueError(f"mode 'bicubic' expects a 4-D input, got shape {shape}")
    else:
        raise ValueError(f"unsupported interpolate mode {mode!r}")
    if antialias and not (mode in ("bilinear", "bicubic") and len(shape) == 4):
        raise ValueError(
            "anti-alias option is restricted to bilinear and bicubic modes and requires a 4-D input"
        )


def _output_sizes(
    in_sizes: tuple[int, ...],
    size: Size | None,
    scale_factor: float | Sequence[float] | None,
    recompute_scale_factor: bool | None,
) -> tuple[tuple[int, ...], list[float | None]]:
    """The output size per spatial dim, and the scale factor the kernel uses there (None: in/out)."""
    nd = len(in_sizes)
    if size is not None and scale_factor is not None:
        raise ValueError("only one of size or scale_factor should be defined")
    scales: list[float | None]
    if size is not None:
        out_sizes = _ntuple(size, nd, "size")
        scales = [None] * nd
    elif scale_factor is not None:
        factors = (
            [float(f) for f in scale_factor]
            if isinstance(scale_factor, Sequence)
            else [float(scale_factor)] * nd
        )
        if len(factors) != nd:
            raise ValueError(f"scale_factor must have {nd} entries, got {scale_factor!r}")
        out_sizes = tuple(math.floor(float(n) * f) for n, f in zip(in_sizes, factors, strict=True))
        scales = [None] * nd if recompute_scale_factor else list(factors)
    else:
        raise ValueError("either size or scale_factor should be defined")
    if any(o < 1 for o in out_sizes):
        raise ValueError(f"interpolate output size {out_sizes} must be positive")
    return out_sizes, scales


def _resample_axis(
    x: FloatArray, ax: int, n_out: int, scale: float | None, mode: str, align_corners: bool
) -> FloatArray:
    """Resample one axis of x to n_out positions."""
    n_in = x.shape[ax]
    bshape = [1] * x.ndim
    bshape[ax] = -1
    if mode == "bicubic":
        taps, weights = _cubic_weights(n_in, n_out, scale, align_corners)
        return sum(  # type: ignore[return-value]
            np.take(x, taps[:, k], axis=ax) * weights[:, k].reshape(bshape) for k in range(4)
        )
    if mode in _LINEAR_MODES:
        i0, i1, l0, l1 = _linear_weights(n_in, n_out, scale, align_corners)
        return np.take(x, i0, axis=ax) * l0.reshape(bshape) + np.take(x, i1, axis=ax) * l1.reshape(bshape)
    return np.take(x, _nearest_index(n_in, n_out, scale, mode == "nearest-exact"), axis=ax)


def interpolate(
    input: npt.ArrayLike,
    size: Size | None = None,
    scale_factor: float | Sequence[float] | None = None,
    mode: str = "nearest",
    align_corners: bool | None = None,
    recompute_scale_factor: bool | None = None,
    antialias: bool = False,
) -> FloatArray:
    """F.interpolate for every mode torch has, with torch's source-index rules.

    Output size = size, or floor(in * scale_factor). The kernel uses scale_factor itself (1/scale_factor)
    unless recompute_scale_factor is set or size was given (then in/out). area is adaptive average pooling to
    the output size; antialias (bilinear, bicubic, 4-D) resamples each axis with torch's antialiasing filter.
    """
    x = _f64(input)
    nd = x.ndim - 2
    if nd < 1:
        raise ValueError(f"interpolate expects an input of shape (N, C, *spatial), got {x.shape}")
    _check_mode(mode, align_corners, x.shape, antialias)
    out_sizes, scales = _output_sizes(x.shape[2:], size, scale_factor, recompute_scale_factor)
    if mode == "area":
        pool = (adaptive_avg_pool1d, adaptive_avg_pool2d, adaptive_avg_pool3d)[nd - 1]
        return np.ascontiguousarray(pool(x, out_sizes))
    out = x
    if antialias:
        # innermost (contiguous) dim first, as torch's separable kernel; a dim whose size is kept is skipped
        for axis in reversed(range(nd)):
            if out_sizes[axis] != out.shape[axis + 2]:
                m = _aa_matrix(out.shape[axis + 2], out_sizes[axis], scales[axis], bool(align_corners), mode)
                out = np.moveaxis(np.tensordot(out, m, axes=([axis + 2], [1])), -1, axis + 2)
        return np.ascontiguousarray(out)
    # innermost dim first: matches torch's nesting h0*(w0*x00 + w1*x01) + h1*(...) operation for operation
    for axis in reversed(range(nd)):
        out = _resample_axis(out, axis + 2, out_sizes[axis], scales[axis], mode, bool(align_corners))
    return np.ascontiguousarray(out)
