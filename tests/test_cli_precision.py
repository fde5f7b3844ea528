"""End-to-end: --fp32-precision pins the run and every row records its compute precision; an unknown device,
in a case file or on the command line, is exit 2 naming the devices this machine has (cnnbench.cli)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from test_cli import cnnbench

from cnnbench.device import available

CASES = """
defaults: {devices: [cpu, accelerator], dtypes: [float32, float16]}
cases:
  - id: conv
    op: conv2d
    inputs:
      input: {randn: [1, 4, 6, 6], seed: 1}
      weight: {randn: [2, 4, 3, 3], seed: 2}
    expect: {reference: numpy}
  - id: relu
    op: relu
    inputs: {input: [[-1.0, 2.0]]}
    expect: {output: [[0.0, 2.0]]}
"""


def _rows(tmp_path: Path) -> dict[str, dict[str, object]]:
    (run_dir,) = (tmp_path / "reports" / "runs").iterdir()
    lines = (run_dir / "results.jsonl").read_text().splitlines()
    return {row["variant_id"]: row for row in map(json.loads, lines)}


def test_fp32_precision_is_pinned_recorded_and_reported(
    write_case: Callable[..., Path], tmp_path: Path
) -> None:
    write_case(CASES, "cases/a.yaml")
    proc = cnnbench("run", "cases/", "--fp32-precision", "tf32", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = _rows(tmp_path)
    assert rows["conv[cpu-float32]"]["compute_precision"] == "tf32"  # oneDNN's flag, pinned
    assert rows["relu[cpu-float32]"]["compute_precision"] == "ieee"  # elementwise: no flag applies
    assert rows["conv[cpu-float16]"]["compute_precision"] == "float16"
    accel = rows["conv[accelerator-float32]"]
    if available() == ["cpu"]:
        assert accel["status"] == "skipped" and "no accelerator" in str(accel["reason"])
    else:
        assert accel["status"] == "passed" and accel["compute_precision"] == "tf32"
    (run_dir,) = (tmp_path / "reports" / "runs").iterdir()
    meta = json.loads((run_dir / "meta.json").read_text())
    assert meta["options"]["fp32_precision"] == "tf32"
    assert meta["environment"]["mkldnn_conv_fp32_precision"] == "tf32"
    assert meta["environment"]["conv_compute_precision_cpu"] == "tf32"
    md = cnnbench("report", "--format", "markdown", cwd=tmp_path)
    assert md.returncode == 0 and "float32 on cpu: conv tf32, matmul tf32" in md.stdout


def test_fp32_precision_ieee_on_the_cpu_by_default(write_case: Callable[..., Path], tmp_path: Path) -> None:
    write_case(CASES, "cases/a.yaml")
    proc = cnnbench("run", "cases/", "--device", "cpu", "--isolate", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert _rows(tmp_path)["conv[cpu-float32]"]["compute_precision"] == "ieee"


def test_bad_fp32_precision_flag_is_usage_error(write_case: Callable[..., Path], tmp_path: Path) -> None:
    write_case(CASES, "cases/a.yaml")
    proc = cnnbench("run", "cases/", "--fp32-precision", "fp16", cwd=tmp_path)
    assert proc.returncode == 2 and "--fp32-precision" in proc.stderr


def test_unknown_device_in_a_case_file_names_the_line_and_this_machines_devices(
    write_case: Callable[..., Path], tmp_path: Path
) -> None:
    write_case(CASES.replace("[cpu, accelerator]", "[cpu, cdua]"), "cases/a.yaml")
    proc = cnnbench("run", "cases/", cwd=tmp_path)
    assert proc.returncode == 2
    assert "cases/a.yaml:1:27: defaults.devices[1]" in proc.stderr and 'unknown device "cdua"' in proc.stderr
    assert "this machine has: cpu" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_unknown_device_flag_names_this_machines_devices(
    write_case: Callable[..., Path], tmp_path: Path
) -> None:
    write_case(CASES, "cases/a.yaml")
    proc = cnnbench("run", "cases/", "--device", "tpu", cwd=tmp_path)
    assert proc.returncode == 2
    assert "--device tpu: unknown device" in proc.stderr and "this machine has: cpu" in proc.stderr


def test_an_in_process_run_gives_the_flags_back(write_case: Callable[..., Path], tmp_path: Path) -> None:
    import os

    import torch

    from cnnbench.cli import main
    from cnnbench.numerics.precision import FP32_PRECISION_ENV

    path = write_case(CASES, "cases/a.yaml")
    before = (torch.backends.mkldnn.conv.fp32_precision, torch.get_float32_matmul_precision())  # type: ignore[attr-defined]
    assert FP32_PRECISION_ENV not in os.environ
    rc = main(
        ["run", str(path), "--fp32-precision", "tf32", "--device", "cpu", "--reports", str(tmp_path / "r")]
    )
    assert rc == 0
    assert FP32_PRECISION_ENV not in os.environ
    after = (torch.backends.mkldnn.conv.fp32_precision, torch.get_float32_matmul_precision())  # type: ignore[attr-defined]
    assert after == before
