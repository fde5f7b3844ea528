"""Elementwise and softmax activations (relu, sigmoid, tanh, softmax, log_softmax) and their VJPs."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from cnnbench.numerics.reference._common import FloatArray, _f64

__all__ = [
    "log_softmax",
    "log_softmax_backward",
    "relu",
    "relu_backward",
    "sigmoid",
    "sigmoid_backward",
    "softmax",
    "softmax_backward",
    "tanh",
    "tanh_backward",
]


def relu(input: npt.ArrayLike, inplace: bool = False) -> FloatArray:
    """F.relu: max(x, 0), NaN propagates."""
    x = _f64(input)
    return np.where(x > 0, x, np.where(np.isnan(x), x, 0.0))


def relu_backward(
    grad_output: npt.ArrayLike, input: npt.ArrayLike, inplace: bool = False
) -> dict[str, FloatArray]:
    """Gradient of relu: dy where x > 0, else 0 (0 at x == 0, as torch)."""
    return {"input": np.where(_f64(input) > 0, _f64(grad_output), 0.0)}


def sigmoid(input: npt.ArrayLike) -> FloatArray:
    """F.sigmoid, computed without overflow: 1/(1+e^-x) for x >= 0, e^x/(1+e^x) otherwise."""
    x = _f64(input)
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def sigmoid_backward(grad_output: npt.ArrayLike, input: npt.ArrayLike) -> dict[str, FloatArray]:
    """Gradient of sigmoid: dy * s * (1 - s)."""
    s = sigmoid(input)
    return {"input": _f64(grad_output) * s * (1.0 - s)}


def tanh(input: npt.ArrayLike) -> FloatArray:
    """F.tanh."""
    return np.tanh(_f64(input))


def tanh_backward(grad_output: npt.ArrayLike, input: npt.ArrayLike) -> dict[str, FloatArray]:
    """Gradient of tanh: dy * (1 - tanh(x)^2)."""
    t = np.tanh(_f64(input))
    return {"input": _f64(grad_output) * (1.0 - t * t)}


def _softmax_dim(ndim: int, dim: int | None) -> int:
    if dim is None:  # torch's legacy implicit-dim rule (_get_softmax_dim)
        return 0 if ndim in (0, 1, 3) else 1
    if not -max(ndim, 1) <= dim < max(ndim, 1):
        raise ValueError(f"dim {dim} is out of range for a {ndim}-D input")
    return dim


def softmax(input: npt.ArrayLike, dim: int | None = None) -> FloatArray:
    """F.softmax along dim, stabilised by subtracting the max."""
    x = _f64(input)
    d = _softmax_dim(x.ndim, dim)
    if x.ndim == 0:
        return np.exp(x - x)
    e = np.exp(x - x.max(axis=d, keepdims=True))
    return np.asarray(e / e.sum(axis=d, keepdims=True), dtype=np.float64)


def log_softmax(input: npt.ArrayLike, dim: int | None = None) -> FloatArray:
    """F.log_softmax along dim: (x - max) - log(sum(exp(x - max)))."""
    x = _f64(input)
    d = _softmax_dim(x.ndim, dim)
    if x.ndim == 0:
        return x - x
    shifted = x - x.max(axis=d, keepdims=True)
    return np.asarray(shifted - np.log(np.exp(shifted).sum(axis=d, keepdims=True)), dtype=np.float64)


def _softmax_family_backward(
    grad_output: npt.ArrayLike,
    input: npt.ArrayLike,
    dim: int | None,
    vjp: Callable[[FloatArray, FloatArray, int], FloatArray],
) -> dict[str, FloatArray]:
    """{"input": vjp(softmax(x), dy, dim)}; zero for a 0-D input, whose softmax is the constant 1."""
    y = softmax(input, dim)
    go = _f64(grad_output)
    if y.ndim == 0:
        return {"input": np.zeros_like(y)}
    return {"input": vjp(y, go, _softmax_dim(y.ndim, dim))}


def softmax_backward(
    grad_output: npt.ArrayLike, input: npt.ArrayLike, dim: int | None = None
) -> dict[str, FloatArray]:
    """Gradient of softmax: y * (dy - sum(dy * y))."""
    return _softmax_family_backward(
        grad_output, input, dim, lambda y, go, d: y * (go - (go * y).sum(axis=d, keepdims=True))
    )


def log_softmax_backward(
    grad_output: npt.ArrayLike, input: npt.ArrayLike, dim: int | None = None
) -> dict[str, FloatArray]:
    """Gradient of log_softmax: dy - softmax(x) * sum(dy)."""
    return _softmax_family_backward(
        grad_output, input, dim, lambda y, go, d: go - y * go.sum(axis=d, keepdims=True)
    )
