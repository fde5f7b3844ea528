"""The losses CNNs are trained with: mse_loss, l1_loss, nll_loss, cross_entropy (class indices or probabilities,
label smoothing), binary_cross_entropy and binary_cross_entropy_with_logits, with torch's reductions."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from cnnbench.numerics.reference._common import FloatArray, _f64
from cnnbench.numerics.reference.activation import log_softmax

__all__ = [
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "cross_entropy",
    "l1_loss",
    "mse_loss",
    "nll_loss",
]


def _legacy(size_average: bool | None, reduce: bool | None, reduction: str) -> str:
    """torch's _Reduction.legacy_get_string: the deprecated size_average/reduce flags override reduction."""
    if size_average is None and reduce is None:
        return reduction
    size_average = True if size_average is None else size_average
    reduce = True if reduce is None else reduce
    return "none" if not reduce else ("mean" if size_average else "sum")


def _reduce(loss: FloatArray, reduction: str) -> FloatArray:
    if reduction == "none":
        return loss
    if reduction == "sum":
        return np.asarray(loss.sum(), dtype=np.float64)
    if reduction == "mean":
        return np.asarray(loss.mean(), dtype=np.float64)
    raise ValueError(f"{reduction} is not a valid value for reduction")


def _weighted(loss: FloatArray, weight: npt.ArrayLike | None) -> FloatArray:
    return loss if weight is None else loss * _f64(weight)


def mse_loss(
    input: npt.ArrayLike, target: npt.ArrayLike, size_average: bool | None = None, reduce: bool | None = None,
    reduction: str = "mean", weight: npt.ArrayLike | None = None,
) -> FloatArray:  # fmt: skip
    """F.mse_loss: weight * (x - y)^2, reduced."""
    loss = _weighted((_f64(input) - _f64(target)) ** 2, weight)
    return _reduce(loss, _legacy(size_average, reduce, reduction))


def l1_loss(
    input: npt.ArrayLike, target: npt.ArrayLike, size_average: bool | None = None, reduce: bool | None = None,
    reduction: str = "mean", weight: npt.ArrayLike | None = None,
) -> FloatArray:  # fmt: skip
    """F.l1_loss: weight * |x - y|, reduced."""
    loss = _weighted(np.abs(_f64(input) - _f64(target)), weight)
    return _reduce(loss, _legacy(size_average, reduce, reduction))


def nll_loss(
    input: npt.ArrayLike, target: npt.ArrayLike, weight: npt.ArrayLike | None = None,
    size_average: bool | None = None, ignore_index: int = -100, reduce: bool | None = None, reduction: str = "mean",
) -> FloatArray:  # fmt: skip
    """F.nll_loss over (N, C, *) log-probabilities (or (C,)) and class indices: -weight[t] * x[n, t]; "mean"
    divides by the sum of the weights of the targets not ignored."""
    reduction = _legacy(size_average, reduce, reduction)
    x = _f64(input)
    t = np.asarray(target, dtype=np.int64)
    if x.ndim == 1:
        x, t = x[None], t.reshape(1)
    classes = x.shape[1]
    w = np.ones(classes) if weight is None else _f64(weight)
    keep = t != ignore_index
    safe = np.where(keep, t, 0)
    if np.any(keep & ((t < 0) | (t >= classes))):
        raise ValueError(f"nll_loss: a target is outside [0, {classes})")
    picked = np.take_along_axis(x, safe[:, None], axis=1)[:, 0]
    wt = np.where(keep, w[safe], 0.0)
    loss = -wt * picked
    if reduction == "mean":
        return np.asarray(loss.sum() / wt.sum(), dtype=np.float64)
    return _reduce(loss.reshape(np.shape(target)), reduction)


def cross_entropy(
    input: npt.ArrayLike, target: npt.ArrayLike, weight: npt.ArrayLike | None = None,
    size_average: bool | None = None, ignore_index: int = -100, reduce: bool | None = None, reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> FloatArray:  # fmt: skip
    """F.cross_entropy = nll_loss(log_softmax(x, 1)); a float target of x's shape holds class probabilities.
    Label smoothing eps mixes in the uniform distribution: (1 - eps) * nll + eps * mean over classes of -w_c x_c."""
    reduction = _legacy(size_average, reduce, reduction)
    x = _f64(input)
    logp = log_softmax(x, 1 if x.ndim > 1 else 0)
    if logp.ndim == 1:
        logp = logp[None]
    classes = logp.shape[1]
    w = np.ones(classes) if weight is None else _f64(weight)
    shape = (1, classes, *([1] * (logp.ndim - 2)))
    t_arr = np.asarray(target)
    if np.issubdtype(t_arr.dtype, np.floating):
        probs = _f64(t_arr).reshape(logp.shape)
        probs = probs * (1.0 - label_smoothing) + label_smoothing / classes
        loss = -(probs * logp * w.reshape(shape)).sum(axis=1)
        if reduction == "mean":
            return np.asarray(loss.sum() / loss.size, dtype=np.float64)
        return _reduce(loss if x.ndim > 1 else loss[0], reduction)
    nll = nll_loss(
        logp,
        t_arr.reshape(logp.shape[:1] + logp.shape[2:]),
        weight,
        ignore_index=ignore_index,
        reduction=reduction,
    )
    if label_smoothing == 0.0:
        return nll if x.ndim > 1 or reduction != "none" else nll.reshape(())
    t = t_arr.reshape(logp.shape[:1] + logp.shape[2:])
    keep = t != ignore_index
    smooth = np.where(keep, -(logp * w.reshape(shape)).sum(axis=1), 0.0)
    if reduction == "mean":
        denom = np.where(keep, w[np.where(keep, t, 0)], 0.0).sum()
        smooth_r = np.asarray(smooth.sum() / denom)
    else:
        smooth_r = _reduce(smooth, reduction)
    out = (1.0 - label_smoothing) * nll + label_smoothing / classes * smooth_r
    return np.asarray(out if x.ndim > 1 or reduction != "none" else out.reshape(()), dtype=np.float64)


def binary_cross_entropy(
    input: npt.ArrayLike, target: npt.ArrayLike, weight: npt.ArrayLike | None = None,
    size_average: bool | None = None, reduce: bool | None = None, reduction: str = "mean",
) -> FloatArray:  # fmt: skip
    """F.binary_cross_entropy: -w (y log x + (1 - y) log(1 - x)), each log clamped at -100 as torch does."""
    x, y = _f64(input), _f64(target)
    if np.any((x < 0) | (x > 1)):
        raise ValueError("binary_cross_entropy: all elements of input should be between 0 and 1")
    with np.errstate(divide="ignore"):
        loss = -(y * np.maximum(np.log(x), -100.0) + (1.0 - y) * np.maximum(np.log1p(-x), -100.0))
    return _reduce(_weighted(loss, weight), _legacy(size_average, reduce, reduction))


def binary_cross_entropy_with_logits(
    input: npt.ArrayLike, target: npt.ArrayLike, weight: npt.ArrayLike | None = None,
    size_average: bool | None = None, reduce: bool | None = None, reduction: str = "mean",
    pos_weight: npt.ArrayLike | None = None,
) -> FloatArray:  # fmt: skip
    """F.binary_cross_entropy_with_logits: -w (p y log s(x) + (1 - y) log(1 - s(x))), p the pos_weight, with
    log s(x) = -softplus(-x) computed without overflow."""
    x, y = _f64(input), _f64(target)
    log_sig = np.minimum(x, 0.0) - np.log1p(np.exp(-np.abs(x)))
    log_one_minus = log_sig - x
    p = 1.0 if pos_weight is None else _f64(pos_weight)
    loss = -(p * y * log_sig + (1.0 - y) * log_one_minus)
    return _reduce(_weighted(loss, weight), _legacy(size_average, reduce, reduction))
