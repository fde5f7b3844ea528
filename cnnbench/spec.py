"""The case file format as typed models: what every key means, what it accepts, and its JSON Schema.

Validation lives here and nowhere else; `cases.py` turns YAML into these models and maps each validation error
back to file:line. Nothing here imports torch.
"""

from __future__ import annotations

import math
import re
from difflib import get_close_matches
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    model_validator,
)

from cnnbench.allowlist import DEVICE_TYPES, DTYPES, EXCEPTION_TYPES, FUNCTIONAL_OPS, MODULES, TORCH_OPS

__all__ = [
    "MAX_TENSOR_ELEMENTS",
    "SPEC_MODELS",
    "CaseFileSpec",
    "CaseSpec",
    "DefaultsSpec",
    "ErrorSpec",
    "ExpectSpec",
    "LayerSpec",
    "RuleSpec",
    "TensorSpec",
    "ToleranceSpec",
    "literal_shape",
    "suggest",
    "tensor_shape",
]

#: A single tensor in a case may hold at most this many elements (2**26 float64 values = 512 MiB); a case file
#: is refused at load time rather than allowed to exhaust the machine.
MAX_TENSOR_ELEMENTS = 2**26

_ID_RE = re.compile(r"^[A-Za-z0-9_.+-]+$")
_GENERATOR_KEYS = ("data", "arange", "ones", "zeros", "full", "rand", "randn")


def suggest(word: str, choices: object) -> str:
    """Return ' (did you mean "x"?)' for the closest of choices to word, or ''."""
    names = sorted(str(c) for c in choices)  # type: ignore[attr-defined]
    close = get_close_matches(word, names, n=1, cutoff=0.6)
    if not close:
        close = [n for n in names if n.lower() == word.lower()]
    return f' (did you mean "{close[0]}"?)' if close else ""


def _check_name(kind: str, allowed: object) -> Any:
    def check(value: str) -> str:
        if value not in allowed:  # type: ignore[operator]
            raise ValueError(f'unknown {kind} "{value}"{suggest(value, allowed)}')
        return value

    return AfterValidator(check)


def _check_device(value: str) -> str:
    kind, _, index = value.partition(":")
    if kind not in DEVICE_TYPES or (index and not index.isdigit()):
        raise ValueError(f'unknown device "{value}"{suggest(kind, DEVICE_TYPES)}; expected e.g. cpu, cuda, cuda:1')
    return value


def _check_id(value: str) -> str:
    if not _ID_RE.match(value):
        raise ValueError(f'id "{value}" may only contain letters, digits and _ . + -')
    return value


def _check_regex(value: str) -> str:
    try:
        re.compile(value)
    except re.error as exc:
        raise ValueError(f"invalid regular expression: {exc}") from None
    return value


DType = Annotated[str, _check_name("dtype", DTYPES)]
Device = Annotated[str, AfterValidator(_check_device)]
Shape = list[Annotated[int, Field(ge=0)]]


def literal_shape(value: Any) -> tuple[int, ...]:
    """Shape of a nested-list tensor literal; ValueError if ragged or not numeric."""
    if isinstance(value, bool | int | float):
        return ()
    if not isinstance(value, list):
        raise ValueError(f"a tensor literal holds numbers and lists, found {type(value).__name__} {value!r}")
    if not value:
        return (0,)
    shapes = [literal_shape(v) for v in value]
    for i, s in enumerate(shapes):
        if s != shapes[0]:
            raise ValueError(
                f"ragged tensor literal: element {i} has shape {list(s)}, element 0 has {list(shapes[0])}"
            )
    return (len(value), *shapes[0])


def _check_numel(shape: list[int]) -> list[int]:
    numel = math.prod(shape)
    if numel > MAX_TENSOR_ELEMENTS:
        raise ValueError(
            f"a tensor of shape {shape} has {numel:,} elements, over the limit of {MAX_TENSOR_ELEMENTS:,}"
        )
    return shape


BudgetShape = Annotated[Shape, AfterValidator(_check_numel)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


def _check_literal(value: Any) -> Any:
    _check_numel(list(literal_shape(value)))
    return value


LiteralTensor = Annotated[Any, AfterValidator(_check_literal)]


class DataSpec(_Model):
    """A literal tensor with a pinned dtype: ``{data: [[1, 2]], dtype: int64}``."""

    data: LiteralTensor
    dtype: DType | None = None


class ArangeSpec(_Model):
    """``start, start + step, ...`` reshaped to the shape."""

    arange: BudgetShape
    start: float = 0
    step: float = 1
    dtype: DType | None = None


class OnesSpec(_Model):
    """All ones."""

    ones: BudgetShape
    dtype: DType | None = None


class ZerosSpec(_Model):
    """All zeros."""

    zeros: BudgetShape
    dtype: DType | None = None


class FullSpec(_Model):
    """Every element equal to value."""

    full: BudgetShape
    value: float
    dtype: DType | None = None


class RandSpec(_Model):
    """Uniform [0, 1) from a seeded float64 generator, then cast: the same values on every device."""

    rand: BudgetShape
    seed: int = 0
    dtype: DType | None = None


class RandnSpec(_Model):
    """Standard normal from a seeded float64 generator, then cast: the same values on every device."""

    randn: BudgetShape
    seed: int = 0
    dtype: DType | None = None


def _tensor_tag(value: Any) -> str | None:
    if isinstance(value, dict):
        present = [k for k in _GENERATOR_KEYS if k in value]
        return present[0] if len(present) == 1 else None
    if isinstance(value, DataSpec | ArangeSpec | OnesSpec | ZerosSpec | FullSpec | RandSpec | RandnSpec):
        return _tensor_tag(value.model_dump(exclude_none=True))
    return "literal"


TensorSpec = Annotated[
    Annotated[LiteralTensor, Tag("literal")]
    | Annotated[DataSpec, Tag("data")]
    | Annotated[ArangeSpec, Tag("arange")]
    | Annotated[OnesSpec, Tag("ones")]
    | Annotated[ZerosSpec, Tag("zeros")]
    | Annotated[FullSpec, Tag("full")]
    | Annotated[RandSpec, Tag("rand")]
    | Annotated[RandnSpec, Tag("randn")],
    Discriminator(
        _tensor_tag,
        custom_error_type="tensor_spec",
        custom_error_message=(
            "expected a tensor: a nested list of numbers, or a mapping with exactly one of "
            + ", ".join(_GENERATOR_KEYS)
        ),
    ),
]


def tensor_shape(spec: Any) -> tuple[int, ...]:
    """The shape a validated tensor spec will have."""
    if isinstance(spec, DataSpec):
        return literal_shape(spec.data)
    for cls, attr in (
        (ArangeSpec, "arange"),
        (OnesSpec, "ones"),
        (ZerosSpec, "zeros"),
        (FullSpec, "full"),
        (RandSpec, "rand"),
        (RandnSpec, "randn"),
    ):
        if isinstance(spec, cls):
            return tuple(getattr(spec, attr))
    return literal_shape(spec)


class Tolerance(_Model):
    """Absolute and relative tolerance; a missing one takes the dtype's default."""

    atol: Annotated[float, Field(ge=0)] | None = None
    rtol: Annotated[float, Field(ge=0)] | None = None


def _tolerance_tag(value: Any) -> str:
    if isinstance(value, Tolerance):
        return "flat"
    if isinstance(value, dict) and value and not ({"atol", "rtol"} & set(value)):
        return "per_dtype"
    return "flat"


ToleranceSpec = Annotated[
    Annotated[Tolerance, Tag("flat")] | Annotated[dict[DType, Tolerance], Tag("per_dtype")],
    Discriminator(_tolerance_tag),
]


class RuleSpec(_Model):
    """Match variants by device and/or dtype (either may be a list); reason is required."""

    device: Device | list[Device] | None = None
    dtype: DType | list[DType] | None = None
    reason: Annotated[str, Field(min_length=1)]

    def matches(self, device: str, dtype: str) -> bool:
        """True when this rule applies to a variant on device (e.g. cuda:0 matches cuda) and dtype."""
        devices = [self.device] if isinstance(self.device, str) else self.device
        dtypes = [self.dtype] if isinstance(self.dtype, str) else self.dtype
        device_ok = devices is None or any(device == d or device.split(":")[0] == d for d in devices)
        return device_ok and (dtypes is None or dtype in dtypes)


class ErrorSpec(_Model):
    """The call must raise this exception type, with a message matching the regex (re.search)."""

    type: Annotated[str, _check_name("exception type", EXCEPTION_TYPES)] = "Exception"
    match: Annotated[str, AfterValidator(_check_regex)] | None = None


class ExpectSpec(_Model):
    """What the call must produce; every key given is checked."""

    output: Any = None
    shape: Shape | list[Shape] | None = None
    layer_shapes: list[Shape] | None = None
    state_shapes: dict[str, Shape] | None = None
    state: dict[str, TensorSpec] | None = None
    repr: str | None = None
    error: ErrorSpec | None = None
    dtype: DType | None = None

    @model_validator(mode="after")
    def _consistent(self) -> ExpectSpec:
        given = [k for k, v in self if v is not None]
        if not given:
            raise ValueError("expect is empty: give at least one of " + ", ".join(type(self).model_fields))
        if self.error is not None and len(given) > 1:
            raise ValueError(f"expect.error cannot be combined with {', '.join(k for k in given if k != 'error')}")
        if self.output is not None:
            _check_expected_output(self.output)
        return self


def _check_expected_output(value: Any) -> None:
    """An expected output is one tensor literal, a generator mapping, or a list of those (tuple outputs)."""
    try:
        literal_shape(value)
        return
    except ValueError as first:
        if isinstance(value, list) and value and all(isinstance(v, list | dict) or v is None for v in value):
            for i, item in enumerate(value):
                if isinstance(item, list):
                    try:
                        literal_shape(item)
                    except ValueError as exc:
                        raise ValueError(f"output[{i}]: {exc}") from None
            return
        if isinstance(value, dict):
            return
        raise first


class LayerSpec(_Model):
    """One layer of a ``layers:`` stack (an nn.Sequential)."""

    module: Annotated[str, _check_name("module", MODULES)]
    args: dict[str, Any] = Field(default_factory=dict)
    state: dict[str, TensorSpec] = Field(default_factory=dict)


_OPS = FUNCTIONAL_OPS | TORCH_OPS


class DefaultsSpec(_Model):
    """Keys merged into every case of the file; a case's own key wins, skip/xfail lists are concatenated."""

    devices: list[Device] | None = None
    dtypes: list[DType] | None = None
    tolerance: ToleranceSpec | None = None
    skip: list[RuleSpec] | None = None
    xfail: list[RuleSpec] | None = None
    mode: Literal["eval", "train"] | None = None
    seed: int | None = None
    source: str | None = None


class CaseSpec(_Model):
    """One declarative case: a call (op, module or layers), its inputs, and what it must produce."""

    id: Annotated[str, AfterValidator(_check_id)]
    source: str | None = None
    note: str | None = None
    op: Annotated[str, _check_name("op", _OPS)] | None = None
    module: Annotated[str, _check_name("module", MODULES)] | None = None
    layers: Annotated[list[LayerSpec], Field(min_length=1)] | None = None
    args: dict[str, Any] = Field(default_factory=dict)
    inputs: dict[str, TensorSpec] = Field(default_factory=dict)
    state: dict[str, TensorSpec] = Field(default_factory=dict)
    mode: Literal["eval", "train"] = "eval"
    expect: ExpectSpec
    tolerance: ToleranceSpec | None = None
    skip: list[RuleSpec] = Field(default_factory=list)
    xfail: list[RuleSpec] = Field(default_factory=list)
    devices: Annotated[list[Device], Field(min_length=1)] = Field(default_factory=lambda: ["cpu", "cuda"])
    dtypes: Annotated[list[DType], Field(min_length=1)] = Field(default_factory=lambda: ["float32"])
    seed: int = 0

    @model_validator(mode="after")
    def _one_callable(self) -> CaseSpec:
        given = [k for k in ("op", "module", "layers") if getattr(self, k) is not None]
        if len(given) != 1:
            found = ", ".join(given) if given else "none"
            raise ValueError(f"a case needs exactly one of op, module, layers (found: {found})")
        if self.expect.repr is not None and self.op is not None:
            raise ValueError("expect.repr needs a module or layers, not a functional op")
        if self.expect.layer_shapes is not None and self.layers is None:
            raise ValueError("expect.layer_shapes needs layers:")
        if self.expect.layer_shapes is not None and self.layers is not None:
            if len(self.expect.layer_shapes) != len(self.layers):
                raise ValueError(
                    f"expect.layer_shapes has {len(self.expect.layer_shapes)} shapes for {len(self.layers)} layers"
                )
        if self.op is not None and self.state:
            raise ValueError("state: applies to module/layers cases; pass an op's tensors in inputs:")
        if not self.inputs:
            raise ValueError("inputs: is empty; a case needs at least one input tensor")
        if len(set(self.devices)) != len(self.devices) or len(set(self.dtypes)) != len(self.dtypes):
            raise ValueError("devices and dtypes must not repeat")
        return self

    @property
    def target(self) -> str:
        """The name of what is called: the op, the module, or Sequential."""
        return self.op or self.module or "Sequential"


class CaseFileSpec(_Model):
    """A case file: optional defaults and a list of cases."""

    defaults: DefaultsSpec | None = None
    cases: list[CaseSpec]


#: Every model of the format, for "did you mean" on an unknown key.
SPEC_MODELS: tuple[type[BaseModel], ...] = (
    CaseFileSpec,
    DefaultsSpec,
    CaseSpec,
    ExpectSpec,
    ErrorSpec,
    LayerSpec,
    RuleSpec,
    Tolerance,
    DataSpec,
    ArangeSpec,
    OnesSpec,
    ZerosSpec,
    FullSpec,
    RandSpec,
    RandnSpec,
)
