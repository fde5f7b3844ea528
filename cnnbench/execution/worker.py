"""Isolated workers: ``python -m cnnbench.execution.worker FD`` imports torch once, then forks a worker per request.

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
    out: {"result": {...Result columns...}}   or   {"error": "why the variant could not be run"}
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
    from cnnbench.casefile.variants import BenchVariant, Variant, expand, expand_benchmarks
    from cnnbench.errors import CnnbenchError
    from cnnbench.execution import dispatch

    threading.Thread(target=_watch_parent, args=(os.getppid(),), daemon=True).start()
    files: dict[tuple[str, int | None, float | None], dict[str, Variant | BenchVariant]] = {}
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
                reply = {"result": dispatch.run_variant(variant).to_json()}
            try:
                replies.write(json.dumps(reply, allow_nan=True) + "\n")
                replies.flush()
            except OSError:  # the parent is gone (killed, or stopped the run): nobody to answer
                return 0
    return 0


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
    import cnnbench.execution.dispatch  # noqa: F401  (torch and every op: what each fork would otherwise import again)

    control.send(b"ready")
    while message := control.recv(4096):
        if message == b"fork":
            _fork_worker(control)
        elif message.startswith(b"wait "):
            try:
                _, status = os.waitpid(int(message.split()[1]), 0)
                control.send(str(os.waitstatus_to_exitcode(status)).encode())
            except (ChildProcessError, ValueError):
                control.send(b"unknown")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
