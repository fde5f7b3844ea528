"""F.linear, the dense (fully connected) layer y = x W^T + b over the last dim, and its VJP; F.bilinear."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from cnnbench.numerics.reference._common import FloatArray, _f64

__all__ = ["bilinear", "linear", "linear_backward"]


def linear(input: npt.ArrayLike, weight: npt.ArrayLike, bias: npt.ArrayLike | None = None) -> FloatArray:
    """F.linear: y = x @ weight.T + bias over the last dim of x."""
    out = _f64(input) @ _f64(weight).T
    if bias is not None:
        out = out + _f64(bias)
    return np.asarray(out, dtype=np.float64)


def linear_backward(
    grad_output: npt.ArrayLike, input: npt.ArrayLike, weight: npt.ArrayLike, bias: npt.ArrayLike | None = None
) -> dict[str, FloatArray]:
    """Gradients of linear: input = dy @ W, weight = dy^T x (summed over batch dims), bias = sum dy."""
    x, w, go = _f64(input), _f64(weight), _f64(grad_output)
    if w.ndim != 2:
        raise ValueError(f"linear_backward expects a 2-D weight, got shape {w.shape}")
    go2 = go.reshape(-1, w.shape[0])
    grads = {"input": go @ w, "weight": go2.T @ x.reshape(-1, w.shape[1])}
    if bias is not None:
        grads["bias"] = go2.sum(axis=0)
    return grads


def bilinear(
    input1: npt.ArrayLike, input2: npt.ArrayLike, weight: npt.ArrayLike, bias: npt.ArrayLike | None = None
) -> FloatArray:
    """F.bilinear: y_o = x1^T W_o x2 + b_o over the last dims (weight of shape (out, in1, in2))."""
    out = np.einsum("...i,oij,...j->...o", _f64(input1), _f64(weight), _f64(input2))
    if bias is not None:
        out = out + _f64(bias)
    return np.asarray(out, dtype=np.float64)
