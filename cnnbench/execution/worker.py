"""Isolated workers: ``python -m cnnbench.execution.worker FD [--preload]`` imports torch once, then forks a worker per
request.

Started by cnnbench.execution.isolation, which owns the other end of the control socket FD (a SOCK_SEQPACKET pair).
This process, the zygote, never runs a variant: it only imports torch and cnnbench (no threads, no CUDA yet),
so each fork starts clean and in milliseconds, and a crashed worker is replaced without importing torch again.

Control messages (zygote <-> parent): ``ready`` when imports are done; ``fork`` -> the new worker's pid, with the
parent's end of a socket to that worker attached (SCM_RIGHTS); ``wait PID`` -> its exit code as Python reports
it (negative: killed by that signal).

Worker protocol (worker <-> parent, one JSON object per line): requests are plain data, never pickles; the worker
loads the case file itself, with the same loader and budget as the parent, and answers with the Result row
run_variant returns, so isolated rows equal in-process ones::

    in:  {"file": "cases/x.yaml", "variant": "case[cpu-float32]", "max_case_bytes": 1073741824,
          "threads": 2, "max_time_s": null, "cuda_device": null}
    out: {"result": {...Result columns...}, "started_at": T0, "ended_at": T1}   (time.time() around the run)
         or   {"error": "why the variant could not be run"}
    in:  {"probe": {"devices": ["cpu", "cuda"]}} or {"probe": {"threads": 1}}   (a pool's questions, _probe)
    out: {"probe": {"available": {...}, "present": [...], "gpus": 0}} or {"probe": {"environment": {...}}}

``--preload``, optional (a pool's run): before saying ready, the zygote takes the parent's parsed case files
(``preload`` with a file descriptor attached, or ``nopreload``), so that no worker parses them again.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import threading
import time
import traceback
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cnnbench.casefile.variants import BenchVariant, Variant

__all__ = ["cache_key", "main", "serve"]

#: How often a worker checks that its zygote is alive (a zygote whose parent died exits, and so do its workers).
_PARENT_POLL_S = 1.0
#: Exit status of a worker that hit a bug of its own (not a variant's: those are rows).
_EXIT_SOFTWARE = 70


def _watch_parent(parent: int) -> None:
    while True:
        time.sleep(_PARENT_POLL_S)
        if os.getppid() != parent:
            os._exit(1)


def serve(channel: socket.socket) -> int:
    """Run the variants sent over channel until it closes; return the exit status."""
    from cnnbench.casefile.load import load_file
    from cnnbench.casefile.variants import expand, expand_benchmarks
    from cnnbench.errors import CnnbenchError
    from cnnbench.execution import dispatch

    threading.Thread(target=_watch_parent, args=(os.getppid(),), daemon=True).start()
    files = _FILES  # what the zygote preloaded, inherited through the fork
    pinned: int | None = None
    with (
        channel.makefile("r", encoding="utf-8") as requests,
        channel.makefile("w", encoding="utf-8") as replies,
    ):
        for line in requests:
            request = json.loads(line)
            if "probe" in request:  # a pool's questions about this machine (the parent never imports torch)
                replies.write(json.dumps({"probe": _probe(request["probe"])}) + "\n")
                replies.flush()
                continue
            file, variant_id, budget = request["file"], request["variant"], request.get("max_case_bytes")
            max_time_s, threads = request.get("max_time_s"), request.get("threads")
            if threads:
                import torch

                torch.set_num_threads(int(threads))
            if request.get("cuda_device") is not None and pinned != request["cuda_device"]:
                # A pool worker's own GPU (cnnbench.execution.pool): "cuda" is that device from now on.
                import torch

                pinned = int(request["cuda_device"])
                torch.cuda.set_device(pinned)
            reply: dict[str, object]
            try:
                key = cache_key(file, budget, max_time_s)
                if key not in files:
                    loaded = load_file(file, max_case_bytes=budget)
                    found: list[Variant | BenchVariant] = [*expand(loaded.cases)]
                    found += expand_benchmarks(loaded.benchmarks, max_time_s)
                    files[key] = {v.id: v for v in found}
                variant = files[key].get(variant_id)
                if variant is None:
                    raise CnnbenchError(
                        f"{file} has no variant {variant_id} any more (edited during the run?)"
                    )
            except CnnbenchError as exc:
                reply = {"error": f"the worker could not load the variant: {exc}"}
            else:
                started = time.time()
                row = dispatch.run_variant(variant).to_json()
                reply = {"result": row, "started_at": started, "ended_at": time.time()}
            try:
                replies.write(json.dumps(reply, allow_nan=True) + "\n")
                replies.flush()
            except OSError:  # the parent is gone (killed, or stopped the run): nobody to answer
                return 0
    return 0


def _probe(ask: dict[str, object]) -> dict[str, object]:
    """What a pool's parent asks its first worker instead of importing torch (about 0.7 GiB and 1.5 s) itself:
    which of the run's devices this machine has, how many GPUs it sees and which device types, and the
    environment fingerprint with a worker's thread count and the run's --fp32-precision in force, as the
    workers will run. Asked of a worker, never of the zygote: probing CUDA initialises its driver, after which
    a fork could not use CUDA."""
    from cnnbench import device
    from cnnbench.environment import available_devices, capture_environment

    answer: dict[str, object] = {}
    devices = ask.get("devices")
    if isinstance(devices, list):
        from cnnbench.execution.pool import visible_accelerators

        answer["available"] = {str(d): device.is_available(str(d)) for d in devices}
        answer["present"] = available_devices()
        answer["gpus"] = visible_accelerators()
    threads = ask.get("threads")
    if isinstance(threads, int):
        from cnnbench.bench.timing import set_threads
        from cnnbench.numerics.precision import run_pin

        set_threads(threads)
        device.set_fp32_precision(run_pin())
        answer["environment"] = capture_environment()
    return answer


#: Each case file's variants by id, keyed by (file, max_case_bytes, max_time_s) (``cache_key``): filled by the
#: zygote's preload and by each worker as requests name files it has not loaded.
_FILES: dict[tuple[str, int | None, float | None], dict[str, Variant | BenchVariant]] = {}


def _preload(control: socket.socket) -> None:
    """Take the parent's parsed case files (``_Zygote.preload``: a pickle in a file whose descriptor comes over
    the control socket) into the cache every worker forked from here inherits; "nopreload" leaves it empty, and
    a parent that closed the socket (it refused the run's input) ends the zygote."""
    message, fds, _, _ = socket.recv_fds(control, 64, 1)
    if not message:
        os._exit(0)
    if message == b"preload" and fds:
        import pickle

        with os.fdopen(fds[0], "rb") as f:
            f.seek(0)
            while True:  # one pickle per chunk of variants, to the end of the file
                try:
                    chunk = pickle.load(f)
                except EOFError:
                    break
                for key, found in chunk.items():
                    _FILES.setdefault(key, {}).update(found)
    else:
        for fd in fds:
            os.close(fd)


def cache_key(
    file: str, max_case_bytes: int | None, max_time_s: float | None
) -> tuple[str, int | None, float | None]:
    """Where a worker looks a request's variant up: its file, under the budget and time limit it names."""
    return (file, max_case_bytes, max_time_s)


def _fork_worker(control: socket.socket) -> None:
    ours, theirs = socket.socketpair()
    pid = os.fork()
    if pid == 0:
        control.close()
        theirs.close()
        status = _EXIT_SOFTWARE
        try:
            status = serve(ours)
        except (BrokenPipeError, ConnectionResetError):  # the parent went away mid-reply
            status = 0
        except BaseException:
            traceback.print_exc()
        finally:
            os._exit(status)
    ours.close()
    socket.send_fds(control, [str(pid).encode()], [theirs.fileno()])
    theirs.close()


def main(argv: list[str] | None = None) -> int:
    """The zygote: import, say ready, then fork workers and report their exit codes until the parent leaves."""
    args = sys.argv[1:] if argv is None else argv
    control = socket.socket(fileno=int(args[0]))
    # Anything a worker prints goes to stderr, never into the parent's report on stdout.
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    # Ctrl-C reaches the whole process group; the parent decides what it means and stops the workers.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # What each fork would otherwise import again: torch and every op, the float64 references (imported on a
    # check's first use), and torch._dynamo (with sympy and torch.distributed, about a second), which the first
    # call of any torch function behind torch._disable_dynamo imports, the optimizers' among them.
    import torch._dynamo

    import cnnbench.execution.dispatch
    import cnnbench.numerics.reference

    del torch, cnnbench
    if "--preload" in args[1:]:
        _preload(control)
    try:
        control.send(b"ready")
    except OSError:  # the parent gave up on it while it was importing
        os._exit(0)
    while message := control.recv(4096):
        if message == b"fork":
            _fork_worker(control)
        elif message.startswith(b"wait "):
            try:
                _, status = os.waitpid(int(message.split()[1]), 0)
                control.send(str(os.waitstatus_to_exitcode(status)).encode())
            except (ChildProcessError, ValueError):
                control.send(b"unknown")
    # The parent closed the control socket: nothing is left to flush but stderr. os._exit skips the ~1 s of
    # tearing torch down that the parent would wait for on every run.
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    raise SystemExit(main())
