"""Variants in worker processes (cnnbench.execution.isolation): crashes and hangs become error rows, the run goes on.

Faults are injected by tests/faults/sitecustomize.py, which only a worker started with tests/faults on
PYTHONPATH and CNNBENCH_TEST_FAULTS set ever imports: no case file can crash a worker on purpose.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from repo import REPO

from cnnbench.casefile.load import load_file
from cnnbench.casefile.variants import Variant, expand
from cnnbench.execution.dispatch import run_variant
from cnnbench.execution.isolation import IsolatedRunner, describe_exit

FAULTS_DIR = REPO / "tests" / "faults"

CASES = """
defaults: {devices: [cpu], dtypes: [float32]}
cases:
  - id: ok1
    op: relu
    inputs: {input: [1.0, -1.0]}
    expect: {output: [1.0, 0.0]}
  - id: segv
    op: relu
    inputs: {input: [1.0]}
    expect: {output: [1.0]}
  - id: ok2
    op: tanh
    inputs: {input: [0.0]}
    expect: {output: [0.0]}
  - id: abort
    op: relu
    inputs: {input: [1.0]}
    expect: {output: [1.0]}
    xfail: [{reason: "known to abort"}]
  - id: hang
    op: relu
    inputs: {input: [1.0]}
    expect: {output: [1.0]}
  - id: ok3
    op: sigmoid
    inputs: {input: [0.0]}
    expect: {output: [0.5]}
"""

#: Every status a row can have in-process, to compare with the isolated rows.
MIXED = """
defaults: {devices: [cpu, cuda], dtypes: [float32, float64]}
cases:
  - id: passes
    op: conv2d
    inputs: {input: {arange: [1, 1, 3, 3]}, weight: {ones: [1, 1, 2, 2]}}
    expect: {output: [[[[8, 12], [20, 24]]]]}
  - id: fails
    op: relu
    inputs: {input: [1.0, -2.0]}
    expect: {output: [1.0, -2.0]}
  - id: errors
    module: Conv2d
    args: {in_channels: 2, out_channels: 1, kernel_size: 1}
    inputs: {input: {randn: [1, 3, 2, 2], seed: 1}}
    expect: {shape: [1, 1, 2, 2]}
  - id: expected-error
    op: max_pool2d
    args: {kernel_size: 5}
    inputs: {input: {randn: [1, 1, 2, 2]}}
    expect: {error: {type: RuntimeError, match: "too small"}}
  - id: xfails
    op: relu
    inputs: {input: [-1.0]}
    expect: {output: [5.0]}
    xfail: [{dtype: float64, reason: "demonstrates xfail"}]
    skip: [{dtype: float32, device: cpu, reason: "demonstrates skip"}]
"""


@pytest.fixture
def faults(monkeypatch: pytest.MonkeyPatch) -> Callable[[dict[str, str]], None]:
    """Make workers started from now on crash, hang or exit on the given variant ids."""

    def arm(spec: dict[str, str]) -> None:
        monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(FAULTS_DIR), os.environ.get("PYTHONPATH", "")]))
        monkeypatch.setenv("CNNBENCH_TEST_FAULTS", ";".join(f"{k}={v}" for k, v in spec.items()))

    return arm


def _variants(path: Path) -> list[Variant]:
    return list(expand(load_file(path).cases))


def test_crash_abort_and_hang_are_rows_and_the_run_goes_on(
    write_case: Callable[..., Path], faults: Callable[[dict[str, str]], None]
) -> None:
    faults({"segv[cpu-float32]": "segv", "abort[cpu-float32]": "abort", "hang[cpu-float32]": "hang"})
    variants = _variants(write_case(CASES))
    with IsolatedRunner(timeout=4) as run:
        rows = {v.case.id: run(v) for v in variants}
        restarts = run.restarts
    assert [rows[c].status for c in ("ok1", "ok2", "ok3")] == ["passed"] * 3
    assert rows["segv"].status == "error"
    assert rows["segv"].message == "worker killed by signal 11 (SIGSEGV: invalid memory access)"
    # The case expects this variant to fail, so its crash is an expected failure, like an exception would be.
    assert rows["abort"].status == "xfail"
    assert rows["abort"].message.startswith("worker killed by signal 6 (SIGABRT")
    assert rows["hang"].status == "error"
    assert rows["hang"].message == "timed out after 4 s; the worker running it was killed"
    assert 4 <= rows["hang"].duration_s < 60
    assert rows["segv"].variant_id == "segv[cpu-float32]" and rows["segv"].line == 7
    assert restarts == 3


def test_isolated_rows_equal_in_process_rows(write_case: Callable[..., Path]) -> None:
    variants = _variants(write_case(MIXED))
    inline = [run_variant(v).to_json() for v in variants]
    with IsolatedRunner() as run:
        isolated = [run(v).to_json() for v in variants]
        assert run.restarts == 0
    for row in (*inline, *isolated):
        row.pop("duration_s")
    assert isolated == inline
    assert {r["status"] for r in inline} == {"passed", "failed", "error", "skipped", "xfail"}


def test_cli_isolate_turns_a_segfault_into_an_error_row(
    write_case: Callable[..., Path], tmp_path: Path, faults: Callable[[dict[str, str]], None]
) -> None:
    faults({"segv[cpu-float32]": "segv"})
    path = write_case(CASES, "cases/c.yaml")
    env = {**os.environ, "CNNBENCH_REPORTS": str(tmp_path / "reports")}
    proc = subprocess.run(
        [sys.executable, "-m", "cnnbench", "run", str(path), "-k", "not hang", "--isolate"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout
    assert "worker killed by signal 11 (SIGSEGV" in proc.stdout
    (run_dir,) = (tmp_path / "reports" / "runs").iterdir()
    rows = [json.loads(line) for line in (run_dir / "results.jsonl").read_text().splitlines()]
    assert {r["case_id"]: r["status"] for r in rows} == {
        "ok1": "passed",
        "segv": "error",
        "ok2": "passed",
        "abort": "xpass",  # no fault armed for it here: it passes, against its xfail rule
        "ok3": "passed",
    }
    meta = json.loads((run_dir / "meta.json").read_text())
    assert meta["complete"] is True
    assert meta["options"] == {"isolate": True, "timeout": None, "max_case_bytes": 2**30}


def test_worker_exit_and_oom_kill_are_named() -> None:
    assert (
        describe_exit(-signal.SIGKILL)
        == "worker killed by signal 9 (SIGKILL: out of memory, or killed from outside)"
    )
    assert describe_exit(-signal.SIGSEGV) == "worker killed by signal 11 (SIGSEGV: invalid memory access)"
    assert describe_exit(-signal.SIGTERM) == "worker killed by signal 15 (SIGTERM)"
    assert describe_exit(3) == "worker exited with status 3"
    assert describe_exit(-200) == "worker killed by signal 200"


def test_oom_kill_and_exit_in_a_worker(
    write_case: Callable[..., Path], faults: Callable[[dict[str, str]], None]
) -> None:
    faults({"ok1[cpu-float32]": "oom", "ok2[cpu-float32]": "exit"})
    variants = [v for v in _variants(write_case(CASES)) if v.case.id in ("ok1", "ok2", "ok3")]
    with IsolatedRunner() as run:
        rows = [run(v) for v in variants]
    assert [r.status for r in rows] == ["error", "error", "passed"]
    assert rows[0].message.startswith("worker killed by signal 9 (SIGKILL")
    assert rows[1].message == "worker exited with status 3"


@pytest.mark.parametrize("value", ["0", "-1", "nan"])
def test_bad_timeout_is_a_usage_error(value: str, write_case: Callable[..., Path], tmp_path: Path) -> None:
    path = write_case(CASES)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "cnnbench",
            "run",
            str(path),
            "--timeout",
            value,
            "--reports",
            str(tmp_path / "r"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 2
    assert "--timeout" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "r").exists()
