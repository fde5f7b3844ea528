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
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cnnbench.casefile.variants import AnyVariant
from cnnbench.errors import UsageError
from cnnbench.execution.cores import AUTO, available_cores, parse_workers, threads_per_worker
from cnnbench.store.result import Result

if TYPE_CHECKING:
    from cnnbench.execution.isolation import _Worker, _Zygote

__all__ = [
    "AUTO",
    "MachineProbe",
    "PoolPlan",
    "WorkerPool",
    "available_cores",
    "group_checks",
    "parse_workers",
    "plan_pool",
    "threads_per_worker",
    "visible_accelerators",
]


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
    per_worker = threads_per_worker(count, threads, cores)
    return PoolPlan(count, per_worker, threads or cores, pinned, requested)


#: Requests a worker holds at once while it runs checks: the one it runs and the next, already in its socket,
#: so it never waits for the parent between two checks. A benchmark is never queued behind anything.
PIPELINE_DEPTH = 2
#: Most checks handed to a worker at once: the variants of one case stay on one worker (its cached float64
#: reference, plans and first-call costs serve all of them), up to this many.
GROUP_SIZE = 64


#: How long the pool's probe of the machine (devices, GPU count, environment) may take in its worker.
_PROBE_TIMEOUT_S = 120.0


class MachineProbe:
    """A pool's questions about this machine, answered by a worker forked for them, so that the parent never
    imports torch (about 0.7 GiB of its memory and 1.5 s of a core): which of the run's devices it has, how many
    GPUs it sees, and the environment fingerprint under a worker's thread count and the run's precision pin."""

    def __init__(self, zygote: _Zygote) -> None:
        self._zygote = zygote
        self._worker: _Worker | None = None
        self.available: dict[str, bool] = {}
        """Device name -> whether this machine has it, for every device asked about."""
        self.present: list[str] = []
        """The device types torch can run on here, CPU first."""
        self.gpus = 0
        """GPUs visible (CUDA_VISIBLE_DEVICES applied)."""

    def _ask(self, question: dict[str, Any]) -> dict[str, Any]:
        from cnnbench.errors import CnnbenchError
        from cnnbench.execution.isolation import _ReplyTimeoutError, _WorkerDiedError, describe_exit

        if self._worker is None:
            self._worker = self._zygote.fork()
        worker = self._worker
        try:
            worker.send({"probe": question})
            reply = worker.receive(_PROBE_TIMEOUT_S)
        except (_WorkerDiedError, _ReplyTimeoutError) as exc:
            self._worker = None
            worker.kill()
            why = (
                describe_exit(self._zygote.exit_code(worker))
                if isinstance(exc, _WorkerDiedError)
                else (f"no answer within {_PROBE_TIMEOUT_S:.0f} s")
            )
            raise CnnbenchError(f"the pool's worker could not probe this machine's devices ({why})") from None
        answer: dict[str, Any] = reply.get("probe", {})
        return answer

    def devices(self, names: Iterable[str]) -> None:
        """Find out which of names this machine has (and its device types and GPU count)."""
        answer = self._ask({"devices": sorted(set(names))})
        self.available.update({str(k): bool(v) for k, v in answer.get("available", {}).items()})
        self.present = [str(d) for d in answer.get("present", ["cpu"])]
        self.gpus = int(answer.get("gpus", 0))

    def is_available(self, name: str) -> bool:
        """Whether this machine has the device (asked about before: devices())."""
        if name not in self.available:
            self.devices([name])
        return self.available[name]

    def environment(self, threads: int) -> dict[str, Any]:
        """The environment fingerprint as a worker runs: threads intra-op threads, the run's pin in force."""
        environment: dict[str, Any] = self._ask({"threads": threads}).get("environment", {})
        return environment

    def close(self) -> None:
        """Let its worker go (it holds a core's worth of nothing, but a CUDA context on a GPU machine)."""
        worker, self._worker = self._worker, None
        if worker is not None:
            worker.sock.close()
            self._zygote.exit_code(worker)


@dataclass
class _Running:
    variant: AnyVariant
    started: float
    """time.time() when it became the worker's current variant (sent to an idle worker, or the one before it
    answered); the row's started_at unless the worker reports its own."""
    clock: float
    """time.perf_counter() then (its duration on failure)."""
    deadline: float | None


@dataclass
class _Slot:
    index: int
    gpu: int | None
    worker: _Worker | None = None
    running: deque[_Running] = field(default_factory=deque)
    """Sent and not answered yet, in the order the worker runs them: the first is the one it runs now."""
    queue: deque[AnyVariant] = field(default_factory=deque)
    """Checks given to this worker and not sent yet (the rest of its current case)."""
    exclusive: bool = False
    """It runs a benchmark that must have the whole machine to itself."""


def error_result(variant: AnyVariant, message: str, duration_s: float) -> Result:
    """The row of a variant whose worker crashed, overran or could not load it (dispatch.error_result, which
    imports torch: imported on such a failure only, never on a run where every worker answers)."""
    from cnnbench.execution.dispatch import error_result as row

    return row(variant, message, duration_s)


def group_checks(checks: Iterable[AnyVariant], size: int = GROUP_SIZE) -> deque[deque[AnyVariant]]:
    """Checks in runs of consecutive variants of one case, at most size each, in order."""
    groups: deque[deque[AnyVariant]] = deque()
    last: tuple[str, str] | None = None
    for v in checks:
        key = (v.case.file, v.case.id)
        if key != last or len(groups[-1]) >= size:
            groups.append(deque())
            last = key
        groups[-1].append(v)
    return groups


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
    zygote: _Zygote | None = None
    """A zygote started ahead (cnnbench.execution.session starts it before loading the case files, so that its
    torch import overlaps theirs); None: one is started when the first variant is sent."""
    available: Callable[[str], bool] | None = None
    """Whether this machine has a device (MachineProbe.is_available: asked of a worker); None: asked of torch
    here."""
    restarts: int = 0
    """Workers started to replace one that crashed, timed out or lost its GPU context."""
    _slots: list[_Slot] = field(default_factory=list, init=False, repr=False)

    def _start(self) -> None:
        # Imported here: planning a pool (and refusing a bad --workers) must not import torch.
        from cnnbench.execution.isolation import _Zygote

        if self.zygote is None:
            self.zygote = _Zygote()
        self.zygote.wait_ready()
        if not self._slots:
            gpus: Sequence[int | None] = self.plan.gpus or [None] * self.plan.workers
            self._slots = [_Slot(i, gpu) for i, gpu in enumerate(gpus)]

    def _send(self, slot: _Slot, variant: AnyVariant) -> None:
        assert self.zygote is not None
        if slot.worker is None:
            slot.worker = self.zygote.fork()
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
        # Queued behind another: its clock starts when the one before it is answered (_finish).
        current = not slot.running
        deadline = None if self.timeout is None or not current else time.monotonic() + self.timeout
        slot.running.append(_Running(variant, time.time(), time.perf_counter(), deadline))
        # A worker that died is seen as a closed socket by the next wait.
        with contextlib.suppress(_WorkerDiedError):
            slot.worker.send(request)

    def _refill(self, slot: _Slot, groups: deque[deque[AnyVariant]]) -> bool:
        """Give an idle worker's queue the next group of checks, or half of the longest queue left; False when
        no check is left anywhere."""
        if slot.queue:
            return True
        if groups:
            slot.queue = groups.popleft()
            return True
        donor = max(self._slots, key=lambda s: len(s.queue))
        if len(donor.queue) < 2:
            return False
        for _ in range(len(donor.queue) // 2):
            slot.queue.appendleft(donor.queue.pop())
        return True

    def _checks_left(self, groups: deque[deque[AnyVariant]]) -> bool:
        return bool(groups) or any(s.queue for s in self._slots)

    def _dispatch(self, groups: deque[deque[AnyVariant]], benches: deque[AnyVariant]) -> None:
        """Give work to workers: checks anywhere, a case's checks to one worker, up to PIPELINE_DEPTH sent at a
        time; benchmarks only once no check is left, and only where their device has nothing else running."""
        if any(s.exclusive for s in self._slots if s.running):
            return
        for slot in self._slots:
            while len(slot.running) < PIPELINE_DEPTH and self._refill(slot, groups):
                self._send(slot, slot.queue.popleft())
        if self._checks_left(groups) or not benches:
            return
        busy = sum(bool(s.running) for s in self._slots)
        for slot in self._slots:
            if slot.running or not benches:
                continue
            head = benches[0]
            if _exclusive(head, self.plan):
                if busy == 0:
                    self._send(slot, benches.popleft())
                return
            gpu = _gpu_of(head, slot)
            target = next(s for s in self._slots if s.gpu == gpu)
            # Its GPU must be idle: no variant on its worker, nor one elsewhere naming that GPU (cuda:K).
            if not target.running and not any(
                _gpu_of(r.variant, s) == gpu for s in self._slots for r in s.running
            ):
                self._send(target, benches.popleft())
                busy += 1
            if target is not slot:
                return

    def _lose_worker(self, slot: _Slot) -> None:
        """Forget a slot's worker (dead, killed or poisoned): what was queued behind its current variant goes back
        to the front of its queue, for the replacement."""
        slot.worker = None
        self.restarts += 1
        while slot.running:
            slot.queue.appendleft(slot.running.pop().variant)
        slot.exclusive = False

    def _finish(self, slot: _Slot) -> Result:
        """The row of the current variant of a ready (or overdue) worker; a dead or overdue worker is replaced."""
        from cnnbench.execution.isolation import _ReplyTimeoutError, _WorkerDiedError, describe_exit

        assert self.zygote is not None and slot.worker is not None and slot.running
        running, worker = slot.running.popleft(), slot.worker
        elapsed = time.perf_counter() - running.clock
        reply: dict[str, Any] = {}
        try:
            remaining = None if running.deadline is None else max(0.0, running.deadline - time.monotonic())
            reply = worker.receive(remaining)
        except _WorkerDiedError:
            self._lose_worker(slot)
            result = error_result(running.variant, describe_exit(self.zygote.exit_code(worker)), elapsed)
        except _ReplyTimeoutError:
            self._lose_worker(slot)
            worker.kill()
            self.zygote.exit_code(worker)
            message = f"timed out after {self.timeout:g} s; the worker running it was killed"
            result = error_result(running.variant, message, elapsed)
        else:
            if "error" in reply:
                result = error_result(running.variant, str(reply["error"]), elapsed)
            else:
                result = Result.from_json(reply["result"])
            if result.metrics.get("context_poisoned"):  # its GPU context is unusable: the rest get a new one
                self._lose_worker(slot)
                worker.kill()
                self.zygote.exit_code(worker)
        if slot.running:  # the next one, already sent, is the worker's current variant from now on
            nxt = slot.running[0]
            nxt.started, nxt.clock = time.time(), time.perf_counter()
            nxt.deadline = None if self.timeout is None else time.monotonic() + self.timeout
        else:
            slot.exclusive = False
        started, ended = reply.get("started_at", running.started), reply.get("ended_at", time.time())
        result.metrics.update(worker=slot.index, started_at=started, ended_at=ended)
        return result

    def imap(self, variants: Iterable[AnyVariant]) -> Iterator[Result]:
        """Run every variant, yielding each row as its variant finishes (checks first, then benchmarks)."""
        from cnnbench.store.rows import unavailable_row

        available = self.available
        if available is None:
            from cnnbench import device

            available = device.is_available
        checks: list[AnyVariant] = []
        benches: deque[AnyVariant] = deque()
        for v in variants:
            if not available(v.device):
                # A device this machine lacks: the row is a skip, the same in the parent as in a worker (no
                # round trip; on a CPU-only machine half of the bundled variants are cuda ones).
                yield unavailable_row(v)
                continue
            (benches if v.kind == "bench" else checks).append(v)
        if not checks and not benches:
            return  # nothing to run (a resumed run that was complete): no zygote, no torch import
        groups = group_checks(checks)
        del checks
        self._start()
        from cnnbench.execution import isolation

        while True:
            self._dispatch(groups, benches)
            running = [s for s in self._slots if s.running]
            if not running:
                return
            deadlines = [s.running[0].deadline for s in running if s.running[0].deadline is not None]
            wait = None if not deadlines else max(0.0, min(deadlines) - time.monotonic())
            ready = isolation.wait_readable_any(
                [s.worker.sock for s in running if s.worker is not None], wait
            )
            now = time.monotonic()
            for slot in running:
                assert slot.worker is not None and slot.running
                deadline = slot.running[0].deadline
                if slot.worker.sock in ready or (deadline is not None and deadline <= now):
                    yield self._finish(slot)
                # Replies already read with that one: select would not wake for them again.
                while slot.running and slot.worker is not None and slot.worker.has_reply():
                    yield self._finish(slot)

    def close(self, *, kill: bool = False) -> None:
        """Stop every worker (at once with kill) and the zygote."""
        for slot in self._slots:
            worker, slot.worker = slot.worker, None
            slot.running.clear()
            if worker is not None:
                if kill:
                    worker.kill()
                worker.sock.close()
        zygote, self.zygote = self.zygote, None
        if zygote is not None:
            zygote.close()
