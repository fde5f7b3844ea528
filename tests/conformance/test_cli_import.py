"""`cnnbench import` end to end in a subprocess: the suite is written and runs; bad usage exits 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


def _cnnbench(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cnnbench", *args], check=False, cwd=cwd, capture_output=True, text=True
    )


def test_import_onnx_then_run_it(tmp_path: Path) -> None:
    pytest.importorskip("onnx")
    proc = _cnnbench("import", "onnx", "--ops", "Conv", "-o", "suite", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "cases in 1 files" in " ".join(proc.stdout.split())
    assert sorted(p.name for p in (tmp_path / "suite").iterdir()) == ["SKIPPED.md", "conv.yaml"]
    run = _cnnbench("run", "suite", "--device", "cpu", "--no-save", cwd=tmp_path)
    assert run.returncode == 0, run.stdout
    assert "0 failed" in run.stdout


def test_import_bad_usage_exits_2(tmp_path: Path) -> None:
    assert _cnnbench("import", "tflite", "-o", "x", cwd=tmp_path).returncode == 2
    proc = _cnnbench("import", "opinfo", "--ops", "nonsense", "-o", "x", cwd=tmp_path)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and "nonsense" in proc.stderr
    assert not (tmp_path / "x").exists()
