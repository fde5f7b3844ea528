"""Tests of cnnbench.bench.timing: Measurement, measure, the warm-up and block-sizing rules; never relative speed."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable

import pytest
import torch

from cnnbench.bench import timing
from cnnbench.bench.timing import Measurement

CUDA = torch.cuda.is_available()
needs_cuda = pytest.mark.skipif(not CUDA, reason="CUDA is not available")
needs_no_cuda = pytest.mark.skipif(CUDA, reason="checks the error raised when CUDA is missing")


def test_measurement_statistics_by_hand() -> None:
    m = Measurement(
        times_s=(5.0, 1.0, 3.0, 2.0, 4.0), number_per_run=7, warmup_s=0.1, first_call_s=9.0, num_threads=1
    )
    assert m.n == 5
    assert m.median_s == 3.0
    assert m.mean_s == 3.0
    assert m.min_s == 1.0
    assert m.max_s == 5.0
    assert m.iqr_s == pytest.approx(2.0)  # quartiles 2 and 4 (linear interpolation, like numpy)
    assert m.rel_iqr == pytest.approx(2.0 / 3.0)
    assert m.noisy
    tight = Measurement(
        times_s=(1.0, 1.01, 0.99, 1.0), number_per_run=1, warmup_s=0.0, first_call_s=1.0, num_threads=1
    )
    assert not tight.noisy
    json.dumps(m.as_dict())


def test_measurement_rejects_empty() -> None:
    with pytest.raises(ValueError):
        Measurement(times_s=(), number_per_run=1, warmup_s=0.0, first_call_s=0.0, num_threads=1)


def test_measure_structure_and_invariants() -> None:
    calls = 0
    x = torch.randn(64, 64)

    def fn() -> torch.Tensor:
        nonlocal calls
        calls += 1
        return x @ x

    threads_before = torch.get_num_threads()
    m = timing.measure(fn, min_replicates=5, max_time_s=0.3, min_block_s=0.002)
    assert torch.get_num_threads() == threads_before
    assert m.num_threads == threads_before
    assert m.device == "cpu"
    assert m.n >= 5
    assert len(m.times_s) == m.n
    assert m.number_per_run >= 1
    assert m.min_s <= m.median_s <= m.max_s
    assert all(t > 0 and math.isfinite(t) for t in m.times_s)
    assert m.first_call_s > 0
    assert m.warmup_s > 0
    # the first call and the warm-up blocks are not among the samples
    assert calls >= 1 + m.n * m.number_per_run + 1


def test_measure_stops_at_min_replicates_when_budget_is_spent() -> None:
    m = timing.measure(lambda: time.sleep(0.001), min_replicates=4, max_time_s=0.001, min_block_s=0.0005)
    assert m.n == 4
    assert m.number_per_run == 1


def test_measure_never_takes_a_single_sample() -> None:
    with pytest.raises(ValueError):
        timing.measure(lambda: None, min_replicates=1)
    with pytest.raises(ValueError):
        timing.measure(lambda: None, max_time_s=0)


def test_set_threads() -> None:
    before = torch.get_num_threads()
    try:
        assert timing.set_threads(None) == before
        assert timing.set_threads(1) == 1
        assert torch.get_num_threads() == 1
        with pytest.raises(ValueError):
            timing.set_threads(0)
    finally:
        torch.set_num_threads(before)


def test_sync_cpu_is_a_no_op() -> None:
    timing.sync("cpu")
    timing.sync(torch.device("cpu"))


@needs_no_cuda
def test_sync_fails_cleanly_without_cuda() -> None:
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        timing.sync("cuda")


@needs_cuda
def test_measure_on_cuda() -> None:
    x = torch.randn(512, 512, device="cuda")
    m = timing.measure(lambda: x @ x, device="cuda", max_time_s=0.3)
    assert m.device.startswith("cuda")
    assert m.n >= 5
    assert m.min_s <= m.median_s <= m.max_s


# --------------------------------------------------------------------------------------------- statistics


def test_quartiles_are_numpys_linear_interpolation() -> None:
    np = pytest.importorskip("numpy")
    rng = np.random.default_rng(0)
    for n in (2, 3, 4, 5, 7, 10, 31):
        values = tuple(float(v) for v in rng.lognormal(-7.0, 0.3, n))
        q1, q3 = np.percentile(values, [25, 75])  # numpy's default method is "linear"
        m = Measurement(values, number_per_run=1, warmup_s=0.0, first_call_s=0.0, num_threads=1)
        assert m.iqr_s == pytest.approx(q3 - q1, rel=1e-9)
        assert m.rel_iqr == timing.rel_iqr(values)  # measure's stopping rule reads the reported figure


def test_a_single_sample_has_no_spread() -> None:
    m = Measurement(times_s=(2.0,), number_per_run=1, warmup_s=0.0, first_call_s=2.0, num_threads=1)
    assert (m.iqr_s, m.rel_iqr, m.noisy) == (0.0, 0.0, False)


# --------------------------------------------------------------------------------------------- warm-up, blocks


def _blocks(per_call_s: list[float]) -> tuple[list[int], Callable[[int], float]]:
    """A time_block that reports the next per-call time (times the block size) and records the sizes asked."""
    sizes: list[int] = []
    times = iter(per_call_s)

    def time_block(number: int) -> float:
        sizes.append(number)
        return next(times) * number

    return sizes, time_block


def test_warm_up_grows_the_block_then_stops_when_two_blocks_agree() -> None:
    # first call; a 1-call block too short; grown blocks 25 % apart, then within 10 %
    sizes, time_block = _blocks([1.0, 0.002, 0.002, 0.0025, 0.00245])
    warm = timing.warm_up(time_block, budget_s=100.0, min_block_s=0.01, settle_s=0.0)
    assert sizes == [1, 1, 6, 6, 6]  # 6 calls: 20 % above min_block_s
    assert warm.first_call_s == 1.0
    assert warm.number == 6
    assert warm.per_call_s == pytest.approx(0.00245)
    assert warm.warmup_s >= 0.0


def test_warm_up_of_single_calls_stops_at_its_share_of_the_budget() -> None:
    sizes, time_block = _blocks([0.5, 0.1, 0.2, 0.4])
    warm = timing.warm_up(time_block, budget_s=0.0, min_block_s=0.0, settle_s=0.0)
    assert sizes == [1, 1] and (warm.number, warm.per_call_s) == (1, 0.1)  # the cap (0 s) is spent at once
    sizes, time_block = _blocks([0.5, 0.1, 0.2, 0.4, 0.41])
    warm = timing.warm_up(time_block, budget_s=1e6, min_block_s=0.0, settle_s=0.0)
    assert sizes == [1] * 5 and warm.per_call_s == 0.41


def test_calls_for_block() -> None:
    assert timing.calls_for_block(0.002, 1, 0.01) == 5
    assert timing.calls_for_block(0.002, 4, 0.01) == 20
    assert timing.calls_for_block(0.002, 1, 0.01, margin=1.2) == 6


def test_plan_rounds() -> None:
    plan = timing.plan_rounds(0.0025, budget_s=1.0, min_replicates=5)
    assert plan.iterations == 4  # 4 x 2.5 ms = MIN_BLOCK_S
    assert plan.rounds == 75  # 0.75 s left after the warm-up's share, 10 ms a round
    assert timing.plan_rounds(1.0, budget_s=1.0, min_replicates=5) == timing.RoundPlan(1, 5)
    assert timing.plan_rounds(0.001, budget_s=1000.0, min_replicates=5) == timing.RoundPlan(
        10, timing.MAX_ROUNDS
    )
    instant = timing.plan_rounds(0.0, budget_s=1.0, min_replicates=5)  # below the clock: counted as 1 ns
    assert instant.iterations >= 10**6 and instant.rounds == 75
