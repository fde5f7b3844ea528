"""The command line: one function per subcommand, each taking plain arguments and returning an exit code."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from cnnbench.errors import CaseFileError, CnnbenchError, UsageError

__all__ = [
    "cmd_compare",
    "cmd_list",
    "cmd_merge",
    "cmd_report",
    "cmd_repro",
    "cmd_run",
    "cmd_schema",
    "cmd_validate",
    "main",
]

#: Where runs are stored unless --reports or CNNBENCH_REPORTS says otherwise.
DEFAULT_REPORTS = "reports"
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def _reports_dir(value: str | None) -> str:
    return value or os.environ.get("CNNBENCH_REPORTS") or DEFAULT_REPORTS


def _load_variants(
    paths: Sequence[str],
    keyword: str | None,
    devices: Sequence[str] | None,
    dtypes: Sequence[str] | None,
    max_case_bytes: int | None = None,
    max_time_s: float | None = None,
) -> tuple[list[object], list[str]]:
    """The selected variants (cases', then benchmarks'), and the ids of every case and benchmark loaded.

    max_time_s (--max-time-per-case) overrides every benchmark's own time budget.
    """
    from cnnbench.casefile.load import BenchVariant, Variant, expand, expand_benchmarks, load_suite, select

    _check_filters(devices, dtypes)
    suite = load_suite(paths, max_case_bytes=max_case_bytes)
    found: list[Variant | BenchVariant] = [*expand(suite.cases)]
    found += expand_benchmarks(suite.benchmarks, max_time_s)
    variants = select(found, keyword=keyword, devices=devices, dtypes=dtypes)
    return list(variants), [c.id for c in suite.cases] + [b.id for b in suite.benchmarks]


#: Longest --max-time-per-case: one benchmark row must not hold a run for more than minutes.
MAX_TIME_PER_CASE_S = 600.0


def _run_peaks(results: Sequence[object], stored: object) -> dict[str, dict[str, float]]:
    """The GEMM peaks the run's bench rows measured (device -> dtype -> GFLOP/s), over any already stored."""
    from cnnbench.store.result import Result

    peaks: dict[str, dict[str, float]] = {}
    if isinstance(stored, dict):
        peaks = {str(d): dict(v) for d, v in stored.items() if isinstance(v, dict)}
    if any(isinstance(r, Result) and r.kind == "bench" for r in results):
        from cnnbench.bench.runner import run_peaks

        for device, by_dtype in run_peaks(r for r in results if isinstance(r, Result)).items():
            peaks.setdefault(device, {}).update(by_dtype)
    return peaks


#: What --kind selects: numerics checks, benchmarks, or both.
KINDS = ("all", "check", "bench")


def _variant_kind(variant: object) -> str:
    """ "bench" for a benchmark variant, "check" for a numerics one (its own kind attribute wins)."""
    from cnnbench.casefile import load as cases

    bench_type = getattr(cases, "BenchVariant", None)
    default = "bench" if bench_type is not None and isinstance(variant, bench_type) else "check"
    return str(getattr(variant, "kind", default))


def _select_kind(variants: list[object], kind: str) -> list[object]:
    """Variants of one kind: numerics checks, benchmarks, or all."""
    if kind not in KINDS:
        raise UsageError(f"--kind {kind}: expected one of {', '.join(KINDS)}")
    return [v for v in variants if kind == "all" or _variant_kind(v) == kind]


def _check_filters(devices: Sequence[str] | None, dtypes: Sequence[str] | None) -> None:
    from cnnbench.casefile.format import suggest
    from cnnbench.casefile.vocabulary import DEVICE_TYPES, DTYPES

    for d in devices or ():
        if d.split(":")[0] not in DEVICE_TYPES:
            raise UsageError(f"--device {d}: unknown device{suggest(d, DEVICE_TYPES)}")
    for t in dtypes or ():
        if t not in DTYPES:
            raise UsageError(f"--dtype {t}: unknown dtype{suggest(t, DTYPES)}")


def cmd_list(
    paths: Sequence[str],
    keyword: str | None = None,
    devices: Sequence[str] | None = None,
    dtypes: Sequence[str] | None = None,
    out: Console | None = None,
) -> int:
    """Print the variant ids the paths expand to, without running anything."""
    out = out or Console(highlight=False)
    variants, _ = _load_variants(paths, keyword, devices, dtypes)
    for v in variants:
        out.print(v.id, markup=False)  # type: ignore[attr-defined]
    out.print(f"{len(variants)} variants", style="dim")
    return EXIT_OK


def cmd_validate(paths: Sequence[str], max_case_bytes: str | None = None, out: Console | None = None) -> int:
    """Load and validate case files without running them (max_case_bytes: the memory budget of a case)."""
    from cnnbench.casefile.budget import resolve_budget
    from cnnbench.casefile.load import expand, expand_benchmarks, load_suite

    out = out or Console(highlight=False)
    suite = load_suite(paths, max_case_bytes=resolve_budget(max_case_bytes))
    n = sum(1 for _ in expand(suite.cases))
    timed = ""
    if suite.benchmarks:
        m = sum(1 for _ in expand_benchmarks(suite.benchmarks))
        timed = f", {len(suite.benchmarks)} benchmarks, {m} benchmark variants"
    out.print(f"ok: {len(suite.cases)} cases, {n} variants{timed}", markup=False)
    return EXIT_OK


def cmd_schema(out: Console | None = None) -> int:
    """Print the case format's JSON Schema (for editors' completion and validation)."""
    from cnnbench.casefile.format import CaseFileSpec

    schema = CaseFileSpec.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "cnnbench case file"
    sys.stdout.write(json.dumps(schema, indent=2) + "\n")
    del out
    return EXIT_OK


def cmd_run(
    paths: Sequence[str],
    keyword: str | None = None,
    devices: Sequence[str] | None = None,
    dtypes: Sequence[str] | None = None,
    reports: str | None = None,
    save: bool = True,
    verbose: bool = False,
    shard: str | None = None,
    kind: str = "all",
    resume: str | None = None,
    isolate: bool | None = None,
    timeout: float | None = None,
    max_case_bytes: str | int | None = None,
    threads: int | None = None,
    max_time_per_case: float | None = None,
    out: Console | None = None,
) -> int:
    """Run every selected variant, store the run, print the summary; exit 1 if any failed or errored.

    shard "K/N" runs only the variants whose id hashes to the K-th of N shards; kind picks checks or benchmarks.
    resume (a stored run's directory or id) runs the variants that run has no row for, with its paths, filters
    and options, appending to it. isolate runs each variant in a worker process (a crash is an error row);
    timeout (seconds per variant, implies isolate) turns a hang into an error row. max_case_bytes is the
    memory budget of one case. threads sets torch's intra-op thread count for the whole run (default: torch's
    own; recorded either way); max_time_per_case is every benchmark's time budget in seconds (default: each
    benchmark's max_time_s). Ctrl-C or SIGTERM stops the run, keeping every finished row: exit 130 or 143.
    """
    from cnnbench.casefile.budget import resolve_budget
    from cnnbench.execution.resume import load_resume, run_options

    stored = None
    if resume is not None:
        if paths or keyword or devices or dtypes or shard or kind != "all":
            raise UsageError("--resume takes the paths and filters of the stored run; give no PATH or filter")
        stored = load_resume(resume, _reports_dir(reports))
        paths, shard = stored.paths, stored.shard
        keyword, devices, dtypes = (stored.filters.get(k) for k in ("keyword", "devices", "dtypes"))
        kind = stored.filters.get("kind") or "all"
        isolate = stored.options.get("isolate") if isolate is None else isolate
        timeout = stored.options.get("timeout") if timeout is None else timeout
        max_case_bytes = stored.options.get("max_case_bytes") if max_case_bytes is None else max_case_bytes
        threads = stored.options.get("threads") if threads is None else threads
        max_time_per_case = (
            stored.options.get("max_time_per_case") if max_time_per_case is None else max_time_per_case
        )
    elif not paths:
        raise UsageError("give the case files or directories to run (or --resume RUN)")
    budget = resolve_budget(max_case_bytes)
    if timeout is not None and not timeout > 0:
        raise UsageError(f"--timeout {timeout}: expected a positive number of seconds")
    isolate = bool(isolate) or timeout is not None
    if threads is not None and threads < 1:
        raise UsageError(f"--threads {threads}: expected a whole number >= 1")
    if max_time_per_case is not None and not 0 < max_time_per_case <= MAX_TIME_PER_CASE_S:
        raise UsageError(
            f"--max-time-per-case {max_time_per_case}: expected seconds in (0, {MAX_TIME_PER_CASE_S:g}]"
        )
    out = out or Console(highlight=False)
    err = Console(stderr=True)
    # Case files are loaded (and refused) before torch is imported, so a malformed one fails fast.
    variants, case_ids = _load_variants(
        paths, keyword, devices, dtypes, max_case_bytes=budget, max_time_s=max_time_per_case
    )
    variants = _select_kind(variants, kind)

    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from cnnbench.bench.timing import set_threads
    from cnnbench.casefile.load import BenchVariant, Variant, case_files_hash, estimated_seconds
    from cnnbench.environment import capture_environment
    from cnnbench.execution.interrupt import SignalCatcher, exit_status
    from cnnbench.execution.isolation import IsolatedRunner
    from cnnbench.numerics.runner import run_variant
    from cnnbench.report.tables import print_console
    from cnnbench.store.result import FAILING, Result
    from cnnbench.store.run import Run, RunStore, RunWriter

    if not variants:
        raise UsageError("no variants selected (check the paths, -k, --device, --dtype and --kind)")
    if shard is not None:
        from cnnbench.execution.shard import parse_shard, take_shard

        # An empty shard still stores an (empty) run, so that merging every shard's run always works.
        variants = take_shard(variants, parse_shard(shard))
    started = time.perf_counter()
    # Before the environment is captured, so that it records the count in force.
    set_threads(threads)
    meta = {
        "paths": list(paths),
        "filters": {"keyword": keyword, "devices": devices, "dtypes": dtypes, "kind": kind},
        "shard": shard,
        "case_files_hash": case_files_hash(paths),
        "variants_selected": len(variants),
        "environment": capture_environment(),
        "cwd": os.getcwd(),
        "options": {
            **run_options(isolate=isolate, timeout=timeout, max_case_bytes=budget),
            # Stored only when given, so that --resume runs the rest the same way.
            **({"threads": threads} if threads is not None else {}),
            **({"max_time_per_case": max_time_per_case} if max_time_per_case is not None else {}),
        },
    }
    earlier: list[Result] = []
    if stored is not None:
        if stored.run.meta.get("case_files_hash") != meta["case_files_hash"]:
            err.print(
                "warning: the case files changed since the run started; its finished rows stay as they are"
            )
        earlier = stored.run.results
        variants = [v for v in variants if isinstance(v, Variant | BenchVariant) and v.id not in stored.done]
        writer: RunWriter | None = RunStore.reopen(stored.run)
        meta = writer.meta if writer is not None else meta
    else:
        writer = RunStore(_reports_dir(reports)).create(meta) if save else None
    results: list[Result] = []
    complete = False
    execute = (
        IsolatedRunner(timeout=timeout, max_case_bytes=budget, threads=threads, max_time_s=max_time_per_case)
        if isolate
        else run_variant
    )
    signals = SignalCatcher()
    stopped: KeyboardInterrupt | None = None
    try:
        with Progress(
            TextColumn("[progress.description]{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[done]}/{task.fields[count]}"),
            TimeRemainingColumn(),
            console=err,
            transient=True,
            disable=not err.is_terminal,
        ) as progress:
            # The bar advances by each variant's estimated seconds, not by one: a benchmark takes seconds, a
            # check milliseconds, so the ETA (remaining estimate / observed rate) stays right over a mix.
            weights = [estimated_seconds(v) for v in variants if isinstance(v, Variant | BenchVariant)]
            task = progress.add_task("running", total=sum(weights), done=0, count=len(variants))
            for done, (variant, weight) in enumerate(zip(variants, weights, strict=True), start=1):
                assert isinstance(variant, Variant | BenchVariant)
                progress.update(task, description=escape(variant.id))
                result = execute(variant)
                results.append(result)
                if writer is not None:
                    writer.append(result)
                progress.update(task, advance=weight, done=done)
        complete = True
    except KeyboardInterrupt as exc:
        stopped = exc
        resume_hint = f"; `cnnbench run --resume {writer.run_id}` runs the rest" if writer else ""
        err.print(
            f"interrupted: {len(results)} of {len(variants)} variants finished and kept{resume_hint}",
            soft_wrap=True,
        )
    finally:
        if isinstance(execute, IsolatedRunner):
            execute.close(kill=not complete)
        peaks = _run_peaks(earlier + results, meta.get("peaks"))
        if peaks:
            meta["peaks"] = peaks
        if writer is not None:
            if peaks:
                writer.meta["peaks"] = peaks
            writer.close(complete=complete)
        signals.restore()
    run = Run(
        path=writer.path if writer else Path("."),
        meta={**meta, "run_id": writer.run_id if writer else "unsaved", "complete": complete},
        results=earlier + results,
    )
    print_console(run, out, verbose=verbose)
    elapsed = time.perf_counter() - started
    where = f" · saved to {writer.path}" if writer else ""
    out.print(f"[dim]{len(results)} variants of {len(case_ids)} cases in {elapsed:.2f}s{escape(where)}[/]")
    if not complete:
        return exit_status(stopped) if stopped is not None else EXIT_INTERRUPTED
    return EXIT_FAILED if any(r.status in FAILING for r in run.results) else EXIT_OK


def cmd_report(
    run: str | None = None,
    fmt: str = "markdown",
    output: str | None = None,
    reports: str | None = None,
    out: Console | None = None,
) -> int:
    """Render a stored run (the latest by default) as markdown, json, csv or the terminal view."""
    from cnnbench.report.tables import RENDERERS, print_console
    from cnnbench.store.run import RunStore

    loaded = RunStore(_reports_dir(reports)).load(run)
    if fmt == "console":
        print_console(loaded, out or Console(highlight=False), verbose=True)
        return EXIT_OK
    if fmt not in RENDERERS:
        raise UsageError(f"--format {fmt}: expected one of {', '.join(sorted(RENDERERS))}, console")
    text = RENDERERS[fmt](loaded)
    if output:
        Path(output).parent.mkdir(parents=True, exist_ok=True)
        Path(output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    return EXIT_OK


def _write_output(text: str, output: str | None) -> None:
    if output:
        Path(output).parent.mkdir(parents=True, exist_ok=True)
        Path(output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")


def cmd_repro(
    variant_id: str,
    paths: Sequence[str] = (),
    run: str | None = None,
    reports: str | None = None,
    output: str | None = None,
) -> int:
    """Print a standalone plain-torch script that reproduces one variant's inputs, call and expectation.

    The case is looked up in paths; without paths, in the stored run's case file (with --run) or under cases/.
    """
    from cnnbench.numerics.repro import find_variant, repro_snippet, stored_row
    from cnnbench.store.run import RunStore

    stored = None
    search = list(paths)
    if run is not None:
        loaded = RunStore(_reports_dir(reports)).load(run)
        stored = stored_row(loaded.results, variant_id)
        if stored is None:
            raise UsageError(f"{variant_id} is not in run {loaded.run_id}")
        if not search:
            search = (
                [stored["file"]] if Path(stored["file"]).exists() else list(loaded.meta.get("paths") or [])
            )
    variant = find_variant(variant_id, search or ["cases"])
    _write_output(repro_snippet(variant, stored), output)
    return EXIT_OK


def cmd_compare(
    base: str,
    new: str,
    threshold: float = 0.1,
    group_thresholds: Sequence[str] | None = None,
    noise_floor_ms: float = 0.01,
    p_threshold: float = 0.002,
    allowlist: str | None = None,
    fmt: str = "terminal",
    output: str | None = None,
    reports: str | None = None,
    out: Console | None = None,
) -> int:
    """Compare two stored runs; exit 1 if anything regressed (numerics or speed) that the allowlist does not
    accept."""
    from cnnbench.report.diff import (
        Thresholds,
        compare_runs,
        load_allowlist,
        parse_group_threshold,
        print_comparison,
        render_comparison_markdown,
    )
    from cnnbench.store.run import RunStore

    if fmt not in ("terminal", "markdown"):
        raise UsageError(f"--format {fmt}: expected terminal or markdown")
    if threshold < 0 or not 0 < p_threshold <= 1 or noise_floor_ms < 0:
        raise UsageError("--threshold and --noise-floor-ms must be >= 0, --p-threshold in (0, 1]")
    thresholds = Thresholds(
        default=threshold,
        groups=tuple(parse_group_threshold(g) for g in group_thresholds or ()),
        noise_floor_ms=noise_floor_ms,
        p_threshold=p_threshold,
    )
    root = _reports_dir(reports)
    comparison = compare_runs(
        RunStore(root).load(base),
        RunStore(root).load(new),
        thresholds,
        load_allowlist(allowlist) if allowlist else None,
    )
    if fmt == "markdown":
        _write_output(render_comparison_markdown(comparison), output)
    elif output:
        with open(output, "w", encoding="utf-8") as f:
            print_comparison(comparison, Console(file=f, width=120, highlight=False))
    else:
        print_comparison(comparison, out or Console(highlight=False))
    return EXIT_FAILED if comparison.regressed else EXIT_OK


def cmd_merge(
    runs: Sequence[str],
    output: str | None = None,
    reports: str | None = None,
    out: Console | None = None,
) -> int:
    """Combine the runs of shards into one run (stored in output, or as a new run under the reports folder)."""
    from cnnbench.execution.shard import merge_runs
    from cnnbench.store.run import RunStore

    root = _reports_dir(reports)
    loaded = [RunStore(root).load(r) for r in runs]
    path = merge_runs(loaded, output or RunStore(root).new_run_dir())
    merged = RunStore().load(str(path))
    out = out or Console(highlight=False)
    state = "" if merged.complete else " (incomplete: a shard is missing or did not finish)"
    out.print(f"merged {len(loaded)} runs, {len(merged.results)} variants into {path}{state}", markup=False)
    return EXIT_OK


def _add_filters(p: argparse.ArgumentParser, paths_nargs: str = "+") -> None:
    p.add_argument(
        "paths", nargs=paths_nargs, metavar="PATH", help="case files or directories (searched for *.yaml)"
    )
    p.add_argument(
        "-k", dest="keyword", metavar="EXPR", help="pytest-style keyword expression on variant ids"
    )
    p.add_argument(
        "--device", dest="devices", action="append", metavar="DEVICE", help="only this device (repeat)"
    )
    p.add_argument(
        "--dtype", dest="dtypes", action="append", metavar="DTYPE", help="only this dtype (repeat)"
    )


def _add_budget(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--max-case-bytes",
        metavar="SIZE",
        help="memory budget of one case's tensors, e.g. 512MiB or 2GB (default 1GiB or $CNNBENCH_MAX_CASE_BYTES)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = argparse.ArgumentParser(prog="cnnbench", description=__doc__)
    from cnnbench import __version__

    parser.add_argument("--version", action="version", version=f"cnnbench {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("run", help="run case files and store the run")
    _add_filters(p, paths_nargs="*")
    p.add_argument(
        "--resume", metavar="RUN", help="finish a stored run (directory or id): only variants it lacks"
    )
    p.add_argument(
        "--isolate",
        action="store_true",
        default=None,
        help="run each variant in a worker process (crash = error row)",
    )
    p.add_argument(
        "--timeout",
        type=float,
        metavar="SECONDS",
        help="per-variant limit; a hang becomes an error row (implies --isolate)",
    )
    _add_budget(p)
    p.add_argument(
        "--reports", help=f"where runs are stored (default {DEFAULT_REPORTS}/ or $CNNBENCH_REPORTS)"
    )
    p.add_argument("--no-save", dest="save", action="store_false", help="do not store the run")
    p.add_argument("-v", "--verbose", action="store_true", help="also list skipped and xfailed variants")
    p.add_argument(
        "--shard", metavar="K/N", help="run only the K-th of N shards (stable hash of the variant id)"
    )
    p.add_argument(
        "--kind", choices=KINDS, default="all", help="numerics checks, benchmarks, or all (default)"
    )
    p.add_argument(
        "--threads",
        type=int,
        metavar="N",
        help="torch intra-op threads for the whole run (default: torch's own; recorded either way)",
    )
    p.add_argument(
        "--max-time-per-case",
        type=float,
        metavar="SECONDS",
        help="time budget of every benchmark row (warm-up + replicates), overriding the files' max_time_s",
    )

    p = sub.add_parser("list", help="print the variant ids without running")
    _add_filters(p)

    p = sub.add_parser("validate", help="check case files without running them")
    p.add_argument("paths", nargs="+", metavar="PATH")
    _add_budget(p)

    sub.add_parser("schema", help="print the case format's JSON Schema")

    p = sub.add_parser("report", help="render a stored run")
    p.add_argument("run", nargs="?", help="run directory or id (default: the latest)")
    p.add_argument(
        "--format", dest="fmt", default="markdown", help="markdown, html, junit, json, csv or console"
    )
    p.add_argument("-o", "--output", help="write to this file instead of stdout")
    p.add_argument("--reports", help=f"where runs are stored (default {DEFAULT_REPORTS}/)")

    p = sub.add_parser("repro", help="print a standalone plain-torch script reproducing one variant")
    p.add_argument("variant_id", metavar="VARIANT_ID", help="case_id[device-dtype]")
    p.add_argument("paths", nargs="*", metavar="PATH", help="case files or directories (default: cases/)")
    p.add_argument("--run", help="take the case file and stored status from this run (directory or id)")
    p.add_argument("-o", "--output", help="write to this file instead of stdout")
    p.add_argument("--reports", help=f"where runs are stored (default {DEFAULT_REPORTS}/)")

    p = sub.add_parser("compare", help="compare two stored runs; exit 1 on a regression")
    p.add_argument("base", metavar="BASE", help="the reference run (directory or id)")
    p.add_argument("new", metavar="NEW", help="the run to judge (directory or id)")
    p.add_argument("--threshold", type=float, default=0.1, help="fractional change of the median that counts")
    p.add_argument(
        "--group-threshold",
        dest="group_thresholds",
        action="append",
        metavar="GROUP=FRAC",
        help="threshold for rows whose target, case id, file stem or variant id matches GROUP (* ? globs)",
    )
    p.add_argument("--noise-floor-ms", type=float, default=0.01, help="ignore median changes below this")
    p.add_argument("--p-threshold", type=float, default=0.002, help="Mann-Whitney U significance level")
    p.add_argument("--allowlist", metavar="FILE", help="YAML of accepted differences (variant id -> reason)")
    p.add_argument("--format", dest="fmt", default="terminal", choices=("terminal", "markdown"))
    p.add_argument("-o", "--output", help="write to this file instead of stdout")
    p.add_argument("--reports", help=f"where runs are stored (default {DEFAULT_REPORTS}/)")

    p = sub.add_parser("merge", help="combine the runs of shards into one run")
    p.add_argument("runs", nargs="+", metavar="RUN", help="run directories or ids")
    p.add_argument("-o", "--output", metavar="DIR", help="directory of the merged run (default: a new run)")
    p.add_argument("--reports", help=f"where runs are stored (default {DEFAULT_REPORTS}/)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: parse, dispatch, and turn every user-facing error into a message and exit 2."""
    parser = build_parser()
    args = vars(parser.parse_args(argv))
    command = args.pop("command")
    commands = {
        "run": cmd_run,
        "list": cmd_list,
        "validate": cmd_validate,
        "schema": cmd_schema,
        "report": cmd_report,
        "repro": cmd_repro,
        "compare": cmd_compare,
        "merge": cmd_merge,
    }
    err = Console(stderr=True, highlight=False)
    try:
        return int(commands[command](**args))  # type: ignore[operator]
    except CaseFileError as exc:
        for e in exc.errors:
            err.print(f"[red]error[/]: {escape(str(e))}", soft_wrap=True)
        n = len(exc.errors)
        err.print(f"{n} error{'s' if n != 1 else ''} in case files", style="bold red")
        return EXIT_USAGE
    except CnnbenchError as exc:
        err.print(f"[red]error[/]: {escape(str(exc))}", soft_wrap=True)
        return exc.exit_code
    except BrokenPipeError:
        return EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())
