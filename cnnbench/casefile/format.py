"""The case file format as typed models: what every key means, what it accepts, and its JSON Schema.

Validation lives here and nowhere else; `cases.py` turns YAML into these models and maps each validation error
back to file:line. Nothing here imports torch.
"""

from __future__ import annotations

import math
import re
from difflib import get_close_matches
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    PrivateAttr,
    Tag,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from cnnbench.casefile.budget import BUDGET_ENV, BYTES_PER_ELEMENT, DEFAULT_MAX_CASE_BYTES, format_bytes
from cnnbench.casefile.vocabulary import (
    DEVICE_TYPES,
    DTYPES,
    EXCEPTION_TYPES,
    FLOAT_DTYPES,
    FUNCTIONAL_OPS,
    MODEL_NAMES,
    MODULES,
    TORCH_OPS,
)

__all__ = [
    "DEFAULT_MAX_CASES",
    "MAX_BENCH_TIME_S",
    "MAX_TRAIN_STEPS",
    "MIN_BENCH_REPLICATES",
    "SPEC_MODELS",
    "BenchCheckSpec",
    "BenchMode",
    "BenchmarkDefaultsSpec",
    "BenchmarkSpec",
    "CaseFileSpec",
    "CaseSpec",
    "DefaultsSpec",
    "ErrorSpec",
    "ExcludeSpec",
    "ExpectSpec",
    "FileSpec",
    "LayerSpec",
    "MemoryFormat",
    "RuleSpec",
    "SweepSpec",
    "TensorSpec",
    "ToleranceSpec",
    "TrainSpec",
    "case_tensors",
    "literal_shape",
    "suggest",
    "tensor_shape",
]

# Validation context (``model_validate(data, context={...})``), set by cases.py:
#   base_dir: the case file's folder, against which {file: ...} tensors resolve (absent: files are refused);
#   max_case_bytes: the memory budget of one case's tensors (absent: DEFAULT_MAX_CASE_BYTES).

# "=" and "," let a sweep name its generated cases "<id>.kernel_size=3,stride=2".
_ID_RE = re.compile(r"^[A-Za-z0-9_.+=,-]+$")
_GENERATOR_KEYS = ("data", "arange", "ones", "zeros", "full", "rand", "randn", "file")
_RAISE_BUDGET = f"; raise it with --max-case-bytes or {BUDGET_ENV}"


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
        raise ValueError(
            f'unknown device "{value}"{suggest(kind, DEVICE_TYPES)}; expected e.g. cpu, cuda, cuda:1'
        )
    return value


def _check_id(value: str) -> str:
    if not _ID_RE.match(value):
        raise ValueError(f'id "{value}" may only contain letters, digits and _ . + - = ,')
    return value


def _check_regex(value: str) -> str:
    try:
        re.compile(value)
    except re.error as exc:
        raise ValueError(f"invalid regular expression: {exc}") from None
    return value


def _strip_torch_prefix(value: Any) -> Any:
    # "torch.float32" is how torch prints a dtype; accept it as "float32".
    return value.removeprefix("torch.") if isinstance(value, str) else value


def _one_or_list(value: Any) -> Any:
    # A single rule mapping where a list of rules is expected is read as a list of one.
    return [value] if isinstance(value, dict) else value


DType = Annotated[str, BeforeValidator(_strip_torch_prefix), _check_name("dtype", DTYPES)]
Rules = Annotated[list["RuleSpec"], BeforeValidator(_one_or_list)]
Device = Annotated[str, AfterValidator(_check_device)]
Shape = list[Annotated[int, Field(ge=0)]]


def literal_shape(value: Any) -> tuple[int, ...]:
    """Shape of a nested-list tensor literal; ValueError if ragged or not numeric."""
    if isinstance(value, bool | int | float):
        return ()
    if not isinstance(value, list):
        shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
        raise ValueError(f"a tensor literal holds numbers and lists, found {type(value).__name__} {shown}")
    if not value:
        return (0,)
    shapes = [literal_shape(v) for v in value]
    for i, s in enumerate(shapes):
        if s != shapes[0]:
            raise ValueError(
                f"ragged tensor literal: element {i} has shape {list(s)}, element 0 has {list(shapes[0])}"
            )
    return (len(value), *shapes[0])


def _budget(info: ValidationInfo) -> int:
    value = (info.context or {}).get("max_case_bytes")
    return value if isinstance(value, int) else DEFAULT_MAX_CASE_BYTES


def _base_dir(info: ValidationInfo) -> Path | None:
    value = (info.context or {}).get("base_dir")
    return Path(value) if value is not None else None


def _check_tensor_bytes(shape: tuple[int, ...] | list[int], budget: int) -> None:
    """One tensor alone over the case budget: refused where it is written, before anything is allocated."""
    numel = math.prod(shape)
    if numel * BYTES_PER_ELEMENT > budget:
        raise ValueError(
            f"a tensor of shape {list(shape)} has {numel:,} elements ({format_bytes(numel * BYTES_PER_ELEMENT)} "
            f"at {BYTES_PER_ELEMENT} bytes each), over the memory budget of {format_bytes(budget)} per case"
            + _RAISE_BUDGET
        )


def _check_shape_budget(shape: list[int], info: ValidationInfo) -> list[int]:
    _check_tensor_bytes(shape, _budget(info))
    return shape


BudgetShape = Annotated[Shape, AfterValidator(_check_shape_budget)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


def _check_literal(value: Any, info: ValidationInfo) -> Any:
    _check_tensor_bytes(literal_shape(value), _budget(info))
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


class FileSpec(_Model):
    """A tensor stored beside the case file: ``{file: data/x.npy}`` or ``{file: w.safetensors, key: weight}``.

    The path is relative to the case file's folder and must stay inside it (no absolute paths, no "..", no
    symlink out); .npy files are read without pickle. The header is read at load time, the values at run time.
    """

    file: Annotated[str, Field(description="a .npy or .safetensors file, relative to the case file's folder")]
    key: Annotated[
        str | None, Field(description="the tensor's name in a .safetensors file holding several")
    ] = None
    dtype: DType | None = None
    _source: Any = PrivateAttr(default=None)

    @field_validator("file")
    @classmethod
    def _check_path(cls, value: str, info: ValidationInfo) -> str:
        """Path rules (and a .npy file's header), reported at the file: key."""
        from cnnbench.casefile.tensorfile import check_tensor_path, inspect_tensor_file

        base = _base_dir(info)
        if base is not None:
            if value.lower().endswith(".npy"):
                inspect_tensor_file(base, value)
            else:
                check_tensor_path(base, value)
        return value

    @model_validator(mode="after")
    def _locate(self, info: ValidationInfo) -> FileSpec:
        from cnnbench.casefile.tensorfile import inspect_tensor_file

        base = _base_dir(info)
        if base is None:
            if self._source is not None:  # an instance validated again (e.g. an expected output at run time)
                return self
            raise ValueError(
                "a tensor file is found relative to the case file, but this text was not read from one"
            )
        source = inspect_tensor_file(base, self.file, self.key)
        _check_tensor_bytes(source.shape, _budget(info))
        self._source = source
        return self

    @property
    def source(self) -> Any:
        """The checked file (a cnnbench.casefile.tensorfile.TensorSource)."""
        return self._source

    @property
    def shape(self) -> tuple[int, ...]:
        """The shape its header gives."""
        return tuple(self._source.shape)


def _tensor_tag(value: Any) -> str | None:
    if isinstance(value, dict):
        present = [k for k in _GENERATOR_KEYS if k in value]
        return present[0] if len(present) == 1 else None
    if isinstance(value, FileSpec):
        return "file"
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
    | Annotated[RandnSpec, Tag("randn")]
    | Annotated[FileSpec, Tag("file")],
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
    if isinstance(spec, FileSpec):
        return spec.shape
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
        kind = device.split(":", maxsplit=1)[0]
        device_ok = devices is None or any(d in (device, kind) for d in devices)
        return device_ok and (dtypes is None or dtype in dtypes)


class ErrorSpec(_Model):
    """The call must raise this exception type, with a message matching the regex (re.search)."""

    type: Annotated[str, _check_name("exception type", EXCEPTION_TYPES)] = "Exception"
    match: Annotated[str, AfterValidator(_check_regex)] | None = None


_TENSOR_ADAPTER: TypeAdapter[Any] = TypeAdapter(TensorSpec)


def _expected_item(item: Any, info: ValidationInfo, where: str) -> Any:
    if item is None:
        return None
    if isinstance(item, dict):
        try:
            return _TENSOR_ADAPTER.validate_python(item, context=info.context)
        except ValidationError as exc:
            err = exc.errors(include_url=False)[0]
            # The first part of the location is the union tag ("randn", "file", ...), not a key.
            keys = [str(p) for p in err["loc"][1:]]
            at = ".".join(p for p in (where, *keys) if p)
            if err["type"] == "extra_forbidden":
                message = f'unknown key "{keys[-1]}"'
            else:
                message = str(err["msg"]).removeprefix("Value error, ")
            raise ValueError(f"{at}: {message}" if at else message) from None
    try:
        literal_shape(item)
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}" if where else str(exc)) from None
    return item


def _expected_output(value: Any, info: ValidationInfo) -> Any:
    """An expected output is one tensor literal, a tensor mapping, or a list of those (tuple outputs).

    Mappings become tensor specs here, so their keys are checked and their files located at load time.
    """
    if value is None:
        return None
    try:
        literal_shape(value)
        return value
    except ValueError as first:
        if isinstance(value, dict):
            return _expected_item(value, info, "")
        if isinstance(value, list) and value and all(isinstance(v, list | dict) or v is None for v in value):
            return [_expected_item(v, info, f"output[{i}]") for i, v in enumerate(value)]
        raise first


class ExpectSpec(_Model):
    """What the call must produce; every key given is checked."""

    output: Annotated[Any, AfterValidator(_expected_output)] = None
    shape: Shape | list[Shape] | None = None
    layer_shapes: list[Shape] | None = None
    state_shapes: dict[str, Shape] | None = None
    state: dict[str, TensorSpec] | None = None
    repr: str | None = None
    error: ErrorSpec | None = None
    dtype: DType | None = None
    reference: Annotated[
        Literal["numpy"] | None,
        Field(description="compare with the float64 NumPy reference (cnnbench/numerics/reference.py)"),
    ] = None
    grad: Annotated[
        Literal["reference", "gradcheck"] | None,
        Field(description="check gradients: against the reference's backward, or torch.autograd.gradcheck"),
    ] = None
    match: Annotated[
        Literal["cpu"] | None, Field(description="an accelerator's result must agree with the CPU's")
    ] = None
    deterministic: Annotated[
        bool | None, Field(description="run twice; the outputs must be bitwise equal")
    ] = None

    @model_validator(mode="after")
    def _consistent(self) -> ExpectSpec:
        given = [k for k, v in self if v is not None]
        if not given:
            raise ValueError("expect is empty: give at least one of " + ", ".join(type(self).model_fields))
        if self.error is not None and len(given) > 1:
            raise ValueError(
                f"expect.error cannot be combined with {', '.join(k for k in given if k != 'error')}"
            )
        return self


#: Most optimiser steps a train: block may ask for: a training case is a check that must stay fast.
MAX_TRAIN_STEPS = 1000


class TrainSpec(_Model):
    """Optimiser steps run before the checks; ``expect.state`` then holds the learned parameters."""

    optimizer: Literal["SGD", "Adam", "RMSprop", "Adagrad"] = "SGD"
    lr: Annotated[float, Field(gt=0)]
    steps: Annotated[int, Field(ge=1, le=MAX_TRAIN_STEPS)]
    loss: Annotated[
        Literal["mse_sum", "mse", "cross_entropy"],
        Field(description="mse_sum: summed squared error; mse: its mean; cross_entropy: F.cross_entropy"),
    ] = "mse"
    target: TensorSpec
    momentum: Annotated[float, Field(ge=0)] | None = None
    weight_decay: Annotated[float, Field(ge=0)] = 0.0

    @model_validator(mode="after")
    def _momentum(self) -> TrainSpec:
        if self.momentum is not None and self.optimizer not in ("SGD", "RMSprop"):
            raise ValueError(f"momentum applies to SGD and RMSprop, not {self.optimizer}")
        return self


MemoryFormat = Literal["contiguous", "channels_last"]


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
    skip: Rules | None = None
    xfail: Rules | None = None
    mode: Literal["eval", "train"] | None = None
    seed: int | None = None
    source: str | None = None
    fill: Literal["exact"] | None = None
    trust: Literal["always"] | None = None
    memory_formats: list[MemoryFormat] | None = None


#: A sweep expands to at most this many combinations unless its case declares max_cases.
DEFAULT_MAX_CASES = 10_000


class ExcludeSpec(_Model):
    """A declared filter on a sweep: the combinations matching every where: value are left out, with a reason.

    With ``invalid: true`` it matches only combinations whose geometry PyTorch rejects (which otherwise become
    ``expect: {error: ...}`` cases).
    """

    where: Annotated[
        dict[str, Any], Field(description="sweep axis (as written in sweep:) -> one of its values")
    ] = Field(default_factory=dict)
    invalid: bool = False
    reason: Annotated[str, Field(min_length=1)]

    @model_validator(mode="after")
    def _selects(self) -> ExcludeSpec:
        if not self.where and not self.invalid:
            raise ValueError("an exclude rule needs where: {axis: value, ...}, invalid: true, or both")
        return self


class SweepSpec(_Model):
    """A case's sweep keys on their own, validated before the loader expands the sweep."""

    sweep: dict[str, list[Any]]
    max_cases: Annotated[int, Field(ge=1, le=1_000_000)] = DEFAULT_MAX_CASES
    exclude: list[ExcludeSpec] = Field(default_factory=list)


class CaseSpec(_Model):
    """One declarative case: a call (op, module or layers), its inputs, and what it must produce."""

    id: Annotated[str, AfterValidator(_check_id)]
    source: str | None = None
    note: str | None = None
    description: str | None = None
    op: Annotated[str, _check_name("op", _OPS)] | None = None
    module: Annotated[str, _check_name("module", (*MODULES, "Sequential"))] | None = None
    layers: Annotated[list[LayerSpec], Field(min_length=1)] | None = None
    args: dict[str, Any] = Field(default_factory=dict)
    inputs: dict[str, TensorSpec] = Field(default_factory=dict)
    state: dict[str, TensorSpec] = Field(default_factory=dict)
    mode: Literal["eval", "train"] = "eval"
    expect: ExpectSpec
    tolerance: ToleranceSpec | None = None
    skip: Rules = Field(default_factory=list)
    xfail: Rules = Field(default_factory=list)
    devices: Annotated[list[Device], Field(min_length=1)] = Field(default_factory=lambda: ["cpu", "cuda"])
    dtypes: Annotated[list[DType], Field(min_length=1)] = Field(default_factory=lambda: ["float32"])
    seed: int = 0
    # Expanded by the loader (cnnbench/casefile/sweep.py) into one case per combination; a loaded case has none of these.
    sweep: Annotated[
        dict[str, list[Any]] | None,
        Field(description="dotted key path into the case (args.kernel_size, inputs.input.randn) -> values"),
    ] = None
    max_cases: Annotated[int, Field(ge=1, le=1_000_000)] | None = None
    exclude: list[ExcludeSpec] | None = None
    # The oracle keys (docs/case-format.md, "Independent oracles"); validated against the keys above.
    fill: Annotated[
        Literal["exact"] | None,
        Field(description="random inputs and parameters become integers whose every partial sum is exact"),
    ] = None
    trust: Annotated[
        Literal["always"] | None,
        Field(description="never report mistrusted (for ops where many zeros or equal values are the point)"),
    ] = None
    train: TrainSpec | None = None
    memory_formats: Annotated[
        list[MemoryFormat] | None,
        Field(min_length=1, description="one variant per format; channels_last must agree with contiguous"),
    ] = None

    @field_validator("expect")
    @classmethod
    def _oracle_exists(cls, value: ExpectSpec, info: ValidationInfo) -> ExpectSpec:
        """A reference or reference gradient asked for a call that has none: refused at load time."""
        from cnnbench.ops.lowering import GRADIENT_MODULES, GRADIENT_OPS, REFERENCE_MODULES, REFERENCE_OPS

        op, module = info.data.get("op"), info.data.get("module")
        for key, ops, modules, what in (
            ("reference", REFERENCE_OPS, REFERENCE_MODULES, "NumPy reference"),
            ("grad", GRADIENT_OPS, GRADIENT_MODULES, "reference gradient"),
        ):
            wanted = getattr(value, key)
            if wanted is None or (key == "grad" and wanted != "reference"):
                continue
            if info.data.get("layers") is not None or module == "Sequential":
                raise ValueError(f"{key}: {wanted} needs an op or a module case, not layers")
            if op is not None and op not in ops:
                raise ValueError(
                    f'{key}: {wanted}: there is no {what} for op "{op}"; ops with one: {", ".join(sorted(ops))}'
                )
            if module is not None and module not in modules:
                raise ValueError(
                    f'{key}: {wanted}: there is no {what} for module "{module}"; modules with one: '
                    + ", ".join(sorted(modules))
                )
        return value

    @field_validator("fill")
    @classmethod
    def _exact_possible(cls, value: str | None, info: ValidationInfo) -> str | None:
        """fill: exact that no density of non-zeros can make exact in one of the case's dtypes: refused."""
        if value is None or "expect" not in info.data or "dtypes" not in info.data:
            return value
        from cnnbench.casefile.exact import check_exact_fill

        data = info.data
        check_exact_fill(
            data.get("op"),
            None if data.get("layers") is not None else data.get("module"),
            data.get("args") or {},
            data.get("inputs") or {},
            data.get("state") or {},
            data.get("mode") or "eval",
            data["dtypes"],
        )
        return value

    @model_validator(mode="after")
    def _oracle_keys(self) -> CaseSpec:
        if self.train is not None:
            if self.op is not None:
                raise ValueError("train: needs a module or layers case (an op has no parameters to learn)")
            mixed = [k for k in ("reference", "grad", "match", "deterministic") if getattr(self.expect, k)]
            if self.memory_formats is not None:
                mixed.append("memory_formats")
            if mixed or self.expect.error is not None:
                raise ValueError(f"train: cannot be combined with {', '.join(mixed) or 'expect.error'}")
        if self.memory_formats is not None and len(set(self.memory_formats)) != len(self.memory_formats):
            raise ValueError("memory_formats must not repeat")
        generated = [
            k for k, v in {**self.inputs, **self.state}.items() if isinstance(v, RandSpec | RandnSpec)
        ]
        if self.fill is not None and self.expect.output is not None and generated:
            raise ValueError(
                f"fill: exact replaces {', '.join(generated)}, so a written expect.output cannot hold; "
                "compare with reference: numpy instead"
            )
        return self

    @model_validator(mode="after")
    def _sweep_keys(self) -> CaseSpec:
        if self.sweep is None and (self.max_cases is not None or self.exclude is not None):
            raise ValueError("max_cases and exclude apply to a sweep: this case has no sweep")
        return self

    @model_validator(mode="after")
    def _one_callable(self) -> CaseSpec:
        if self.module == "Sequential" and self.layers is None:
            raise ValueError("module: Sequential needs its layers: list")
        given = [k for k in ("op", "module", "layers") if getattr(self, k) is not None]
        if given == ["module", "layers"] and self.module == "Sequential":
            given = ["layers"]
        if len(given) != 1:
            found = ", ".join(given) if given else "none"
            raise ValueError(f"a case needs exactly one of op, module, layers (found: {found})")
        if self.expect.repr is not None and self.op is not None:
            raise ValueError("expect.repr needs a module or layers, not a functional op")
        if self.expect.layer_shapes is not None and self.layers is None:
            raise ValueError("expect.layer_shapes needs layers:")
        shapes = self.expect.layer_shapes
        if shapes is not None and self.layers is not None and len(shapes) != len(self.layers):
            raise ValueError(f"expect.layer_shapes has {len(shapes)} shapes for {len(self.layers)} layers")
        if self.op is not None and self.state:
            raise ValueError("state: applies to module/layers cases; pass an op's tensors in inputs:")
        if not self.inputs:
            raise ValueError("inputs: is empty; a case needs at least one input tensor")
        if len(set(self.devices)) != len(self.devices) or len(set(self.dtypes)) != len(self.dtypes):
            raise ValueError("devices and dtypes must not repeat")
        return self

    @model_validator(mode="after")
    def _within_budget(self, info: ValidationInfo) -> CaseSpec:
        """All tensors of the case together within the memory budget, estimated from shapes alone."""
        budget = _budget(info)
        tensors = case_tensors(self)
        total = sum(math.prod(shape) for _, shape in tensors) * BYTES_PER_ELEMENT
        if total > budget:
            biggest = sorted(tensors, key=lambda t: -math.prod(t[1]))
            listed = ", ".join(f"{name} {list(shape)}" for name, shape in biggest[:3])
            more = ", ..." if len(biggest) > 3 else ""
            raise ValueError(
                f"the tensors of this case need {format_bytes(total)} at {BYTES_PER_ELEMENT} bytes per element "
                f"({listed}{more}), over the memory budget of {format_bytes(budget)} per case" + _RAISE_BUDGET
            )
        return self

    @property
    def target(self) -> str:
        """The name of what is called: the op, the module, or Sequential."""
        if self.layers is not None:
            return "Sequential"
        return self.op or self.module or "Sequential"


#: Most seconds a benchmark may ask to be timed for: one row must not hold a run for more than minutes.
MAX_BENCH_TIME_S = 600.0
#: Fewest replicates a benchmark row may have: an IQR (and the noisy flag) needs at least five points.
MIN_BENCH_REPLICATES = 5

BenchMode = Literal["inference", "train"]
_GENERATED = (OnesSpec, ZerosSpec, FullSpec, RandSpec, RandnSpec)


class BenchCheckSpec(_Model):
    """Overrides of the correctness thresholds against the float32 contiguous output (docs: Benchmarks)."""

    max_rel_err: Annotated[
        float | None, Field(ge=0, description="largest max|out - ref| / max|ref| allowed")
    ] = None
    min_top1: Annotated[
        float | None, Field(ge=0, le=1, description="smallest top-1 agreement allowed; near-ties forgiven")
    ] = None


class BenchmarkDefaultsSpec(_Model):
    """Keys merged into every benchmark of the file; a benchmark's own key wins, skip lists concatenate."""

    devices: list[Device] | None = None
    dtypes: list[DType] | None = None
    batch: list[Annotated[int, Field(ge=1)]] | None = None
    memory_formats: list[MemoryFormat] | None = None
    modes: list[BenchMode] | None = None
    compile: list[bool] | None = None
    max_time_s: Annotated[float, Field(gt=0, le=MAX_BENCH_TIME_S)] | None = None
    min_replicates: Annotated[int, Field(ge=MIN_BENCH_REPLICATES, le=10_000)] | None = None
    target_rel_iqr: Annotated[float, Field(ge=0, le=1)] | None = None
    cpu_peak_memory: bool | None = None
    seed: int | None = None
    source: str | None = None
    skip: Rules | None = None
    check: BenchCheckSpec | None = None


class BenchmarkSpec(_Model):
    """One benchmark: a model or a call (op, module, layers), and the axes its timed variants multiply out."""

    id: Annotated[str, AfterValidator(_check_id)]
    source: str | None = None
    note: str | None = None
    description: str | None = None
    model: Annotated[str, _check_name("model", MODEL_NAMES)] | None = None
    op: Annotated[str, _check_name("op", _OPS)] | None = None
    module: Annotated[str, _check_name("module", MODULES)] | None = None
    layers: Annotated[list[LayerSpec], Field(min_length=1)] | None = None
    args: Annotated[
        dict[str, Any], Field(description="the op's keyword arguments, the module's or the model builder's")
    ] = Field(default_factory=dict)
    inputs: Annotated[
        dict[str, TensorSpec],
        Field(description="tensors passed positionally; the first one's leading dimension is the batch"),
    ] = Field(default_factory=dict)
    batch: Annotated[
        list[Annotated[int, Field(ge=1)]] | None,
        Field(min_length=1, description="batch sizes (default: 1 for a model, else the first input's)"),
    ] = None
    devices: Annotated[list[Device], Field(min_length=1)] = Field(default_factory=lambda: ["cpu", "cuda"])
    dtypes: Annotated[list[DType], Field(min_length=1)] = Field(default_factory=lambda: ["float32"])
    memory_formats: Annotated[list[MemoryFormat], Field(min_length=1)] = Field(
        default_factory=lambda: list[MemoryFormat](("contiguous",))
    )
    modes: Annotated[
        list[BenchMode],
        Field(min_length=1, description="inference (torch.inference_mode) or train (forward, backward, SGD)"),
    ] = Field(default_factory=lambda: list[BenchMode](("inference",)))
    compile: Annotated[list[bool], Field(min_length=1, description="also time torch.compile'd")] = Field(
        default_factory=lambda: [False]
    )
    max_time_s: Annotated[
        float, Field(gt=0, le=MAX_BENCH_TIME_S, description="time budget of warm-up plus replicates")
    ] = 2.0
    min_replicates: Annotated[int, Field(ge=MIN_BENCH_REPLICATES, le=10_000)] = MIN_BENCH_REPLICATES
    target_rel_iqr: Annotated[
        float, Field(ge=0, le=1, description="stop early once IQR/median is at most this")
    ] = 0.05
    cpu_peak_memory: Annotated[
        bool, Field(description="measure the CPU peak RSS in a fresh child process (costs seconds)")
    ] = False
    seed: int = 0
    skip: Rules = Field(default_factory=list)
    check: BenchCheckSpec | None = None

    @model_validator(mode="after")
    def _one_workload(self) -> BenchmarkSpec:
        given = [k for k in ("model", "op", "module", "layers") if getattr(self, k) is not None]
        if len(given) != 1:
            found = ", ".join(given) if given else "none"
            raise ValueError(f"a benchmark needs exactly one of model, op, module, layers (found: {found})")
        if self.model is None and not self.inputs:
            raise ValueError("inputs: is empty; an op, module or layers benchmark needs at least one input")
        if self.model is not None and len(self.inputs) > 1:
            raise ValueError("a model benchmark takes one input (or none: the model's own input shape)")
        for key in ("devices", "dtypes", "batch", "memory_formats", "modes", "compile"):
            values = getattr(self, key) or []
            if len(set(values)) != len(values):
                raise ValueError(f"{key} must not repeat")
        wrong = [d for d in self.dtypes if d not in FLOAT_DTYPES]
        if wrong:
            raise ValueError(f"benchmark dtypes must be floating point, not {', '.join(wrong)}")
        return self

    @model_validator(mode="after")
    def _batchable(self, info: ValidationInfo) -> BenchmarkSpec:
        """The first input can take every batch size and memory format, within the memory budget."""
        if not self.inputs:
            return self
        name, first = next(iter(self.inputs.items()))
        shape = tensor_shape(first)
        if self.batch is not None and not isinstance(first, _GENERATED):
            raise ValueError(
                f"batch: replaces the leading dimension of inputs.{name}, so it must be generated "
                "(randn, rand, ones, zeros or full), not a literal or a file"
            )
        if not shape:
            raise ValueError(f"inputs.{name} is a scalar: the first input needs a batch dimension")
        if "channels_last" in self.memory_formats and len(shape) != 4:
            raise ValueError(f"channels_last needs a 4-D first input; inputs.{name} has {len(shape)} dims")
        biggest = max(self.batch or [shape[0]])
        _check_tensor_bytes((biggest, *shape[1:]), _budget(info))
        return self

    @property
    def target(self) -> str:
        """What is timed: the model, op or module name, or Sequential."""
        return self.model or self.op or self.module or "Sequential"


class CaseFileSpec(_Model):
    """A case file: optional defaults, a list of cases and a list of benchmarks (at least one of the two)."""

    defaults: DefaultsSpec | None = None
    cases: list[CaseSpec] = Field(default_factory=list)
    benchmark_defaults: BenchmarkDefaultsSpec | None = None
    benchmarks: list[BenchmarkSpec] = Field(default_factory=list)


#: Every model of the format, for "did you mean" on an unknown key.
SPEC_MODELS: tuple[type[BaseModel], ...] = (
    CaseFileSpec,
    DefaultsSpec,
    CaseSpec,
    BenchmarkDefaultsSpec,
    BenchmarkSpec,
    BenchCheckSpec,
    ExpectSpec,
    ErrorSpec,
    LayerSpec,
    RuleSpec,
    ExcludeSpec,
    TrainSpec,
    Tolerance,
    DataSpec,
    ArangeSpec,
    OnesSpec,
    ZerosSpec,
    FullSpec,
    RandSpec,
    RandnSpec,
    FileSpec,
)


def _output_tensors(output: Any) -> list[tuple[str, Any]]:
    try:
        literal_shape(output)
    except ValueError:
        if isinstance(output, list):
            return [(f"expect.output[{i}]", item) for i, item in enumerate(output) if item is not None]
    return [("expect.output", output)]


def case_tensors(spec: CaseSpec) -> list[tuple[str, tuple[int, ...]]]:
    """Every tensor a validated case describes (inputs, state, expected values), by key path, with its shape."""
    named: list[tuple[str, Any]] = [(f"inputs.{k}", v) for k, v in spec.inputs.items()]
    named += [(f"state.{k}", v) for k, v in spec.state.items()]
    for i, layer in enumerate(spec.layers or []):
        named += [(f"layers[{i}].state.{k}", v) for k, v in layer.state.items()]
    named += [(f"expect.state.{k}", v) for k, v in (spec.expect.state or {}).items()]
    if spec.train is not None:
        named.append(("train.target", spec.train.target))
    if spec.expect.output is not None:
        named += _output_tensors(spec.expect.output)
    return [(name, tensor_shape(value)) for name, value in named]
