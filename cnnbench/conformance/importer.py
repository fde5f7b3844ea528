"""One entry point for both importers: build the suite, write it atomically, say what was written."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from cnnbench.conformance.suite import Suite
from cnnbench.errors import UsageError

__all__ = ["import_suite"]


def import_suite(source: str, output: str | Path, ops: Sequence[str] | None = None) -> str:
    """Import source ("onnx" or "opinfo") into output (replaced) and return a one-paragraph summary."""
    suite: Suite
    if source == "onnx":
        from cnnbench.conformance.onnx_import import build_onnx_suite

        suite = build_onnx_suite(ops)
    elif source == "opinfo":
        from cnnbench.conformance.opinfo import build_opinfo_suite

        suite = build_opinfo_suite(ops)
    else:
        raise UsageError(f"unknown suite {source!r}: expected onnx or opinfo")
    path = suite.write(output)
    return (
        f"{suite.title}: {suite.case_count} cases in {len(suite.files)} files, {len(suite.tensors)} tensor files, "
        f"{len(suite.skipped)} not imported and {len(suite.gaps)} without a reference check "
        f"(listed in {path / 'SKIPPED.md'})"
    )
