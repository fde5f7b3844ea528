"""Shared fixtures: writing case files into a temporary folder."""

from __future__ import annotations

import os
import tempfile
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
import torch._dynamo  # noqa: F401  (see below)

# pytester's in-process runs (tests/test_pytest_plugin.py) drop every module an inner run imported. torch._dynamo,
# imported lazily by torch.optim's first step and by torch.compile, imports torch._inductor.test_operators, which
# registers a TORCH_LIBRARY that cannot be registered twice in one process: imported once here, it outlives every
# inner run, so no later test re-imports it.

#: Malformed case files (tests/casefile/test_corpus.py feeds them to the CLI); the cnnbench plugin must not collect them.
collect_ignore_glob = ["corpus/*"]

# Runs made by the tests (subprocesses included) probe the machine's ceilings with the tiny plan, into one folder
# of their own: never the full 15 s probe, never the repository's reports/machines.
os.environ.setdefault("CNNBENCH_PROBE", "quick")
os.environ.setdefault("CNNBENCH_MACHINES", tempfile.mkdtemp(prefix="cnnbench-machines-"))


@pytest.fixture
def write_case(tmp_path: Path) -> Callable[..., Path]:
    """Write dedented YAML text to tmp_path/name and return its path."""

    def write(text: str, name: str = "cases.yaml") -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        return path

    return write
