"""Normalisation: F.batch_norm over (N, C, *) (batch or running statistics, the in-place running-stat update, and
the VJP); layer_norm, group_norm, instance_norm (with its running-stat update), local_response_norm and normalize
forward only. Variances that normalise are biased (divide by the count), as in torch."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from cnnbench.numerics.reference._common import FloatArray, _f64

__all__ = [
    "batch_norm",
    "batch_norm_backward",
    "group_norm",
    "instance_norm",
    "layer_norm",
    "local_response_norm",
    "normalize",
]


def _bn_stats(
    x: FloatArray,
    running_mean: npt.ArrayLike | None,
    running_var: npt.ArrayLike | None,
    training: bool,
) -> tuple[FloatArray, FloatArray, tuple[int, ...], tuple[int, ...]]:
    """Mean and (biased, for normalisation) variance per channel, the reduce axes and a broadcast shape."""
    if x.ndim < 2:
        raise ValueError(f"batch_norm expects an input of shape (N, C, *), got {x.shape}")
    channels = x.shape[1]
    axes = (0, *range(2, x.ndim))
    shape = (1, channels, *([1] * (x.ndim - 2)))
    if training:
        if x.size // max(channels, 1) <= 1:
            raise ValueError(
                f"Expected more than 1 value per channel when training, got input size {x.shape}"
            )
        return x.mean(axis=axes), x.var(axis=axes), axes, shape
    if running_mean is None or running_var is None:
        raise ValueError("batch_norm in eval mode (training=False) needs running_mean and running_var")
    return _f64(running_mean), _f64(running_var), axes, shape


def _normalize(
    x: FloatArray, mean: FloatArray, var: FloatArray, eps: float, shape: tuple[int, ...]
) -> tuple[FloatArray, FloatArray]:
    """xhat = (x - mean) * invstd and invstd = 1 / sqrt(var + eps), broadcast to `shape`."""
    invstd = (1.0 / np.sqrt(var + eps)).reshape(shape)
    return (x - mean.reshape(shape)) * invstd, invstd


def batch_norm(
    input: npt.ArrayLike,
    running_mean: FloatArray | None,
    running_var: FloatArray | None,
    weight: npt.ArrayLike | None = None,
    bias: npt.ArrayLike | None = None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> FloatArray:
    """F.batch_norm over (N, C, *). Training normalises with the biased batch variance and updates the
    running stats in place: new = (1 - momentum)*old + momentum*batch, using the unbiased variance."""
    x = _f64(input)
    mean, var, _, shape = _bn_stats(x, running_mean, running_var, training)
    if training:
        count = x.size // x.shape[1]
        if running_mean is not None:
            running_mean[...] = (1.0 - momentum) * running_mean + momentum * mean
        if running_var is not None:
            running_var[...] = (1.0 - momentum) * running_var + momentum * var * (count / (count - 1))
    out, _ = _normalize(x, mean, var, eps, shape)
    return _affine(out, weight, bias, shape)


def batch_norm_backward(
    grad_output: npt.ArrayLike,
    input: npt.ArrayLike,
    running_mean: FloatArray | None,
    running_var: FloatArray | None,
    weight: npt.ArrayLike | None = None,
    bias: npt.ArrayLike | None = None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> dict[str, FloatArray]:
    """Gradients of batch_norm (running stats untouched): "input", plus "weight"/"bias" when given.

    Training: dx = invstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)) with dxhat = dy * weight,
    since the batch mean and variance depend on x. Eval: dx = dy * weight * invstd (constant stats).
    """
    x = _f64(input)
    go = _f64(grad_output)
    if go.shape != x.shape:
        raise ValueError(f"grad_output has shape {go.shape}, expected {x.shape}")
    mean, var, axes, shape = _bn_stats(x, running_mean, running_var, training)
    xhat, invstd = _normalize(x, mean, var, eps, shape)
    w = np.ones(shape) if weight is None else _f64(weight).reshape(shape)
    dxhat = go * w
    if training:
        grad_x = invstd * (
            dxhat
            - dxhat.mean(axis=axes, keepdims=True)
            - xhat * (dxhat * xhat).mean(axis=axes, keepdims=True)
        )
    else:
        grad_x = dxhat * invstd
    grads = {"input": grad_x}
    if weight is not None:
        grads["weight"] = (go * xhat).sum(axis=axes)
    if bias is not None:
        grads["bias"] = go.sum(axis=axes)
    return grads


def _affine(
    out: FloatArray, weight: npt.ArrayLike | None, bias: npt.ArrayLike | None, shape: tuple[int, ...]
) -> FloatArray:
    if weight is not None:
        out = out * _f64(weight).reshape(shape)
    if bias is not None:
        out = out + _f64(bias).reshape(shape)
    return out


def layer_norm(
    input: npt.ArrayLike,
    normalized_shape: int | Sequence[int],
    weight: npt.ArrayLike | None = None,
    bias: npt.ArrayLike | None = None,
    eps: float = 1e-5,
) -> FloatArray:
    """F.layer_norm: normalise over the trailing dims named by normalized_shape, 1/sqrt(var + eps), then the
    elementwise affine (weight and bias of normalized_shape)."""
    x = _f64(input)
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    if tuple(x.shape[x.ndim - len(shape) :]) != shape or len(shape) > x.ndim:
        raise ValueError(
            f"layer_norm: normalized_shape {list(shape)} does not end the input shape {list(x.shape)}"
        )
    axes = tuple(range(x.ndim - len(shape), x.ndim))
    mean = x.mean(axis=axes, keepdims=True)
    var = x.var(axis=axes, keepdims=True)
    return _affine((x - mean) / np.sqrt(var + eps), weight, bias, shape)


def group_norm(
    input: npt.ArrayLike,
    num_groups: int,
    weight: npt.ArrayLike | None = None,
    bias: npt.ArrayLike | None = None,
    eps: float = 1e-5,
) -> FloatArray:
    """F.group_norm over (N, C, *): the C channels split into num_groups consecutive groups, each normalised over
    its channels and spatial positions; then a per-channel affine."""
    x = _f64(input)
    if x.ndim < 2 or num_groups <= 0 or x.shape[1] % num_groups:
        raise ValueError(
            f"group_norm: {num_groups} groups do not divide the channels of shape {list(x.shape)}"
        )
    grouped = x.reshape(x.shape[0], num_groups, -1)
    mean = grouped.mean(axis=-1, keepdims=True)
    var = grouped.var(axis=-1, keepdims=True)
    out = ((grouped - mean) / np.sqrt(var + eps)).reshape(x.shape)
    return _affine(out, weight, bias, (1, x.shape[1], *([1] * (x.ndim - 2))))


def instance_norm(
    input: npt.ArrayLike,
    running_mean: FloatArray | None = None,
    running_var: FloatArray | None = None,
    weight: npt.ArrayLike | None = None,
    bias: npt.ArrayLike | None = None,
    use_input_stats: bool = True,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> FloatArray:
    """F.instance_norm over (N, C, *): each (sample, channel) plane normalised by its own statistics (or by the
    running ones when use_input_stats is False). With running stats and use_input_stats, they are updated in place
    with the batch mean of the per-instance mean and unbiased variance, as torch's batch-norm-of-(1, N*C) does."""
    x = _f64(input)
    if x.ndim < 3:
        raise ValueError(f"instance_norm expects (N, C, *) with spatial dims, got shape {list(x.shape)}")
    shape = (1, x.shape[1], *([1] * (x.ndim - 2)))
    if not use_input_stats:
        if running_mean is None or running_var is None:
            raise ValueError("instance_norm with use_input_stats=False needs running_mean and running_var")
        out = (x - _f64(running_mean).reshape(shape)) / np.sqrt(_f64(running_var).reshape(shape) + eps)
        return _affine(out, weight, bias, shape)
    axes = tuple(range(2, x.ndim))
    count = math.prod(x.shape[2:])
    if count <= 1:
        raise ValueError(
            f"Expected more than 1 spatial element when training, got input size {list(x.shape)}"
        )
    mean = x.mean(axis=axes, keepdims=True)
    var = x.var(axis=axes, keepdims=True)
    if running_mean is not None:
        running_mean[...] = (1.0 - momentum) * running_mean + momentum * mean.reshape(x.shape[:2]).mean(
            axis=0
        )
    if running_var is not None:
        unbiased = var.reshape(x.shape[:2]) * (count / (count - 1))
        running_var[...] = (1.0 - momentum) * running_var + momentum * unbiased.mean(axis=0)
    return _affine((x - mean) / np.sqrt(var + eps), weight, bias, shape)


def local_response_norm(
    input: npt.ArrayLike, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0
) -> FloatArray:
    """F.local_response_norm: x / (k + alpha * mean of x^2 over `size` neighbouring channels)^beta; the window
    spans size // 2 channels before and (size - 1) // 2 after, zero-padded, and always divides by size."""
    x = _f64(input)
    if x.ndim < 3:
        raise ValueError(f"local_response_norm expects 3 or more dims, got shape {list(x.shape)}")
    sq = np.pad(x * x, [(0, 0), (size // 2, (size - 1) // 2), *([(0, 0)] * (x.ndim - 2))])
    window = sum(sq[:, i : i + x.shape[1]] for i in range(size))
    return np.asarray(x / (k + alpha * np.asarray(window) / size) ** beta, dtype=np.float64)


def normalize(input: npt.ArrayLike, p: float = 2.0, dim: int = 1, eps: float = 1e-12) -> FloatArray:
    """F.normalize: x / max(||x||_p along dim, eps)."""
    x = _f64(input)
    if p == math.inf:
        norm = np.abs(x).max(axis=dim, keepdims=True)
    else:
        norm = (np.abs(x) ** p).sum(axis=dim, keepdims=True) ** (1.0 / p)
    return np.asarray(x / np.maximum(norm, eps), dtype=np.float64)
