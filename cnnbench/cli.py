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

__all__ = ["cmd_list", "cmd_report", "cmd_run", "cmd_schema", "cmd_validate", "main"]

#: Where runs are stored unless --reports or CNNBENCH_REPORTS says otherwise.
DEFAULT_REPORTS = "reports"
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def _reports_dir(value: str | None) -> str:
    return value or os.environ.get("CNNBENCH_REPORTS") or DEFAULT_REPORTS


def _load_variants(
    paths: Sequence[str], keyword: str | None, devices: Sequence[str] | None, dtypes: Sequence[str] | None
) -> tuple[list[object], list[str]]:
    from cnnbench.cases import expand, load_paths, select

    _check_filters(devices, dtypes)
    cases = load_paths(paths)
    variants = select(expand(cases), keyword=keyword, devices=devices, dtypes=dtypes)
    return list(variants), [c.id for c in cases]


def _check_filters(devices: Sequence[str] | None, dtypes: Sequence[str] | None) -> None:
    from cnnbench.allowlist import DEVICE_TYPES, DTYPES
    from cnnbench.spec import suggest

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


def cmd_validate(paths: Sequence[str], out: Console | None = None) -> int:
    """Load and validate case files without running them."""
    from cnnbench.cases import expand, load_paths

    out = out or Console(highlight=False)
    cases = load_paths(paths)
    n = sum(1 for _ in expand(cases))
    out.print(f"ok: {len(cases)} cases, {n} variants", markup=False)
    return EXIT_OK


def cmd_schema(out: Console | None = None) -> int:
    """Print the case format's JSON Schema (for editors' completion and validation)."""
    from cnnbench.spec import CaseFileSpec

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
    out: Console | None = None,
) -> int:
    """Run every selected variant, store the run, print the summary; exit 1 if any failed or errored."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from cnnbench.cases import Variant, case_files_hash
    from cnnbench.environment import capture_environment
    from cnnbench.report import print_console
    from cnnbench.results import FAILING, Result, Run, RunWriter
    from cnnbench.runner import run_variant

    out = out or Console(highlight=False)
    err = Console(stderr=True)
    variants, case_ids = _load_variants(paths, keyword, devices, dtypes)
    if not variants:
        raise UsageError("no variants selected (check the paths, -k, --device and --dtype)")
    started = time.perf_counter()
    meta = {
        "paths": list(paths),
        "filters": {"keyword": keyword, "devices": devices, "dtypes": dtypes},
        "case_files_hash": case_files_hash(paths),
        "variants_selected": len(variants),
        "environment": capture_environment(),
    }
    writer = RunWriter(_reports_dir(reports), meta) if save else None
    results: list[Result] = []
    complete = False
    try:
        with Progress(
            TextColumn("[progress.description]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=err,
            transient=True,
            disable=not err.is_terminal,
        ) as progress:
            task = progress.add_task("running", total=len(variants))
            for variant in variants:
                assert isinstance(variant, Variant)
                progress.update(task, description=variant.id)
                result = run_variant(variant)
                results.append(result)
                if writer is not None:
                    writer.append(result)
                progress.advance(task)
        complete = True
    except KeyboardInterrupt:
        err.print(f"interrupted: {len(results)} of {len(variants)} variants finished and kept")
    finally:
        if writer is not None:
            writer.close(complete=complete)
    run = Run(
        path=writer.path if writer else Path("."),
        meta={**meta, "run_id": writer.run_id if writer else "unsaved", "complete": complete},
        results=results,
    )
    print_console(run, out, verbose=verbose)
    elapsed = time.perf_counter() - started
    where = f" · saved to {writer.path}" if writer else ""
    out.print(f"[dim]{len(results)} variants of {len(case_ids)} cases in {elapsed:.2f}s{escape(where)}[/]")
    if not complete:
        return EXIT_INTERRUPTED
    return EXIT_FAILED if any(r.status in FAILING for r in results) else EXIT_OK


def cmd_report(
    run: str | None = None,
    fmt: str = "markdown",
    output: str | None = None,
    reports: str | None = None,
    out: Console | None = None,
) -> int:
    """Render a stored run (the latest by default) as markdown, json, csv or the terminal view."""
    from cnnbench.report import RENDERERS, print_console
    from cnnbench.results import load_run

    loaded = load_run(run, _reports_dir(reports))
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


def _add_filters(p: argparse.ArgumentParser) -> None:
    p.add_argument("paths", nargs="+", metavar="PATH", help="case files or directories (searched for *.yaml)")
    p.add_argument("-k", dest="keyword", metavar="EXPR", help="pytest-style keyword expression on variant ids")
    p.add_argument("--device", dest="devices", action="append", metavar="DEVICE", help="only this device (repeat)")
    p.add_argument("--dtype", dest="dtypes", action="append", metavar="DTYPE", help="only this dtype (repeat)")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = argparse.ArgumentParser(prog="cnnbench", description=__doc__)
    from cnnbench import __version__

    parser.add_argument("--version", action="version", version=f"cnnbench {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("run", help="run case files and store the run")
    _add_filters(p)
    p.add_argument("--reports", help=f"where runs are stored (default {DEFAULT_REPORTS}/ or $CNNBENCH_REPORTS)")
    p.add_argument("--no-save", dest="save", action="store_false", help="do not store the run")
    p.add_argument("-v", "--verbose", action="store_true", help="also list skipped and xfailed variants")

    p = sub.add_parser("list", help="print the variant ids without running")
    _add_filters(p)

    p = sub.add_parser("validate", help="check case files without running them")
    p.add_argument("paths", nargs="+", metavar="PATH")

    sub.add_parser("schema", help="print the case format's JSON Schema")

    p = sub.add_parser("report", help="render a stored run")
    p.add_argument("run", nargs="?", help="run directory or id (default: the latest)")
    p.add_argument("--format", dest="fmt", default="markdown", help="markdown, json, csv or console")
    p.add_argument("-o", "--output", help="write to this file instead of stdout")
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
    }
    err = Console(stderr=True, highlight=False)
    try:
        return commands[command](**args)  # type: ignore[operator]
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
