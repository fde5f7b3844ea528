"""Nothing lost: a run killed half-way keeps its rows, reports "incomplete", and --resume finishes it in place."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from cnnbench.cli import main
from cnnbench.errors import UsageError
from cnnbench.store.result import Result
from cnnbench.store.run import RunStore

#: Twelve cases of a convolution big enough to take a noticeable fraction of a second on a CPU, in two dtypes.
SLOW = "defaults: {devices: [cpu], dtypes: [float64, float32]}\ncases:\n" + "".join(
    f"""  - id: conv{i:02d}
    op: conv2d
    inputs: {{input: {{randn: [8, 32, 48, 48], seed: {i}}}, weight: {{randn: [32, 32, 3, 3]}}}}
    expect: {{shape: [8, 32, 46, 46]}}
"""
    for i in range(12)
)
TOTAL = 24


def _cnnbench(*args: str, cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "cnnbench", *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "CNNBENCH_REPORTS": str(cwd / "reports")},
    )


def _finish(proc: subprocess.Popen[str]) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=300)
    return proc.returncode, out, err


def _wait_for_rows(run_root: Path, n: int, proc: subprocess.Popen[str]) -> Path:
    """The run directory, once its results.jsonl has at least n complete rows."""
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the run ended before it could be stopped half-way"
        for results in run_root.glob("runs/*/results.jsonl"):
            if results.read_text().count("\n") >= n:
                return results.parent
        time.sleep(0.05)
    raise AssertionError("no rows appeared")


def _rows(run_dir: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in (run_dir / "results.jsonl").read_text().splitlines()]


def test_sigkill_keeps_rows_report_says_incomplete_and_resume_finishes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "cases").mkdir()
    (tmp_path / "cases" / "slow.yaml").write_text(SLOW)
    proc = _cnnbench("run", "cases/", cwd=tmp_path)
    run_dir = _wait_for_rows(tmp_path / "reports", 3, proc)
    proc.kill()
    proc.wait()
    killed_text = (run_dir / "results.jsonl").read_text()
    finished = [
        json.loads(line)["variant_id"]
        for line in killed_text.splitlines(keepends=True)
        if line.endswith("\n")
    ]
    assert 3 <= len(finished) < TOTAL
    assert json.loads((run_dir / "meta.json").read_text())["complete"] is False

    # The report and the resume run in this process (torch is imported already); only the kill needs a child.
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CNNBENCH_REPORTS", "reports")
    assert main(["report", "--format", "markdown"]) == 0
    md = capsys.readouterr().out
    assert "(incomplete: the run stopped before every variant ran)" in md.splitlines()[0]
    assert f"**{len(finished)} passed, 0 failed, 0 skipped** in {len(finished)} variants" in md
    assert main(["report", "--format", "json"]) == 0
    js = json.loads(capsys.readouterr().out)
    assert js["complete"] is False and [r["variant_id"] for r in js["results"]] == finished
    assert main(["report", "--format", "console"]) == 0
    assert f"{len(finished)} passed, 0 failed, 0 skipped (incomplete)" in capsys.readouterr().out

    assert main(["run", "--resume", run_dir.name]) == 0
    out = capsys.readouterr().out
    after = _rows(run_dir)
    ids = [str(r["variant_id"]) for r in after]
    assert len(ids) == TOTAL and len(set(ids)) == TOTAL, Counter(ids).most_common(2)
    whole_lines = "".join(line for line in killed_text.splitlines(keepends=True) if line.endswith("\n"))
    assert (
        (run_dir / "results.jsonl").read_text().startswith(whole_lines)
    )  # finished rows untouched, not re-run
    meta = json.loads((run_dir / "meta.json").read_text())
    assert meta["complete"] is True and len(meta["resumed_at"]) == 1
    assert meta["counts"] == {"passed": TOTAL}
    assert f"{TOTAL} passed" in out
    assert main(["report", "--format", "markdown"]) == 0
    assert "incomplete" not in capsys.readouterr().out


@pytest.mark.parametrize(("signum", "status"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_sigterm_and_ctrl_c_keep_finished_rows(tmp_path: Path, signum: int, status: int) -> None:
    (tmp_path / "cases").mkdir()
    (tmp_path / "cases" / "slow.yaml").write_text(SLOW)
    proc = _cnnbench("run", "cases/", cwd=tmp_path)
    run_dir = _wait_for_rows(tmp_path / "reports", 1, proc)
    proc.send_signal(signum)
    code, _, err = _finish(proc)
    assert code == status, err
    assert "Traceback" not in err
    assert "interrupted:" in err and f"cnnbench run --resume {run_dir.name}" in err
    meta = json.loads((run_dir / "meta.json").read_text())
    assert meta["complete"] is False and meta["finished_at"] is not None
    rows = _rows(run_dir)  # every line a whole row
    assert 1 <= len(rows) < TOTAL and meta["counts"] == {"passed": len(rows)}


def _row(variant_id: str) -> Result:
    return Result(variant_id, variant_id, "f.yaml", 1, "relu", "cpu", "float32", "passed")


def test_reopen_cuts_a_row_cut_short_and_appends(tmp_path: Path) -> None:
    writer = RunStore(tmp_path).create({"paths": ["x"]}, run_id="r1")
    writer.append(_row("a"))
    writer.close(complete=False)
    with open(writer.path / "results.jsonl", "a") as f:
        f.write('{"variant_id": "b", "case_')  # killed mid-write
    run = RunStore(tmp_path).load("r1")
    assert [r.variant_id for r in run.results] == ["a"] and run.dropped_lines == 1
    again = RunStore.reopen(run)
    again.append(_row("b"))
    again.close(complete=True)
    run = RunStore(tmp_path).load("r1")
    assert [r.variant_id for r in run.results] == ["a", "b"] and run.dropped_lines == 0
    assert run.complete and run.meta["counts"] == {"passed": 2}
    assert (tmp_path / "latest").read_text().strip() == "r1"


def test_resume_refuses_paths_and_unknown_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--resume", "nope", "--reports", str(tmp_path)]) == 2
    assert "no stored run 'nope'" in capsys.readouterr().err
    assert main(["run", "cases/", "--resume", "nope", "--reports", str(tmp_path)]) == 2
    assert "give no PATH or filter" in capsys.readouterr().err
    assert main(["run", "--reports", str(tmp_path)]) == 2
    assert "--resume RUN" in capsys.readouterr().err


def test_resume_of_a_complete_run_runs_nothing(
    write_case: Callable[..., Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    write_case(
        "cases:\n  - id: a\n    op: relu\n    devices: [cpu]\n    inputs: {input: [1.0]}\n    expect: {output: [1.0]}\n"
    )
    assert main(["run", "cases.yaml", "--reports", "r"]) == 0
    (run_dir,) = (tmp_path / "r" / "runs").iterdir()
    capsys.readouterr()
    assert main(["run", "--resume", str(run_dir), "--reports", "r"]) == 0
    assert len(_rows(run_dir)) == 1
    assert "1 passed" in capsys.readouterr().out


def test_resume_of_a_complete_run_does_not_load_its_case_files_again(
    write_case: Callable[..., Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Complete, nothing lost, the same case files (by hash): the summary of the stored run, its status as the
    exit code, without expanding the files again (most of a minute for a million variants). An edited file, a
    lost row or an incomplete run goes the whole way instead."""
    from cnnbench.execution import session
    from cnnbench.execution.resume import load_resume

    monkeypatch.chdir(tmp_path)
    body = "cases:\n  - id: a\n    op: relu\n    devices: [cpu]\n    inputs: {input: [1.0]}\n    expect: {output: [OUT]}\n"
    path = write_case(body.replace("OUT", "2.0"))  # a failing case: exit 1, from the stored rows
    assert main(["run", "cases.yaml", "--reports", "r"]) == 1
    (run_dir,) = (tmp_path / "r" / "runs").iterdir()
    assert load_resume(str(run_dir), "r").finished()
    loads: list[object] = []
    real = session.load_variants
    monkeypatch.setattr(session, "load_variants", lambda *a, **k: loads.append(a) or real(*a, **k))
    capsys.readouterr()
    assert main(["run", "--resume", str(run_dir), "--reports", "r"]) == 1
    out = capsys.readouterr().out
    assert "is complete: nothing left to run (1 row)" in out and "FAILED a[cpu-float32]" in out
    assert loads == []
    path.write_text(body.replace("OUT", "1.0"), encoding="utf-8")  # edited since: resumed the whole way
    assert not load_resume(str(run_dir), "r").finished()
    assert main(["run", "--resume", str(run_dir), "--reports", "r"]) == 1
    assert len(loads) == 1
    meta = json.loads((run_dir / "meta.json").read_text())
    meta["complete"] = False
    (run_dir / "meta.json").write_text(json.dumps(meta))
    assert not load_resume(str(run_dir), "r").finished()


def test_resume_rejects_runs_of_an_older_schema(tmp_path: Path) -> None:
    from cnnbench.execution.resume import load_resume

    run_dir = tmp_path / "runs" / "old"
    run_dir.mkdir(parents=True)
    (run_dir / "meta.json").write_text(json.dumps({"paths": ["cases"]}))  # no schema_version: version 0
    with pytest.raises(UsageError, match="older cnnbench"):
        load_resume("old", tmp_path)


def test_resume_builds_its_set_of_done_ids_once(tmp_path: Path) -> None:
    from cnnbench.execution.resume import load_resume

    writer = RunStore(tmp_path).create({"paths": ["x"]}, run_id="r1")
    for vid in ("a", "b", "c"):
        writer.append(_row(vid))
    writer.close(complete=False)
    with open(writer.path / "results.jsonl", "a") as f:
        f.write('{"variant_id": "d", "case_')  # torn last line
    resume = load_resume("r1", tmp_path)
    assert resume.done == {"a", "b", "c"}
    # One set for the whole run, not one per access (what made resuming 48,000 variants quadratic).
    assert resume.done is resume.done


def test_whether_a_run_is_finished_is_known_without_parsing_its_rows(tmp_path: Path) -> None:
    """load_resume(rows=False) + finished(): the rows' lines are counted, not parsed; a torn last line or a row
    short of the selection means something is left to run."""
    from cnnbench.casefile.load import case_files_hash
    from cnnbench.execution.resume import load_resume

    cases = tmp_path / "c.yaml"
    cases.write_text("cases: []\n", encoding="utf-8")
    meta = {"paths": [str(cases)], "case_files_hash": case_files_hash([str(cases)]), "variants_selected": 3}
    writer = RunStore(tmp_path).create(meta, run_id="r1")
    for vid in ("a", "b", "c"):
        writer.append(_row(vid))
    writer.close(complete=True)
    quick = load_resume("r1", tmp_path, rows=False)
    assert quick.run.results == [] and RunStore.count_rows(quick.run) == (3, False)
    assert quick.finished() and load_resume("r1", tmp_path).finished()
    results = writer.path / "results.jsonl"
    results.write_bytes(results.read_bytes()[:-10])  # the last row torn
    assert RunStore.count_rows(load_resume("r1", tmp_path, rows=False).run) == (2, True)
    assert not load_resume("r1", tmp_path, rows=False).finished()
    assert not load_resume("r1", tmp_path).finished()
