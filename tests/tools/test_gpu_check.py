"""tools/gpu-check and tools/gpu_check.py: every phase runs, stores its run and writes markdown and HTML, the
summary has the per-dtype table, TF32 tolerances and throughput, the last line is "N passed, N failed"; a
phase that overruns its share of the limit counts as a failure. The phases run the CLI in-process here (the
subprocess per phase is what the real check pays); the wrapper's usage is checked in a subprocess."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from cnnbench import device
from cnnbench.cli import main as cli_main
from cnnbench.numerics.precision import FP32_PRECISION_ENV

REPO = Path(__file__).resolve().parents[2]

TINY = """
defaults: {devices: [cpu, cuda], dtypes: [float64, float32, float16]}
cases:
  - id: conv
    op: conv2d
    inputs: {input: {randn: [1, 4, 6, 6], seed: 1}, weight: {randn: [2, 4, 3, 3], seed: 2}}
    expect: {reference: numpy}
  - id: xf
    op: relu
    inputs: {x: [-1.0, 2.0]}
    expect: {output: [0.0, 3.0]}
    xfail: [{reason: "a known wrong expectation"}]
benchmarks:
  - id: relu
    op: relu
    devices: [cpu]
    dtypes: [float32, bfloat16]
    autocast: [false, true]
    inputs: {x: {randn: [64, 64]}}
    max_time_s: 0.05
"""


def _load_tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gpu_check", REPO / "tools" / "gpu_check.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


tool = _load_tool()


def _in_process(*args: str, timeout: float | None = None) -> subprocess.CompletedProcess[str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = cli_main(list(args))
    return subprocess.CompletedProcess(list(args), rc, out.getvalue(), err.getvalue())


@pytest.fixture
def in_process(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(tool, "_cnnbench", _in_process)
    # The run's --fp32-precision goes to this variable (for its workers): set here, so teardown removes it.
    monkeypatch.setenv(FP32_PRECISION_ENV, "default")
    saved = device._current_flags()
    yield
    device._restore_flags(saved)


def test_cpu_check_end_to_end(in_process: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    case = tmp_path / "tiny.yaml"
    case.write_text(TINY)
    out = tmp_path / "out"
    rc = tool.main([str(out), "--device", "cpu", "--cases", str(case), "--bench", str(case)])
    printed = capsys.readouterr().out.strip().splitlines()
    assert rc == 0, printed
    # 2 + 1 + 1 numerics (on the CPU float32 runs in the IEEE and TF32 phases only), 3 benchmark rows
    assert printed[-1] == "7 passed, 0 failed"
    assert printed[-2].startswith("(4 xfail, 0 skipped")  # the xf case in 2 + 1 + 1 numerics variants
    for phase in ("numerics", "float32-ieee", "float32-tf32", "bench"):
        assert (out / f"{phase}.md").read_text().startswith("# cnnbench run")
        assert "<html" in (out / f"{phase}.html").read_text().lower()
    assert len(list((out / "store" / "runs").iterdir())) == 4
    summary = (out / "summary.md").read_text()
    assert "| float32-tf32 | float32 | tf32 | 1 | 0 | 0 | 0 |" in summary
    assert "| float32-ieee | float32 | ieee | 1 | 0 | 1 | 0 |" in summary  # conv passed, relu xfail
    assert "| float32-tf32 | float32 | ieee | 0 | 0 | 1 | 0 |" in summary  # relu: no flag applies
    assert "| conv[cpu-float32] | passed |" in summary  # the TF32 tolerance table
    assert "relu[cpu-bfloat16-b64-inference-contiguous-autocast]" in summary


def test_a_phase_over_its_share_is_a_failure(
    in_process: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    case = tmp_path / "tiny.yaml"
    case.write_text(TINY)

    def slow(*args: str, timeout: float | None = None) -> subprocess.CompletedProcess[str]:
        if "--kind" in args and args[args.index("--kind") + 1] == "bench":
            raise subprocess.TimeoutExpired(list(args), timeout or 0, output=b"partial")
        return _in_process(*args, timeout=timeout)

    monkeypatch.setattr(tool, "_cnnbench", slow)
    rc = tool.main([str(tmp_path / "out"), "--device", "cpu", "--cases", str(case), "--bench", str(case)])
    printed = capsys.readouterr().out.strip().splitlines()
    assert rc == 1 and printed[-1] == "4 passed, 1 failed"
    assert "TIMED OUT" in (tmp_path / "out" / "summary.md").read_text()
    assert "partial" in (tmp_path / "out" / "bench.log").read_text()


def test_missing_gpu_is_exit_2(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(tool, "_gpu_name", lambda device: "none")
    assert tool.main([str(tmp_path), "--device", "cuda"]) == 2


def test_shares_split_the_remaining_time() -> None:
    assert sum(tool.SHARES.values()) <= 1.0 and 0 < tool.RESERVE < 1


def test_wrapper_without_out_dir_prints_usage_and_exits_2() -> None:
    proc = subprocess.run([str(REPO / "tools" / "gpu-check")], capture_output=True, text=True, check=False)
    assert proc.returncode == 2 and "OUT_DIR" in proc.stderr
