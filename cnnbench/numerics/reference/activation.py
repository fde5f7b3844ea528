"""Elementwise and softmax activations: relu, sigmoid, tanh, softmax and log_softmax with their VJPs; the rest of
torch.nn.functional's activations (relu6, hardtanh, leaky_relu, elu, selu, celu, gelu both ways, silu, mish,
hardswish, hardsigmoid, softplus, softsign, logsigmoid, threshold, prelu, glu, softmin) forward only."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any, TypeVar, cast

import numpy as np
import numpy.typing as npt

from cnnbench.numerics.reference._common import FloatArray, _f64

__all__ = [
    "celu",
    "elu",
    "gelu",
    "glu",
    "hardsigmoid",
    "hardswish",
    "hardtanh",
    "leaky_relu",
    "log_softmax",
    "log_softmax_backward",
    "logsigmoid",
    "mish",
    "prelu",
    "relu",
    "relu6",
    "relu_backward",
    "selu",
    "sigmoid",
    "sigmoid_backward",
    "silu",
    "softmax",
    "softmax_backward",
    "softmin",
    "softplus",
    "softsign",
    "tanh",
    "tanh_backward",
    "threshold",
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


# --- the other activations (forward only) ----------------------------------------------------------------------
#: SELU's constants, as torch states them (Klambauer et al. 2017).
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


_F = TypeVar("_F", bound=Callable[..., FloatArray])


def _inf_times_zero_is_nan(fn: _F) -> _F:
    """Run fn with NumPy's invalid-value warning off: x * g(x) at x = +-inf is inf * 0 = NaN in torch too."""

    @functools.wraps(fn)
    def quiet(*args: Any, **kwargs: Any) -> FloatArray:
        with np.errstate(invalid="ignore"):
            return fn(*args, **kwargs)

    return cast(_F, quiet)


def _where_nan(x: FloatArray, y: FloatArray) -> FloatArray:
    """y, with NaN wherever x is NaN (torch's activations propagate NaN)."""
    return np.where(np.isnan(x), x, y)


def hardtanh(
    input: npt.ArrayLike, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False
) -> FloatArray:
    """F.hardtanh: clamp to [min_val, max_val], NaN propagates."""
    x = _f64(input)
    return _where_nan(x, np.minimum(np.maximum(x, min_val), max_val))


def relu6(input: npt.ArrayLike, inplace: bool = False) -> FloatArray:
    """F.relu6: hardtanh(x, 0, 6)."""
    return hardtanh(input, 0.0, 6.0)


def leaky_relu(input: npt.ArrayLike, negative_slope: float = 0.01, inplace: bool = False) -> FloatArray:
    """F.leaky_relu: x for x > 0, negative_slope * x otherwise."""
    x = _f64(input)
    return np.where(x > 0, x, x * negative_slope)


def elu(input: npt.ArrayLike, alpha: float = 1.0, inplace: bool = False) -> FloatArray:
    """F.elu: x for x > 0, alpha * (e^x - 1) otherwise (expm1: exact near 0)."""
    x = _f64(input)
    return np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0.0)))


def selu(input: npt.ArrayLike, inplace: bool = False) -> FloatArray:
    """F.selu: scale * elu(x, alpha) with SELU's fixed constants."""
    return SELU_SCALE * elu(input, SELU_ALPHA)


def celu(input: npt.ArrayLike, alpha: float = 1.0, inplace: bool = False) -> FloatArray:
    """F.celu: max(0, x) + min(0, alpha * (e^(x/alpha) - 1))."""
    x = _f64(input)
    return np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0.0) / alpha))


_erf = np.vectorize(math.erf, otypes=[np.float64])


@_inf_times_zero_is_nan
def gelu(input: npt.ArrayLike, approximate: str = "none") -> FloatArray:
    """F.gelu: x * Phi(x) = x/2 * (1 + erf(x / sqrt 2)); approximate="tanh":
    x/2 * (1 + tanh(sqrt(2/pi) * (x + 0.044715 x^3)))."""
    x = _f64(input)
    if approximate == "none":
        return np.asarray(0.5 * x * (1.0 + _erf(x / math.sqrt(2.0))), dtype=np.float64)
    if approximate == "tanh":
        return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))
    raise ValueError(f"approximate argument must be either none or tanh, got {approximate!r}")


def softplus(input: npt.ArrayLike, beta: float = 1.0, threshold: float = 20.0) -> FloatArray:
    """F.softplus: log(1 + e^(beta x)) / beta, and x itself where beta * x > threshold."""
    x = _f64(input)
    bx = x * beta
    soft = (np.maximum(bx, 0.0) + np.log1p(np.exp(-np.abs(bx)))) / beta
    return np.where(bx > threshold, x, soft)


@_inf_times_zero_is_nan
def silu(input: npt.ArrayLike, inplace: bool = False) -> FloatArray:
    """F.silu: x * sigmoid(x)."""
    return _f64(input) * sigmoid(input)


@_inf_times_zero_is_nan
def mish(input: npt.ArrayLike, inplace: bool = False) -> FloatArray:
    """F.mish: x * tanh(softplus(x))."""
    return _f64(input) * np.tanh(softplus(input))


def hardsigmoid(input: npt.ArrayLike, inplace: bool = False) -> FloatArray:
    """F.hardsigmoid: relu6(x + 3) / 6."""
    return relu6(_f64(input) + 3.0) / 6.0


@_inf_times_zero_is_nan
def hardswish(input: npt.ArrayLike, inplace: bool = False) -> FloatArray:
    """F.hardswish: x * relu6(x + 3) / 6."""
    return _f64(input) * hardsigmoid(input)


@_inf_times_zero_is_nan
def softsign(input: npt.ArrayLike) -> FloatArray:
    """F.softsign: x / (1 + |x|)."""
    x = _f64(input)
    return x / (1.0 + np.abs(x))


def logsigmoid(input: npt.ArrayLike) -> FloatArray:
    """F.logsigmoid: log(sigmoid(x)) = min(x, 0) - log(1 + e^-|x|), without overflow."""
    x = _f64(input)
    return np.minimum(x, 0.0) - np.log1p(np.exp(-np.abs(x)))


def threshold(input: npt.ArrayLike, threshold: float, value: float, inplace: bool = False) -> FloatArray:
    """F.threshold: x where x > threshold, else value."""
    x = _f64(input)
    return _where_nan(x, np.where(x > threshold, x, value))


def prelu(input: npt.ArrayLike, weight: npt.ArrayLike) -> FloatArray:
    """F.prelu: x for x >= 0, weight * x otherwise; weight has 1 or C (= input.shape[1]) entries."""
    x, w = _f64(input), _f64(weight).reshape(-1)
    if w.size != 1:
        if x.ndim < 2 or x.shape[1] != w.size:
            raise ValueError(f"prelu: weight of {w.size} entries for an input of shape {x.shape}")
        w = w.reshape(1, -1, *([1] * (x.ndim - 2)))
    return np.where(x >= 0, x, w * x)


def glu(input: npt.ArrayLike, dim: int = -1) -> FloatArray:
    """F.glu: a * sigmoid(b), a and b the two halves of input along dim (its size must be even)."""
    x = _f64(input)
    if x.ndim == 0 or x.shape[dim] % 2:
        raise ValueError(f"glu: halving dim {dim} needs an even size, got shape {x.shape}")
    a, b = np.split(x, 2, axis=dim)
    return a * sigmoid(b)


def softmin(input: npt.ArrayLike, dim: int | None = None) -> FloatArray:
    """F.softmin: softmax(-x) along dim."""
    return softmax(-_f64(input), dim)
