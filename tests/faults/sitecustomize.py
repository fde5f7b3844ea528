"""Test-only fault injection for isolated workers: crash, hang or exit on chosen variants.

Python imports this module at start-up when tests/faults is on PYTHONPATH (tests/execution/test_isolation.py sets it
for the processes it starts). It acts only in a ``python -m cnnbench.execution.worker`` process and only when
CNNBENCH_TEST_FAULTS is set, e.g. ``a[cpu-float32]=segv;b[cpu-float32]=hang`` (segv, abort, oom, hang, exit, or
poison: the row says its GPU context is unusable). Nothing in cnnbench reads that
variable: no case file and no production setting can trigger a fault.
"""

from __future__ import annotations

import os
import sys

_FAULTS = dict(
    item.split("=", 1) for item in os.environ.get("CNNBENCH_TEST_FAULTS", "").split(";") if "=" in item
)


def _fault(kind: str) -> None:
    import ctypes
    import signal
    import time

    if kind == "segv":  # a real invalid read, like a kernel bug
        ctypes.string_at(0)
    elif kind == "abort":
        os.abort()
    elif kind == "oom":  # the kernel's OOM killer sends SIGKILL
        os.kill(os.getpid(), signal.SIGKILL)
    elif kind == "hang":
        time.sleep(3600)
    elif kind == "exit":
        os._exit(3)


if _FAULTS and "cnnbench.execution.worker" in sys.orig_argv:
    import cnnbench.execution.dispatch

    _run_variant = cnnbench.execution.dispatch.run_variant

    def _faulty_run_variant(variant):  # type: ignore[no-untyped-def]
        kind = _FAULTS.get(variant.id)
        if kind == "poison":  # the row of a GPU error that left the worker's context unusable
            row = _run_variant(variant)
            row.metrics["context_poisoned"] = True
            return row
        if kind is not None:
            _fault(kind)
        return _run_variant(variant)

    cnnbench.execution.dispatch.run_variant = _faulty_run_variant
