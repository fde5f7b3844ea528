"""Run variants in worker processes, so a crash, an out-of-memory kill or a hang costs one row, not the run.

A worker is a persistent process that runs variants one at a time (its CUDA context and caches are reused);
when it dies or overruns its time it is killed, the variant gets an ``error`` row naming the signal or the
timeout, and the next variant gets a new worker. Workers are forked from a zygote (``python -m
cnnbench.execution.worker``, see there for the protocols) that imported torch once, so a restart takes milliseconds,
not the seconds of importing torch again. Requests and replies are JSON lines: a worker never sends a pickle and
the parent never unpickles anything; the one pickle is the parent's own parsed case files handed down to a pool's
zygote (``_Zygote.preload``), the way a fork would hand them down. No parent ``__main__`` is re-imported
(multiprocessing's spawn would re-run the CLI). The worker's
exit status comes from the zygote, which is its parent: negative numbers are signals. POSIX only (fork,
SCM_RIGHTS, select).
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import select
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Hashable, Iterable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any

from cnnbench.errors import CnnbenchError

if TYPE_CHECKING:  # light to import: `cnnbench run --workers` starts a zygote before loading anything else
    from cnnbench.casefile.variants import BenchVariant, Variant
    from cnnbench.store.result import Result

__all__ = [
    "BLAS_THREAD_VARIABLES",
    "ZYGOTE_COMMAND",
    "IsolatedRunner",
    "blas_environment",
    "describe_exit",
    "pool_zygote",
    "wait_readable_any",
]

#: The zygote's command line (the control socket's descriptor is appended); same interpreter and environment.
ZYGOTE_COMMAND = (sys.executable, "-m", "cnnbench.execution.worker")
#: How long the zygote may take to import torch and say it is ready (a loaded CI machine is slow).
_STARTUP_TIMEOUT_S = 180.0
#: How long the zygote may take to answer a fork or wait request, and a dying worker to exit.
_CONTROL_TIMEOUT_S = 30.0
#: Signals most often seen killing a kernel, with what they usually mean.
_SIGNAL_HINTS = {
    signal.SIGKILL: "out of memory, or killed from outside",
    signal.SIGSEGV: "invalid memory access",
    signal.SIGABRT: "abort",
    signal.SIGBUS: "bus error",
    signal.SIGFPE: "arithmetic fault",
    signal.SIGILL: "illegal instruction",
}


def describe_exit(returncode: int) -> str:
    """``worker killed by signal 11 (SIGSEGV: invalid memory access)`` or ``worker exited with status 3``."""
    if returncode < 0:
        number = -returncode
        try:
            sig = signal.Signals(number)
        except ValueError:
            return f"worker killed by signal {number}"
        hint = _SIGNAL_HINTS.get(sig)
        return f"worker killed by signal {number} ({sig.name}{': ' + hint if hint else ''})"
    return f"worker exited with status {returncode}"


class _WorkerDiedError(Exception):
    """The worker's end of the socket closed: it exited or was killed."""


class _ReplyTimeoutError(Exception):
    """No reply before the deadline."""


def _wait_readable(sock: socket.socket, timeout: float | None) -> bool:
    ready, _, _ = select.select([sock], [], [], timeout)
    return bool(ready)


def wait_readable_any(socks: list[socket.socket], timeout: float | None) -> set[socket.socket]:
    """The sockets among socks with something to read (a reply, or end of file) within timeout seconds."""
    if not socks:
        return set()
    ready, _, _ = select.select(socks, [], [], timeout)
    return set(ready)


class _Worker:
    """One forked worker: its pid and the parent's end of its socket, with buffered replies."""

    def __init__(self, pid: int, sock: socket.socket) -> None:
        self.pid = pid
        self.sock = sock
        self._buffer = b""

    def send(self, message: dict[str, Any]) -> None:
        try:
            self.sock.sendall((json.dumps(message) + "\n").encode())
        except OSError:
            raise _WorkerDiedError from None

    def receive(self, timeout: float | None) -> dict[str, Any]:
        """The next reply; _ReplyTimeoutError after timeout seconds (None: wait for ever), _WorkerDiedError if
        the worker is gone."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while b"\n" not in self._buffer:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not _wait_readable(self.sock, remaining):
                raise _ReplyTimeoutError
            try:
                chunk = self.sock.recv(1 << 16)
            except OSError:
                chunk = b""
            if not chunk:
                raise _WorkerDiedError
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        reply = json.loads(line)
        assert isinstance(reply, dict)
        return reply

    def has_reply(self) -> bool:
        """Whether a whole reply was already read (with an earlier one) and waits in the buffer."""
        return b"\n" in self._buffer

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)


#: The variables NumPy's BLAS (OpenBLAS, MKL) and OpenMP read their thread count from when they load.
BLAS_THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_NUM_THREADS")


def blas_environment(threads: int | None) -> dict[str, str] | None:
    """The environment of a zygote whose workers each get threads cores: NumPy's BLAS capped at that count.

    torch.set_num_threads caps torch, not NumPy, whose OpenBLAS starts a thread per core and spins them while
    it waits: two workers with two spinning BLAS threads each on two cores ran every check twice as slowly as
    one. A variable the user set is kept. None (the parent's environment) when threads is None."""
    if threads is None:
        return None
    env = dict(os.environ)
    for name in BLAS_THREAD_VARIABLES:
        env.setdefault(name, str(threads))
    return env


#: Variants per pickle of a preload (see _Zygote.preload).
PRELOAD_CHUNK = 20_000


class _Zygote:
    """The process that imported torch once and forks workers on request; their exit codes come from it.

    Started at construction without waiting for it (``wait_ready`` waits), so that its torch import runs while
    the parent does something else. With preload=True it waits, once imported, for the parent's own parsed case
    files (``preload``), so that every worker forked from it finds them parsed instead of parsing them again.
    env: variables set in its environment (and so in every worker's) on top of the parent's.
    """

    def __init__(
        self,
        *,
        preload: bool = False,
        blas_threads: int | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.control, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        fd = theirs.fileno()
        environment = blas_environment(blas_threads)
        if env:
            environment = {**(environment if environment is not None else os.environ), **env}
        self.proc = subprocess.Popen(
            [*ZYGOTE_COMMAND, str(fd), *(["--preload"] if preload else [])],
            pass_fds=[fd],
            stdin=subprocess.DEVNULL,
            env=environment,
        )
        theirs.close()
        self._ready = False
        self._preload_pending = preload

    def preload(self, variants: Iterable[Variant | BenchVariant], key: Callable[[str], Hashable]) -> None:
        """Hand the zygote the parsed variants, by key(file) and id (cnnbench.execution.worker's cache), through
        an unlinked temporary file whose descriptor goes over the control socket. Pickled: these are this
        process's own objects, going to its own child, never a case file's bytes or a worker's reply. Sent
        while the zygote is still importing torch; a zygote that is gone by now is left to wait_ready."""
        if not self._preload_pending:
            return
        self._preload_pending = False
        with tempfile.TemporaryFile() as f:
            # In chunks, each its own pickle: a pickler remembers every object it wrote until the dump ends, which
            # for a million variants at once was a few hundred MB more of this process's peak.
            chunk: dict[Hashable, dict[str, Variant | BenchVariant]] = {}
            for i, v in enumerate(variants, start=1):
                chunk.setdefault(key(v.case.file), {})[v.id] = v
                if i % PRELOAD_CHUNK == 0:
                    pickle.dump(chunk, f, protocol=pickle.HIGHEST_PROTOCOL)
                    chunk = {}
            if chunk:
                pickle.dump(chunk, f, protocol=pickle.HIGHEST_PROTOCOL)
            f.flush()
            with contextlib.suppress(OSError):
                socket.send_fds(self.control, [b"preload"], [f.fileno()])

    def _skip_preload(self) -> None:
        if self._preload_pending:
            self._preload_pending = False
            with contextlib.suppress(OSError):
                self.control.send(b"nopreload")

    def wait_ready(self) -> None:
        """Wait until it has imported torch (and loaded what it preloads); CnnbenchError if it never does."""
        if self._ready:
            return
        self._skip_preload()  # a zygote waiting for files that never come would never be ready
        if not _wait_readable(self.control, _STARTUP_TIMEOUT_S):
            self.close()
            raise CnnbenchError(f"the isolated worker did not start within {_STARTUP_TIMEOUT_S:.0f} s")
        if self.control.recv(64) != b"ready":
            status = self.close()
            raise CnnbenchError(
                f"the isolated worker did not start ({describe_exit(status)}); see its messages above"
            )
        self._ready = True

    def _ask(self, message: bytes) -> tuple[bytes, list[int]]:
        try:
            self.control.send(message)
            if not _wait_readable(self.control, _CONTROL_TIMEOUT_S):
                raise CnnbenchError("the isolated worker's zygote stopped answering")
            reply, fds, _, _ = socket.recv_fds(self.control, 64, 1)
        except OSError as exc:
            raise CnnbenchError(f"the isolated worker's zygote is gone ({exc})") from None
        if not reply:
            raise CnnbenchError(f"the isolated worker's zygote is gone ({describe_exit(self.proc.wait())})")
        return reply, fds

    def fork(self) -> _Worker:
        """A new worker, ready for requests."""
        self.wait_ready()
        reply, fds = self._ask(b"fork")
        return _Worker(int(reply), socket.socket(fileno=fds[0]))

    def exit_code(self, worker: _Worker) -> int:
        """The exit code of a worker whose socket closed (negative: the signal that killed it)."""
        worker.sock.close()
        reply, _ = self._ask(f"wait {worker.pid}".encode())
        return int(reply) if reply.lstrip(b"-").isdigit() else 1

    def close(self) -> int:
        """Stop it (its workers exit when their sockets close or it is gone) and return its exit status."""
        self.control.close()
        if not self._ready:  # still importing: nothing of it is worth waiting for
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
        try:
            return self.proc.wait(timeout=_CONTROL_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()


def pool_zygote(workers: int | str, threads: int | None, fp32_precision: str | None) -> _Zygote:
    """The zygote of a ``--workers`` pool, started now, without waiting: it waits for the parent's parsed case files
    (``_Zygote.preload``), its NumPy BLAS capped at a worker's share of the cores, and the run's --fp32-precision
    in its environment (it starts before the parent pins its own flags, so it would not inherit the pin)."""
    from cnnbench.environment import FP32_PRECISION_ENV
    from cnnbench.execution.cores import parse_workers, threads_per_worker

    if isinstance(workers, str):
        workers = parse_workers(workers)  # UsageError for a bad count, before anything is started
    env = {FP32_PRECISION_ENV: fp32_precision} if fp32_precision not in (None, "default") else None
    return _Zygote(preload=True, blas_threads=threads_per_worker(workers, threads), env=env)


class IsolatedRunner:
    """Runs variants in worker processes: ``with IsolatedRunner(timeout=60) as run: row = run(variant)``.

    A variant whose worker dies becomes an error row naming the signal; one that runs past timeout seconds
    becomes an error row "timed out after N s" and its worker is killed. Either way the next variant gets a
    new worker. Rows are otherwise exactly those run_variant returns in-process.
    """

    def __init__(
        self,
        *,
        timeout: float | None = None,
        max_case_bytes: int | None = None,
        threads: int | None = None,
        max_time_s: float | None = None,
    ) -> None:
        if timeout is not None and not timeout > 0:
            raise CnnbenchError(f"--timeout {timeout}: expected a positive number of seconds")
        self.timeout = timeout
        self.max_case_bytes = max_case_bytes
        self.threads = threads
        """torch's thread count in the workers (None: their default)."""
        self.max_time_s = max_time_s
        """--max-time-per-case for benchmark variants (None: each benchmark's own)."""
        self.restarts = 0
        """Workers started after the first (one per crash or timeout)."""
        self._zygote: _Zygote | None = None
        self._worker: _Worker | None = None
        self._forked = 0

    def _ready_worker(self) -> tuple[_Zygote, _Worker]:
        if self._zygote is None:
            self._zygote = _Zygote()
        if self._worker is None:
            self._worker = self._zygote.fork()
            self.restarts += self._forked > 0
            self._forked += 1
        return self._zygote, self._worker

    def __call__(self, variant: Variant | BenchVariant) -> Result:
        """Run one variant in a worker and return its row; never raises for anything the variant does."""
        from cnnbench.execution.dispatch import error_result
        from cnnbench.store.result import Result

        zygote, worker = self._ready_worker()
        start = time.perf_counter()
        request = {
            "file": variant.case.file,
            "variant": variant.id,
            "max_case_bytes": self.max_case_bytes,
            "threads": self.threads,
            "max_time_s": self.max_time_s,
        }
        try:
            worker.send(request)
            reply = worker.receive(self.timeout)
        except _WorkerDiedError:
            self._worker = None
            message = describe_exit(zygote.exit_code(worker))
            return error_result(variant, message, time.perf_counter() - start)
        except _ReplyTimeoutError:
            self._worker = None
            worker.kill()
            zygote.exit_code(worker)
            message = f"timed out after {self.timeout:g} s; the worker running it was killed"
            return error_result(variant, message, time.perf_counter() - start)
        if "error" in reply:
            return error_result(variant, str(reply["error"]), time.perf_counter() - start)
        result = Result.from_json(reply["result"])
        if result.metrics.get(
            "context_poisoned"
        ):  # its GPU context is unusable: the next variant gets a new one
            self._worker = None
            worker.kill()
            zygote.exit_code(worker)
        return result

    def close(self, *, kill: bool = False) -> None:
        """Stop the worker (at once with kill, else after what it was sent) and the zygote."""
        worker, self._worker = self._worker, None
        zygote, self._zygote = self._zygote, None
        if worker is not None:
            if kill:
                worker.kill()
            worker.sock.close()
        if zygote is not None:
            zygote.close()

    def __enter__(self) -> IsolatedRunner:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close(kill=kind is not None)
