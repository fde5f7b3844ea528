"""Robust timing: the Measurement of a callable, and the warm-up and block-sizing rules every timer here uses.

``measure`` times with ``torch.utils.benchmark.Timer`` blocks; cnnbench.bench.pytest_timing times through
pytest-benchmark's fixture. Both warm up with :func:`warm_up` and size their blocks (rounds) with
:func:`calls_for_block`, so the rules and their constants live here once.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from cnnbench import device as device_module

__all__ = [
    "MAX_ROUNDS",
    "MIN_BLOCK_S",
    "WARMUP_SHARE",
    "WARMUP_STABLE_TOL",
    "Measurement",
    "RoundPlan",
    "WarmUp",
    "calls_for_block",
    "is_stable",
    "measure",
    "measure_events",
    "plan_rounds",
    "rel_iqr",
    "set_threads",
    "sync",
    "warm_up",
]

#: Shortest timed block (a Timer block, a pytest-benchmark round): long enough that perf_counter's resolution
#: and the per-block bookkeeping stay far below 0.1 % of it.
MIN_BLOCK_S = 0.01
#: Share of the time budget the warm-up may use at most; the rest is samples.
WARMUP_SHARE = 0.25
#: Consecutive warm-up blocks within 10 % of each other count as stable.
WARMUP_STABLE_TOL = 0.10
#: Most rounds a pytest-benchmark item runs, however fast its call (pytest-benchmark keeps every round).
MAX_ROUNDS = 10_000

_IQR_WARN_THRESHOLD = 0.10  # rel. IQR above 10 % means the median is not trustworthy to compare at ~5 %.
_MIN_REPLICATES_FLOOR = 3  # an IQR needs a few points; fewer than 3 is effectively a single sample.
_MAX_NUMBER_PER_RUN = 2**31 - 1  # timeit's loop count crosses a C int in the C++ timer; keep it in range.
_MAX_BLOCK_GROWTH = 100  # cap per-step growth of the block size so one tiny, noisy block cannot overshoot.
_BLOCK_MARGIN = 1.2  # aim 20 % above min_block_s so jitter does not leave blocks just below it.
_WARMUP_MIN_S = 0.05  # lazy init, allocator caches and oneDNN primitive caches settle within tens of ms.
_SHORTEST_CALL_S = 1e-9  # a call below the clock's resolution still counts as this long when sizing rounds.


# ---------------------------------------------------------------------------------------------------------
# Devices and threads
# ---------------------------------------------------------------------------------------------------------


def sync(device: str | torch.device) -> None:
    """Wait for all queued work on ``device`` (cnnbench.device.synchronize): no-op on CPU."""
    device_module.synchronize(device)


def set_threads(n: int | None) -> int:
    """Set torch's intra-op thread count to ``n`` (``None`` leaves it) and return the count in force."""
    if n is not None:
        if n < 1:
            raise ValueError(f"thread count must be >= 1, got {n}")
        torch.set_num_threads(n)
    return torch.get_num_threads()


def _device_timer(device: str | torch.device) -> Callable[[], float]:
    """A clock for Timer that synchronizes ``device`` before reading perf_counter (plain clock on CPU)."""
    dev = torch.device(device)
    if dev.type == "cpu":
        return time.perf_counter

    def _timer() -> float:
        sync(dev)
        return time.perf_counter()

    return _timer


# ---------------------------------------------------------------------------------------------------------
# Statistics
# ---------------------------------------------------------------------------------------------------------


def _iqr(values: Sequence[float]) -> float:
    """Inter-quartile range by linear interpolation (numpy's default, ``statistics``' "inclusive")."""
    if len(values) < 2:  # one sample has no spread (statistics.quantiles wants two before Python 3.13)
        return 0.0
    q1, _, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return q3 - q1


def rel_iqr(values: Sequence[float]) -> float:
    """Inter-quartile range of ``values`` divided by their median: their relative spread."""
    return _iqr(values) / statistics.median(values)


@dataclass(frozen=True)
class Measurement:
    """Per-call times of one callable, one sample per replicate block (block time / number_per_run)."""

    times_s: tuple[float, ...]
    number_per_run: int
    warmup_s: float
    first_call_s: float
    num_threads: int
    device: str = "cpu"

    def __post_init__(self) -> None:
        if not self.times_s:
            raise ValueError("a Measurement needs at least one sample")
        if self.number_per_run < 1:
            raise ValueError(f"number_per_run must be >= 1, got {self.number_per_run}")

    @property
    def n(self) -> int:
        """Number of replicate blocks (samples)."""
        return len(self.times_s)

    @property
    def median_s(self) -> float:
        """Median per-call time in seconds."""
        return statistics.median(self.times_s)

    @property
    def mean_s(self) -> float:
        """Mean per-call time in seconds."""
        return statistics.fmean(self.times_s)

    @property
    def min_s(self) -> float:
        """Fastest per-call time in seconds."""
        return min(self.times_s)

    @property
    def max_s(self) -> float:
        """Slowest per-call time in seconds."""
        return max(self.times_s)

    @property
    def iqr_s(self) -> float:
        """Inter-quartile range of the per-call times in seconds (linear interpolation)."""
        return _iqr(self.times_s)

    @property
    def rel_iqr(self) -> float:
        """IQR divided by the median: the relative spread of the samples."""
        return rel_iqr(self.times_s)

    @property
    def noisy(self) -> bool:
        """True when the relative IQR exceeds 10 %: the median should not be trusted for fine comparisons."""
        return self.rel_iqr > _IQR_WARN_THRESHOLD

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict with the raw samples and the derived statistics."""
        return {
            "times_s": list(self.times_s),
            "number_per_run": self.number_per_run,
            "warmup_s": self.warmup_s,
            "first_call_s": self.first_call_s,
            "num_threads": self.num_threads,
            "device": self.device,
            "n": self.n,
            "median_s": self.median_s,
            "mean_s": self.mean_s,
            "min_s": self.min_s,
            "max_s": self.max_s,
            "iqr_s": self.iqr_s,
            "rel_iqr": self.rel_iqr,
            "noisy": self.noisy,
        }


# ---------------------------------------------------------------------------------------------------------
# Warm-up and block sizing (shared by measure and cnnbench.bench.pytest_timing)
# ---------------------------------------------------------------------------------------------------------


def calls_for_block(block_s: float, number: int, min_block_s: float, *, margin: float = 1.0) -> int:
    """Calls per block for a block to last ``min_block_s * margin``, given ``number`` calls took ``block_s``."""
    return math.ceil(number * min_block_s * margin / block_s)


def _grow_number(number: int, block_s: float, min_block_s: float) -> int:
    """Next block size aimed at ``min_block_s`` (with margin), at least doubling, at most 100x."""
    wanted = calls_for_block(block_s, number, min_block_s, margin=_BLOCK_MARGIN)
    grown = max(number * 2, min(wanted, number * _MAX_BLOCK_GROWTH))
    return min(grown, _MAX_NUMBER_PER_RUN)


def is_stable(previous_s: float, last_s: float) -> bool:
    """Whether two consecutive per-call times agree within WARMUP_STABLE_TOL (``inf``: no previous one)."""
    return abs(last_s - previous_s) <= WARMUP_STABLE_TOL * min(previous_s, last_s)


@dataclass(frozen=True)
class WarmUp:
    """What :func:`warm_up` found: the block size to sample with and how long getting there took."""

    first_call_s: float
    """The first call, timed alone (lazy initialisation, compilation)."""
    number: int
    """Calls per block once warm: the last warm-up block's size."""
    per_call_s: float
    """The last warm-up block's time per call."""
    started: float
    """``time.perf_counter()`` when the warm-up began, after the first call: the time budget counts from here."""
    warmup_s: float
    """Seconds the warm-up took (the first call excluded)."""


def warm_up(
    time_block: Callable[[int], float],
    *,
    budget_s: float,
    min_block_s: float = MIN_BLOCK_S,
    settle_s: float = _WARMUP_MIN_S,
) -> WarmUp:
    """Time the first call alone, then blocks until two consecutive ones agree within WARMUP_STABLE_TOL.

    ``time_block(number)`` runs ``number`` calls and returns their total seconds. A block shorter than
    ``min_block_s`` grows (at least doubling) and restarts the comparison, so the stable blocks are of the
    size to sample with; ``min_block_s=0`` keeps blocks of one call. Stability counts only once ``settle_s``
    has passed, and the warm-up stops anyway after ``WARMUP_SHARE * budget_s`` (at least ``settle_s``).
    """
    first_call_s = time_block(1)
    start = time.perf_counter()
    cap_s = max(settle_s, WARMUP_SHARE * budget_s)
    number, previous = 1, math.inf
    while True:
        block_s = time_block(number)
        elapsed = time.perf_counter() - start
        if block_s < min_block_s and number < _MAX_NUMBER_PER_RUN:
            number, previous = _grow_number(number, block_s, min_block_s), math.inf
            continue
        last = block_s / number
        if elapsed >= cap_s or (elapsed >= settle_s and is_stable(previous, last)):
            break
        previous = last
    return WarmUp(first_call_s, number, last, start, time.perf_counter() - start)


@dataclass(frozen=True)
class RoundPlan:
    """pytest-benchmark's ``pedantic`` arguments: calls per round and rounds."""

    iterations: int
    rounds: int


def plan_rounds(per_call_s: float, budget_s: float, min_replicates: int) -> RoundPlan:
    """Rounds of at least MIN_BLOCK_S filling what the warm-up leaves of ``budget_s``, >= ``min_replicates``.

    The rounds are sized up front (pytest-benchmark runs a fixed number) from the warmed-up per-call time, and
    get the budget less the warm-up's largest share; there are at most MAX_ROUNDS.
    """
    per_call = max(per_call_s, _SHORTEST_CALL_S)
    iterations = max(1, calls_for_block(per_call, 1, MIN_BLOCK_S))
    fit = int((1 - WARMUP_SHARE) * budget_s / (per_call * iterations))
    return RoundPlan(iterations, max(min_replicates, min(MAX_ROUNDS, fit)))


# ---------------------------------------------------------------------------------------------------------
# measure
# ---------------------------------------------------------------------------------------------------------


def measure(
    fn: Callable[[], object],
    *,
    device: str = "cpu",
    min_replicates: int = 5,
    max_time_s: float = 2.0,
    target_rel_iqr: float = 0.05,
    min_block_s: float = MIN_BLOCK_S,
    cold_cache: bool = False,
) -> Measurement:
    """Time ``fn()`` robustly with ``torch.utils.benchmark.Timer``; never returns a single sample.

    On a device with timing events (CUDA, XPU, ...) :func:`measure_events` times instead, and cold_cache
    flushes the device's cache before every call; on the CPU cold_cache is refused (no flush is modelled).

    The first call is timed on its own (``first_call_s``). Then the block size ``number_per_run`` grows until
    one block of calls lasts at least ``min_block_s`` and warm-up continues until two consecutive blocks agree
    within 10 % (bounded by a quarter of ``max_time_s``); see :func:`warm_up`. Blocks are then collected until
    ``n >= min_replicates`` and the relative IQR is at most ``target_rel_iqr``, or until ``max_time_s``
    (a soft budget for warm-up plus sampling, excluding the first call) is spent; at least
    ``min_replicates`` blocks are always collected. Block times are synchronized on ``device``.
    The thread count is not changed: it is the one in force (see :func:`set_threads`) and is recorded.
    """
    if min_replicates < _MIN_REPLICATES_FLOOR:
        raise ValueError(f"min_replicates must be >= {_MIN_REPLICATES_FLOOR}, got {min_replicates}")
    if max_time_s <= 0 or min_block_s <= 0 or target_rel_iqr < 0:
        raise ValueError("max_time_s and min_block_s must be > 0 and target_rel_iqr >= 0")
    if device_module.event_pair(device) is not None:
        return measure_events(
            fn,
            device=device,
            min_replicates=min_replicates,
            max_time_s=max_time_s,
            target_rel_iqr=target_rel_iqr,
            min_block_s=min_block_s,
            cold_cache=cold_cache,
        )
    if cold_cache:
        raise ValueError(
            "cold_cache needs a device with timing events (CUDA): the CPU's caches are not flushed"
        )
    dev = torch.device(device)
    threads = torch.get_num_threads()
    # Imported here, when something is timed: torch.utils.benchmark imports torch.utils.cpp_extension, which logs
    # "No CUDA runtime is found" on a machine without CUDA, on every run that merely checks numerics.
    from torch.utils.benchmark import Timer

    # num_threads=threads: Timer's default (1) would silently run the callable single-threaded.
    timer = Timer(stmt="fn()", globals={"fn": fn}, timer=_device_timer(dev), num_threads=threads)
    # Timer._timeit(number) runs `number` calls between two clock reads (sync'd on the device) and returns the
    # block's total seconds: exact per-block times with no extra warm-up or thread switching per block.
    warm = warm_up(timer._timeit, budget_s=max_time_s, min_block_s=min_block_s, settle_s=_WARMUP_MIN_S)
    number = warm.number
    times: list[float] = []
    while True:
        times.append(timer._timeit(number) / number)
        if len(times) < min_replicates:
            continue
        if rel_iqr(times) <= target_rel_iqr or time.perf_counter() - warm.started >= max_time_s:
            break
    return Measurement(
        times_s=tuple(times),
        number_per_run=number,
        warmup_s=warm.warmup_s,
        first_call_s=warm.first_call_s,
        num_threads=threads,
        device=str(dev),
    )


# ---------------------------------------------------------------------------------------------------------
# measure_events: accelerators
# ---------------------------------------------------------------------------------------------------------

#: Replicates recorded between two host synchronisations: events are read only after the whole batch ran.
_EVENT_BATCH = 16


def _event_block(fn: Callable[[], object], device: str, number: int, flush: torch.Tensor | None) -> Any:
    """Queue one timed block of ``number`` calls between two events; nothing waits for the device here.

    With a flush buffer (cold cache), the flush is queued before the start event, so it is not timed."""
    pair = device_module.event_pair(device)
    assert pair is not None
    start, end = pair
    if flush is not None:
        device_module.flush_cache(device, flush)
    start.record()
    for _ in range(number):
        fn()
    end.record()
    return start, end


def _event_seconds(pairs: Sequence[Any]) -> list[float]:
    """Each queued block's seconds; the host waits once, for the last end event."""
    if pairs:
        pairs[-1][1].synchronize()
    return [float(start.elapsed_time(end)) / 1e3 for start, end in pairs]


def measure_events(
    fn: Callable[[], object],
    *,
    device: str,
    min_replicates: int = 5,
    max_time_s: float = 2.0,
    target_rel_iqr: float = 0.05,
    min_block_s: float = MIN_BLOCK_S,
    cold_cache: bool = False,
) -> Measurement:
    """Time ``fn()`` on an accelerator with its timing events: no host synchronisation inside a timed block.

    The warm-up (:func:`warm_up`, each block synchronised) runs until two blocks agree, so the first calls'
    lazy initialisation and cuDNN's autotuning (``torch.backends.cudnn.benchmark``: its first call per shape
    tries every algorithm) stay out of the samples. Samples are then queued in batches of blocks, each block
    between a start and an end event on the device's stream; the host synchronises once per batch to read
    them. With cold_cache every call is its own block, preceded by a write of a buffer larger than the
    last-level cache (as ``triton.testing.do_bench`` does), so each call starts with a cold L2.
    """
    flush = device_module.flush_cache(device) if cold_cache else None
    if cold_cache:
        min_block_s = 0.0  # one call per block: the flush must precede each call

    def time_block(number: int) -> float:
        (seconds,) = _event_seconds([_event_block(fn, device, number, flush)])
        return seconds

    device_module.synchronize(device)
    warm = warm_up(time_block, budget_s=max_time_s, min_block_s=min_block_s, settle_s=_WARMUP_MIN_S)
    number = warm.number
    times: list[float] = []
    while True:
        pairs = [_event_block(fn, device, number, flush) for _ in range(_EVENT_BATCH)]
        times.extend(t / number for t in _event_seconds(pairs))
        if len(times) < min_replicates:
            continue
        if rel_iqr(times) <= target_rel_iqr or time.perf_counter() - warm.started >= max_time_s:
            break
    return Measurement(
        times_s=tuple(times),
        number_per_run=number,
        warmup_s=warm.warmup_s,
        first_call_s=warm.first_call_s,
        num_threads=torch.get_num_threads(),
        device=str(device),
    )
