"""F.batch_norm over (N, C, *): batch or running statistics, the in-place running-stat update, and the VJP."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from cnnbench.numerics.reference._common import FloatArray, _f64

__all__ = ["batch_norm", "batch_norm_backward"]


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
    if weight is not None:
        out = out * _f64(weight).reshape(shape)
    if bias is not None:
        out = out + _f64(bias).reshape(shape)
    return out


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
