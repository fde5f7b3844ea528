"""The arguments each NumPy reference op models, declared once: ``expect: {reference: numpy}`` (and
``grad: reference``) with an argument, or an argument value, outside its row is refused when the case file is
loaded (exit 2, file:line), instead of erroring in every variant at run time.

One row per reference op (cnnbench.numerics.reference's REFERENCES keys; a test keeps the two in step, and that
every argument named here is a parameter of the reference function). An argument maps to None (every value
PyTorch accepts is modelled) or to a rule: a function of the value and all the call's arguments returning why it
is not modelled, or None. Names and values only: no torch, no NumPy.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["NOT_PASSED", "REFERENCE_ARGS", "Rule", "one_of", "unmodelled"]

#: Arguments the oracle does not pass to the reference (cnnbench.numerics.oracle): softmax's dtype (the reference
#: is float64 throughout) and relu's inplace; a row may still list them as modelled.
NOT_PASSED = frozenset({"dtype", "inplace"})

Rule = Callable[[Any, Mapping[str, Any]], str | None]
"""(value, every argument of the call) -> why the reference does not model it, or None."""


def one_of(*values: Any) -> Rule:
    """A rule accepting exactly these values (compared as written: true is not 1)."""

    def rule(value: Any, args: Mapping[str, Any]) -> str | None:
        del args
        if any(value == v and type(value) is type(v) for v in values):
            return None
        return "modelled values: " + ", ".join(repr(v) for v in values)

    return rule


def _antialias(value: Any, args: Mapping[str, Any]) -> str | None:
    if value is True and args.get("mode", "nearest") not in ("bilinear", "bicubic"):
        return "antialias applies to bilinear and bicubic only"
    return one_of(True, False)(value, args)


_BOOL = one_of(True, False)
_CONV = {"bias": None, "stride": None, "padding": None, "dilation": None, "groups": None}
_CONV_TRANSPOSE = {**_CONV, "output_padding": None}
_MAX_POOL = {
    "kernel_size": None,
    "stride": None,
    "padding": None,
    "dilation": None,
    "ceil_mode": _BOOL,
    "return_indices": _BOOL,
}
_AVG_POOL = {
    "kernel_size": None,
    "stride": None,
    "padding": None,
    "ceil_mode": _BOOL,
    "count_include_pad": _BOOL,
}
_SOFTMAX = {"dim": None, "dtype": None}
_OPTIONAL_BOOL = one_of(True, False, None)
_REDUCTION = one_of("none", "mean", "sum")
_RESAMPLE_MODE = one_of("nearest", "nearest-exact", "linear", "bilinear", "trilinear", "bicubic", "area")


def _deterministic_dropout(value: Any, args: Mapping[str, Any]) -> str | None:
    """Dropout has a reference only where no mask is drawn: not training, or p of 0 or 1."""
    del value
    p, training = args.get("p", 0.5), args.get("training", True)
    if training is True and isinstance(p, int | float) and 0 < p < 1:
        return "a random mask: the reference models training=False, p=0 and p=1 only"
    return None


#: op -> argument -> None (any value) or the Rule its values must pass. An argument not listed is not modelled.
REFERENCE_ARGS: dict[str, dict[str, Rule | None]] = {
    **{
        f"conv{n}d": {**_CONV, "padding_mode": one_of("zeros", "reflect", "replicate", "circular")}
        for n in (1, 2, 3)
    },
    **{f"conv_transpose{n}d": dict(_CONV_TRANSPOSE) for n in (1, 2, 3)},
    **{f"max_pool{n}d": dict(_MAX_POOL) for n in (1, 2, 3)},
    "avg_pool1d": dict(_AVG_POOL),
    **{f"avg_pool{n}d": {**_AVG_POOL, "divisor_override": None} for n in (2, 3)},
    **{f"adaptive_avg_pool{n}d": {"output_size": None} for n in (1, 2, 3)},
    **{f"adaptive_max_pool{n}d": {"output_size": None, "return_indices": _BOOL} for n in (1, 2, 3)},
    "batch_norm": {
        "running_mean": None,
        "running_var": None,
        "weight": None,
        "bias": None,
        "training": _BOOL,
        "momentum": None,
        "eps": None,
    },
    "linear": {"bias": None},
    "relu": {"inplace": _BOOL},
    "sigmoid": {},
    "tanh": {},
    "softmax": dict(_SOFTMAX),
    "log_softmax": dict(_SOFTMAX),
    "flatten": {"start_dim": None, "end_dim": None},
    "interpolate": {
        "size": None,
        "scale_factor": None,
        "mode": _RESAMPLE_MODE,
        "align_corners": _OPTIONAL_BOOL,
        "recompute_scale_factor": _OPTIONAL_BOOL,
        "antialias": _antialias,
    },
    "pad": {"pad": None, "mode": one_of("constant", "reflect", "replicate", "circular"), "value": None},
    # the rest of the vocabulary: every parameter of the reference after its input
    "add": {"other": None, "alpha": None},
    "affine_grid": {"size": None, "align_corners": _OPTIONAL_BOOL},
    "bilinear": {"input2": None, "weight": None, "bias": None},
    "binary_cross_entropy": {
        "target": None,
        "weight": None,
        "size_average": None,
        "reduce": None,
        "reduction": _REDUCTION,
    },
    "binary_cross_entropy_with_logits": {
        "target": None,
        "weight": None,
        "size_average": None,
        "reduce": None,
        "reduction": _REDUCTION,
        "pos_weight": None,
    },
    "celu": {"alpha": None, "inplace": None},
    "cross_entropy": {
        "target": None,
        "weight": None,
        "size_average": None,
        "ignore_index": None,
        "reduce": None,
        "reduction": _REDUCTION,
        "label_smoothing": None,
    },
    "dropout": {"p": _deterministic_dropout, "training": _deterministic_dropout, "inplace": None},
    "elu": {"alpha": None, "inplace": None},
    "fold": {"output_size": None, "kernel_size": None, "dilation": None, "padding": None, "stride": None},
    "gelu": {"approximate": one_of("none", "tanh")},
    "glu": {"dim": None},
    "group_norm": {"num_groups": None, "weight": None, "bias": None, "eps": None},
    "hardsigmoid": {"inplace": None},
    "hardswish": {"inplace": None},
    "hardtanh": {"min_val": None, "max_val": None, "inplace": None},
    "instance_norm": {
        "running_mean": None,
        "running_var": None,
        "weight": None,
        "bias": None,
        "use_input_stats": _BOOL,
        "momentum": None,
        "eps": None,
    },
    "l1_loss": {
        "target": None,
        "size_average": None,
        "reduce": None,
        "reduction": _REDUCTION,
        "weight": None,
    },
    "layer_norm": {"normalized_shape": None, "weight": None, "bias": None, "eps": None},
    "leaky_relu": {"negative_slope": None, "inplace": None},
    "local_response_norm": {"size": None, "alpha": None, "beta": None, "k": None},
    "logsigmoid": {},
    "lp_pool1d": {"norm_type": None, "kernel_size": None, "stride": None, "ceil_mode": _BOOL},
    "lp_pool2d": {"norm_type": None, "kernel_size": None, "stride": None, "ceil_mode": _BOOL},
    "matmul": {"other": None},
    "max_unpool1d": {
        "indices": None,
        "kernel_size": None,
        "stride": None,
        "padding": None,
        "output_size": None,
    },
    "max_unpool2d": {
        "indices": None,
        "kernel_size": None,
        "stride": None,
        "padding": None,
        "output_size": None,
    },
    "mish": {"inplace": None},
    "mse_loss": {
        "target": None,
        "size_average": None,
        "reduce": None,
        "reduction": _REDUCTION,
        "weight": None,
    },
    "mul": {"other": None},
    "nll_loss": {
        "target": None,
        "weight": None,
        "size_average": None,
        "ignore_index": None,
        "reduce": None,
        "reduction": _REDUCTION,
    },
    "normalize": {"p": None, "dim": None, "eps": None},
    "pixel_shuffle": {"upscale_factor": None},
    "pixel_unshuffle": {"downscale_factor": None},
    "prelu": {"weight": None},
    "relu6": {"inplace": None},
    "reshape": {"shape": None},
    "selu": {"inplace": None},
    "silu": {"inplace": None},
    "softmin": {"dim": None},
    "softplus": {"beta": None, "threshold": None},
    "softsign": {},
    "threshold": {"threshold": None, "value": None, "inplace": None},
    "unfold": {"kernel_size": None, "dilation": None, "padding": None, "stride": None},
    "upsample": {"size": None, "scale_factor": None, "mode": _RESAMPLE_MODE, "align_corners": _OPTIONAL_BOOL},
    "upsample_bilinear": {"size": None, "scale_factor": None},
    "upsample_nearest": {"size": None, "scale_factor": None},
}


def unmodelled(op: str, args: Mapping[str, Any]) -> list[str]:
    """Why the reference of op does not model these arguments: one line per argument, empty when it does."""
    row = REFERENCE_ARGS.get(op)
    if row is None:
        return [f"{op} has no row of modelled arguments (cnnbench/ops/modelled.py)"] if args else []
    problems = []
    for name, value in args.items():
        if name not in row:
            known = ", ".join(sorted(row)) or "none"
            problems.append(f"{name} (not modelled; the reference of {op} models: {known})")
            continue
        rule = row[name]
        why = rule(value, args) if rule is not None else None
        if why is not None:
            problems.append(f"{name}={value!r} ({why})")
    return problems
