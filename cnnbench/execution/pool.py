"""``cnnbench run --workers N|auto``: a pool of isolated workers that runs variants side by side.

The workers are those of cnnbench.execution.isolation: forked from one zygote that imported torch once, speaking
JSON lines, so a crash costs one error row and a replacement worker (milliseconds, no torch import). The pool
plans how many workers a run gets and where each runs (``plan_pool``), then streams the rows as they finish
(``WorkerPool.imap``):

- On the CPU the workers share the cores: each gets ``cores // N`` intra-op threads (recorded in the run's meta).
- With accelerators (a selected variant on ``cuda`` and GPUs visible) there is one worker per GPU, each pinned to
  its own device by index (``torch.cuda.set_device``), so ``cuda`` means a different GPU in every worker and an
  8-GPU node runs 8 streams of variants.
- Numerics checks are spread over every worker. Benchmark rows never share a device with another running
  variant: they start once every check has finished, a CPU benchmark only while every other worker is idle (and
  with every core's thread), a GPU benchmark only on its own worker's GPU. Each row records the worker and the
  wall-clock start and end of its variant (metrics ``worker``, ``started_at``, ``ended_at``), so this is checked
  from the stored run.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cnnbench.casefile.variants import AnyVariant
from cnnbench.errors import UsageError
from cnnbench.store.result import Result

if TYPE_CHECKING:
    from cnnbench.execution.isolation import _Worker, _Zygote

__all__ = [
    "AUTO",
    "PoolPlan",
    "WorkerPool",
    "available_cores",
    "parse_workers",
    "plan_pool",
    "visible_accelerators",
]

#: ``--workers auto``: one worker per GPU, or per core for CPU-only work.
AUTO = "auto"


def parse_workers(text: str) -> int | str:
    """``--workers``: "auto" or a whole number >= 1; UsageError (exit 2) otherwise."""
    if text.strip().lower() == AUTO:
        return AUTO
    try:
        value = int(text)
    except ValueError:
        raise UsageError(f"--workers {text!r}: expected a whole number >= 1 or auto") from None
    if value < 1:
        raise UsageError(f"--workers {text}: expected a whole number >= 1 or auto")
    return value


def available_cores() -> int:
    """The CPU cores this process may run on (its affinity mask, else the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def visible_accelerators() -> int:
    """How many GPUs this process can see (CUDA_VISIBLE_DEVICES applied); 0 without torch.cuda.

    The one place the pool asks; meant to be pointed at the project's accelerator module once there is one.
    """
    import torch

    try:
        return int(torch.cuda.device_count()) if torch.cuda.is_available() else 0
    except RuntimeError:  # a broken driver: no usable GPU
        return 0


@dataclass(frozen=True)
class PoolPlan:
    """How a run's pool is laid out: the number of workers, each one's intra-op threads, and each one's GPU."""

    workers: int
    threads: int
    """torch intra-op threads of each worker while it runs checks."""
    bench_threads: int
    """Threads of a CPU benchmark, which runs alone: every core (or --threads)."""
    gpus: tuple[int, ...] = ()
    """The GPU index each worker is pinned to (empty: a CPU pool)."""
    requested: int | str = AUTO

    def meta(self) -> dict[str, Any]:
        """What the run's meta.json records about the pool (under "pool")."""
        return {
            "workers": self.workers,
            "requested": self.requested,
            "threads_per_worker": self.threads,
            "bench_threads": self.bench_threads,
            "gpus": list(self.gpus),
        }


def _uses_gpu(variants: Iterable[AnyVariant]) -> bool:
    return any(v.device.split(":")[0] == "cuda" for v in variants)


def plan_pool(
    requested: int | str,
    variants: Sequence[AnyVariant],
    *,
    threads: int | None = None,
    cores: int | None = None,
    gpus: int | None = None,
) -> PoolPlan:
    """The pool for these variants: with GPU variants and GPUs visible one worker per GPU (N <= GPUs), else N
    CPU workers sharing the cores. UsageError (exit 2) for more GPU workers than GPUs."""
    if isinstance(requested, str):
        requested = parse_workers(requested)
    cores = cores if cores is not None else available_cores()
    if not _uses_gpu(variants):
        gpus = 0  # CPU-only work never asks for GPUs
    elif gpus is None:
        gpus = visible_accelerators()
    if gpus > 0:
        count = gpus if requested == AUTO else int(requested)
        if count > gpus:
            raise UsageError(
                f"--workers {count}: only {gpus} GPU{'s' if gpus != 1 else ''} visible, and each GPU worker "
                "has a GPU of its own (use --workers auto or at most the GPU count)"
            )
        pinned: tuple[int, ...] = tuple(range(count))
    else:
        count = cores if requested == AUTO else int(requested)
        pinned = ()
    per_worker = threads if threads is not None else max(1, cores // count)
    return PoolPlan(count, per_worker, threads or cores, pinned, requested)


@dataclass
class _Running:
    variant: AnyVariant
    started: float
    """time.time() when it was sent (the row's started_at)."""
    clock: float
    """time.perf_counter() then (its duration on failure)."""
    deadline: float | None


@dataclass
class _Slot:
    index: int
    gpu: int | None
    worker: _Worker | None = None
    running: _Running | None = None
    exclusive: bool = False
    """It runs a benchmark that must have the whole machine to itself."""


def _exclusive(variant: AnyVariant, plan: PoolPlan) -> bool:
    """Whether a benchmark needs every other worker idle: on the CPU (shared by every worker), or on a GPU the
    pool did not pin a worker to."""
    kind, _, index = variant.device.partition(":")
    if kind != "cuda" or not plan.gpus:
        return True
    return bool(index) and int(index) not in plan.gpus


def _gpu_of(variant: AnyVariant, slot: _Slot) -> int | None:
    """The GPU a variant runs on in this slot's worker: its own index (cuda:K), else the worker's GPU."""
    kind, _, index = variant.device.partition(":")
    if kind != "cuda":
        return None
    return int(index) if index else slot.gpu


@dataclass
class WorkerPool:
    """Runs variants on the workers of a plan: ``for row in pool.imap(variants)``; rows come as they finish."""

    plan: PoolPlan
    timeout: float | None = None
    max_case_bytes: int | None = None
    max_time_s: float | None = None
    restarts: int = 0
    """Workers started to replace one that crashed or timed out."""
    _zygote: _Zygote | None = field(default=None, init=False, repr=False)
    _slots: list[_Slot] = field(default_factory=list, init=False, repr=False)

    def _start(self) -> None:
        # Imported here: planning a pool (and refusing a bad --workers) must not import torch.
        from cnnbench.execution.isolation import _Zygote

        if self._zygote is None:
            self._zygote = _Zygote()
            gpus: Sequence[int | None] = self.plan.gpus or [None] * self.plan.workers
            self._slots = [_Slot(i, gpu) for i, gpu in enumerate(gpus)]

    def _send(self, slot: _Slot, variant: AnyVariant) -> None:
        assert self._zygote is not None
        if slot.worker is None:
            slot.worker = self._zygote.fork()
        from cnnbench.execution.isolation import _WorkerDiedError

        is_bench = variant.kind == "bench"
        slot.exclusive = is_bench and _exclusive(variant, self.plan)
        request = {
            "file": variant.case.file,
            "variant": variant.id,
            "max_case_bytes": self.max_case_bytes,
            "threads": self.plan.bench_threads if slot.exclusive else self.plan.threads,
            "max_time_s": self.max_time_s,
            "cuda_device": slot.gpu,
        }
        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        slot.running = _Running(variant, time.time(), time.perf_counter(), deadline)
        # A worker that died is seen as a closed socket by the next wait.
        with contextlib.suppress(_WorkerDiedError):
            slot.worker.send(request)

    def _dispatch(self, checks: deque[AnyVariant], benches: deque[AnyVariant]) -> None:
        """Give work to idle workers: checks anywhere; benchmarks only once no check is left, and only where
        their device has nothing else running."""
        idle = [s for s in self._slots if s.running is None]
        busy = len(self._slots) - len(idle)
        if any(s.exclusive for s in self._slots if s.running is not None):
            return
        for slot in idle:
            if checks:
                self._send(slot, checks.popleft())
                busy += 1
                continue
            if not benches:
                return
            head = benches[0]
            if _exclusive(head, self.plan):
                if busy == 0:
                    self._send(slot, benches.popleft())
                return
            gpu = _gpu_of(head, slot)
            target = next(s for s in self._slots if s.gpu == gpu)
            # Its GPU must be idle: no variant on its worker, nor one elsewhere naming that GPU (cuda:K).
            if target.running is None and not any(
                _gpu_of(s.running.variant, s) == gpu for s in self._slots if s.running is not None
            ):
                self._send(target, benches.popleft())
                busy += 1
            if target is not slot:
                return

    def _finish(self, slot: _Slot) -> Result:
        """The row of the variant a ready (or overdue) worker ran; a dead or overdue worker is replaced."""
        from cnnbench.execution.dispatch import error_result
        from cnnbench.execution.isolation import _ReplyTimeoutError, _WorkerDiedError, describe_exit

        assert self._zygote is not None and slot.worker is not None and slot.running is not None
        running, worker = slot.running, slot.worker
        slot.running, slot.exclusive = None, False
        elapsed = time.perf_counter() - running.clock
        try:
            remaining = None if running.deadline is None else max(0.0, running.deadline - time.monotonic())
            reply = worker.receive(remaining)
        except _WorkerDiedError:
            slot.worker = None
            self.restarts += 1
            result = error_result(running.variant, describe_exit(self._zygote.exit_code(worker)), elapsed)
        except _ReplyTimeoutError:
            slot.worker = None
            self.restarts += 1
            worker.kill()
            self._zygote.exit_code(worker)
            message = f"timed out after {self.timeout:g} s; the worker running it was killed"
            result = error_result(running.variant, message, elapsed)
        else:
            if "error" in reply:
                result = error_result(running.variant, str(reply["error"]), elapsed)
            else:
                result = Result.from_json(reply["result"])
        result.metrics.update(worker=slot.index, started_at=running.started, ended_at=time.time())
        return result

    def imap(self, variants: Iterable[AnyVariant]) -> Iterator[Result]:
        """Run every variant, yielding each row as its variant finishes (checks first, then benchmarks)."""
        from cnnbench import device
        from cnnbench.execution.dispatch import run_variant

        checks: deque[AnyVariant] = deque()
        benches: deque[AnyVariant] = deque()
        for v in variants:
            if not device.is_available(v.device):
                # A device this machine lacks: the row is a skip, the same in the parent as in a worker (no
                # round trip; on a CPU-only machine half of the bundled variants are cuda ones).
                yield run_variant(v)
                continue
            (benches if v.kind == "bench" else checks).append(v)
        if not checks and not benches:
            return  # nothing to run (a resumed run that was complete): no zygote, no torch import
        self._start()
        from cnnbench.execution import isolation

        while True:
            self._dispatch(checks, benches)
            running = [s for s in self._slots if s.running is not None]
            if not running:
                return
            deadlines = [s.running.deadline for s in running if s.running and s.running.deadline is not None]
            wait = None if not deadlines else max(0.0, min(deadlines) - time.monotonic())
            ready = isolation.wait_readable_any(
                [s.worker.sock for s in running if s.worker is not None], wait
            )
            now = time.monotonic()
            for slot in running:
                assert slot.worker is not None and slot.running is not None
                overdue = slot.running.deadline is not None and slot.running.deadline <= now
                if slot.worker.sock in ready or overdue:
                    yield self._finish(slot)

    def close(self, *, kill: bool = False) -> None:
        """Stop every worker (at once with kill) and the zygote."""
        for slot in self._slots:
            worker, slot.worker, slot.running = slot.worker, None, None
            if worker is not None:
                if kill:
                    worker.kill()
                worker.sock.close()
        zygote, self._zygote = self._zygote, None
        if zygote is not None:
            zygote.close()
