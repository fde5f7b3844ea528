"""Gate power: an ATen kernel broken in one corner of the geometry (tests/fuzz_faults.py, registered below the
Python API in a subprocess) is found by a short fuzz and shrunk to a minimal case; unbroken torch gives nothing.

Slow (a few subprocesses of a few seconds each): marked so, and still part of ``make test``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from repo import REPO

from cnnbench.casefile.load import load_file

pytestmark = pytest.mark.slow

FAULTS = REPO / "tests" / "fuzz_faults.py"
#: Seconds of fuzzing per target: every fault is found within the first few hundred checks.
PER_TARGET_S = 6


def _fuzz(cwd: Path, *args: str, fault: str | None = None) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, str(FAULTS), fault] if fault else [sys.executable, "-m", "cnnbench"]
    return subprocess.run(
        [*command, "fuzz", *args, "--seed", "0", "-o", "found"],
        check=False, cwd=cwd, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


ALL_FAULTS = {
    "conv2d": "conv-dilation2-stride3",
    "max_pool2d": "max-pool-ceil-padding",
    "avg_pool2d": "avg-pool-partial-window",
}


@pytest.fixture(scope="module")
def broken(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Any, dict[str, Any]]]:
    """One fuzz of the three targets with the three faults in: each target stops at its first failure."""
    cwd = tmp_path_factory.mktemp("broken")
    targets = list(ALL_FAULTS)
    started = time.perf_counter()
    proc = _fuzz(
        cwd, *targets, "--budget", f"{PER_TARGET_S * len(targets)}s", fault=",".join(ALL_FAULTS.values())
    )
    elapsed = time.perf_counter() - started
    assert proc.returncode == 1, proc.stdout + proc.stderr
    (run_dir,) = (cwd / "reports" / "runs").iterdir()
    rows = [json.loads(line) for line in (run_dir / "results.jsonl").read_text().splitlines()]
    failed = {r["target"]: r for r in rows if r["status"] == "failed"}
    assert set(failed) == set(targets), proc.stdout
    found = {}
    for target, row in failed.items():
        (case,) = load_file(row["file"]).cases
        spec = case.spec
        assert spec.source == "fuzz" and spec.op == target and "--seed 0" in (spec.note or "")
        print(f"{ALL_FAULTS[target]}: found after {row['metrics']['fuzz_checks']} checks: {spec.args}")
        found[target] = (spec, {name: list(t.randn) for name, t in spec.inputs.items()})  # type: ignore[attr-defined]
    assert len(list((cwd / "found").iterdir())) == 3
    print(f"the three faults found and shrunk in {elapsed:.1f}s (wall, with start-up)")
    return found


def _dims(value: Any) -> list[int]:
    return [value, value] if isinstance(value, int) else list(value)


def test_a_conv_wrong_only_for_dilation_2_with_stride_3_is_found_and_minimal(broken: dict[str, Any]) -> None:
    spec, shapes = broken["conv2d"]
    assert shapes == {"input": [1, 1, 1, 1], "weight": [1, 1, 1, 1]}  # no bias, one channel, kernel 1
    pairs = sorted(zip(_dims(spec.args["stride"]), _dims(spec.args["dilation"]), strict=True))
    assert pairs == [(1, 1), (3, 2)]
    assert spec.args.get("padding", 0) in (0, "valid") and "groups" not in spec.args
    assert spec.fill == "exact" and spec.memory_formats is None


def test_a_max_pool_wrong_only_for_ceil_mode_with_padding_is_found_and_minimal(
    broken: dict[str, Any],
) -> None:
    spec, shapes = broken["max_pool2d"]
    assert shapes == {"input": [1, 1, 1, 1]}
    assert spec.args["ceil_mode"] is True
    assert sorted(_dims(spec.args["padding"])) == [0, 1]  # padding 1 in one dim: the least the fault needs
    assert sorted(_dims(spec.args["kernel_size"])) == [1, 2]  # the least kernel allowing padding 1
    assert _dims(spec.args.get("dilation", 1)) == [1, 1] and "return_indices" not in spec.args


def test_an_avg_pool_wrong_only_for_a_partial_last_window_is_found_and_minimal(
    broken: dict[str, Any],
) -> None:
    spec, shapes = broken["avg_pool2d"]
    (shape,) = shapes.values()
    assert shape[:2] == [1, 1] and sorted(shape[2:]) in ([1, 3], [1, 2])
    assert spec.args["ceil_mode"] is True and "divisor_override" not in spec.args
    kernel = _dims(spec.args["kernel_size"])
    assert sorted(kernel) == [1, 2]


def test_the_same_fuzz_on_unbroken_torch_finds_nothing(tmp_path: Path) -> None:
    targets = ("conv2d", "max_pool2d", "avg_pool2d")
    # A count, not only a time: with seed 0, conv2d's 1282nd configuration is a real torch 2.14 CPU segfault
    # (channels_last grouped conv2d with a bias, docs/fuzzing.md), which a quiet machine reaches in the time.
    proc = _fuzz(tmp_path, *targets, "--budget", f"{PER_TARGET_S * len(targets)}s", "--examples", "1000")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "nothing found" in proc.stdout and not (tmp_path / "found").exists()
    (run_dir,) = (tmp_path / "reports" / "runs").iterdir()
    checked = json.loads((run_dir / "meta.json").read_text())["fuzz"]["checked"]
    assert all(checked[t] >= 50 for t in targets), checked
    print(f"unbroken: {checked}")


def test_a_crash_is_an_error_row_and_a_shrunk_case_and_the_fuzz_goes_on(tmp_path: Path) -> None:
    proc = _fuzz(
        tmp_path, "conv1d", "relu", "--budget", "20s", "--examples", "200", fault="conv-segfault-groups2"
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "found crash in conv1d" in proc.stdout and "relu 200" in " ".join(proc.stdout.split())
    (path,) = (tmp_path / "found").iterdir()
    (case,) = load_file(path).cases
    spec = case.spec
    shapes = {name: list(t.randn) for name, t in spec.inputs.items()}  # type: ignore[attr-defined]
    assert spec.args.get("groups") == 2 and shapes == {"input": [1, 2, 1], "weight": [2, 1, 1]}
    assert "SIGSEGV" in (spec.note or "") and "shrunk" in (spec.note or "")
    (run_dir,) = (tmp_path / "reports" / "runs").iterdir()
    rows = [json.loads(line) for line in (run_dir / "results.jsonl").read_text().splitlines()]
    crashed = [r for r in rows if r["status"] == "error"]
    assert (
        len(crashed) == 1 and crashed[0]["file"] == str(path) and "crashed (SIGSEGV)" in crashed[0]["message"]
    )
    assert sum(r["target"] == "relu" for r in rows) == 200  # the next target ran
    assert json.loads((run_dir / "meta.json").read_text())["complete"]
