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
    OpTraits("unfold", "unfold"),
    OpTraits("fold", "unfold"),
    # pooling
    *_nd("max_pool", "max_pool", exactness="select", routes_gradient=True, gradient=True, shape_rule=True, reference=True),
    *_nd("avg_pool", "avg_pool", exactness="average", gradient=True, shape_rule=True, reference=True),
    *_nd("lp_pool", "lp_pool", dims=(1, 2)),
    # the reference has no backward of the 3-d adaptive pools
    *_nd("adaptive_max_pool", "adaptive_max_pool", dims=(1, 2), exactness="select", routes_gradient=True,
         gradient=True, shape_rule=True, reference=True),
    *_nd("adaptive_max_pool", "adaptive_max_pool", dims=(3,), exactness="select", routes_gradient=True, shape_rule=True, reference=True),
    *_nd("adaptive_avg_pool", "adaptive_avg_pool", dims=(1, 2), exactness="average", gradient=True, shape_rule=True, reference=True),
    *_nd("adaptive_avg_pool", "adaptive_avg_pool", dims=(3,), exactness="average", shape_rule=True, reference=True),
    *_nd("max_unpool", "unpool", dims=(1, 2)),
    # normalisation
    OpTraits("batch_norm", "norm", same_shape=True, input_sensitive=True, reference=True, gradient=True),
    OpTraits("instance_norm", "norm"),
    OpTraits("layer_norm", "norm"),
    OpTraits("group_norm", "norm"),
    OpTraits("local_response_norm", "norm"),
    OpTraits("normalize", "norm"),
    # linear
    OpTraits("linear", "linear", exactness="sum", reference=True, gradient=True),
    OpTraits("bilinear", "linear"),
    # activations
    OpTraits(
        "relu", "activation", exactness="select", same_shape=True, routes_gradient=True, reference=True,
        gradient=True,
    ),
    *(
        OpTraits(name, "activation")
        for name in (
            "relu6", "leaky_relu", "elu", "selu", "celu", "gelu", "silu", "mish", "hardswish", "hardsigmoid",
            "hardtanh", "softplus", "softsign", "logsigmoid", "prelu", "glu", "threshold",
        )
    ),
    *(
        OpTraits(name, "activation", same_shape=True, input_sensitive=True, reference=True, gradient=True)
        for name in ("sigmoid", "tanh")
    ),
    *(
        OpTraits(name, "softmax", same_shape=True, input_sensitive=True, reference=True, gradient=True)
        for name in ("softmax", "log_softmax")
    ),
    OpTraits("softmin", "softmax"),
    # resampling and reshaping
    OpTraits("interpolate", "resample", reference=True),
    *(
        OpTraits(name, "resample")
        for name in (
            "upsample", "upsample_bilinear", "upsample_nearest", "pixel_shuffle", "pixel_unshuffle",
            "grid_sample", "affine_grid",
        )
    ),
    OpTraits("pad", "pad", exactness="select", reference=True),
    OpTraits("dropout", "dropout"),
    # losses used to train CNNs
    *(
        OpTraits(name, "loss")
        for name in (
            "cross_entropy", "nll_loss", "mse_loss", "l1_loss", "binary_cross_entropy",
            "binary_cross_entropy_with_logits",
        )
    ),
    # ops on torch itself (no functional form)
    OpTraits("flatten", "reshape", namespace="torch", exactness="select", reference=True),
    OpTraits("reshape", "reshape", namespace="torch"),
    *(OpTraits(name, "arithmetic", namespace="torch") for name in ("matmul", "add", "mul", "cat")),
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
