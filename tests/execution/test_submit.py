"""cnnbench submit (cnnbench.execution.submit) through submitit's local executor: submit, wait, merge, report."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from cnnbench.cli import main
from cnnbench.errors import UsageError
from cnnbench.execution.session import RunOptions
from cnnbench.execution.shard import shard_of
from cnnbench.execution.submit import SubmitOptions, parse_slurm_option, submit
from cnnbench.store.run import RunStore

pytest.importorskip("submitit")

CASES = "defaults: {devices: [cpu], dtypes: [float32, float64]}\ncases:\n" + "\n".join(
    f"  - {{id: relu-{i}, op: relu, inputs: {{x: [{i - 3}.0]}}, expect: {{output: [{max(i - 3, 0)}.0]}}}}"
    for i in range(8)
)
ALL = sorted(f"relu-{i}[cpu-{d}]" for i in range(8) for d in ("float32", "float64"))


def test_submit_local_executor_runs_the_shards_merges_and_reports(
    write_case: Callable[..., Path], tmp_path: Path
) -> None:
    cases = write_case(CASES)
    proc = subprocess.run(
        [sys.executable, "-m", "cnnbench", "submit", str(cases), "--shards", "3", "--executor", "local",
         "--folder", str(tmp_path / "shared"), "--reports", str(tmp_path / "r"), "--time", "10"],
        cwd=tmp_path, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "16 passed" in proc.stdout and "merged 3 shards into" in proc.stdout
    merged = RunStore(tmp_path / "r").load(None)  # the merged run is the latest
    assert merged.complete and merged.meta["missing_shards"] == []
    assert sorted(r.variant_id for r in merged.results) == ALL
    assert sorted(m["shard"] for m in merged.meta["merged_from"]) == ["1/3", "2/3", "3/3"]
    for k in (1, 2, 3):  # each task stored its own run in the shared folder
        shard = RunStore(tmp_path / "shared" / "shards" / str(k)).load(None)
        assert shard.meta["shard"] == f"{k}/3" and all(shard_of(r.variant_id, 3) == k for r in shard.results)
    report = subprocess.run(
        [sys.executable, "-m", "cnnbench", "report", "--reports", str(tmp_path / "r"), "--format", "json"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert report.returncode == 0 and len(json.loads(report.stdout)["results"]) == 16


def test_a_failed_shard_leaves_an_incomplete_run_that_resume_finishes(
    write_case: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    cases = write_case(CASES)
    shared = tmp_path / "shared"
    (shared / "shards").mkdir(parents=True)
    (shared / "shards" / "2").write_text("not a folder: the task storing shard 2 fails")
    options = RunOptions(paths=(str(cases),))
    values = {k: getattr(options, k) for k in RunOptions.__dataclass_fields__ if k != "shard"}
    done = submit(values, SubmitOptions(shards=2, folder=shared, executor="local"), tmp_path / "r")
    assert list(done.failures) == [2]
    merged = done.merged
    assert not merged.complete and merged.meta["missing_shards"] == ["2/2"]
    assert {shard_of(r.variant_id, 2) for r in merged.results} == {1}
    assert main(["run", "--resume", str(merged.path), "--reports", str(tmp_path / "r")]) == 0
    resumed = RunStore(tmp_path / "r").load(str(merged.path))
    assert resumed.complete and sorted(r.variant_id for r in resumed.results) == ALL


def test_submit_without_submitit_names_the_extra(
    write_case: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    monkeypatch.setitem(sys.modules, "submitit", None)  # import submitit raises ImportError
    cases = write_case(CASES)
    code = main(
        ["submit", str(cases), "--shards", "2", "--folder", str(tmp_path / "s"), "--reports", str(tmp_path)]
    )
    assert code == 2
    assert "pip install 'cnnbench[slurm]'" in capsys.readouterr().err


def test_bad_submit_input_is_refused_before_submitting(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["submit", "nowhere.yaml", "--shards", "2", "--folder", str(tmp_path)]) == 2
    assert main(["submit", "x.yaml", "--shards", "0", "--folder", str(tmp_path)]) == 2
    assert not (tmp_path / "submitit").exists()
    assert parse_slurm_option("--constraint=a100") == ("constraint", "a100")
    with pytest.raises(UsageError, match="KEY=VALUE"):
        parse_slurm_option("constraint")
