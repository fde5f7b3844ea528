"""The fuzz loop: hypothesis generates configurations of each target, every one is checked as a case and stored
as a row of a run; the first failure of a target is shrunk by hypothesis and written as a case file.

Reproducible: no example database is read or written, and every batch of examples runs under a seed derived
from --seed, the target and the batch's number, so the same seed gives the same examples (a time budget only
decides how many of them run). Each target runs in a forked child process on the CPU, so a configuration that
crashes torch (a segfault) becomes an error row and a written case instead of ending the fuzz.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import shlex
import signal
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cnnbench.errors import UsageError
from cnnbench.fuzz.check import FUZZ_FILE, Checked, case_dict, check_case, config_id
from cnnbench.fuzz.found import case_line, write_case
from cnnbench.fuzz.shrink import crashes, shrink_case
from cnnbench.store.result import Result, count_statuses
from cnnbench.store.run import Run, RunStore, RunWriter

__all__ = ["Found", "FuzzOptions", "FuzzOutcome", "fuzz", "require_hypothesis"]

#: Examples per hypothesis run; a target runs batch after batch until its budget or --examples is spent.
_BATCH = 100
#: The configuration a child is checking, written before each check (a crash leaves it behind).
_CURRENT = "fuzz-current.json"
#: A crash is shrunk in forked children, one per candidate: at most this many.
_CRASH_SHRINK_CHECKS = 300


def require_hypothesis() -> None:
    """UsageError (exit 2) with the install command when hypothesis is missing."""
    try:
        import hypothesis  # noqa: F401
    except ImportError:
        raise UsageError(
            "cnnbench fuzz needs hypothesis: pip install 'cnnbench[fuzz]' (or pip install hypothesis)"
        ) from None


@dataclass(frozen=True)
class FuzzOptions:
    """What a fuzz run generates and where it writes what it finds."""

    targets: tuple[str, ...]
    budget_s: float
    """Seconds for the whole run, shared equally by the targets."""
    examples: int | None
    """At most this many configurations per target (None: as many as the budget allows)."""
    device: str
    dtypes: tuple[str, ...]
    seed: int
    out_dir: Path
    max_case_bytes: int

    def command(self, target: str | None = None) -> str:
        """The command line that regenerates the same examples (of one target, or of all)."""
        parts = ["cnnbench", "fuzz", *([target] if target else self.targets), "--seed", str(self.seed)]
        if self.device != "cpu":
            parts += ["--device", self.device]
        for dtype in self.dtypes:
            parts += ["--dtype", dtype]
        return shlex.join(parts)

    def meta(self) -> dict[str, Any]:
        """The run's meta.json keys describing the fuzz."""
        return {
            "paths": [],
            "filters": {
                "keyword": None,
                "devices": [self.device],
                "dtypes": list(self.dtypes),
                "kind": "check",
            },
            "shard": None,
            "options": {
                "isolate": False,
                "timeout": None,
                "max_case_bytes": self.max_case_bytes,
                "threads": 1,
            },
            "fuzz": {
                "targets": list(self.targets),
                "budget_s": self.budget_s,
                "examples": self.examples,
                "seed": self.seed,
                "out_dir": str(self.out_dir),
                "command": self.command(),
            },
        }


@dataclass(frozen=True)
class Found:
    """A failure the fuzz found, shrunk and wrote."""

    target: str
    case_id: str
    path: Path
    message: str
    reference_bug: bool = False
    crashed: bool = False


@dataclass
class FuzzOutcome:
    """A finished fuzz run."""

    run: Run
    checked: dict[str, int] = field(default_factory=dict)
    found: list[Found] = field(default_factory=list)
    elapsed_s: float = 0.0


class _FailureError(AssertionError):
    """Raised inside the hypothesis test for a failing configuration (hypothesis then shrinks it)."""


def _batch_seed(seed: int, target: str, batch: int) -> int:
    return int(hashlib.sha256(f"{seed}:{target}:{batch}".encode()).hexdigest()[:12], 16)


class _Target:
    """One target's fuzz: batches of hypothesis examples until the budget, --examples or a failure."""

    def __init__(self, target: str, options: FuzzOptions, writer: RunWriter, run_dir: Path, budget_s: float):
        self.target, self.options, self.writer = target, options, writer
        self.current = run_dir / _CURRENT
        self._current_fd: int | None = None
        self.deadline = time.monotonic() + budget_s
        self.checked = 0
        self.failing: Checked | None = None
        self.shrinking = False

    def _done(self) -> bool:
        limit = self.options.examples
        return time.monotonic() >= self.deadline or (limit is not None and self.checked >= limit)

    def check(self, call: Any) -> None:
        """The hypothesis test body: check one configuration; store its row unless shrinking."""
        if not self.shrinking and self._done():
            return
        case = case_dict(call, self.options.device)
        self._remember({"checked": self.checked, "case": case})
        checked = check_case(case, self.options.max_case_bytes)
        if not self.shrinking:
            self.checked += 1
            self.writer.append(checked.result)
        if checked.failed:
            self.shrinking = True
            self.failing = checked
            raise _FailureError(checked.result.message)

    def _remember(self, current: dict[str, Any]) -> None:
        """Overwrite the current-configuration file in place (one open file: opening one per check costs more
        than the check on a busy machine)."""
        if self._current_fd is None:
            self._current_fd = os.open(self.current, os.O_WRONLY | os.O_CREAT, 0o644)
        data = json.dumps(current).encode()
        os.ftruncate(self._current_fd, 0)
        os.pwrite(self._current_fd, data, 0)

    def run(self) -> Found | None:
        try:
            return self._run()
        finally:
            if self._current_fd is not None:
                os.close(self._current_fd)
                self._current_fd = None

    def _run(self) -> Found | None:
        from hypothesis import HealthCheck, Phase, Verbosity, given, settings
        from hypothesis import seed as hypothesis_seed

        from cnnbench.fuzz.strategies import strategy_for

        strategy = strategy_for(self.target, self.options.dtypes)
        batch = 0
        while not self._done():
            test = settings(
                max_examples=_BATCH,
                database=None,
                deadline=None,
                derandomize=False,
                phases=(Phase.generate, Phase.shrink),
                suppress_health_check=list(HealthCheck),
                verbosity=Verbosity.quiet,
                print_blob=False,
                report_multiple_bugs=False,
            )(
                hypothesis_seed(_batch_seed(self.options.seed, self.target, batch))(
                    given(strategy)(self.check)
                )
            )
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # torch's performance notes, once per new geometry
                    test()
            except Exception:
                if self.failing is None:
                    raise
                return self._write(self.failing, minimal=True)
            batch += 1
        return None

    def _write(self, failing: Checked, *, minimal: bool) -> Found:
        """Write the (shrunk) failing case and store its row, now naming the file it is in."""
        path = write_case(
            failing.case,
            self.options.out_dir,
            command=self.options.command(self.target),
            message=failing.result.message,
            checks=self.checked,
            minimal=minimal,
        )
        again = check_case(failing.case, self.options.max_case_bytes, file=str(path))
        result = again.result if again.failed else failing.result
        result.file, result.line = str(path), case_line(path)
        result.metrics.update(fuzz_seed=self.options.seed, fuzz_checks=self.checked, fuzz_shrunk=minimal)
        self.writer.append(result)
        return Found(self.target, failing.case["id"], path, result.message, again.reference_bug)


def _crash_row(case: dict[str, Any], target: str, device: str, signal_name: str) -> Result:
    dtype = case["dtypes"][0]
    fmt = case.get("memory_formats", ["contiguous"])[0]
    suffix = "" if fmt == "contiguous" else f"-{fmt}"
    return Result(
        variant_id=f"{case['id']}[{device}-{dtype}{suffix}]",
        case_id=case["id"],
        file=FUZZ_FILE,
        line=1,
        target=target,
        device=device,
        dtype=dtype,
        status="error",
        message=f"the process crashed ({signal_name}) running this configuration: a crash in torch",
        source="fuzz",
    )


def _child(target: Any, conn: Any) -> None:
    try:
        found = target.run()
        conn.send(("ok", target.checked, found))
    except BaseException as exc:
        conn.send(("error", target.checked, f"{type(exc).__name__}: {exc}"))
    finally:
        os._exit(0)


def _run_target(target: _Target, forked: bool) -> tuple[int, Found | None]:
    """Run one target in a forked child (CPU) or in this process; a crash becomes an error row and a case."""
    if not forked:
        found = target.run()
        return target.checked, found
    ctx = multiprocessing.get_context("fork")
    parent, child = ctx.Pipe(duplex=False)
    process = ctx.Process(target=_child, args=(target, child))
    process.start()
    child.close()
    try:
        message = parent.recv()
    except EOFError:  # the child died without a word: a crash
        message = None
    process.join()
    if message is not None:
        kind, checked, payload = message
        if kind == "error":
            raise RuntimeError(f"fuzzing {target.target} failed inside cnnbench: {payload}")
        return checked, payload
    signal_name = (
        signal.Signals(-process.exitcode).name if process.exitcode and process.exitcode < 0 else "exit"
    )
    left = json.loads(target.current.read_text(encoding="utf-8"))
    case, checked = left["case"], int(left["checked"]) + 1
    budget = target.options.max_case_bytes
    shrunk = shrink_case(case, budget, limit=_CRASH_SHRINK_CHECKS, failing=crashes(budget))
    if shrunk is not None:
        case = {**shrunk.case, "id": config_id(target.target, shrunk.case)}
    row = _crash_row(case, target.target, target.options.device, signal_name)
    path = write_case(
        case,
        target.options.out_dir,
        command=target.options.command(target.target),
        message=row.message,
        checks=checked,
        minimal=shrunk is not None,
    )
    row.file, row.line = str(path), case_line(path)
    target.writer.append(row)
    return checked, Found(target.target, case["id"], path, row.message, crashed=True)


def fuzz(options: FuzzOptions, store: RunStore) -> FuzzOutcome:
    """Fuzz every target for its share of the budget; store the run; write a case per target that failed."""
    from cnnbench.bench.timing import set_threads
    from cnnbench.environment import capture_environment

    require_hypothesis()
    from hypothesis.configuration import set_hypothesis_home_dir

    # hypothesis keeps caches (the constants it harvests from the code) in its home folder: under reports/,
    # never in the source tree. No example database is used at all (database=None), so runs are reproducible.
    set_hypothesis_home_dir(store.root / "hypothesis")
    started = time.perf_counter()
    set_threads(1)  # small tensors: one intra-op thread is several times faster than a pool
    writer = store.create({**options.meta(), "environment": capture_environment(), "cwd": os.getcwd()})
    outcome_found: list[Found] = []
    checked: dict[str, int] = {}
    share = options.budget_s / len(options.targets)
    forked = options.device.split(":")[0] == "cpu"
    complete = False
    try:
        for name in options.targets:
            target = _Target(name, options, writer, writer.path, share)
            count, found = _run_target(target, forked)
            checked[name] = count
            if found is not None:
                outcome_found.append(found)
        complete = True
    finally:
        (writer.path / _CURRENT).unlink(missing_ok=True)
        # The children appended rows of their own: count what the file holds.
        writer.counts = count_statuses(store.load(str(writer.path)).results)
        writer.meta["fuzz"]["checked"] = checked
        writer.meta["fuzz"]["found"] = [str(f.path) for f in outcome_found]
        writer.close(complete=complete)
    run = store.load(str(writer.path))
    return FuzzOutcome(run, checked, outcome_found, time.perf_counter() - started)


def targets_summary(targets: Sequence[str], checked: dict[str, int]) -> str:
    """``conv2d 1234, max_pool2d 987`` checks per target."""
    return ", ".join(f"{t} {checked.get(t, 0)}" for t in targets)
