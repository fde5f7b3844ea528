"""Cases and benchmarks as loaded, and their expansion into variants: the units that run and get a row.

One id everywhere: ``case_id[device-dtype]`` (pytest's parametrisation style) names the pytest item, the stored
row and the report line.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import ClassVar, Generic, TypeVar

from cnnbench.casefile.bench_format import BenchmarkSpec
from cnnbench.casefile.fields import RuleSpec
from cnnbench.casefile.format import CaseSpec
from cnnbench.casefile.tensors import tensor_shape

__all__ = [
    "AnyVariant",
    "BenchVariant",
    "Benchmark",
    "Case",
    "CaseFile",
    "Suite",
    "Variant",
    "estimated_seconds",
    "expand",
    "expand_benchmarks",
    "repro_script_command",
    "rerun_command",
]


_SpecT = TypeVar("_SpecT", CaseSpec, BenchmarkSpec)


@dataclass(frozen=True)
class _Written(Generic[_SpecT]):
    """A validated entry of a case file and where it was written."""

    spec: _SpecT
    file: str
    line: int

    @property
    def id(self) -> str:
        """Its id, unique in a run (across cases and benchmarks)."""
        return self.spec.id

    @property
    def location(self) -> str:
        """file:line where it is written."""
        return f"{self.file}:{self.line}"


@dataclass(frozen=True)
class Case(_Written[CaseSpec]):
    """A validated case and where it was written."""


@dataclass(frozen=True)
class Variant:
    """One case on one device in one dtype: the unit that runs and gets a result row."""

    case: Case
    device: str
    dtype: str
    memory_format: str = "contiguous"
    """The layout inputs and module are put in (the case's memory_formats axis); contiguous by default."""

    kind: ClassVar[str] = "check"

    @property
    def id(self) -> str:
        """``case_id[device-dtype]``, pytest's parametrisation style; the key everywhere.

        A non-default memory format is appended: ``case_id[device-dtype-channels_last]``.
        """
        fmt = "" if self.memory_format == "contiguous" else f"-{self.memory_format}"
        return f"{self.case.id}[{self.device}-{self.dtype}{fmt}]"

    def matching_rule(self, rules: Sequence[RuleSpec]) -> RuleSpec | None:
        """The first rule that applies to this variant."""
        return next((r for r in rules if r.matches(self.device, self.dtype)), None)

    @property
    def skip_rule(self) -> RuleSpec | None:
        """The case's skip rule for this variant, if any."""
        return self.matching_rule(self.case.spec.skip)

    @property
    def xfail_rule(self) -> RuleSpec | None:
        """The case's xfail rule for this variant, if any."""
        return self.matching_rule(self.case.spec.xfail)


@dataclass(frozen=True)
class Benchmark(_Written[BenchmarkSpec]):
    """A validated benchmark (an entry of a file's ``benchmarks:`` list) and where it was written."""

    @property
    def batches(self) -> list[int]:
        """The batch sizes: the batch: axis, else 1 for a model and the first input's leading dimension."""
        if self.spec.batch is not None:
            return list(self.spec.batch)
        if not self.spec.inputs:
            return [1]
        return [tensor_shape(next(iter(self.spec.inputs.values())))[0]]


@dataclass(frozen=True)
class BenchVariant:
    """One benchmark at one point of its axes: the unit that is timed and gets a ``bench`` result row."""

    case: Benchmark
    device: str
    dtype: str
    batch: int
    mode: str
    """inference or train."""
    memory_format: str = "contiguous"
    compile: bool = False
    max_time_s: float | None = None
    """The time budget (``--max-time-per-case``) overriding the benchmark's max_time_s; None: the file's."""
    autocast: bool = False
    """Mixed precision: the model and inputs stay float32, the call runs under torch.autocast(dtype)."""

    kind: ClassVar[str] = "bench"

    @property
    def id(self) -> str:
        """``id[device-dtype-b<batch>-<mode>-<memory_format>]``, with ``-compiled`` under torch.compile and
        ``-autocast`` under torch.autocast."""
        compiled = "-compiled" if self.compile else ""
        amp = "-autocast" if self.autocast else ""
        axes = f"{self.device}-{self.dtype}-b{self.batch}-{self.mode}-{self.memory_format}{compiled}{amp}"
        return f"{self.case.id}[{axes}]"

    @property
    def time_budget_s(self) -> float:
        """Seconds of warm-up plus replicates this variant may take (the override, else the file's)."""
        return self.max_time_s if self.max_time_s is not None else self.case.spec.max_time_s

    @property
    def skip_rule(self) -> RuleSpec | None:
        """The benchmark's skip rule for this variant, if any."""
        return next((r for r in self.case.spec.skip if r.matches(self.device, self.dtype)), None)

    @property
    def xfail_rule(self) -> RuleSpec | None:
        """None: a benchmark declares no expected failures."""
        return None


@dataclass(frozen=True)
class CaseFile:
    """The cases and benchmarks of one file."""

    path: str
    cases: tuple[Case, ...]
    benchmarks: tuple[Benchmark, ...] = ()


@dataclass(frozen=True)
class Suite:
    """Every case and benchmark under some paths, ids unique across both."""

    cases: list[Case]
    benchmarks: list[Benchmark]


AnyVariant = Variant | BenchVariant
"""A numerics variant or a benchmark variant: what a run selects and executes."""


def rerun_command(file: str, variant_id: str) -> str:
    """The command that runs exactly one variant again: ``cnnbench run FILE -k 'ID'`` (shell-quoted)."""
    return f"cnnbench run {shlex.quote(file)} -k {shlex.quote(variant_id)}"


def repro_script_command(variant_id: str) -> str:
    """The command that prints a plain-torch script reproducing one variant: ``cnnbench repro 'ID'``."""
    return f"cnnbench repro {shlex.quote(variant_id)}"


def expand(cases: Iterable[Case]) -> Iterator[Variant]:
    """Every (case, device, dtype, memory format) combination, in file order, devices outermost."""
    for case in cases:
        formats = case.spec.memory_formats or ["contiguous"]
        for device in case.spec.devices:
            for dtype in case.spec.dtypes:
                for fmt in formats:
                    yield Variant(case, device, dtype, fmt)


#: Rough seconds a numerics variant takes, to weigh it against benchmarks in the progress bar's ETA.
_CHECK_ESTIMATE_S = 0.05
#: Seconds a benchmark row spends besides its timing budget: building, FLOP counting, the correctness check
#: and the first call (resnet-sized models on a 2-core CPU); only a weight for the ETA, which self-corrects.
_BENCH_OVERHEAD_S = 2.0
#: torch.compile's first call (tracing and inductor's C++ build) on a CPU, on top of the rest.
_COMPILE_ESTIMATE_S = 30.0


#: The dtypes torch.autocast computes in: a benchmark's autocast: [true] row exists only for these.
AUTOCAST_DTYPES = frozenset({"float16", "bfloat16"})


def expand_benchmarks(
    benchmarks: Iterable[Benchmark], max_time_s: float | None = None
) -> Iterator[BenchVariant]:
    """Every point of each benchmark's axes in file order: device, dtype, batch, mode, memory format, compile.

    max_time_s (``--max-time-per-case``) overrides every benchmark's own time budget.
    """
    for bench in benchmarks:
        spec = bench.spec
        for device in spec.devices:
            for dtype in spec.dtypes:
                for batch in bench.batches:
                    for mode in spec.modes:
                        for fmt in spec.memory_formats:
                            for compiled in spec.compile:
                                for amp in spec.autocast:
                                    if amp and dtype not in AUTOCAST_DTYPES:
                                        continue  # autocast to float32/float64 is the pure row
                                    yield BenchVariant(
                                        bench, device, dtype, batch, mode, fmt, compiled, max_time_s, amp
                                    )


def estimated_seconds(variant: Variant | BenchVariant) -> float:
    """A rough guess of how long a variant takes: the progress bar's weight for its ETA."""
    if isinstance(variant, BenchVariant):
        return variant.time_budget_s + _BENCH_OVERHEAD_S + (_COMPILE_ESTIMATE_S if variant.compile else 0.0)
    return _CHECK_ESTIMATE_S
