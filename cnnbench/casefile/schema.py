"""A whole case file as one model (its JSON Schema is ``cnnbench schema``), and every model of the format."""

from __future__ import annotations

from pydantic import BaseModel, Field

from cnnbench.casefile.bench_format import BenchCheckSpec, BenchmarkDefaultsSpec, BenchmarkSpec
from cnnbench.casefile.fields import RuleSpec, SpecModel
from cnnbench.casefile.format import (
    CaseSpec,
    ChainStep,
    DefaultsSpec,
    ErrorSpec,
    ExcludeSpec,
    ExpectSpec,
    LayerSpec,
    ToleranceOverride,
    TrainSpec,
)
from cnnbench.casefile.tensors import (
    ArangeSpec,
    DataSpec,
    FileSpec,
    FullSpec,
    OnesSpec,
    RandnSpec,
    RandSpec,
    ZerosSpec,
)

__all__ = ["SPEC_MODELS", "CaseFileSpec", "json_schema"]


class CaseFileSpec(SpecModel):
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
    ChainStep,
    RuleSpec,
    ExcludeSpec,
    TrainSpec,
    ToleranceOverride,
    DataSpec,
    ArangeSpec,
    OnesSpec,
    ZerosSpec,
    FullSpec,
    RandSpec,
    RandnSpec,
    FileSpec,
)


def json_schema() -> dict[str, object]:
    """The case format as a JSON Schema (draft 2020-12), for editors' completion and validation."""
    schema = CaseFileSpec.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "cnnbench case file"
    return schema
