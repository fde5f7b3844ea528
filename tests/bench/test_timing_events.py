"""GPU timing (cnnbench.bench.timing.measure_events) against a fake device: events, no host synchronisation
inside a timed block, the warm-up before sampling, cold-cache flushes, and measure's dispatch to it."""

from __future__ import annotations

from typing import Any

import pytest

from cnnbench.bench import timing


class FakeGpu:
    """A device whose stream runs each queued call in 1 ms of fake time (10 ms for the first: autotuning)."""

    def __init__(self) -> None:
        self.clock = 0.0
        self.log: list[str] = []
        self.calls = 0

    def kernel(self) -> None:
        self.calls += 1
        self.clock += 0.010 if self.calls == 1 else 0.001
        self.log.append("call")

    def event_pair(self, device: Any) -> tuple[Any, Any]:
        return FakeEvent(self), FakeEvent(self)

    def synchronize(self, device: Any) -> None:
        self.log.append("sync")

    def flush_cache(self, device: Any, buffer: Any = None) -> Any:
        self.clock += 0.005  # the flush takes time, but before the start event
        self.log.append("flush")
        return buffer if buffer is not None else object()


class FakeEvent:
    def __init__(self, gpu: FakeGpu) -> None:
        self.gpu, self.t = gpu, None

    def record(self) -> None:
        self.t = self.gpu.clock
        self.gpu.log.append("record")

    def synchronize(self) -> None:
        self.gpu.log.append("sync")

    def elapsed_time(self, end: FakeEvent) -> float:
        assert self.t is not None and end.t is not None
        return (end.t - self.t) * 1e3  # milliseconds, like torch.cuda.Event


@pytest.fixture
def gpu(monkeypatch: pytest.MonkeyPatch) -> FakeGpu:
    fake = FakeGpu()
    dm = timing.device_module
    monkeypatch.setattr(dm, "event_pair", lambda device: fake.event_pair(device) if device != "cpu" else None)
    monkeypatch.setattr(dm, "synchronize", fake.synchronize)
    monkeypatch.setattr(dm, "flush_cache", fake.flush_cache)
    return fake


def _blocks(log: list[str]) -> list[list[str]]:
    """What happened between each start and end record."""
    out, inside, current = [], False, []
    for item in log:
        if item == "record":
            if inside:
                out.append(current)
            inside, current = not inside, []
        elif inside:
            current.append(item)
    return out


def test_events_time_without_host_sync_inside_blocks(gpu: FakeGpu) -> None:
    m = timing.measure(gpu.kernel, device="cuda", min_replicates=5, max_time_s=0.5, min_block_s=0.001)
    assert m.device == "cuda" and m.n >= 5
    assert m.median_s == pytest.approx(0.001)  # the 10 ms first call stayed in the warm-up
    assert m.first_call_s == pytest.approx(0.010)
    blocks = _blocks(gpu.log)
    assert blocks and all(block == ["call"] * len(block) for block in blocks)  # no sync, no flush in a block
    sampled = blocks[-m.n :]
    assert all(len(b) == m.number_per_run for b in sampled)
    # The host waits once per batch of queued blocks, not once per block.
    starts = [i for i, item in enumerate(gpu.log) if item == "record"][::2]
    sample_log = gpu.log[starts[-m.n] :]
    assert sample_log.count("sync") == -(-m.n // timing._EVENT_BATCH)


def test_cold_cache_flushes_before_each_call_outside_the_timed_block(gpu: FakeGpu) -> None:
    m = timing.measure_events(gpu.kernel, device="cuda", min_replicates=5, max_time_s=0.2, cold_cache=True)
    assert m.number_per_run == 1 and m.median_s == pytest.approx(0.001)  # the flush's 5 ms is not counted
    blocks = _blocks(gpu.log)
    assert all(b == ["call"] for b in blocks)
    # Every recorded block is preceded by a flush.
    starts = [i for i, item in enumerate(gpu.log) if item == "record"][::2]
    assert all(gpu.log[i - 1] == "flush" for i in starts)


def test_cold_cache_on_the_cpu_is_refused() -> None:
    with pytest.raises(ValueError, match="cold_cache needs a device with timing events"):
        timing.measure(lambda: None, device="cpu", cold_cache=True)


def test_cpu_still_times_with_the_timer(gpu: FakeGpu) -> None:
    m = timing.measure(lambda: None, device="cpu", min_replicates=3, max_time_s=0.05)
    assert m.device == "cpu" and "record" not in gpu.log
