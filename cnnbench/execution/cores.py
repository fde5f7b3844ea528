"""``--workers``: the count a pool is asked for and how the CPU cores are shared out among its workers.

Apart from cnnbench.execution.pool (which plans and runs the pool) and light enough to import before anything
else: ``cnnbench run --workers`` starts its zygote before the case-file machinery (pydantic) is even imported.
"""

from __future__ import annotations

import os

from cnnbench.errors import UsageError

__all__ = ["AUTO", "available_cores", "parse_workers", "threads_per_worker"]

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


def threads_per_worker(requested: int | str, threads: int | None = None, cores: int | None = None) -> int:
    """The intra-op threads of each CPU worker: --threads, else the cores shared out (``auto``: one each)."""
    if threads is not None:
        return threads
    cores = cores if cores is not None else available_cores()
    count = cores if requested == AUTO else int(requested)
    return max(1, cores // count)
