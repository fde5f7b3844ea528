"""One catalog of op traits: every op a case file may call, with its family and what the other layers need to
know about it (spatial dims, exactness rule, shape rule, reference coverage), and the module -> op map.

Every module that needs "which ops are convolutions / pools / sums" asks here instead of keeping its own set.
No torch, no NumPy: case files are validated against it before anything heavy is imported.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "FAMILIES",
    "MODULE_GAPS",
    "MODULE_OPS",
    "OPS",
    "Exactness",
    "Family",
    "OpTraits",
    "is_op",
    "module_op",
    "ops_where",
    "traits",
]

Family = Literal[
    "conv",
    "conv_transpose",
    "max_pool",
    "avg_pool",
    "lp_pool",
    "adaptive_max_pool",
    "adaptive_avg_pool",
    "unpool",
    "unfold",
    "norm",
    "linear",
    "activation",
    "softmax",
    "resample",
    "pad",
    "reshape",
    "dropout",
    "loss",
    "arithmetic",
]
#: Every family, in the order reports group them.
FAMILIES: tuple[Family, ...] = Family.__args__  # type: ignore[attr-defined]

Exactness = Literal["sum", "select", "average"]
"""How ``fill: exact`` makes an op exact: sums of integer products (exact while every partial sum fits the
dtype's significand), selection or movement of values (nothing rounds), or an exact integer sum divided once."""


@dataclass(frozen=True)
class OpTraits:
    """What cnnbench knows about one op without running it."""

    name: str
    family: Family
    namespace: Literal["functional", "torch"] = "functional"
    """Where the callable lives: ``torch.nn.functional`` or ``torch`` itself."""
    nd: int = 0
    """Spatial dims (conv2d: 2); 0 for ops without a fixed count."""
    exactness: Exactness | None = None
    """The ``fill: exact`` rule that applies, or None where exact fill cannot apply."""
    shape_rule: bool = False
    """The convolution arithmetic (cnnbench.ops.arithmetic) states its output shape from args and shapes."""
    same_shape: bool = False
    """The output has the input's shape (elementwise activations, softmax over a dim, batch norm)."""
    input_sensitive: bool = False
    """Output error is the input's rounding amplified by the input's size (softmax, tanh, batch norm's centring),
    not only the output's."""
    routes_gradient: bool = False
    """The backward routes the gradient by comparing values (argmax, sign): rounding can move ties."""
    reference: bool = False
    """cnnbench.numerics.reference implements its forward."""
    gradient: bool = False
    """cnnbench.numerics.reference implements its backward (vector-Jacobian product)."""
    no_reference: str = ""
    """Why the reference does not model the op (shown when a case asks for it); empty where it does."""

    @property
    def has_weight(self) -> bool:
        """True for ops whose second positional tensor is a weight that is summed against the input."""
        return self.exactness == "sum"


def _nd(
    stem: str, family: Family, *, dims: Iterable[int] = (1, 2, 3), **traits: bool | str | None
) -> list[OpTraits]:
    return [OpTraits(f"{stem}{n}d", family, nd=n, **traits) for n in dims]  # type: ignore[arg-type]


_CATALOG: list[OpTraits] = [
    # convolution
    *_nd("conv", "conv", exactness="sum", gradient=True, shape_rule=True, reference=True),
    *_nd("conv_transpose", "conv_transpose", exactness="sum", gradient=True, shape_rule=True, reference=True),
    OpTraits("unfold", "unfold", exactness="select", reference=True),
    OpTraits("fold", "unfold", reference=True),
    # pooling
    *_nd("max_pool", "max_pool", exactness="select", routes_gradient=True, gradient=True, shape_rule=True, reference=True),
    *_nd("avg_pool", "avg_pool", exactness="average", gradient=True, shape_rule=True, reference=True),
    *_nd("lp_pool", "lp_pool", dims=(1, 2), input_sensitive=True, reference=True),
    # the reference has no backward of the 3-d adaptive pools
    *_nd("adaptive_max_pool", "adaptive_max_pool", dims=(1, 2), exactness="select", routes_gradient=True,
         gradient=True, shape_rule=True, reference=True),
    *_nd("adaptive_max_pool", "adaptive_max_pool", dims=(3,), exactness="select", routes_gradient=True, shape_rule=True, reference=True),
    *_nd("adaptive_avg_pool", "adaptive_avg_pool", dims=(1, 2), exactness="average", gradient=True, shape_rule=True, reference=True),
    *_nd("adaptive_avg_pool", "adaptive_avg_pool", dims=(3,), exactness="average", shape_rule=True, reference=True),
    *_nd("max_unpool", "unpool", dims=(1, 2), reference=True),
    # normalisation
    OpTraits("batch_norm", "norm", same_shape=True, input_sensitive=True, reference=True, gradient=True),
    *(
        OpTraits(name, "norm", same_shape=True, input_sensitive=True, reference=True)
        for name in ("instance_norm", "layer_norm", "group_norm", "local_response_norm", "normalize")
    ),
    # linear
    OpTraits("linear", "linear", exactness="sum", reference=True, gradient=True),
    OpTraits("bilinear", "linear", reference=True),
    # activations
    OpTraits(
        "relu", "activation", exactness="select", same_shape=True, routes_gradient=True, reference=True,
        gradient=True,
    ),
    *(
        OpTraits(name, "activation", exactness="select", same_shape=True, reference=True)
        for name in ("relu6", "hardtanh", "threshold")
    ),
    OpTraits("leaky_relu", "activation", same_shape=True, reference=True),
    *(
        OpTraits(name, "activation", same_shape=True, input_sensitive=True, reference=True)
        for name in (
            "elu", "selu", "celu", "gelu", "silu", "mish", "hardswish", "hardsigmoid", "softplus", "softsign",
            "logsigmoid", "prelu",
        )
    ),
    OpTraits("glu", "activation", input_sensitive=True, reference=True),
    *(
        OpTraits(name, "activation", same_shape=True, input_sensitive=True, reference=True, gradient=True)
        for name in ("sigmoid", "tanh")
    ),
    *(
        OpTraits(name, "softmax", same_shape=True, input_sensitive=True, reference=True, gradient=True)
        for name in ("softmax", "log_softmax")
    ),
    OpTraits("softmin", "softmax", same_shape=True, input_sensitive=True, reference=True),
    # resampling and reshaping
    OpTraits("interpolate", "resample", reference=True),
    *(OpTraits(name, "resample", reference=True) for name in ("upsample", "upsample_bilinear", "upsample_nearest")),
    *(OpTraits(name, "resample", exactness="select", reference=True) for name in ("pixel_shuffle", "pixel_unshuffle")),
    OpTraits(
        "grid_sample", "resample",
        no_reference="grid_sample's bilinear, nearest and bicubic sampling with three padding modes is not modelled; "
        "state literal outputs or compare devices with match: cpu",
    ),
    OpTraits("affine_grid", "resample", reference=True),
    OpTraits("pad", "pad", exactness="select", reference=True),
    OpTraits("dropout", "dropout", exactness="select", reference=True),
    # losses used to train CNNs
    *(
        OpTraits(name, "loss", input_sensitive=True, reference=True)
        for name in (
            "cross_entropy", "nll_loss", "mse_loss", "l1_loss", "binary_cross_entropy",
            "binary_cross_entropy_with_logits",
        )
    ),
    # ops on torch itself (no functional form)
    OpTraits("flatten", "reshape", namespace="torch", exactness="select", reference=True),
    OpTraits("reshape", "reshape", namespace="torch", exactness="select", reference=True),
    OpTraits("matmul", "arithmetic", namespace="torch", reference=True),
    *(OpTraits(name, "arithmetic", namespace="torch", reference=True) for name in ("add", "mul")),
    OpTraits(
        "cat", "arithmetic", namespace="torch",
        no_reference="torch.cat takes one sequence of tensors, which a case's positional inputs do not form",
    ),
]  # fmt: skip

#: Every op a case file may call, by name.
OPS: dict[str, OpTraits] = {t.name: t for t in _CATALOG}

#: torch.nn module -> the functional op it computes (the modules cnnbench.ops.lowering lowers).
MODULE_OPS: dict[str, str] = {
    **{f"Conv{n}d": f"conv{n}d" for n in (1, 2, 3)},
    **{f"ConvTranspose{n}d": f"conv_transpose{n}d" for n in (1, 2, 3)},
    **{f"MaxPool{n}d": f"max_pool{n}d" for n in (1, 2, 3)},
    **{f"AvgPool{n}d": f"avg_pool{n}d" for n in (1, 2, 3)},
    **{f"AdaptiveAvgPool{n}d": f"adaptive_avg_pool{n}d" for n in (1, 2, 3)},
    **{f"AdaptiveMaxPool{n}d": f"adaptive_max_pool{n}d" for n in (1, 2)},
    **{f"BatchNorm{n}d": "batch_norm" for n in (1, 2, 3)},
    "Linear": "linear",
    "ReLU": "relu",
    "Sigmoid": "sigmoid",
    "Tanh": "tanh",
    "Softmax": "softmax",
    "LogSoftmax": "log_softmax",
    "Flatten": "flatten",
    "Upsample": "interpolate",
    "UpsamplingBilinear2d": "interpolate",
    "UpsamplingNearest2d": "interpolate",
    "LayerNorm": "layer_norm",
    "GroupNorm": "group_norm",
    "InstanceNorm1d": "instance_norm",
    "InstanceNorm2d": "instance_norm",
    "LocalResponseNorm": "local_response_norm",
    **{
        module: op
        for op, module in (
            ("relu6", "ReLU6"), ("hardtanh", "Hardtanh"), ("leaky_relu", "LeakyReLU"), ("elu", "ELU"),
            ("selu", "SELU"), ("celu", "CELU"), ("gelu", "GELU"), ("silu", "SiLU"), ("mish", "Mish"),
            ("hardswish", "Hardswish"), ("hardsigmoid", "Hardsigmoid"), ("softplus", "Softplus"),
            ("softsign", "Softsign"), ("logsigmoid", "LogSigmoid"), ("threshold", "Threshold"),
            ("prelu", "PReLU"), ("softmin", "Softmin"), ("softmax", "Softmax2d"),
        )
    },
    "PixelShuffle": "pixel_shuffle",
    "PixelUnshuffle": "pixel_unshuffle",
    "Unfold": "unfold",
    "Fold": "fold",
    "LPPool1d": "lp_pool1d",
    "LPPool2d": "lp_pool2d",
    "MaxUnpool1d": "max_unpool1d",
    "MaxUnpool2d": "max_unpool2d",
    "Dropout": "dropout",
    "Dropout2d": "dropout",
    "Identity": "dropout",
    **{f"{kind}Pad2d": "pad" for kind in ("Constant", "Zero", "Reflection", "Replication", "Circular")},
    "MSELoss": "mse_loss",
    "L1Loss": "l1_loss",
    "NLLLoss": "nll_loss",
    "CrossEntropyLoss": "cross_entropy",
    "Bilinear": "bilinear",
}  # fmt: skip
#: torch.nn modules the vocabulary allows that have no reference, and why (shown when a case asks for one).
MODULE_GAPS: dict[str, str] = {
    "Unflatten": "a view that only reshapes: check it with shape: or output:",
    "ChannelShuffle": "F.channel_shuffle is outside the vocabulary of ops, so it has no functional reference",
}

_NONE = OpTraits("", "arithmetic")


def is_op(name: str | None) -> bool:
    """True when name is an op of the catalog."""
    return name is not None and name in OPS


def traits(name: str | None) -> OpTraits:
    """The traits of an op; an unknown name (or None) gets traits that claim nothing."""
    return OPS.get(name or "", _NONE)


def module_op(module: str | None) -> str | None:
    """The functional op a torch.nn module computes, or None when it is not lowered."""
    return MODULE_OPS.get(module or "")


def ops_where(predicate: Callable[[OpTraits], bool]) -> frozenset[str]:
    """The names of the ops whose traits satisfy predicate."""
    return frozenset(t.name for t in _CATALOG if predicate(t))
