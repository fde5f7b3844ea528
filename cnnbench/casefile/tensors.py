"""Tensor specs of the case format: literals, seeded generators and tensor files, and the shapes they give."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    Discriminator,
    Field,
    PrivateAttr,
    Tag,
    ValidationInfo,
    field_validator,
    model_validator,
)

from cnnbench.casefile.fields import BudgetShape, DType, SpecModel, base_dir, case_budget, check_tensor_bytes

__all__ = [
    "GENERATOR_KEYS",
    "TENSOR_SPEC_TYPES",
    "ArangeSpec",
    "DataSpec",
    "FileSpec",
    "FullSpec",
    "LiteralTensor",
    "OnesSpec",
    "RandSpec",
    "RandnSpec",
    "TensorSpec",
    "ZerosSpec",
    "is_tensor_spec",
    "literal_shape",
    "tensor_args",
    "tensor_shape",
]

#: The keys that make a mapping a tensor spec (exactly one of them).
GENERATOR_KEYS = ("data", "arange", "ones", "zeros", "full", "rand", "randn", "file")


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


def _check_literal(value: Any, info: ValidationInfo) -> Any:
    check_tensor_bytes(literal_shape(value), case_budget(info))
    return value


LiteralTensor = Annotated[Any, AfterValidator(_check_literal)]


class DataSpec(SpecModel):
    """A literal tensor with a pinned dtype: ``{data: [[1, 2]], dtype: int64}``."""

    data: LiteralTensor
    dtype: DType | None = None


class ArangeSpec(SpecModel):
    """``start, start + step, ...`` reshaped to the shape."""

    arange: BudgetShape
    start: float = 0
    step: float = 1
    dtype: DType | None = None


class OnesSpec(SpecModel):
    """All ones."""

    ones: BudgetShape
    dtype: DType | None = None


class ZerosSpec(SpecModel):
    """All zeros."""

    zeros: BudgetShape
    dtype: DType | None = None


class FullSpec(SpecModel):
    """Every element equal to value."""

    full: BudgetShape
    value: float
    dtype: DType | None = None


class RandSpec(SpecModel):
    """Uniform [0, 1) from a seeded float64 generator, then cast: the same values on every device."""

    rand: BudgetShape
    seed: int = 0
    dtype: DType | None = None


class RandnSpec(SpecModel):
    """Standard normal from a seeded float64 generator, then cast: the same values on every device."""

    randn: BudgetShape
    seed: int = 0
    dtype: DType | None = None


class FileSpec(SpecModel):
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

        base = base_dir(info)
        if base is not None:
            if value.lower().endswith(".npy"):
                inspect_tensor_file(base, value)
            else:
                check_tensor_path(base, value)
        return value

    @model_validator(mode="after")
    def _locate(self, info: ValidationInfo) -> FileSpec:
        from cnnbench.casefile.tensorfile import inspect_tensor_file

        base = base_dir(info)
        if base is None:
            if self._source is not None:  # an instance validated again (e.g. an expected output at run time)
                return self
            raise ValueError(
                "a tensor file is found relative to the case file, but this text was not read from one"
            )
        source = inspect_tensor_file(base, self.file, self.key)
        check_tensor_bytes(source.shape, case_budget(info))
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
        present = [k for k in GENERATOR_KEYS if k in value]
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
            + ", ".join(GENERATOR_KEYS)
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


#: The validated mapping forms of a tensor (a literal tensor is a plain nested list).
TENSOR_SPEC_TYPES = (DataSpec, ArangeSpec, OnesSpec, ZerosSpec, FullSpec, RandSpec, RandnSpec, FileSpec)


def is_tensor_spec(value: Any) -> bool:
    """Whether a validated argument value is a tensor (a mapping form: {randn: ...}, {data: ...}, ...)."""
    return isinstance(value, TENSOR_SPEC_TYPES)


def tensor_args(args: Any) -> dict[str, Any]:
    """The keyword tensors among validated arguments (``args: {weight: {randn: [4]}}``), by name."""
    return {k: v for k, v in dict(args).items() if is_tensor_spec(v)}
