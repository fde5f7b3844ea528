"""pytest plugin: ``pytest cases/`` collects case files; each variant is an item named by its variant id.

Only hooks live here; the work is cnnbench.runner's. torch is imported when the first item runs, so the
plugin costs nothing to a project that never collects a case file.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

__all__ = ["CaseFileNode", "VariantItem"]

_CASE_FILE_RE = re.compile(r"^cases\s*:", re.MULTILINE)


def pytest_addoption(parser: pytest.Parser) -> None:
    """The same filters as ``cnnbench run``: --cnnbench-device and --cnnbench-dtype (repeatable)."""
    group = parser.getgroup("cnnbench")
    group.addoption("--cnnbench-device", action="append", default=None, help="only variants on this device")
    group.addoption("--cnnbench-dtype", action="append", default=None, help="only variants in this dtype")


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    """Collect *.yaml / *.yml files that have a top-level ``cases:`` key."""
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
        """Load the file (errors become one collection error) and yield an item per selected variant."""
        from cnnbench.cases import expand, load_file, select
        from cnnbench.errors import CaseFileError as LoadError

        try:
            loaded = load_file(self.path, display=self._display_path())
        except LoadError as exc:
            raise CaseFileError(str(exc)) from None
        devices = self.config.getoption("cnnbench_device")
        dtypes = self.config.getoption("cnnbench_dtype")
        for variant in select(expand(loaded.cases), devices=devices, dtypes=dtypes):
            yield VariantItem.from_parent(self, name=variant.id, variant=variant)

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


class VariantFailure(Exception):
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

    def runtest(self) -> None:
        """Run the variant; map its status onto pytest's outcomes."""
        from cnnbench.runner import run_variant

        result = run_variant(self.variant)
        self.result = result
        self.user_properties.append(("cnnbench_status", result.status))
        if result.status in ("failed", "error"):
            raise VariantFailure(result)
        if result.status == "skipped":
            pytest.skip(result.reason or result.message)
        if result.status == "xfail":
            pytest.xfail(f"{result.reason}: {result.message.splitlines()[0] if result.message else ''}")

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:  # type: ignore[override]
        """The mismatch message with the case's file:line and a repro command, no traceback."""
        if isinstance(excinfo.value, VariantFailure):
            from cnnbench.report import repro_command

            r = excinfo.value.result
            return f"{r.file}:{r.line}: {r.variant_id} {r.status}\n{r.message}\nrepro: {repro_command(r)}"
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int, str]:
        """Where the case is written (0-based line, as pytest expects)."""
        return self.path, self.variant.case.line - 1, self.variant.id
