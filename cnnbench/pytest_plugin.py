"""pytest plugin: ``pytest cases/`` collects case files; each variant is an item named by its variant id.

Only hooks and item classes live here; the work is cnnbench.numerics.runner's and cnnbench.bench.runner's (timed
through pytest-benchmark's fixture by cnnbench.bench.pytest_timing). torch is imported when the first item runs, so
the plugin costs nothing to a project that never collects a case file.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

__all__ = ["BenchItem", "CaseFileNode", "VariantItem"]

_CASE_FILE_RE = re.compile(r"^(cases|benchmarks)\s*:", re.MULTILINE)


def pytest_addoption(parser: pytest.Parser) -> None:
    """The same filters as ``cnnbench run``: --cnnbench-device and --cnnbench-dtype (repeatable)."""
    group = parser.getgroup("cnnbench")
    group.addoption("--cnnbench-device", action="append", default=None, help="only variants on this device")
    group.addoption("--cnnbench-dtype", action="append", default=None, help="only variants in this dtype")


def pytest_configure(config: pytest.Config) -> None:
    """Refuse a --cnnbench-device this machine lacks (pytest's usage error, exit 4), as ``cnnbench run --device``
    does, and watch for a session whose every case-file item was skipped: it exits 5, "nothing ran"."""
    devices = config.getoption("cnnbench_device")
    if devices:
        from cnnbench.errors import UsageError
        from cnnbench.execution.session import check_devices_present

        try:
            check_devices_present(devices)
        except UsageError as exc:
            raise pytest.UsageError(str(exc).replace("--device", "--cnnbench-device", 1)) from None
    config.pluginmanager.register(_NothingRan(), "cnnbench-nothing-ran")


class _NothingRan:
    """Exit 5 (pytest's "no tests ran") when every test reported is a case-file item and all were skipped, as
    ``cnnbench run`` does: a session on a machine without the one device its cases name must not pass."""

    def __init__(self) -> None:
        self.skipped: set[str] = set()
        self.ran = False

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if not report.nodeid.split("::")[0].endswith((".yaml", ".yml")):
            self.ran = True  # another kind of test: pytest's own rules decide
        elif report.failed or (report.when == "call" and (report.passed or hasattr(report, "wasxfail"))):
            self.ran = True
        elif report.skipped:
            self.skipped.add(report.nodeid)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self._nothing_ran():
            terminalreporter.write_line(
                f"cnnbench: nothing ran: all {len(self.skipped)} variants skipped (exit 5)"
            )

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if exitstatus == pytest.ExitCode.OK and self._nothing_ran():
            session.exitstatus = pytest.ExitCode.NO_TESTS_COLLECTED

    def _nothing_ran(self) -> bool:
        return bool(self.skipped) and not self.ran


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    """Collect *.yaml / *.yml files that have a top-level ``cases:`` or ``benchmarks:`` key."""
    if file_path.suffix not in (".yaml", ".yml"):
        return None
    try:
        head = file_path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    if not _CASE_FILE_RE.search(head):
        return None
    node: CaseFileNode = CaseFileNode.from_parent(parent, path=file_path)
    return node


class CaseFileError(Exception):
    """The case file could not be loaded; the message lists every problem with file:line."""


class CaseFileNode(pytest.File):
    """A case file: its variants are the items."""

    def collect(self) -> Iterator[pytest.Item]:
        """Load the file (errors become one collection error) and yield an item per selected variant.

        A benchmark variant is a BenchItem: a test function asking for pytest-benchmark's ``benchmark``
        fixture, so ``--benchmark-only`` runs exactly these (and skips the numerics items).
        """
        from cnnbench.casefile.load import load_file
        from cnnbench.casefile.select import select
        from cnnbench.casefile.variants import expand, expand_benchmarks
        from cnnbench.errors import CaseFileError as LoadError

        try:
            loaded = load_file(self.path, display=self._display_path())
        except LoadError as exc:
            raise CaseFileError(str(exc)) from None
        devices = self.config.getoption("cnnbench_device")
        dtypes = self.config.getoption("cnnbench_dtype")
        for variant in select(expand(loaded.cases), devices=devices, dtypes=dtypes):
            yield VariantItem.from_parent(self, name=variant.id, variant=variant)
        for bench in select(expand_benchmarks(loaded.benchmarks), devices=devices, dtypes=dtypes):
            yield BenchItem.from_parent(self, name=bench.id, callobj=_benchmark_test(bench), variant=bench)

    def _display_path(self) -> str:
        try:
            return str(self.path.relative_to(Path.cwd()))
        except ValueError:
            return str(self.path)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException]) -> str:  # type: ignore[override]
        """A plain message for a malformed case file, no traceback."""
        if isinstance(excinfo.value, CaseFileError):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo))


def _failure_message(result: Any) -> str:
    """A failed row as pytest shows it: file:line, the variant, its message and a command to rerun it."""
    from cnnbench.report.tables import repro_command

    r = result
    return f"{r.file}:{r.line}: {r.variant_id} {r.status}\n{r.message}\nrepro: {repro_command(r)}"


def _repr_outcome(excinfo: pytest.ExceptionInfo[BaseException]) -> str:
    """The report text of an outcome the plugin raised itself ("" for any other exception): a failed row's
    message, or an xfail's reason. pytest asks for a repr of every pytest.xfail() and throws it away; its own
    repr formats a traceback, parsing the source file of every frame: the largest part of the plugin's extra
    time over ``cnnbench run`` on cases/ (100 xfail variants), by cProfile."""
    if isinstance(excinfo.value, VariantFailedError):
        return _failure_message(excinfo.value.result)
    if isinstance(excinfo.value, pytest.xfail.Exception):
        return str(excinfo.value)
    return ""


class VariantFailedError(Exception):
    """A variant failed or errored; carries its result row."""

    def __init__(self, result: Any) -> None:
        super().__init__(result.message)
        self.result = result


class VariantItem(pytest.Item):
    """One variant, run by cnnbench's runner exactly as ``cnnbench run`` does."""

    def __init__(self, *, variant: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.variant = variant
        self.result: Any = None
        # -k matches the target as `cnnbench run -k` does (the file's name pytest matches already).
        self.extra_keyword_matches.add(variant.case.spec.target)

    def runtest(self) -> None:
        """Run the variant; map its status onto pytest's outcomes."""
        from cnnbench.execution.dispatch import run_variant

        result = run_variant(self.variant)
        self.result = result
        self.user_properties.append(("cnnbench_status", result.status))
        _report_outcome(result)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:  # type: ignore[override]
        """The mismatch message with the case's file:line and a repro command, no traceback."""
        return _repr_outcome(excinfo) or str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int, str]:
        """Where the case is written (0-based line, as pytest expects)."""
        return self.path, self.variant.case.line - 1, self.variant.id


def _report_outcome(result: Any) -> None:
    """Map a result row's status onto pytest's outcomes (raise, skip or xfail; return when it passed)."""
    if result.status in ("failed", "error"):
        raise VariantFailedError(result)
    if result.status == "skipped":
        pytest.skip(result.reason or result.message)
    if result.status == "xfail":
        pytest.xfail(f"{result.reason}: {result.message.splitlines()[0] if result.message else ''}")


#: The machine's ceilings, shared by the benchmark items of a pytest session (as by the rows of a run).
_CEILINGS: list[Any] = []


def _roofline(result: Any) -> None:
    """The row against the machine's ceilings (<reports>/machines, probed on first use), as ``cnnbench run``."""
    from cnnbench.bench.ceilings import CeilingBook, apply_roofline, machines_dir

    if not _CEILINGS:
        _CEILINGS.append(CeilingBook(machines_dir(os.environ.get("CNNBENCH_REPORTS") or "reports")))
    apply_roofline(result, _CEILINGS[0])
    _CEILINGS[0].save()


def _benchmark_test(variant: Any) -> Any:
    """The test function of a benchmark variant: it takes pytest-benchmark's ``benchmark`` fixture."""

    def test(benchmark: Any) -> None:
        from cnnbench.bench.pytest_timing import fixture_timing
        from cnnbench.bench.runner import run_benchmark

        result = run_benchmark(variant, timing=fixture_timing(benchmark))
        _roofline(result)
        # The row's metrics (not the raw replicates, which pytest-benchmark stores itself) go into its JSON.
        benchmark.extra_info.update({k: v for k, v in result.metrics.items() if k != "times_ms"})
        benchmark.extra_info["cnnbench_status"] = result.status
        _report_outcome(result)

    return test


class BenchItem(pytest.Function):
    """One benchmark variant, timed through pytest-benchmark's ``benchmark`` fixture."""

    def __init__(self, *, variant: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.variant = variant
        self.extra_keyword_matches.add(variant.case.spec.target)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:  # type: ignore[override]
        """The correctness message (or the error) with the benchmark's file:line and a repro, no traceback."""
        return _repr_outcome(excinfo) or str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int, str]:
        """Where the benchmark is written (0-based line, as pytest expects)."""
        return self.path, self.variant.case.line - 1, self.name


@pytest.hookimpl(optionalhook=True)
def pytest_benchmark_update_machine_info(config: pytest.Config, machine_info: dict[str, Any]) -> None:
    """Add torch's build and the accelerators to pytest-benchmark's machine_info (--benchmark-compare checks it)."""
    from cnnbench.environment import capture_environment

    env = capture_environment()
    keys = (
        "torch_version",
        "torch_git_version",
        "cuda_version",
        "hip_version",
        "cudnn_version",
        "torchvision_version",
        "num_threads",
        "cpu_capability",
        "mkldnn_enabled",
        "float32_matmul_precision",
        "accelerators",
    )
    machine_info["torch"] = {key: env.get(key) for key in keys}
