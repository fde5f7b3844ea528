"""The benchmark format as typed models: a model or call to time and the axes its timed variants multiply out."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    Field,
    ValidationInfo,
    model_validator,
)

from cnnbench.casefile.fields import (
    CALLABLE_OPS,
    Device,
    DType,
    MemoryFormat,
    Rules,
    SpecModel,
    case_budget,
    check_id,
    check_tensor_bytes,
    name_in,
)
from cnnbench.casefile.format import LayerSpec
from cnnbench.casefile.tensors import (
    FullSpec,
    OnesSpec,
    RandnSpec,
    RandSpec,
    TensorSpec,
    ZerosSpec,
    tensor_shape,
)
from cnnbench.casefile.vocabulary import FLOAT_DTYPES, MODEL_NAMES, MODULES

__all__ = [
    "MAX_BENCH_TIME_S",
    "MIN_BENCH_REPLICATES",
    "BenchCheckSpec",
    "BenchMode",
    "BenchmarkDefaultsSpec",
    "BenchmarkSpec",
]

#: Most seconds a benchmark may ask to be timed for: one row must not hold a run for more than minutes.
MAX_BENCH_TIME_S = 600.0
#: Fewest replicates a benchmark row may have: an IQR (and the noisy flag) needs at least five points.
MIN_BENCH_REPLICATES = 5

BenchMode = Literal["inference", "train"]
_GENERATED = (OnesSpec, ZerosSpec, FullSpec, RandSpec, RandnSpec)


class BenchCheckSpec(SpecModel):
    """Overrides of the correctness thresholds against the float32 contiguous output (docs: Benchmarks)."""

    max_rel_err: Annotated[
        float | None, Field(ge=0, description="largest max|out - ref| / max|ref| allowed")
    ] = None
    min_top1: Annotated[
        float | None, Field(ge=0, le=1, description="smallest top-1 agreement allowed; near-ties forgiven")
    ] = None


class BenchmarkDefaultsSpec(SpecModel):
    """Keys merged into every benchmark of the file; a benchmark's own key wins, skip lists concatenate."""

    devices: list[Device] | None = None
    dtypes: list[DType] | None = None
    batch: list[Annotated[int, Field(ge=1)]] | None = None
    memory_formats: list[MemoryFormat] | None = None
    modes: list[BenchMode] | None = None
    compile: list[bool] | None = None
    autocast: list[bool] | None = None
    cudnn_benchmark: bool | None = None
    cold_cache: bool | None = None
    max_time_s: Annotated[float, Field(gt=0, le=MAX_BENCH_TIME_S)] | None = None
    min_replicates: Annotated[int, Field(ge=MIN_BENCH_REPLICATES, le=10_000)] | None = None
    target_rel_iqr: Annotated[float, Field(ge=0, le=1)] | None = None
    cpu_peak_memory: bool | None = None
    seed: int | None = None
    source: str | None = None
    skip: Rules | None = None
    check: BenchCheckSpec | None = None


class BenchmarkSpec(SpecModel):
    """One benchmark: a model or a call (op, module, layers), and the axes its timed variants multiply out."""

    id: Annotated[str, AfterValidator(check_id)]
    source: str | None = None
    note: str | None = None
    description: str | None = None
    model: Annotated[str, name_in("model", MODEL_NAMES)] | None = None
    op: Annotated[str, name_in("op", CALLABLE_OPS)] | None = None
    module: Annotated[str, name_in("module", MODULES)] | None = None
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
    autocast: Annotated[
        list[bool],
        Field(
            min_length=1, description="also time under torch.autocast in each half dtype (model in float32)"
        ),
    ] = Field(default_factory=lambda: [False])
    cudnn_benchmark: Annotated[
        bool, Field(description="torch.backends.cudnn.benchmark for the row (autotuned kernels); recorded")
    ] = True
    cold_cache: Annotated[
        bool, Field(description="flush the accelerator's L2 cache before every timed call (CUDA)")
    ] = False
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
        for key in ("devices", "dtypes", "batch", "memory_formats", "modes", "compile", "autocast"):
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
        check_tensor_bytes((biggest, *shape[1:]), case_budget(info))
        return self

    @property
    def target(self) -> str:
        """What is timed: the model, op or module name, or Sequential."""
        return self.model or self.op or self.module or "Sequential"
