"""Ops that move values between positions without arithmetic, or sum patches back: pixel_shuffle,
pixel_unshuffle, unfold (im2col), fold (col2im, overlaps summed), and dropout where it is deterministic."""

from __future__ import annotations

import itertools

import numpy as np
import numpy.typing as npt

from cnnbench.numerics.reference._common import FloatArray, Size, _f64, _ntuple

__all__ = ["dropout", "fold", "pixel_shuffle", "pixel_unshuffle", "unfold"]


def pixel_shuffle(input: npt.ArrayLike, upscale_factor: int) -> FloatArray:
    """F.pixel_shuffle: (*, C r^2, H, W) -> (*, C, H r, W r), channel c*r^2 + i*r + j going to (h*r + i, w*r + j)."""
    x, r = _f64(input), int(upscale_factor)
    *lead, c, h, w = x.shape
    if c % (r * r):
        raise ValueError(f"pixel_shuffle: {c} channels are not divisible by upscale_factor^2 = {r * r}")
    y = x.reshape(*lead, c // (r * r), r, r, h, w)
    n = len(lead)
    y = y.transpose(*range(n), n, n + 3, n + 1, n + 4, n + 2)
    return y.reshape(*lead, c // (r * r), h * r, w * r)


def pixel_unshuffle(input: npt.ArrayLike, downscale_factor: int) -> FloatArray:
    """F.pixel_unshuffle: the inverse of pixel_shuffle, (*, C, H r, W r) -> (*, C r^2, H, W)."""
    x, r = _f64(input), int(downscale_factor)
    *lead, c, hr, wr = x.shape
    if hr % r or wr % r:
        raise ValueError(f"pixel_unshuffle: spatial size {hr}x{wr} is not divisible by downscale_factor {r}")
    n = len(lead)
    y = x.reshape(*lead, c, hr // r, r, wr // r, r)
    y = y.transpose(*range(n), n, n + 2, n + 4, n + 1, n + 3)
    return y.reshape(*lead, c * r * r, hr // r, wr // r)


def _blocks(
    spatial: tuple[int, int], kernel_size: Size, dilation: Size, padding: Size, stride: Size
) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...], tuple[int, int]]:
    k, d = _ntuple(kernel_size, 2, "kernel_size"), _ntuple(dilation, 2, "dilation")
    p, s = _ntuple(padding, 2, "padding"), _ntuple(stride, 2, "stride")
    counts = tuple(
        (n + 2 * pi - di * (ki - 1) - 1) // si + 1
        for n, ki, di, pi, si in zip(spatial, k, d, p, s, strict=True)
    )
    if min(counts) <= 0:
        raise ValueError(f"unfold/fold: no sliding block fits a spatial size of {list(spatial)}")
    return k, d, s, (counts[0], counts[1])


def unfold(
    input: npt.ArrayLike, kernel_size: Size, dilation: Size = 1, padding: Size = 0, stride: Size = 1
) -> FloatArray:
    """F.unfold (im2col) of (N, C, H, W): (N, C kh kw, L), column l the l-th block in row-major order, rows
    c-major then kernel row, kernel column."""
    x = _f64(input)
    unbatched = x.ndim == 3
    x = x[None] if unbatched else x
    k, d, s, (oh, ow) = _blocks(x.shape[2:4], kernel_size, dilation, padding, stride)  # type: ignore[arg-type]
    p = _ntuple(padding, 2, "padding")
    xp = np.pad(x, [(0, 0), (0, 0), (p[0], p[0]), (p[1], p[1])])
    cols = np.empty((x.shape[0], x.shape[1], k[0], k[1], oh, ow))
    for i, j in itertools.product(range(k[0]), range(k[1])):
        cols[:, :, i, j] = xp[:, :, i * d[0] : i * d[0] + s[0] * (oh - 1) + 1 : s[0],
                              j * d[1] : j * d[1] + s[1] * (ow - 1) + 1 : s[1]]  # fmt: skip
    out = cols.reshape(x.shape[0], -1, oh * ow)
    return out[0] if unbatched else out


def fold(
    input: npt.ArrayLike, output_size: Size, kernel_size: Size, dilation: Size = 1, padding: Size = 0,
    stride: Size = 1,
) -> FloatArray:  # fmt: skip
    """F.fold (col2im): the inverse layout of unfold, values of overlapping blocks summed."""
    x = _f64(input)
    unbatched = x.ndim == 2
    x = x[None] if unbatched else x
    size = _ntuple(output_size, 2, "output_size")
    k, d, s, (oh, ow) = _blocks((size[0], size[1]), kernel_size, dilation, padding, stride)
    p = _ntuple(padding, 2, "padding")
    if x.shape[1] % (k[0] * k[1]) or x.shape[2] != oh * ow:
        raise ValueError(
            f"fold: input of shape {list(x.shape)} does not hold {oh * ow} blocks of {k[0]}x{k[1]}"
        )
    c = x.shape[1] // (k[0] * k[1])
    cols = x.reshape(x.shape[0], c, k[0], k[1], oh, ow)
    out = np.zeros((x.shape[0], c, size[0] + 2 * p[0], size[1] + 2 * p[1]))
    for i, j in itertools.product(range(k[0]), range(k[1])):
        out[:, :, i * d[0] : i * d[0] + s[0] * (oh - 1) + 1 : s[0],
            j * d[1] : j * d[1] + s[1] * (ow - 1) + 1 : s[1]] += cols[:, :, i, j]  # fmt: skip
    out = out[:, :, p[0] : p[0] + size[0], p[1] : p[1] + size[1]]
    return out[0] if unbatched else out


def dropout(input: npt.ArrayLike, p: float = 0.5, training: bool = True, inplace: bool = False) -> FloatArray:
    """F.dropout where it is deterministic: the identity when not training or p == 0, zeros when p == 1. A random
    mask (training with 0 < p < 1) has no reference: its elements are checked by shape and statistics, not values."""
    x = _f64(input)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    if not training or p == 0.0:
        return x
    if p == 1.0:
        return np.zeros_like(x)
    raise ValueError("dropout in training with 0 < p < 1 is random: no reference models its mask")
