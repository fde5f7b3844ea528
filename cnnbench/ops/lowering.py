"""A module case as its functional call, and each op's reduction length: from names, args and shapes, no torch."""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cnnbench.ops.catalog import MODULE_OPS, ops_where, traits

__all__ = [
    "GRADIENT_MODULES",
    "GRADIENT_OPS",
    "LOWERINGS",
    "REFERENCE_MODULES",
    "REFERENCE_OPS",
    "Lowered",
    "gradient_lengths",
    "lower_module",
    "parameter_shapes",
    "reduction_length",
    "spatial_dims",
]

#: The ops cnnbench.numerics.reference implements (its REFERENCES keys), known here without importing NumPy or
#: the reference itself, so a case file is validated against them at load time; tests keep the two in step.
REFERENCE_OPS: frozenset[str] = ops_where(lambda t: t.reference)
#: The ops whose backward (vector-Jacobian product) the reference implements (its GRADIENTS keys).
GRADIENT_OPS: frozenset[str] = ops_where(lambda t: t.gradient)


@dataclass(frozen=True)
class Lowered:
    """A module call as the functional reference call it computes."""

    op: str
    """The torch.nn.functional (and reference) op name."""
    args: dict[str, Any]
    """Keyword arguments of the op, with the module's defaults filled in."""
    tensors: tuple[str, ...] = ()
    """Module parameters/buffers passed positionally after the inputs, in the op's order ("" = None)."""
    notes: dict[str, Any] = field(default_factory=dict)
    """What the caller resolves from the built module (e.g. batch norm's cumulative momentum)."""
    keyword_tensors: tuple[str, ...] = ()
    """Module parameters passed by keyword (layer_norm's weight and bias follow a non-tensor argument)."""


#: The default of a constructor argument the module requires.
REQUIRED: Any = object()


def _get(args: Mapping[str, Any], name: str, default: Any) -> Any:
    """An argument, or the module's default when it is absent or null."""
    value = args.get(name)
    return default if value is None else value


def _conv(nd: int, *, transposed: bool = False) -> Callable[[Mapping[str, Any], str], Lowered]:
    def lower(args: Mapping[str, Any], mode: str) -> Lowered:
        del mode
        op_args = {
            "stride": _get(args, "stride", 1),
            "padding": _get(args, "padding", 0),
            "dilation": _get(args, "dilation", 1),
            "groups": _get(args, "groups", 1),
        }
        if transposed:
            op_args["output_padding"] = _get(args, "output_padding", 0)
        else:
            op_args["padding_mode"] = _get(args, "padding_mode", "zeros")
        bias = "bias" if args.get("bias", True) else ""
        return Lowered(f"conv{'_transpose' if transposed else ''}{nd}d", op_args, ("weight", bias))

    return lower


def _max_pool(nd: int) -> Callable[[Mapping[str, Any], str], Lowered]:
    def lower(args: Mapping[str, Any], mode: str) -> Lowered:
        del mode
        op_args = {
            "kernel_size": args["kernel_size"],
            "stride": args.get("stride"),
            "padding": _get(args, "padding", 0),
            "dilation": _get(args, "dilation", 1),
            "ceil_mode": bool(args.get("ceil_mode", False)),
            "return_indices": bool(args.get("return_indices", False)),
        }
        return Lowered(f"max_pool{nd}d", op_args)

    return lower


def _avg_pool(nd: int) -> Callable[[Mapping[str, Any], str], Lowered]:
    def lower(args: Mapping[str, Any], mode: str) -> Lowered:
        del mode
        op_args = {
            "kernel_size": args["kernel_size"],
            "stride": args.get("stride"),
            "padding": _get(args, "padding", 0),
            "ceil_mode": bool(args.get("ceil_mode", False)),
            "count_include_pad": bool(args.get("count_include_pad", True)),
        }
        if nd > 1:
            op_args["divisor_override"] = args.get("divisor_override")
        return Lowered(f"avg_pool{nd}d", op_args)

    return lower


def _adaptive(kind: str, nd: int) -> Callable[[Mapping[str, Any], str], Lowered]:
    def lower(args: Mapping[str, Any], mode: str) -> Lowered:
        del mode
        op_args: dict[str, Any] = {"output_size": args["output_size"]}
        if kind == "max":
            op_args["return_indices"] = bool(args.get("return_indices", False))
        return Lowered(f"adaptive_{kind}_pool{nd}d", op_args)

    return lower


def _batch_norm(args: Mapping[str, Any], mode: str) -> Lowered:
    track = bool(args.get("track_running_stats", True))
    affine = bool(args.get("affine", True))
    momentum = args.get("momentum", 0.1)
    op_args = {"training": mode == "train" or not track, "momentum": momentum, "eps": _get(args, "eps", 1e-5)}
    stats = ("running_mean", "running_var") if track else ("", "")
    params = ("weight", "bias") if affine else ("", "")
    # momentum None is a cumulative average: 1 / (batches seen + 1), read from num_batches_tracked at run time.
    notes = {"cumulative_momentum": momentum is None and track}
    return Lowered("batch_norm", op_args, (*stats, *params), notes)


def _plain(op: str, **fixed: Any) -> Callable[[Mapping[str, Any], str], Lowered]:
    def lower(args: Mapping[str, Any], mode: str) -> Lowered:
        del mode
        return Lowered(op, {**fixed})

    return lower


def _with(
    op: str, names: Mapping[str, Any], keyword_tensors: tuple[str, ...] = ()
) -> Callable[[Mapping[str, Any], str], Lowered]:
    """The op with the module's constructor args of these names and their defaults (REQUIRED: no default)."""

    def lower(args: Mapping[str, Any], mode: str) -> Lowered:
        del mode
        op_args = {}
        for name, default in names.items():
            if default is REQUIRED and name not in args:
                raise KeyError(name)
            op_args[name] = args.get(name, default)
        return Lowered(op, op_args, keyword_tensors=keyword_tensors)

    return lower


def _instance_norm(args: Mapping[str, Any], mode: str) -> Lowered:
    track = bool(args.get("track_running_stats", False))
    affine = bool(args.get("affine", False))
    op_args = {
        "use_input_stats": mode == "train" or not track,
        "momentum": _get(args, "momentum", 0.1),
        "eps": _get(args, "eps", 1e-5),
    }
    stats = ("running_mean", "running_var") if track else ("", "")
    return Lowered("instance_norm", op_args, (*stats, *(("weight", "bias") if affine else ("", ""))))


def _pad(mode_name: str) -> Callable[[Mapping[str, Any], str], Lowered]:
    """ConstantPad2d(padding, value), ZeroPad2d, ReflectionPad2d, ...: F.pad with (left, right, top, bottom)."""

    def lower(args: Mapping[str, Any], mode: str) -> Lowered:
        del mode
        padding = args["padding"]
        pad = [padding] * 4 if isinstance(padding, int) else list(padding)
        op_args: dict[str, Any] = {"pad": pad, "mode": mode_name}
        if mode_name == "constant":
            op_args["value"] = float(args.get("value", 0.0))
        return Lowered("pad", op_args)

    return lower


def _upsample(
    mode_name: str | None, align_corners: bool | None
) -> Callable[[Mapping[str, Any], str], Lowered]:
    def lower(args: Mapping[str, Any], mode: str) -> Lowered:
        del mode
        op_args = {
            "size": args.get("size"),
            "scale_factor": args.get("scale_factor"),
            "mode": mode_name or args.get("mode", "nearest"),
            "align_corners": align_corners if mode_name else args.get("align_corners"),
        }
        if mode_name is None:
            op_args["recompute_scale_factor"] = args.get("recompute_scale_factor")
        return Lowered("interpolate", op_args)

    return lower


#: torch.nn module -> how a module built from these constructor args calls its functional op.
LOWERINGS: dict[str, Callable[[Mapping[str, Any], str], Lowered]] = {
    **{f"Conv{n}d": _conv(n) for n in (1, 2, 3)},
    **{f"ConvTranspose{n}d": _conv(n, transposed=True) for n in (1, 2, 3)},
    **{f"MaxPool{n}d": _max_pool(n) for n in (1, 2, 3)},
    **{f"AvgPool{n}d": _avg_pool(n) for n in (1, 2, 3)},
    **{f"AdaptiveAvgPool{n}d": _adaptive("avg", n) for n in (1, 2, 3)},
    **{f"AdaptiveMaxPool{n}d": _adaptive("max", n) for n in (1, 2)},
    **{f"BatchNorm{n}d": _batch_norm for n in (1, 2, 3)},
    "Linear": lambda args, mode: Lowered("linear", {}, ("weight", "bias" if args.get("bias", True) else "")),
    "ReLU": _plain("relu"),
    "Sigmoid": _plain("sigmoid"),
    "Tanh": _plain("tanh"),
    "Softmax": _with("softmax", {"dim": None}),
    "LogSoftmax": _with("log_softmax", {"dim": None}),
    "Flatten": _with("flatten", {"start_dim": 1, "end_dim": -1}),
    "Upsample": _upsample(None, None),
    "UpsamplingBilinear2d": _upsample("bilinear", True),
    "UpsamplingNearest2d": _upsample("nearest", None),
    "LayerNorm": _with("layer_norm", {"normalized_shape": REQUIRED, "eps": 1e-5}, keyword_tensors=("weight", "bias")),
    "GroupNorm": _with("group_norm", {"num_groups": REQUIRED, "eps": 1e-5}, keyword_tensors=("weight", "bias")),
    "InstanceNorm1d": _instance_norm,
    "InstanceNorm2d": _instance_norm,
    "LocalResponseNorm": _with("local_response_norm", {"size": REQUIRED, "alpha": 1e-4, "beta": 0.75, "k": 1.0}),
    "ReLU6": _plain("relu6"),
    "Hardtanh": _with("hardtanh", {"min_val": -1.0, "max_val": 1.0}),
    "LeakyReLU": _with("leaky_relu", {"negative_slope": 0.01}),
    "ELU": _with("elu", {"alpha": 1.0}),
    "SELU": _plain("selu"),
    "CELU": _with("celu", {"alpha": 1.0}),
    "GELU": _with("gelu", {"approximate": "none"}),
    "SiLU": _plain("silu"),
    "Mish": _plain("mish"),
    "Hardswish": _plain("hardswish"),
    "Hardsigmoid": _plain("hardsigmoid"),
    "Softplus": _with("softplus", {"beta": 1.0, "threshold": 20.0}),
    "Softsign": _plain("softsign"),
    "LogSigmoid": _plain("logsigmoid"),
    "Threshold": _with("threshold", {"threshold": REQUIRED, "value": REQUIRED}),
    "PReLU": lambda args, mode: Lowered("prelu", {}, ("weight",)),
    "Softmin": _with("softmin", {"dim": None}),
    "Softmax2d": _plain("softmax", dim=-3),
    "PixelShuffle": _with("pixel_shuffle", {"upscale_factor": REQUIRED}),
    "PixelUnshuffle": _with("pixel_unshuffle", {"downscale_factor": REQUIRED}),
    "Unfold": _with("unfold", {"kernel_size": REQUIRED, "dilation": 1, "padding": 0, "stride": 1}),
    "Fold": _with("fold", {"output_size": REQUIRED, "kernel_size": REQUIRED, "dilation": 1, "padding": 0, "stride": 1}),
    "LPPool1d": _with("lp_pool1d", {"norm_type": REQUIRED, "kernel_size": REQUIRED, "stride": None, "ceil_mode": False}),
    "LPPool2d": _with("lp_pool2d", {"norm_type": REQUIRED, "kernel_size": REQUIRED, "stride": None, "ceil_mode": False}),
    "MaxUnpool1d": _with("max_unpool1d", {"kernel_size": REQUIRED, "stride": None, "padding": 0}),
    "MaxUnpool2d": _with("max_unpool2d", {"kernel_size": REQUIRED, "stride": None, "padding": 0}),
    "Dropout": lambda args, mode: Lowered("dropout", {"p": _get(args, "p", 0.5), "training": mode == "train"}),
    "Dropout2d": lambda args, mode: Lowered("dropout", {"p": _get(args, "p", 0.5), "training": mode == "train"}),
    "Identity": lambda args, mode: Lowered("dropout", {"p": 0.0, "training": False}),
    "ConstantPad2d": _pad("constant"),
    "ZeroPad2d": _pad("constant"),
    "ReflectionPad2d": _pad("reflect"),
    "ReplicationPad2d": _pad("replicate"),
    "CircularPad2d": _pad("circular"),
    "MSELoss": _with("mse_loss", {"reduction": "mean"}),
    "L1Loss": _with("l1_loss", {"reduction": "mean"}),
    "NLLLoss": _with("nll_loss", {"ignore_index": -100, "reduction": "mean"}, keyword_tensors=("weight",)),
    "CrossEntropyLoss": _with(
        "cross_entropy", {"ignore_index": -100, "reduction": "mean", "label_smoothing": 0.0},
        keyword_tensors=("weight",),
    ),
    "Bilinear": lambda args, mode: Lowered("bilinear", {}, ("weight", "bias" if args.get("bias", True) else "")),
}  # fmt: skip
#: Modules with a NumPy reference.
REFERENCE_MODULES: frozenset[str] = frozenset(LOWERINGS)
#: Modules whose gradients the reference computes: those lowering to a GRADIENT_OPS op.
GRADIENT_MODULES: frozenset[str] = frozenset(m for m, op in MODULE_OPS.items() if op in GRADIENT_OPS)


def lower_module(module: str, args: Mapping[str, Any], mode: str = "eval") -> Lowered:
    """The functional call a torch.nn module built with args computes in mode (eval or train)."""
    if module not in LOWERINGS:
        raise ValueError(f'no functional reference for module "{module}"')
    try:
        return LOWERINGS[module](args, mode)
    except KeyError as exc:
        raise ValueError(f"{module} needs the argument {exc.args[0]}") from None


def _ntuple(value: Any, n: int) -> tuple[int, ...]:
    if isinstance(value, list | tuple):
        items = tuple(operator.index(v) for v in value)
        return items * n if len(items) == 1 else items
    return (operator.index(value),) * n


def spatial_dims(op: str) -> int:
    """How many spatial dims an op works on (conv2d: 2); 0 for ops without a fixed count."""
    for n in (1, 2, 3):
        if op.endswith(f"{n}d"):
            return n
    return 0


def parameter_shapes(module: str, args: Mapping[str, Any]) -> dict[str, tuple[int, ...]]:
    """The shapes of a module's weight and bias (and batch norm's statistics) from its constructor args."""
    if module.startswith(("Conv", "ConvTranspose")):
        nd = spatial_dims(module)
        groups = int(args.get("groups", 1))
        kernel = _ntuple(args["kernel_size"], nd)
        c_in, c_out = int(args["in_channels"]), int(args["out_channels"])
        if module.startswith("ConvTranspose"):
            shapes = {"weight": (c_in, c_out // groups, *kernel)}
        else:
            shapes = {"weight": (c_out, c_in // groups, *kernel)}
        if args.get("bias", True):
            shapes["bias"] = (c_out,)
        return shapes
    if module == "Linear":
        shapes = {"weight": (int(args["out_features"]), int(args["in_features"]))}
        if args.get("bias", True):
            shapes["bias"] = (int(args["out_features"]),)
        return shapes
    if module.startswith("BatchNorm"):
        c = (int(args["num_features"]),)
        shapes = {}
        if args.get("affine", True):
            shapes |= {"weight": c, "bias": c}
        if args.get("track_running_stats", True):
            shapes |= {"running_mean": c, "running_var": c}
        return shapes
    return {}


def _adaptive_window(size: int, out: int | None) -> int:
    """The longest adaptive-pooling window: ceil((i + 1) * size / out) - floor(i * size / out) over i."""
    if out is None or out <= 0:
        return 1
    return max(-(-(i + 1) * size // out) - (i * size // out) for i in range(out))


def reduction_length(op: str, args: Mapping[str, Any], shapes: Sequence[tuple[int, ...] | None]) -> int:
    """K: how many terms are summed into one output element (1 for ops that sum nothing).

    shapes are those of the positional tensors (input, weight, ...). Conv: C_in/groups x kernel area;
    transposed conv: the same over the weight's input channels; linear: fan-in; average pooling: the kernel
    area (adaptive: the longest window); softmax: the length of dim; batch norm in training: N x spatial
    size (its statistics); linear interpolation: 2 per spatial dim.
    """
    input_shape = shapes[0] if shapes else None
    weight = shapes[1] if len(shapes) > 1 else None
    nd = spatial_dims(op)
    if op.startswith("conv_transpose") and weight is not None:
        groups = int(args.get("groups", 1))
        return max(1, weight[0] // max(groups, 1)) * math.prod(weight[2:])
    if op.startswith("conv") and weight is not None:
        return max(1, weight[1] * math.prod(weight[2:]))
    if op == "linear" and weight is not None:
        return max(1, weight[-1])
    if op.startswith("avg_pool"):
        return math.prod(_ntuple(args["kernel_size"], nd))
    if op.startswith("adaptive_avg_pool") and input_shape is not None:
        outs = args["output_size"]
        outs = [outs] * nd if not isinstance(outs, list | tuple) else list(outs)
        return math.prod(_adaptive_window(s, o) for s, o in zip(input_shape[-nd:], outs, strict=True))
    if op in ("softmax", "log_softmax") and input_shape:
        dim = args.get("dim")
        if dim is None:
            dim = 0 if len(input_shape) in (0, 1, 3) else 1
        return input_shape[dim]
    if op == "batch_norm" and input_shape is not None and args.get("training"):
        return max(1, math.prod(input_shape) // max(input_shape[1], 1))
    if input_shape is not None and (k := _norm_length(op, args, input_shape)) is not None:
        return k
    if op in ("lp_pool1d", "lp_pool2d", "fold"):
        return math.prod(_ntuple(args["kernel_size"], nd or 2))
    if op == "bilinear" and weight is not None:
        return max(1, weight[-1] * weight[-2]) if len(weight) == 3 else 1
    if op == "matmul" and input_shape:
        return input_shape[-1]
    if traits(op).family == "loss" and input_shape is not None and args.get("reduction", "mean") != "none":
        return max(1, math.prod(input_shape))
    if op == "interpolate" and input_shape is not None:
        return _resample_length(args, input_shape)
    return 1


def _resample_length(args: Mapping[str, Any], input_shape: tuple[int, ...]) -> int:
    """Taps per output of interpolate: 2 per spatial dim (linear), 4 (bicubic); antialiased downsampling widens
    each by the scale; area averages an adaptive window (the longest)."""
    spatial = input_shape[2:]
    mode = args.get("mode", "nearest")
    taps = {"linear": 2, "bilinear": 2, "trilinear": 2, "bicubic": 4}.get(mode)
    size, scale = args.get("size"), args.get("scale_factor")
    outs: list[int] = []
    for i, n in enumerate(spatial):
        if size is not None:
            outs.append(int(size[i] if isinstance(size, list | tuple) else size))
        elif scale is not None:
            outs.append(max(1, int(n * float(scale[i] if isinstance(scale, list | tuple) else scale))))
        else:
            outs.append(n)
    if mode == "area":
        return math.prod(_adaptive_window(n, o) for n, o in zip(spatial, outs, strict=True))
    if taps is None:
        return 1
    if args.get("antialias"):
        return math.prod(taps * max(1, math.ceil(n / o)) for n, o in zip(spatial, outs, strict=True))
    return int(taps ** len(spatial))


def _norm_length(op: str, args: Mapping[str, Any], shape: tuple[int, ...]) -> int | None:
    """K of the normalisations other than batch norm: the elements each mean and variance is taken over."""
    if op == "layer_norm":
        normalized = args.get("normalized_shape", shape[-1:])
        return math.prod([normalized] if isinstance(normalized, int) else normalized)
    if op == "group_norm" and len(shape) > 1:
        return max(1, math.prod(shape[1:]) // max(int(args.get("num_groups", 1)), 1))
    if op == "instance_norm":
        return max(1, math.prod(shape[2:]))
    if op == "normalize" and shape:
        return shape[int(args.get("dim", 1))]
    if op == "local_response_norm":
        return int(args.get("size", 1))
    if op == "softmin" and shape:
        dim = args.get("dim")
        return shape[dim if dim is not None else (0 if len(shape) in (0, 1, 3) else 1)]
    return None


def gradient_lengths(
    op: str, args: Mapping[str, Any], shapes: Sequence[tuple[int, ...] | None], out_shape: tuple[int, ...]
) -> dict[str, int]:
    """K of each gradient: how many terms the backward sums into one element of grad input/weight/bias."""
    input_shape = shapes[0] if shapes else None
    weight = shapes[1] if len(shapes) > 1 else None
    per_channel = math.prod(out_shape) // max(out_shape[1], 1) if len(out_shape) > 1 else 1
    if op.startswith("conv") and weight is not None:
        groups = int(args.get("groups", 1))
        taps = math.prod(weight[2:])
        if op.startswith("conv_transpose"):
            # weight (C_in, C_out/groups, *k) meets every input position once per tap
            per_input = math.prod(input_shape) // max(input_shape[1], 1) if input_shape else per_channel
            return {"input": weight[1] * taps, "weight": per_input, "bias": per_channel}
        into_input = max(1, weight[0] // max(groups, 1)) * taps
        return {"input": into_input, "weight": per_channel, "bias": per_channel}
    if op == "linear" and weight is not None:
        rows = math.prod(out_shape[:-1]) if len(out_shape) > 1 else 1
        return {"input": weight[0], "weight": rows, "bias": rows}
    if op == "batch_norm" and input_shape is not None:
        n = max(1, math.prod(input_shape) // max(input_shape[1], 1))
        return {"input": n, "weight": n, "bias": n}
    k = reduction_length(op, args, shapes)
    return {"input": k}
