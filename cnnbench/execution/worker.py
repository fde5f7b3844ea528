"""Isolated workers: ``python -m cnnbench.execution.worker FD [PRELOAD]`` imports torch once, then forks a worker per
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

PRELOAD, optional: JSON {"paths": [...], "max_case_bytes": N, "max_time_s": S}, case files the zygote loads
before its first fork (a pool's run), so that no worker parses them again.
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

__all__ = ["main", "serve"]

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
                key = (file, budget, max_time_s)
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


#: Each case file's variants by id, keyed by (file, max_case_bytes, max_time_s): filled by the zygote's preload
#: and by each worker as requests name files it has not loaded.
_FILES: dict[tuple[str, int | None, float | None], dict[str, Variant | BenchVariant]] = {}


def _preload(spec: dict[str, object]) -> None:
    """Load the case files of a run in the zygote, before any fork: each worker then finds them parsed (shared
    copy-on-write) instead of parsing every file again. Anything wrong with them is left to the parent (which
    refuses the run) or to the worker that is sent the file (an error row)."""
    from cnnbench.casefile.load import load_suite
    from cnnbench.casefile.variants import expand, expand_benchmarks

    paths, budget, max_time_s = spec.get("paths"), spec.get("max_case_bytes"), spec.get("max_time_s")
    if not isinstance(paths, list):
        return
    budget = budget if isinstance(budget, int) else None
    max_time_s = float(max_time_s) if isinstance(max_time_s, int | float) else None
    try:
        suite = load_suite([str(p) for p in paths], max_case_bytes=budget)
    except Exception:  # never the zygote's to report: see above
        return
    found: list[Variant | BenchVariant] = [*expand(suite.cases)]
    found += expand_benchmarks(suite.benchmarks, max_time_s)
    for v in found:
        _FILES.setdefault((v.case.file, budget, max_time_s), {})[v.id] = v


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
    if len(args) > 1:
        _preload(json.loads(args[1]))
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
