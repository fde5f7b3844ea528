"""Tests of cnnbench.bench.pytest_timing: timing through a pytest-benchmark fixture (here a stand-in with the
same ``pedantic`` / ``stats`` / ``group`` surface), and that it shares its rules with timing.measure."""

from __future__ import annotations

import time
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest

from cnnbench.bench import timing
from cnnbench.bench.pytest_timing import fixture_timing
from cnnbench.casefile.load import load_text
from cnnbench.casefile.variants import BenchVariant, expand_benchmarks

LENET = "benchmarks:\n  - {id: l, model: lenet, devices: [cpu], max_time_s: 0.05}\n"


class FakeBenchmark:
    """pytest-benchmark's fixture as fixture_timing uses it: pedantic(), then stats.stats.data per call."""

    def __init__(self, *, disabled: bool = False) -> None:
        self.disabled = disabled
        self.group: str | None = None
        self.stats: Any = None
        self.pedantic_args: tuple[int, int] | None = None

    def pedantic(self, target: Callable[[], object], *, rounds: int, iterations: int) -> None:
        self.pedantic_args = (rounds, iterations)
        if self.disabled:  # as pytest-benchmark with --benchmark-disable: one call, no stats
            target()
            return
        data = []
        for _ in range(rounds):
            t0 = time.perf_counter()
            for _ in range(iterations):
                target()
            data.append((time.perf_counter() - t0) / iterations)
        self.stats = SimpleNamespace(stats=SimpleNamespace(data=data))


def _variant() -> BenchVariant:
    (variant,) = expand_benchmarks(load_text(LENET, "b.yaml").benchmarks)
    return variant


def _sleep_ms() -> None:
    time.sleep(0.001)


def test_rounds_fill_the_budget_with_blocks_of_the_minimum_length() -> None:
    fixture, variant = FakeBenchmark(), _variant()
    calls = 0

    def step() -> None:
        nonlocal calls
        calls += 1
        _sleep_ms()

    m = fixture_timing(fixture)(step, variant)
    assert fixture.group == "l"
    assert fixture.pedantic_args is not None
    rounds, iterations = fixture.pedantic_args
    assert rounds >= variant.case.spec.min_replicates
    assert m.times_s == tuple(fixture.stats.stats.data) and m.n == rounds
    assert m.number_per_run == iterations
    assert (
        iterations * m.median_s >= 0.25 * timing.MIN_BLOCK_S
    )  # ~MIN_BLOCK_S (a slow warm-up call shortens it)
    assert m.first_call_s > 0 and m.warmup_s > 0 and m.device == "cpu"
    assert calls >= 1 + 2 + rounds * iterations  # first call, two warm-up calls at least, then the rounds


def test_without_stats_the_warm_up_call_is_the_one_sample() -> None:
    fixture = FakeBenchmark(disabled=True)
    m = fixture_timing(fixture)(_sleep_ms, _variant())
    assert m.n == 1 and m.times_s[0] > 0
    assert m.iqr_s == 0.0 and m.rel_iqr == 0.0 and not m.noisy  # a single sample has no spread


def test_measure_and_the_fixture_timing_share_the_warm_up_and_block_sizing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Both timers call timing.warm_up and timing.calls_for_block, so a private copy cannot come back."""
    called: list[str] = []
    for name in ("warm_up", "calls_for_block"):
        real = getattr(timing, name)

        def spy(*args: Any, _real: Any = real, _name: str = name, **kwargs: Any) -> Any:
            called.append(_name)
            return _real(*args, **kwargs)

        monkeypatch.setattr(timing, name, spy)
    timing.measure(lambda: None, max_time_s=0.05)  # a call far below MIN_BLOCK_S: the block grows
    assert set(called) == {"warm_up", "calls_for_block"}
    called.clear()
    fixture_timing(FakeBenchmark())(_sleep_ms, _variant())
    assert set(called) == {"warm_up", "calls_for_block"}
