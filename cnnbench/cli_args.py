"""The command line's grammar: cnnbench's argparse parser, its shared parent options and the `type=` validators
(cnnbench.cli turns the parsed arguments into one call per subcommand)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from cnnbench.errors import UsageError

__all__ = ["build_parser", "growth_factor", "non_negative", "positive_int", "positive_seconds", "probability"]

_DESCRIPTION = """\
cnnbench: verification and benchmarking of PyTorch CNN layers. Declarative YAML case files state layer
configurations and what they must produce; cnnbench runs every case on every device and dtype, checks each
result, times the benchmarks, stores the run with its environment and reports it.

examples:
  cnnbench run cases/                       run every case, store the run, print the summary
  cnnbench report --format markdown         render the latest stored run
  cnnbench compare BASE NEW                 exit 1 when NEW regressed against BASE (a CI gate)
  cnnbench ledger --format html -o l.html   budget used per op over every stored run, by environment
"""


def _number(kind: Callable[[str], Any], test: Callable[[Any], bool], expected: str) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r}: expected {expected}") from None
        if not test(value):
            raise argparse.ArgumentTypeError(f"{text}: expected {expected}")
        return value

    return parse


positive_int = _number(int, lambda v: v >= 1, "a whole number >= 1")
positive_seconds = _number(float, lambda v: v > 0, "a positive number of seconds")
non_negative = _number(float, lambda v: v >= 0, "a number >= 0")
probability = _number(float, lambda v: 0 < v <= 1, "a number in (0, 1]")
growth_factor = _number(float, lambda v: v >= 1 and v != float("inf"), "a growth factor >= 1, e.g. 2")


def _time_per_case(text: str) -> float:
    from cnnbench.execution.session import MAX_TIME_PER_CASE_S

    seconds: float = positive_seconds(text)
    if seconds > MAX_TIME_PER_CASE_S:
        raise argparse.ArgumentTypeError(f"{text}: expected seconds in (0, {MAX_TIME_PER_CASE_S:g}]")
    return seconds


def _workers(text: str) -> int | str:
    from cnnbench.execution.cores import parse_workers

    try:
        return parse_workers(text)
    except UsageError as exc:
        raise argparse.ArgumentTypeError(str(exc).split(": ", 1)[-1]) from None


def _duration(text: str) -> float:
    from cnnbench.fuzz.command import parse_duration

    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _add_fuzz(sub: Any, p: dict[str, argparse.ArgumentParser]) -> None:
    fuzz = sub.add_parser(
        "fuzz", parents=[p["budget"], p["reports"]], help="fuzz layer geometry against the reference"
    )
    fuzz.add_argument("targets", nargs="*", metavar="TARGET", help="ops to fuzz (conv2d, max_pool2d, ...)")
    fuzz.add_argument("--budget", type=_duration, default=60.0, help="time for the whole run (default 60s)")
    fuzz.add_argument(
        "--examples", type=positive_int, metavar="N", help="at most N configurations per target"
    )
    fuzz.add_argument("--device", default=None, help="device to check on (default cpu)")
    fuzz.add_argument(
        "--dtype", dest="dtypes", action="append", metavar="DTYPE", help="dtype (repeat; default float32)"
    )
    fuzz.add_argument("--seed", type=int, default=0, help="the same seed gives the same configurations")
    fuzz.add_argument(
        "-o", "--output", metavar="DIR", help="where found cases are written (default cases/found/)"
    )
    shrink = sub.add_parser(
        "shrink", parents=[p["budget"]], help="shrink a failing variant to the smallest case that still fails"
    )
    shrink.add_argument("variant_id", metavar="VARIANT_ID", help="case_id[device-dtype]")
    shrink.add_argument(
        "paths", nargs="*", metavar="PATH", help="case files or directories (default: cases/)"
    )
    shrink.add_argument(
        "-o", "--output", metavar="DIR", help="where the shrunk case is written (default cases/found/)"
    )


def _parents() -> dict[str, argparse.ArgumentParser]:
    """Option groups several subcommands share, so each flag is defined once."""

    def parent() -> argparse.ArgumentParser:
        return argparse.ArgumentParser(add_help=False)

    filters = parent()
    filters.add_argument(
        "-k",
        dest="keyword",
        metavar="EXPR",
        help="pytest-style keyword expression on variant ids and targets",
    )
    filters.add_argument(
        "--device", dest="devices", action="append", metavar="DEVICE", help="only this device (repeat)"
    )
    filters.add_argument(
        "--dtype", dest="dtypes", action="append", metavar="DTYPE", help="only this dtype (repeat)"
    )
    reports = parent()
    reports.add_argument("--reports", help="where runs are stored (default reports/ or $CNNBENCH_REPORTS)")
    output = parent()
    output.add_argument("-o", "--output", help="write to this file instead of stdout")
    budget = parent()
    budget.add_argument(
        "--max-case-bytes",
        metavar="SIZE",
        help="memory budget of one case's tensors, e.g. 512MiB or 2GB (default 1GiB or $CNNBENCH_MAX_CASE_BYTES)",
    )
    return {"filters": filters, "reports": reports, "output": output, "budget": budget}


def _add_run(sub: Any, p: dict[str, argparse.ArgumentParser]) -> None:
    from cnnbench.casefile.vocabulary import KINDS

    run = sub.add_parser(
        "run", parents=[p["filters"], p["budget"], p["reports"]], help="run case files and store the run"
    )
    run.add_argument(
        "paths", nargs="*", metavar="PATH", help="case files or directories (searched for *.yaml)"
    )
    run.add_argument(
        "--resume", metavar="RUN", help="finish a stored run (directory or id): only variants it lacks"
    )
    run.add_argument(
        "--isolate",
        action="store_true",
        default=None,
        help="run each variant in a worker process (crash = error row)",
    )
    run.add_argument(
        "--timeout",
        type=positive_seconds,
        metavar="SECONDS",
        help="per-variant limit; a hang becomes an error row (implies --isolate)",
    )
    run.add_argument("--no-save", dest="save", action="store_false", help="do not store the run")
    run.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="also list skipped and xfailed variants, and the warnings each variant raised",
    )
    run.add_argument(
        "--shard", metavar="K/N", help="run only the K-th of N shards (stable hash of the variant id)"
    )
    run.add_argument(
        "--kind", choices=KINDS, default="all", help="numerics checks, benchmarks, or all (default)"
    )
    run.add_argument(
        "--threads",
        type=positive_int,
        metavar="N",
        help="torch intra-op threads for the whole run (default: torch's own; recorded either way)",
    )
    run.add_argument(
        "--fp32-precision",
        choices=("ieee", "tf32", "default"),
        help="pin float32 convolutions and matmuls to IEEE or TF32 for the run (default: torch's flags); "
        "recorded in the run and in every row's compute_precision",
    )
    run.add_argument(
        "--max-time-per-case",
        type=_time_per_case,
        metavar="SECONDS",
        help="time budget of every benchmark row (warm-up + replicates), overriding the files' max_time_s",
    )
    run.add_argument(
        "--workers",
        type=_workers,
        metavar="N|auto",
        help="run variants side by side in N isolated workers (auto: one per GPU, or per core for CPU work); "
        "benchmarks still run alone on their device",
    )
    run.add_argument(
        "--reprobe",
        action="store_true",
        help="measure the machine's compute and bandwidth ceilings again (default: reuse reports/machines/)",
    )


def _add_compare(sub: Any, p: dict[str, argparse.ArgumentParser]) -> None:
    compare = sub.add_parser(
        "compare", parents=[p["output"], p["reports"]], help="compare two stored runs; exit 1 on a regression"
    )
    compare.add_argument("base", metavar="BASE", help="the reference run (directory or id)")
    compare.add_argument("new", metavar="NEW", help="the run to judge (directory or id)")
    compare.add_argument(
        "--threshold", type=non_negative, default=0.1, help="fractional change of the median that counts"
    )
    compare.add_argument(
        "--group-threshold",
        dest="group_thresholds",
        action="append",
        metavar="GROUP=FRAC",
        help="threshold for rows whose target, case id, file stem or variant id matches GROUP (* ? globs)",
    )
    compare.add_argument(
        "--noise-floor-ms", type=non_negative, default=0.01, help="ignore median changes below this"
    )
    compare.add_argument(
        "--p-threshold", type=probability, default=0.002, help="Mann-Whitney U significance level"
    )
    compare.add_argument(
        "--accepted", metavar="FILE", help="YAML of accepted differences (variant id -> reason)"
    )
    # --accepted's old name, still read for one release (cmd_compare prints a deprecation message).
    compare.add_argument("--allowlist", metavar="FILE", help=argparse.SUPPRESS)
    compare.add_argument("--format", dest="fmt", default="terminal", choices=("terminal", "markdown"))
    compare.add_argument(
        "--max-budget-growth",
        type=growth_factor,
        metavar="F",
        help="a passing variant whose budget used grows more than F times (e.g. 2) regresses (default: off)",
    )
    compare.add_argument(
        "--group-budget-growth",
        dest="group_budget_growth",
        action="append",
        metavar="GROUP=F",
        help="--max-budget-growth for rows whose target, case id, file stem or variant id matches GROUP",
    )


def _add_submit(sub: Any, p: dict[str, argparse.ArgumentParser]) -> None:
    from cnnbench.casefile.vocabulary import KINDS
    from cnnbench.execution.submit import EXECUTORS

    submit = sub.add_parser(
        "submit",
        parents=[p["filters"], p["budget"], p["reports"]],
        help="run the shards of a run as a Slurm job array (submitit), then merge and report them",
    )
    submit.add_argument("paths", nargs="+", metavar="PATH", help="case files or directories")
    submit.add_argument("--shards", type=positive_int, required=True, metavar="N", help="array tasks")
    submit.add_argument(
        "--folder",
        required=True,
        metavar="DIR",
        help="a folder shared by the nodes: logs and each shard's run",
    )
    submit.add_argument("--executor", choices=EXECUTORS, default="slurm", help="slurm (default) or local")
    submit.add_argument("--partition", help="Slurm partition")
    submit.add_argument("--gpus-per-node", type=positive_int, metavar="N", help="GPUs of each task")
    submit.add_argument("--cpus-per-task", type=positive_int, metavar="N", help="CPU cores of each task")
    submit.add_argument(
        "--time", dest="time_min", type=positive_int, metavar="MIN", help="time limit per task"
    )
    submit.add_argument(
        "--array-parallelism", type=positive_int, metavar="N", help="tasks running at once (default: all)"
    )
    submit.add_argument(
        "--slurm-option",
        dest="slurm_options",
        action="append",
        metavar="KEY=VALUE",
        help="any other sbatch option, passed through (repeat), e.g. constraint=a100",
    )
    submit.add_argument("--kind", choices=KINDS, default="all", help="numerics checks, benchmarks, or all")
    submit.add_argument("--workers", type=_workers, metavar="N|auto", help="a pool of workers in each task")
    submit.add_argument("--isolate", action="store_true", default=None, help="each variant in a worker")
    submit.add_argument("--timeout", type=positive_seconds, metavar="SECONDS", help="per-variant limit")
    submit.add_argument("--threads", type=positive_int, metavar="N", help="torch intra-op threads")
    submit.add_argument("--max-time-per-case", type=_time_per_case, metavar="SECONDS")
    submit.add_argument(
        "--fp32-precision",
        choices=("ieee", "tf32", "default"),
        help="pin float32 convs and matmuls in every task",
    )
    submit.add_argument("-v", "--verbose", action="store_true", help="also list skipped and xfailed variants")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    from cnnbench import __version__

    parser = argparse.ArgumentParser(
        prog="cnnbench", description=_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"cnnbench {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    p = _parents()
    _add_run(sub, p)

    listing = sub.add_parser("list", parents=[p["filters"]], help="print the variant ids without running")
    listing.add_argument(
        "paths", nargs="+", metavar="PATH", help="case files or directories (searched for *.yaml)"
    )

    validate = sub.add_parser("validate", parents=[p["budget"]], help="check case files without running them")
    validate.add_argument("paths", nargs="+", metavar="PATH")

    sub.add_parser("schema", help="print the case format's JSON Schema")

    report = sub.add_parser("report", parents=[p["output"], p["reports"]], help="render a stored run")
    report.add_argument("run", nargs="?", help="run directory or id (default: the latest)")
    report.add_argument(
        "--format", dest="fmt", default="markdown", help="markdown, html, junit, json, csv or console"
    )

    repro = sub.add_parser(
        "repro",
        parents=[p["output"], p["reports"]],
        help="print a standalone plain-torch script reproducing one variant",
    )
    repro.add_argument("variant_id", metavar="VARIANT_ID", help="case_id[device-dtype]")
    repro.add_argument("paths", nargs="*", metavar="PATH", help="case files or directories (default: cases/)")
    repro.add_argument("--run", help="take the case file and stored status from this run (directory or id)")

    _add_compare(sub, p)
    _add_fuzz(sub, p)

    ledger = sub.add_parser(
        "ledger",
        parents=[p["output"], p["reports"]],
        help="budget used per target x dtype x device over stored runs, grouped by environment",
    )
    ledger.add_argument(
        "runs", nargs="*", metavar="RUN", help="run directories or ids (default: every stored run)"
    )
    ledger.add_argument("--format", dest="fmt", default="markdown", choices=("markdown", "html"))

    imp = sub.add_parser("import", help="write the ONNX node tests or PyTorch's OpInfo samples as case files")
    imp.add_argument("source", choices=["onnx", "opinfo"])
    imp.add_argument(
        "--ops", help="comma-separated ONNX op types (Conv,MaxPool) or OpInfo names (conv2d,...)"
    )
    imp.add_argument("-o", "--output", required=True, metavar="DIR", help="the suite's folder (replaced)")

    _add_submit(sub, p)

    merge = sub.add_parser("merge", parents=[p["reports"]], help="combine the runs of shards into one run")
    merge.add_argument("runs", nargs="+", metavar="RUN", help="run directories or ids")
    merge.add_argument(
        "-o", "--output", metavar="DIR", help="directory of the merged run (default: a new run)"
    )
    return parser
