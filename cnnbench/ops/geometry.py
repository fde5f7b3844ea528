"""The output shape convolution arithmetic gives a conv, transposed-conv or pooling call, and the geometries
PyTorch rejects (with the exception it raises). Plain names, args and shapes; no torch."""

from __future__ import annotations

import operator
from collections.abc import Mapping, Sequence
from typing import Any

from cnnbench.ops.arithmetic import expected_output_shape, requested_transpose_sizes
from cnnbench.ops.catalog import MODULE_OPS, ops_where, traits
from cnnbench.ops.lowering import parameter_shapes

__all__ = [
    "SHAPE_MODULES",
    "SHAPE_OPS",
    "GeometryError",
    "call_output_shape",
]

#: Functional ops whose output shape is checked against the arithmetic.
SHAPE_OPS: frozenset[str] = ops_where(lambda t: t.shape_rule)

#: nn modules whose output shape is checked, and the functional op each one calls.
SHAPE_MODULES: dict[str, str] = {m: op for m, op in MODULE_OPS.items() if op in SHAPE_OPS}

# Arguments that must be an int or a list of ints for the arithmetic to model the call; anything else (a
# float, a string, a nested list) is left for PyTorch to judge, and the call is not modelled.
_SIZE_ARGS = ("kernel_size", "stride", "padding", "dilation", "output_padding")
_PADDING_STRINGS = ("same", "valid")
_POOL = ("kernel_size", "stride", "padding", "ceil_mode")
#: The arguments the arithmetic models, by op family: a call given any other steps aside (PyTorch judges it).
_FUNCTIONAL_ARGS: dict[str, frozenset[str]] = {
    "conv": frozenset({"bias", "stride", "padding", "dilation", "groups"}),
    "conv_transpose": frozenset({"bias", "stride", "padding", "output_padding", "groups", "dilation"}),
    "max_pool": frozenset({*_POOL, "dilation", "return_indices"}),
    "avg_pool": frozenset({*_POOL, "count_include_pad", "divisor_override"}),
    "adaptive_max_pool": frozenset({"output_size", "return_indices"}),
    "adaptive_avg_pool": frozenset({"output_size"}),
}
_CONV_MODULE_ARGS = frozenset(
    {"in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation", "groups", "bias"}
    | {"padding_mode", "device", "dtype"}
)
_MODULE_ARGS: dict[str, frozenset[str]] = {
    "conv": _CONV_MODULE_ARGS,
    "conv_transpose": _CONV_MODULE_ARGS | {"output_padding"},
    **{family: args - {"bias"} for family, args in _FUNCTIONAL_ARGS.items() if "pool" in family},
}
#: A module's forward-call arguments the arithmetic models (ConvTranspose*d.forward's output_size).
_CALL_ARGS: dict[str, frozenset[str]] = {"conv_transpose": frozenset({"output_size"})}
_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


class GeometryError(ValueError):
    """PyTorch rejects the call's geometry; error_type names the exception it raises."""

    def __init__(self, message: str, error_type: str = "RuntimeError") -> None:
        super().__init__(message)
        self.error_type = error_type


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_size(value: Any) -> bool:
    """An int, or a non-empty list of ints (what the arithmetic's size arguments accept)."""
    if _is_int(value):
        return True
    return isinstance(value, list | tuple) and bool(value) and all(_is_int(v) for v in value)


def _modelled_args(args: Mapping[str, Any], *, string_padding: bool) -> bool:
    for key in _SIZE_ARGS:
        value = args.get(key)
        if value is None or _is_size(value):
            continue
        if key == "padding" and string_padding and value in _PADDING_STRINGS:
            continue
        return False
    groups = args.get("groups", 1)
    return _is_int(groups)


def _arithmetic(op: str, input_shape: Sequence[int], args: Mapping[str, Any]) -> tuple[int, ...] | None:
    try:
        return expected_output_shape(op, tuple(input_shape), args)
    except ValueError as exc:
        raise GeometryError(str(exc)) from None


def _check_avg_pool3d(input_shape: Sequence[int], kernel: Any) -> None:
    """avg_pool3d alone also refuses an input smaller than the kernel, padding not counted."""
    ks = [kernel] * 3 if _is_int(kernel) else list(kernel) * (3 if len(kernel) == 1 else 1)
    spatial = list(input_shape[-3:])
    if any(s < k for s, k in zip(spatial, ks, strict=True)):
        raise GeometryError(
            f"avg_pool3d: input {spatial} is smaller than the kernel {ks} (padding not counted)"
        )


def _functional(op: str, args: Mapping[str, Any], inputs: Sequence[Sequence[int]]) -> tuple[int, ...] | None:
    family = traits(op).family
    if not inputs or _unmodelled(args, _FUNCTIONAL_ARGS.get(family, frozenset())):
        return None
    if family in ("conv", "conv_transpose"):
        if len(inputs) < 2 or not _modelled_args(args, string_padding=family == "conv"):
            return None
        return _arithmetic(op, inputs[0], {**args, "weight_shape": tuple(inputs[1])})
    if family in ("max_pool", "avg_pool"):
        if "kernel_size" not in args or not _modelled_args(args, string_padding=False):
            return None
        shape = _arithmetic(op, inputs[0], args)
        if op == "avg_pool3d":
            _check_avg_pool3d(inputs[0], args["kernel_size"])
        return shape
    if family in ("adaptive_max_pool", "adaptive_avg_pool"):
        size = args.get("output_size")
        ok = (
            size is None
            or _is_int(size)
            or (isinstance(size, list) and all(s is None or _is_int(s) for s in size))
        )
        return _arithmetic(op, inputs[0], args) if ok and "output_size" in args else None
    return None


def _conv_module(
    module: str, op: str, args: Mapping[str, Any], input_shape: Sequence[int], call_args: Mapping[str, Any]
) -> tuple[int, ...] | None:
    """nn.Conv*/ConvTranspose*: the constructor's own checks (ValueError), then the forward's (RuntimeError;
    ConvTranspose's output_size: ValueError)."""
    transposed = traits(op).family == "conv_transpose"
    requested = call_args.get("output_size")
    c_in, c_out, kernel = args.get("in_channels"), args.get("out_channels"), args.get("kernel_size")
    if not (_is_int(c_in) and _is_int(c_out) and _is_size(kernel)):
        return None
    if not _modelled_args(args, string_padding=not transposed):
        return None
    assert isinstance(c_in, int) and isinstance(c_out, int)
    groups = operator.index(args.get("groups", 1))
    padding = args.get("padding", 0)
    stride = args.get("stride", 1)
    mode = args.get("padding_mode", "zeros")
    if groups <= 0:
        raise GeometryError("groups must be a positive integer", "ValueError")
    if c_in % groups:
        raise GeometryError(f"in_channels {c_in} must be divisible by groups={groups}", "ValueError")
    if c_out % groups:
        raise GeometryError(f"out_channels {c_out} must be divisible by groups={groups}", "ValueError")
    if padding == "same" and any(s != 1 for s in ([stride] if _is_int(stride) else stride)):
        raise GeometryError("padding='same' is not supported for strided convolutions", "ValueError")
    if mode not in _PADDING_MODES:
        raise GeometryError(
            f"padding_mode must be one of {', '.join(_PADDING_MODES)}, got {mode!r}", "ValueError"
        )
    if transposed and mode != "zeros":
        raise GeometryError(
            f'only "zeros" padding mode is supported for transposed convolutions, got {mode!r}', "ValueError"
        )
    weight = parameter_shapes(module, args)["weight"]
    functional = {
        k: v for k, v in args.items() if k in ("stride", "padding", "dilation", "groups", "output_padding")
    }
    if requested is None:
        return _arithmetic(op, input_shape, {**functional, "weight_shape": weight})
    # forward(x, output_size=...) ignores the module's output_padding: it pads up to the size asked for.
    shortest = _arithmetic(op, input_shape, {**functional, "output_padding": 0, "weight_shape": weight})
    if shortest is None or not isinstance(requested, list | tuple):
        return None
    nd = traits(op).nd
    strides = [stride] * nd if _is_int(stride) else list(stride) * (nd if len(stride) == 1 else 1)
    try:
        sizes = requested_transpose_sizes(requested, shortest[-nd:], strides, len(input_shape) - nd)
    except ValueError as exc:
        raise GeometryError(str(exc), "ValueError") from None
    return (*shortest[:-nd], *sizes)


def _unmodelled(given: Mapping[str, Any], known: frozenset[str]) -> bool:
    """Whether a call has an argument the arithmetic does not model (it then steps aside)."""
    return any(key not in known for key in given)


def call_output_shape(
    *,
    op: str | None = None,
    module: str | None = None,
    args: Mapping[str, Any],
    input_shapes: Sequence[Sequence[int]],
    call_args: Mapping[str, Any] | None = None,
) -> tuple[int, ...] | None:
    """The output shape of ``F.<op>(*inputs, **args)`` or ``nn.<module>(**args)(*inputs)`` by convolution arithmetic.

    Inputs are positional, as a case passes them (a functional conv's second input is its weight); call_args
    are a module's forward-call arguments (ConvTranspose's output_size). Returns None for a call that is not a
    conv, transposed conv or pooling, or with an argument (or argument value) the arithmetic does not model
    (left for PyTorch to judge). Raises GeometryError, naming the exception PyTorch raises, for a geometry PyTorch
    rejects: a module's constructor raises ValueError (groups not dividing the channels, padding='same' with a
    stride), every other rejection is a RuntimeError of the call.
    """
    try:
        if op is not None:
            return _functional(op, args, input_shapes) if op in SHAPE_OPS else None
        if module is None or module not in SHAPE_MODULES or not input_shapes:
            return None
        target = SHAPE_MODULES[module]
        family = traits(target).family
        call = dict(call_args or {})
        if _unmodelled(args, _MODULE_ARGS.get(family, frozenset())) or _unmodelled(
            call, _CALL_ARGS.get(family, frozenset())
        ):
            return None
        if family in ("conv", "conv_transpose"):
            return _conv_module(module, target, args, input_shapes[0], call)
        return _functional(target, args, input_shapes[:1])
    except GeometryError:
        raise
    except (TypeError, ValueError, KeyError, IndexError):
        # Arguments of a shape the checks above did not foresee: not modelled, PyTorch judges the call.
        return None
