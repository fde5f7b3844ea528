"""The run session: the options of a run (``RunOptions``, which ``--resume`` restores), the variants they select,
and the loop that executes them, stores each row as it finishes and stops cleanly on Ctrl-C or SIGTERM."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape

from cnnbench.casefile.budget import resolve_budget
from cnnbench.casefile.load import case_files_hash, load_suite
from cnnbench.casefile.select import check_filters, select
from cnnbench.casefile.variants import AnyVariant, BenchVariant, estimated_seconds, expand, expand_benchmarks
from cnnbench.errors import NothingSelectedError, UsageError
from cnnbench.execution.resume import Resume

if TYPE_CHECKING:
    from cnnbench.execution.isolation import _Zygote
    from cnnbench.execution.pool import MachineProbe, PoolPlan, WorkerPool
from cnnbench.execution.shard import parse_shard, take_shard
from cnnbench.store.result import Result
from cnnbench.store.run import DEFAULT_ROOT, Run, RunStore, RunWriter, row_order

__all__ = [
    "MAX_TIME_PER_CASE_S",
    "RunOptions",
    "RunOutcome",
    "RunSession",
    "check_devices_present",
    "load_variants",
]

#: Longest --max-time-per-case: one benchmark row must not hold a run for more than minutes.
MAX_TIME_PER_CASE_S = 600.0


@dataclass(frozen=True)
class RunOptions:
    """Everything that decides what a run selects and how it runs each variant.

    Stored in the run's meta.json (paths, filters, shard, options), so ``--resume`` restores the same value.
    """

    paths: tuple[str, ...]
    keyword: str | None = None
    devices: tuple[str, ...] | None = None
    dtypes: tuple[str, ...] | None = None
    kind: str = "all"
    """check, bench or all."""
    shard: str | None = None
    """K/N: only the variants whose id hashes to the K-th of N shards."""
    isolate: bool = False
    """Run each variant in a worker process (a crash is an error row); implied by timeout."""
    timeout: float | None = None
    """Seconds per variant before its worker is killed (an error row)."""
    max_case_bytes: int = field(default_factory=resolve_budget)
    """The memory budget of one case's tensors."""
    threads: int | None = None
    """torch's intra-op threads for the whole run (None: torch's own)."""
    max_time_per_case: float | None = None
    """Every benchmark's time budget in seconds (None: each benchmark's max_time_s)."""
    workers: int | str | None = None
    """--workers: a pool of N (or "auto") isolated workers running variants side by side; None: one at a time."""
    reprobe: bool = False
    """Measure the machine's ceilings again instead of reusing the stored ones (``--reprobe``)."""
    fp32_precision: str | None = None
    """ieee or tf32: float32 convs and matmuls pinned for the run (None or default: torch's flags)."""

    def __post_init__(self) -> None:
        if not self.paths:
            raise UsageError("give the case files or directories to run (or --resume RUN)")
        if self.timeout is not None and not self.timeout > 0:
            raise UsageError(f"--timeout {self.timeout}: expected a positive number of seconds")
        if self.threads is not None and self.threads < 1:
            raise UsageError(f"--threads {self.threads}: expected a whole number >= 1")
        limit = self.max_time_per_case
        if limit is not None and not 0 < limit <= MAX_TIME_PER_CASE_S:
            raise UsageError(f"--max-time-per-case {limit}: expected seconds in (0, {MAX_TIME_PER_CASE_S:g}]")
        check_filters(self.devices, self.dtypes, self.kind)
        if self.workers is not None:
            from cnnbench.execution.cores import parse_workers

            object.__setattr__(self, "workers", parse_workers(str(self.workers)))
        if self.fp32_precision not in (None, "default", "ieee", "tf32"):
            raise UsageError(f"--fp32-precision {self.fp32_precision}: expected ieee, tf32 or default")
        if self.timeout is not None and not self.isolate:
            object.__setattr__(self, "isolate", True)

    @classmethod
    def restore(cls, resume: Resume, **overrides: Any) -> RunOptions:
        """The options a stored run was started with; overrides that are not None win (e.g. --isolate)."""
        stored = resume.options
        filters = resume.filters
        values: dict[str, Any] = {
            "paths": tuple(resume.paths),
            "keyword": filters.get("keyword"),
            "devices": _tuple(filters.get("devices")),
            "dtypes": _tuple(filters.get("dtypes")),
            "kind": filters.get("kind") or "all",
            "shard": resume.shard,
            "isolate": bool(stored.get("isolate")),
            "timeout": stored.get("timeout"),
            "max_case_bytes": resolve_budget(stored.get("max_case_bytes")),
            "threads": stored.get("threads"),
            "max_time_per_case": stored.get("max_time_per_case"),
            "workers": stored.get("workers"),
            "fp32_precision": stored.get("fp32_precision"),
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        if "max_case_bytes" in overrides and overrides["max_case_bytes"] is not None:
            values["max_case_bytes"] = resolve_budget(overrides["max_case_bytes"])
        return cls(**values)

    def meta(self) -> dict[str, Any]:
        """The keys of meta.json that describe the selection and options (the stored-run schema's)."""
        return {
            "paths": list(self.paths),
            "filters": {
                "keyword": self.keyword,
                "devices": _list(self.devices),
                "dtypes": _list(self.dtypes),
                "kind": self.kind,
            },
            "shard": self.shard,
            "options": {
                "isolate": self.isolate,
                "timeout": self.timeout,
                "max_case_bytes": self.max_case_bytes,
                # Stored only when given, so that --resume runs the rest the same way.
                **({"threads": self.threads} if self.threads is not None else {}),
                **(
                    {"max_time_per_case": self.max_time_per_case}
                    if self.max_time_per_case is not None
                    else {}
                ),
                **({"workers": self.workers} if self.workers is not None else {}),
                **({"reprobe": True} if self.reprobe else {}),
                **({"fp32_precision": self.fp32_precision} if self.fp32_precision is not None else {}),
            },
        }


def _pin_fp32_precision(mode: str | None) -> Callable[[], None]:
    """Set the run's --fp32-precision flags here, and in the environment every worker inherits; returns what
    undoes both when the run ends (an in-process caller, a test, gets its flags back)."""
    if mode in (None, "default"):
        return lambda: None
    from cnnbench import device
    from cnnbench.environment import FP32_PRECISION_ENV

    saved_env, saved_flags = os.environ.get(FP32_PRECISION_ENV), device._current_flags()
    os.environ[FP32_PRECISION_ENV] = str(mode)
    device.set_fp32_precision(mode)

    def undo() -> None:
        if saved_env is None:
            os.environ.pop(FP32_PRECISION_ENV, None)
        else:
            os.environ[FP32_PRECISION_ENV] = saved_env
        device._restore_flags(saved_flags)

    return undo


def _tuple(value: Any) -> tuple[str, ...] | None:
    return tuple(str(v) for v in value) if value else None


def _list(value: tuple[str, ...] | None) -> list[str] | None:
    return list(value) if value is not None else None


def load_variants(
    paths: Sequence[str],
    *,
    keyword: str | None = None,
    devices: Sequence[str] | None = None,
    dtypes: Sequence[str] | None = None,
    kind: str = "all",
    max_case_bytes: int | None = None,
    max_time_s: float | None = None,
) -> tuple[list[AnyVariant], list[str]]:
    """The selected variants (cases', then benchmarks'), and the ids of every case and benchmark loaded.

    max_time_s (--max-time-per-case) overrides every benchmark's own time budget. No torch import.
    """
    check_filters(devices, dtypes, kind)
    suite = load_suite(paths, max_case_bytes=max_case_bytes)
    found: list[AnyVariant] = [*expand(suite.cases), *expand_benchmarks(suite.benchmarks, max_time_s)]
    variants = select(found, keyword=keyword, devices=devices, dtypes=dtypes, kind=kind)
    return variants, [c.id for c in suite.cases] + [b.id for b in suite.benchmarks]


@dataclass
class RunOutcome:
    """What a session did: the run (earlier rows of a resumed run included) and how it ended."""

    run: Run
    ran: int
    """Variants executed by this session."""
    cases: int
    """Cases and benchmarks loaded."""
    elapsed_s: float
    complete: bool
    stopped: KeyboardInterrupt | None = None
    """The interruption that stopped the run early, if any."""
    saved: bool = True


Executor = Callable[[AnyVariant], Result]


class RunSession:
    """One ``cnnbench run``: select the variants of options, execute them, store and return the rows."""

    def __init__(
        self,
        options: RunOptions,
        store: RunStore | None,
        *,
        resume: Resume | None = None,
        err: Console | None = None,
        zygote: _Zygote | None = None,
    ) -> None:
        """zygote: a pool's zygote started ahead (``isolation.pool_zygote``, by the CLI before it imports the case
        file machinery); the session owns it from now on. None: started here when the options ask for workers."""
        self.options = options
        self.store = store
        """Where the run is stored; None: not stored (``--no-save``)."""
        self.resume = resume
        if err is None:
            from cnnbench.report.terminal import make_console

            err = make_console(stderr=True)
        self.err = err
        self.zygote = zygote
        if options.workers is not None and zygote is None:
            from cnnbench.execution.isolation import pool_zygote

            # Started first, without waiting: its torch import runs beside this process's load of the case files,
            # which it is then handed parsed (every worker forked from it inherits them). Refused input kills it
            # unused.
            self.zygote = pool_zygote(options.workers, options.threads, options.fp32_precision)
        try:
            self._select()
        except BaseException:
            probe = getattr(self, "probe", None)
            if probe is not None:
                probe.close()
            if self.zygote is not None:
                self.zygote.close()
            raise

    def _select(self) -> None:
        options = self.options
        # Case files are loaded (and refused) before torch is imported, so a malformed one fails fast.
        variants, case_ids = load_variants(
            options.paths,
            keyword=options.keyword,
            devices=options.devices,
            dtypes=options.dtypes,
            kind=options.kind,
            max_case_bytes=options.max_case_bytes,
            max_time_s=options.max_time_per_case,
        )
        self.probe: MachineProbe | None = None
        sharded: list[AnyVariant] | None = None
        if self.zygote is not None and (variants or options.devices):
            # A pool's parent never imports torch: the zygote (still importing it) is handed the selection parsed,
            # and a worker forked from it answers what this process would otherwise ask torch. (Nothing selected
            # and no --device to check: refused below without waiting for the zygote.)
            from cnnbench.execution.pool import MachineProbe
            from cnnbench.execution.worker import cache_key

            # An empty shard still stores an (empty) run, so that merging every shard's run always works.
            sharded = (
                take_shard(variants, parse_shard(options.shard)) if options.shard is not None else variants
            )
            budget, max_time_s = options.max_case_bytes, options.max_time_per_case
            self.zygote.preload(sharded, lambda file: cache_key(file, budget, max_time_s))
            self.probe = MachineProbe(self.zygote)
            self.probe.devices([*{v.device for v in variants}, *(options.devices or ())])
        check_devices_present(options.devices, self.probe)
        if not variants:
            raise NothingSelectedError(
                "no variants selected, nothing ran (check the paths, -k, --device, --dtype and --kind)"
            )
        if sharded is not None:
            variants = sharded
        elif options.shard is not None:
            variants = take_shard(variants, parse_shard(options.shard))
        self.variants = variants
        self.case_ids = case_ids
        self.pool: PoolPlan | None = None
        if options.workers is not None:
            from cnnbench.execution.pool import plan_pool

            # Before anything runs: more GPU workers than GPUs is bad input (exit 2).
            gpus = self.probe.gpus if self.probe is not None else None
            self.pool = plan_pool(options.workers, variants, threads=options.threads, gpus=gpus)

    def _meta(self) -> dict[str, Any]:
        if self.probe is not None and self.pool is not None:
            # As a pool's workers run checks: with its threads per worker (the count their rows were computed
            # with) and the run's precision pin, fingerprinted by a worker (this process has no torch).
            environment = {
                **self.probe.environment(self.pool.threads),
                "argv": sys.argv,
            }  # the command, not a worker's
            self.probe.close()
            self._unpin: Callable[[], None] = lambda: None
        else:
            from cnnbench.bench.timing import set_threads
            from cnnbench.environment import capture_environment

            # Before the environment is captured, so that it records the count and the precision flags in force.
            set_threads(self.pool.threads if self.pool is not None else self.options.threads)
            self._unpin = _pin_fp32_precision(self.options.fp32_precision)
            environment = capture_environment()
        return {
            **self.options.meta(),
            "case_files_hash": case_files_hash(self.options.paths),
            "variants_selected": len(self.variants),
            "environment": environment,
            "cwd": os.getcwd(),
            **({"pool": self.pool.meta()} if self.pool is not None else {}),
        }

    def _open(self, meta: dict[str, Any]) -> tuple[RunWriter | None, list[Result], list[AnyVariant]]:
        """The writer, the rows already stored (resume) and the variants still to run."""
        if self.resume is None:
            writer = self.store.create(meta) if self.store is not None else None
            return writer, [], self.variants
        if self.resume.run.meta.get("case_files_hash") != meta["case_files_hash"]:
            self.err.print(
                "warning: the case files changed since the run started; its finished rows stay as they are"
            )
        done = self.resume.done
        todo = [v for v in self.variants if v.id not in done]
        if self.pool is not None:  # rows of a pool come in any order: the run is sorted on load from now on
            self.resume.run.meta["pool"] = self.pool.meta()
        return RunStore.reopen(self.resume.run), self.resume.run.results, todo

    def _executor(self) -> Executor | WorkerPool:
        if self.pool is not None:
            from cnnbench.execution.pool import WorkerPool

            o = self.options
            available = self.probe.is_available if self.probe is not None else None
            return WorkerPool(
                self.pool,
                o.timeout,
                o.max_case_bytes,
                o.max_time_per_case,
                zygote=self.zygote,
                available=available,
            )
        if not self.options.isolate:
            from cnnbench.execution.dispatch import run_variant

            return run_variant
        from cnnbench.execution.isolation import IsolatedRunner

        o = self.options
        return IsolatedRunner(
            timeout=o.timeout,
            max_case_bytes=o.max_case_bytes,
            threads=o.threads,
            max_time_s=o.max_time_per_case,
        )

    def run(self) -> RunOutcome:
        """Execute every selected variant still to run; Ctrl-C or SIGTERM stops after the current one, keeping
        every finished row (the outcome says complete: False)."""
        from cnnbench.execution.interrupt import SignalCatcher

        started = time.perf_counter()
        meta = self._meta()
        writer, earlier, todo = self._open(meta)
        if writer is not None:
            meta = writer.meta
        results: list[Result] = []
        book = self._ceilings(todo)
        execute = self._executor()
        signals = SignalCatcher()
        complete, stopped = False, None
        count = len(todo)
        # From here on each variant is let go once it has run (self.variants is emptied): the rows kept grow as
        # the variants left shrink, so a large run never holds both in full.
        self.variants = []
        try:
            self._loop(todo, execute, writer, results, book)
            complete = True
        except KeyboardInterrupt as exc:
            stopped = exc
            hint = f"; `cnnbench run --resume {writer.run_id}` runs the rest" if writer else ""
            self.err.print(
                f"interrupted: {len(results)} of {count} variants finished and kept{hint}", soft_wrap=True
            )
        finally:
            close = getattr(execute, "close", None)
            if close is not None:
                close(kill=not complete)
            _store_ceilings(meta, book)
            if writer is not None:
                writer.close(complete=complete)
            signals.restore()
            getattr(self, "_unpin", lambda: None)()
        rows = earlier + results
        if self.pool is not None:  # the order the stored run loads in, not the order the workers finished
            rows.sort(key=row_order)
        run = Run(
            path=writer.path if writer else Path("."),
            meta={**meta, "run_id": writer.run_id if writer else "unsaved", "complete": complete},
            results=rows,
        )
        elapsed = time.perf_counter() - started
        return RunOutcome(
            run, len(results), len(self.case_ids), elapsed, complete, stopped, writer is not None
        )

    def _ceilings(self, todo: list[AnyVariant]) -> Any:
        """The machine's ceilings the benchmark rows are compared with, probed now where not stored (None: no
        benchmark to run)."""
        bench = [v for v in todo if isinstance(v, BenchVariant)]
        if not bench:
            return None
        from cnnbench.bench.ceilings import CeilingBook, machines_dir, prepare

        root = self.store.root if self.store is not None else DEFAULT_ROOT
        book = CeilingBook(
            machines_dir(root),
            reprobe=self.options.reprobe,
            say=lambda msg: self.err.print(f"[dim]{escape(msg)}[/]", highlight=False),
        )
        prepare(book, bench)
        return book

    def _loop(
        self,
        todo: list[AnyVariant],
        execute: Executor | WorkerPool,
        writer: RunWriter | None,
        results: list[Result],
        book: Any = None,
    ) -> None:
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

        with Progress(
            TextColumn("[progress.description]{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[done]}/{task.fields[count]}"),
            TimeRemainingColumn(),
            console=self.err,
            transient=True,
            disable=not self.err.is_terminal,
        ) as progress:
            # The bar advances by each variant's estimated seconds, not by one: a benchmark takes seconds, a
            # check milliseconds, so the ETA (remaining estimate / observed rate) stays right over a mix.
            weights = [estimated_seconds(v) for v in todo]
            task = progress.add_task("running", total=sum(weights), done=0, count=len(todo))
            # A pool yields rows as they finish, in any order; each is stored at once all the same.
            pending = _drain(todo)  # todo is emptied as its variants are taken
            rows = execute.imap(pending) if hasattr(execute, "imap") else map(execute, pending)
            for done, (result, weight) in enumerate(zip(rows, weights, strict=True), start=1):
                progress.update(task, description=escape(result.variant_id))
                if book is not None and result.kind == "bench":
                    from cnnbench.bench.ceilings import apply_roofline

                    apply_roofline(result, book)
                if writer is not None:
                    writer.append(result)
                # Once stored, a passed check's figures are on disk: the summary only counts it.
                results.append(result.summary_row() if writer is not None else result)
                progress.update(task, advance=weight, done=done)


def _drain(items: list[AnyVariant]) -> Iterator[AnyVariant]:
    """items in order, each dropped from the list as it is taken (the list ends empty): nothing holds a variant
    after whoever took it is done with it."""
    items.reverse()
    while items:
        yield items.pop()


def check_devices_present(devices: Sequence[str] | None, probe: MachineProbe | None = None) -> None:
    """UsageError for a device asked for explicitly (--device) that this machine does not have: a run of it would
    skip every variant. Devices that only a case file's defaults name stay skipped rows. probe: a pool's answers
    (its parent does not import torch); None: torch's, here."""
    if not devices:
        return
    if probe is not None:
        missing = [d for d in devices if not probe.is_available(d)]
        present = probe.present
    else:
        from cnnbench.environment import available_devices, device_available

        missing = [d for d in devices if not device_available(d)]
        present = available_devices() if missing else []
    if missing:
        names = ", ".join(missing)
        raise UsageError(
            f"--device {names}: not available on this machine (devices present: {', '.join(present)})"
        )


def _store_ceilings(meta: dict[str, Any], book: Any) -> None:
    """Save the ceilings the run probed or raised, and record those it used in meta["ceilings"] (over any a
    resumed run stored)."""
    if book is None:
        return
    book.save()
    used = book.meta()
    stored = meta.get("ceilings")
    if isinstance(stored, dict) and isinstance(stored.get("entries"), dict):
        used["entries"] = {**stored["entries"], **used["entries"]}
    meta["ceilings"] = used
