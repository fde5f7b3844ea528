"""Timing a benchmark variant through pytest-benchmark's ``benchmark`` fixture, with cnnbench's warm-up rules.

The fixture object is passed in (this module imports nothing of pytest): the pytest plugin hands it over, and
cnnbench.bench.runner.run_benchmark times the variant's step with the returned Timing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import torch

from cnnbench.bench import timing
from cnnbench.bench.runner import Timing
from cnnbench.casefile.variants import BenchVariant

__all__ = ["fixture_timing"]


def _time_calls(call: Callable[[], None]) -> Callable[[int], float]:
    """A ``time_block`` for timing.warm_up: ``number`` calls of ``call`` between two perf_counter reads."""

    def time_block(number: int) -> float:
        t0 = time.perf_counter()
        for _ in range(number):
            call()
        return time.perf_counter() - t0

    return time_block


def fixture_timing(fixture: Any) -> Timing:
    """A Timing that times through pytest-benchmark's fixture (``benchmark.pedantic``).

    The timed call runs the step and synchronises the device. As in timing.measure, the first call is timed
    alone and warm-up runs until two consecutive calls agree within 10 % (at most a quarter of the budget),
    here with one call per block; then timing.plan_rounds sizes rounds of enough iterations to last
    timing.MIN_BLOCK_S, at least min_replicates of them, to fill the rest of the budget.
    """

    def time_variant(step: Callable[[], object], variant: BenchVariant) -> timing.Measurement:
        budget = variant.time_budget_s

        def call() -> None:
            step()
            timing.sync(variant.device)

        # min_block_s=0, settle_s=0: single calls, stable as soon as two agree; the rounds are sized after.
        warm = timing.warm_up(_time_calls(call), budget_s=budget, min_block_s=0.0, settle_s=0.0)
        plan = timing.plan_rounds(warm.per_call_s, budget, variant.case.spec.min_replicates)
        fixture.group = variant.case.id
        fixture.pedantic(call, rounds=plan.rounds, iterations=plan.iterations)
        stats = getattr(fixture, "stats", None)
        times = tuple(stats.stats.data) if stats is not None else (warm.per_call_s,)  # --benchmark-disable
        return timing.Measurement(
            times, plan.iterations, warm.warmup_s, warm.first_call_s, torch.get_num_threads(), variant.device
        )

    return time_variant
