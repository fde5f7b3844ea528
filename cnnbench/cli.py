"""The command line: parse, resolve options, call one function per subcommand, map the result to an exit code."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from rich.console import Console
from rich.markup import escape

from cnnbench.cli_args import build_parser
from cnnbench.errors import EXIT_NOTHING_RAN, CaseFileError, CnnbenchError, UsageError
from cnnbench.store.run import DEFAULT_ROOT, RunStore

__all__ = [
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_NOTHING_RAN",
    "EXIT_OK",
    "EXIT_USAGE",
    "build_parser",
    "cmd_compare",
    "cmd_fuzz",
    "cmd_import",
    "cmd_ledger",
    "cmd_list",
    "cmd_merge",
    "cmd_report",
    "cmd_repro",
    "cmd_run",
    "cmd_schema",
    "cmd_shrink",
    "cmd_submit",
    "cmd_validate",
    "main",
]

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def _console(*, stderr: bool = False) -> Console:
    """A terminal's console, or one that never wraps (a pipe, a CI log): report.terminal.make_console."""
    from cnnbench.report.terminal import make_console

    return make_console(stderr=stderr)


def _reports_dir(value: str | None) -> str:
    """The reports folder: --reports, else $CNNBENCH_REPORTS, else reports/."""
    return value or os.environ.get("CNNBENCH_REPORTS") or DEFAULT_ROOT


def _store(reports: str | None) -> RunStore:
    return RunStore(_reports_dir(reports))


def _write_output(text: str, output: str | None) -> None:
    """text into the file output (its folder created), or onto stdout."""
    if output:
        Path(output).parent.mkdir(parents=True, exist_ok=True)
        Path(output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")


def cmd_list(
    paths: Sequence[str],
    keyword: str | None = None,
    devices: Sequence[str] | None = None,
    dtypes: Sequence[str] | None = None,
    out: Console | None = None,
) -> int:
    """Print the variant ids the paths expand to, without running anything."""
    from cnnbench.execution.session import load_variants

    out = out or _console()
    variants, _ = load_variants(paths, keyword=keyword, devices=devices, dtypes=dtypes)
    for v in variants:
        out.print(v.id, markup=False)
    out.print(f"{len(variants)} variants", style="dim")
    return EXIT_OK


def cmd_validate(paths: Sequence[str], max_case_bytes: str | None = None, out: Console | None = None) -> int:
    """Load and validate case files without running them (max_case_bytes: the memory budget of a case)."""
    from cnnbench.casefile.budget import resolve_budget
    from cnnbench.casefile.load import load_suite
    from cnnbench.casefile.variants import expand, expand_benchmarks

    out = out or _console()
    suite = load_suite(paths, max_case_bytes=resolve_budget(max_case_bytes))
    n = sum(1 for _ in expand(suite.cases))
    timed = ""
    if suite.benchmarks:
        m = sum(1 for _ in expand_benchmarks(suite.benchmarks))
        timed = f", {len(suite.benchmarks)} benchmarks, {m} benchmark variants"
    out.print(f"ok: {len(suite.cases)} cases, {n} variants{timed}", markup=False)
    return EXIT_OK


def cmd_schema() -> int:
    """Print the case format's JSON Schema (for editors' completion and validation)."""
    from cnnbench.casefile.schema import json_schema

    sys.stdout.write(json.dumps(json_schema(), indent=2) + "\n")
    return EXIT_OK


def _run_options(resume: Any, given: dict[str, Any]) -> Any:
    """The RunOptions of ``cnnbench run``: from the flags, or restored from the stored run under --resume."""
    from cnnbench.casefile.budget import resolve_budget
    from cnnbench.execution.session import RunOptions

    selection = {k: given.pop(k) for k in ("paths", "keyword", "devices", "dtypes", "shard", "kind")}
    if resume is not None:
        return RunOptions.restore(resume, **given)
    devices, dtypes = selection.pop("devices"), selection.pop("dtypes")
    return RunOptions(
        **{k: v for k, v in selection.items() if k != "paths"},
        paths=tuple(selection["paths"]),
        devices=tuple(devices) if devices else None,
        dtypes=tuple(dtypes) if dtypes else None,
        isolate=bool(given["isolate"]),
        timeout=given["timeout"],
        max_case_bytes=resolve_budget(given["max_case_bytes"]),
        threads=given["threads"],
        max_time_per_case=given["max_time_per_case"],
        workers=given["workers"],
        reprobe=bool(given.get("reprobe")),
        fp32_precision=given["fp32_precision"],
    )


def _run_session(zygote: Any, stored: Any, reports: str | None, save: bool, given: dict[str, Any]) -> Any:
    """The RunSession of ``cnnbench run``: its options from the flags or the stored run (--resume), its
    selection loaded, and a pool's zygote started ahead handed over."""
    from cnnbench.execution.session import RunSession

    options = _run_options(stored, given)
    return RunSession(options, _store(reports) if save or stored else None, resume=stored, zygote=zygote)


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
    workers: int | str | None = None,
    reprobe: bool = False,
    fp32_precision: str | None = None,
    out: Console | None = None,
) -> int:
    """Run every selected variant, store the run, print the summary; exit 1 if any failed or errored, 5 if
    nothing ran (no variant selected, or every selected one skipped: pytest's "no tests ran").

    The options are those of ``cnnbench run --help``; resume (a stored run's directory or id) runs the variants
    that run has no row for, with its paths, filters and options, appending to it. Ctrl-C or SIGTERM stops
    the run, keeping every finished row: exit 130 or 143.
    """
    if resume is not None and (paths or keyword or devices or dtypes or shard or kind != "all"):
        raise UsageError("--resume takes the paths and filters of the stored run; give no PATH or filter")
    stored = None
    if resume is not None:
        from cnnbench.execution.resume import load_resume

        # Whether anything is left to run is known from the meta, the rows' line count and the case files' hash:
        # a complete run of a million rows is reported without expanding its case files again.
        if load_resume(resume, _reports_dir(reports), rows=False).finished():
            return _report_finished(load_resume(resume, _reports_dir(reports)), out or _console(), verbose)
        stored = load_resume(resume, _reports_dir(reports))
    zygote = None
    if workers is not None and resume is None:
        from cnnbench.execution.isolation import pool_zygote

        # Before anything else is imported (the case-file machinery takes a quarter of a second): its torch import
        # is the longest thing a pool waits for. The session owns it; refused options stop it.
        zygote = pool_zygote(workers, threads, fp32_precision)
    try:
        session = _run_session(
            zygote,
            stored,
            reports,
            save,
            {
                "paths": paths,
                "keyword": keyword,
                "devices": devices,
                "dtypes": dtypes,
                "shard": shard,
                "kind": kind,
                "isolate": isolate,
                "timeout": timeout,
                "max_case_bytes": max_case_bytes,
                "threads": threads,
                "max_time_per_case": max_time_per_case,
                "workers": workers,
                "reprobe": reprobe or None,
                "fp32_precision": fp32_precision,
            },
        )
    except BaseException:
        if zygote is not None:
            zygote.close()
        raise
    from cnnbench.execution.interrupt import exit_status

    out = out or _console()
    outcome = session.run()
    # Imported only now (pandas, about 0.3 s): a pool's zygote is started above, as early as it can be.
    from cnnbench.report.console import print_console

    print_console(outcome.run, out, verbose=verbose)
    where = f" · saved to {outcome.run.path}" if outcome.saved else ""
    summary = f"{outcome.ran} variants of {outcome.cases} cases in {outcome.elapsed_s:.2f}s{where}"
    out.print(f"[dim]{escape(summary)}[/]")
    if not outcome.complete:
        return exit_status(outcome.stopped) if outcome.stopped is not None else EXIT_INTERRUPTED
    return _run_status(outcome.run.results)


def _run_status(results: Sequence[Any]) -> int:
    """The exit status of a finished run: 1 if any row failed or errored, 5 if nothing ran, else 0."""
    from cnnbench.store.result import FAILING, nothing_ran

    if any(r.status in FAILING for r in results):
        return EXIT_FAILED
    return EXIT_NOTHING_RAN if nothing_ran(results) else EXIT_OK


def _report_finished(stored: Any, out: Console, verbose: bool) -> int:
    """``cnnbench run --resume`` of a run with nothing left to run: its summary, without loading the case files
    again (a million variants' files take most of a minute to expand; their hash says they are the same)."""
    from cnnbench.report.console import print_console

    run = stored.run
    print_console(run, out, verbose=verbose)
    n = len(run.results)
    done = f"run {run.run_id} is complete: nothing left to run ({n:,} row{'s' if n != 1 else ''})"
    out.print(f"[dim]{escape(done)}[/]")
    return _run_status(run.results)


def cmd_report(
    run: str | None = None,
    fmt: str = "markdown",
    output: str | None = None,
    reports: str | None = None,
    out: Console | None = None,
) -> int:
    """Render a stored run (the latest by default) as markdown, html, junit, json, csv or the terminal view."""
    from cnnbench.report.console import make_console, print_console
    from cnnbench.report.render import CONSOLE, render

    # The terminal and markdown views count passed checks (summary rows give the same report in under half the
    # memory); every other format lists every column of every row.
    loaded = _store(reports).load(run, summary=fmt in (CONSOLE, "markdown"))
    if fmt == CONSOLE:
        if output:
            Path(output).parent.mkdir(parents=True, exist_ok=True)
            with open(output, "w", encoding="utf-8") as f:
                print_console(loaded, make_console(file=f), verbose=True)
        else:
            print_console(loaded, out or _console(), verbose=True)
        return EXIT_OK
    _write_output(render(loaded, fmt), output)
    return EXIT_OK


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

    stored = None
    search = list(paths)
    if run is not None:
        loaded = _store(reports).load(run)
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
    accepted: str | None = None,
    allowlist: str | None = None,
    fmt: str = "terminal",
    output: str | None = None,
    reports: str | None = None,
    out: Console | None = None,
    max_budget_growth: float | None = None,
    group_budget_growth: Sequence[str] | None = None,
) -> int:
    """Compare two stored runs; exit 1 if anything regressed (numerics or speed) that no accepted difference
    covers. allowlist is the old name of accepted (read for one release, with a deprecation message).
    max_budget_growth (and its GROUP=F overrides) makes a passing variant's budget used growing more than that
    factor a regression; without it, numerics drift is shown but never fails."""
    from cnnbench.report.accepted import load_accepted, resolve_path
    from cnnbench.report.console import make_console, print_comparison
    from cnnbench.report.diff import Thresholds, compare_runs, parse_group_threshold
    from cnnbench.report.drift import DriftLimits, parse_group_budget_growth
    from cnnbench.report.markdown import render_comparison_markdown

    if allowlist is not None:
        if accepted is not None:
            raise UsageError("--allowlist is the old name of --accepted: give only --accepted")
        print("warning: --allowlist is deprecated; use --accepted", file=sys.stderr)
        accepted = allowlist
    accepted_path, deprecation = resolve_path(accepted) if accepted else (None, "")
    if deprecation:
        print(f"warning: {deprecation}", file=sys.stderr)
    thresholds = Thresholds(
        default=threshold,
        groups=tuple(parse_group_threshold(g) for g in group_thresholds or ()),
        noise_floor_ms=noise_floor_ms,
        p_threshold=p_threshold,
    )
    limits = DriftLimits(
        default=max_budget_growth,
        groups=tuple(parse_group_budget_growth(g) for g in group_budget_growth or ()),
    )
    store = _store(reports)
    comparison = compare_runs(
        store.load(base),
        store.load(new),
        thresholds,
        load_accepted(accepted_path) if accepted_path else None,
        drift_limits=limits,
    )
    if fmt == "markdown":
        _write_output(render_comparison_markdown(comparison), output)
    elif output:
        with open(output, "w", encoding="utf-8") as f:
            print_comparison(comparison, make_console(file=f))
    else:
        print_comparison(comparison, out or _console())
    return EXIT_FAILED if comparison.regressed else EXIT_OK


def cmd_ledger(
    runs: Sequence[str] = (),
    fmt: str = "markdown",
    output: str | None = None,
    reports: str | None = None,
) -> int:
    """Print the numerics ledger: budget used per target x dtype x device over the runs (default: every run stored
    under the reports folder), grouped by environment, as markdown or html."""
    from cnnbench.report.ledger import build_ledger, load_runs, render_ledger_html, render_ledger_markdown

    ledger = build_ledger(load_runs(runs, _reports_dir(reports)))
    _write_output(render_ledger_html(ledger) if fmt == "html" else render_ledger_markdown(ledger), output)
    return EXIT_OK


def cmd_merge(
    runs: Sequence[str],
    output: str | None = None,
    reports: str | None = None,
    out: Console | None = None,
) -> int:
    """Combine the runs of shards into one run (stored in output, or as a new run under the reports folder)."""
    from cnnbench.execution.shard import merge_runs

    store = _store(reports)
    loaded = [store.load(r, rows=False) for r in runs]  # streamed through by merge_runs, never all in memory
    path = merge_runs(loaded, output or store.new_run_dir())
    merged = RunStore().load(str(path), rows=False)
    out = out or _console()
    missing = merged.meta.get("missing_shards") or []
    state = ""
    if not merged.complete:
        why = f"shard {', '.join(missing)} missing" if missing else "a shard did not finish"
        state = f" (incomplete: {why}; `cnnbench run --resume {path}` runs what is missing)"
    out.print(
        f"merged {len(loaded)} runs, {sum(merged.meta.get('counts', {}).values())} variants into {path}{state}",
        markup=False,
        soft_wrap=True,
    )
    return EXIT_OK


def cmd_fuzz(
    targets: Sequence[str],
    budget: float = 60.0,
    examples: int | None = None,
    device: str | None = None,
    dtypes: Sequence[str] | None = None,
    seed: int = 0,
    output: str | None = None,
    reports: str | None = None,
    max_case_bytes: str | None = None,
    out: Console | None = None,
) -> int:
    """Property-based fuzzing of the targets' geometry against the reference; exit 1 when a failure was found
    (shrunk and written as a case file under -o), 0 when none was (docs/fuzzing.md)."""
    from cnnbench.casefile.budget import resolve_budget
    from cnnbench.fuzz.command import run_fuzz

    return run_fuzz(
        targets, budget, examples, device, dtypes, seed, output, _reports_dir(reports),
        resolve_budget(max_case_bytes), out or _console(),
    )  # fmt: skip


def cmd_shrink(
    variant_id: str,
    paths: Sequence[str] = (),
    output: str | None = None,
    max_case_bytes: str | None = None,
    out: Console | None = None,
) -> int:
    """Shrink a failing variant of a case file while it keeps failing; write it under -o; exit 1 if it fails."""
    from cnnbench.casefile.budget import resolve_budget
    from cnnbench.fuzz.command import run_shrink

    return run_shrink(variant_id, paths, output, resolve_budget(max_case_bytes), out or _console())


def cmd_import(source: str, output: str, ops: str | None = None, out: Console | None = None) -> int:
    """Write another project's conformance suite (ONNX node tests, OpInfo samples) as case files into output."""
    from cnnbench.conformance.importer import import_suite

    wanted = [o.strip() for o in ops.split(",") if o.strip()] if ops else None
    (out or _console()).print(import_suite(source, output, wanted), markup=False)
    return EXIT_OK


def cmd_submit(
    paths: Sequence[str],
    shards: int,
    folder: str,
    executor: str = "slurm",
    partition: str | None = None,
    gpus_per_node: int | None = None,
    cpus_per_task: int | None = None,
    time_min: int | None = None,
    array_parallelism: int | None = None,
    slurm_options: Sequence[str] | None = None,
    reports: str | None = None,
    verbose: bool = False,
    out: Console | None = None,
    **run_flags: Any,
) -> int:
    """Run the shards of a run as a Slurm job array through submitit (or its local executor), wait, merge them
    into one stored run and report it; exit 1 if a shard is missing or anything failed."""
    from cnnbench.execution.session import RunOptions, RunSession
    from cnnbench.execution.submit import SubmitOptions, describe_failures, parse_slurm_option, submit
    from cnnbench.report.console import print_console
    from cnnbench.store.result import FAILING

    opts = SubmitOptions(
        shards=shards,
        folder=Path(folder),
        executor=executor,
        partition=partition,
        gpus_per_node=gpus_per_node,
        cpus_per_task=cpus_per_task,
        time_min=time_min,
        array_parallelism=array_parallelism,
        extra=dict(parse_slurm_option(o) for o in slurm_options or ()),
    )
    given = {"paths": paths, "shard": None, **run_flags}
    options = _run_options(None, given)
    RunSession(options, None)  # the case files and the selection are checked before anything is submitted
    values = {k: getattr(options, k) for k in RunOptions.__dataclass_fields__}
    values.pop("shard")
    done = submit(values, opts, _reports_dir(reports))
    err = _console(stderr=True)
    for line in describe_failures(done.failures, shards):
        err.print(f"[red]error[/]: {escape(line)}", soft_wrap=True)
    out = out or _console()
    print_console(done.merged, out, verbose=verbose)
    missing = done.merged.meta.get("missing_shards") or []
    state = "" if done.merged.complete else f" · incomplete (missing: {', '.join(missing) or 'none'})"
    out.print(f"[dim]{escape(f'merged {shards} shards into {done.merged.path}{state}')}[/]", soft_wrap=True)
    if not done.merged.complete or done.failures:
        return EXIT_FAILED
    return EXIT_FAILED if any(r.status in FAILING for r in done.merged.results) else EXIT_OK


# Argument types: a bad value is refused by argparse with the flag's name, exit 2, before anything runs.


_COMMANDS: dict[str, Callable[..., int]] = {
    "run": cmd_run,
    "list": cmd_list,
    "validate": cmd_validate,
    "schema": cmd_schema,
    "report": cmd_report,
    "repro": cmd_repro,
    "compare": cmd_compare,
    "merge": cmd_merge,
    "submit": cmd_submit,
    "ledger": cmd_ledger,
    "fuzz": cmd_fuzz,
    "shrink": cmd_shrink,
    "import": cmd_import,
}


def _print_devices_here(exc: CnnbenchError, err: Console) -> None:
    """After an unknown-device error, the devices this machine has (and accelerator, for any of them)."""
    if "unknown device" not in str(exc):
        return
    from cnnbench.environment import available_devices

    err.print(f"this machine has: {', '.join(available_devices())} (accelerator: whichever it has)")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: parse, dispatch, and turn every user-facing error into a message and exit 2."""
    try:
        args = vars(build_parser().parse_args(argv))
    except SystemExit as exc:  # --help, --version, or a flag argparse refused (it printed why)
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    command = args.pop("command")
    err = _console(stderr=True)
    try:
        return int(_COMMANDS[command](**args))
    except CaseFileError as exc:
        for e in exc.errors:
            err.print(f"[red]error[/]: {escape(str(e))}", soft_wrap=True)
        _print_devices_here(exc, err)
        n = len(exc.errors)
        err.print(f"{n} error{'s' if n != 1 else ''} in case files", style="bold red")
        return EXIT_USAGE
    except CnnbenchError as exc:
        err.print(f"[red]error[/]: {escape(str(exc))}", soft_wrap=True)
        _print_devices_here(exc, err)
        return exc.exit_code
    except BrokenPipeError:
        return EXIT_OK


def entry() -> NoReturn:
    """The ``cnnbench`` command (and ``python -m cnnbench``): main(), then, once stdout and stderr are flushed,
    an immediate exit with its status.

    Everything a command writes is closed by the command itself (stored rows are flushed as each finishes, the
    run's writer and every report file are closed before main returns), so what the interpreter's own exit would
    add is tearing torch down: about 0.5 s of every run, and a hang on some CUDA drivers. A bug's traceback
    still goes the ordinary way (main raised)."""
    code = main()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe (`| head`): nothing left to say
            stream.flush()
    os._exit(code)


if __name__ == "__main__":
    entry()
