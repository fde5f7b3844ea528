"""End-to-end: ``cnnbench fuzz`` and ``cnnbench shrink`` in a subprocess (exit codes, stored runs, files)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from repo import REPO

FAULTS = REPO / "tests" / "fuzz_faults.py"


def cnnbench(*args: str, cwd: Path, fault: str | None = None) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, str(FAULTS), fault] if fault else [sys.executable, "-m", "cnnbench"]
    return subprocess.run(
        [*command, *args], check=False, cwd=cwd, capture_output=True, text=True, timeout=300
    )


def _variant_ids(run_dir: Path) -> list[str]:
    lines = (run_dir / "results.jsonl").read_text().splitlines()
    return [json.loads(line)["variant_id"] for line in lines]


def test_nothing_found_exits_0_and_the_run_is_stored_and_reported(tmp_path: Path) -> None:
    proc = cnnbench("fuzz", "relu", "max_pool1d", "--examples", "30", "--seed", "3", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "60 configurations checked" in proc.stdout and "nothing found" in proc.stdout
    (run_dir,) = (tmp_path / "reports" / "runs").iterdir()
    meta = json.loads((run_dir / "meta.json").read_text())
    assert (
        meta["complete"]
        and meta["fuzz"]["seed"] == 3
        and meta["fuzz"]["checked"] == {"relu": 30, "max_pool1d": 30}
    )
    assert meta["counts"].get("passed", 0) + meta["counts"].get("mistrusted", 0) == 60
    assert len(_variant_ids(run_dir)) == 60
    report = cnnbench("report", "--format", "json", cwd=tmp_path)
    assert report.returncode == 0 and len(json.loads(report.stdout)["results"]) == 60
    assert not (tmp_path / "cases").exists()  # nothing found, nothing written
    assert not (tmp_path / ".hypothesis").exists()  # hypothesis's caches live under reports/
    assert (tmp_path / "reports" / "hypothesis").is_dir()


def test_the_same_seed_gives_the_same_examples(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from cnnbench.cli import main

    monkeypatch.chdir(tmp_path)
    runs = []
    for seed in ("5", "5", "6"):
        assert main(["fuzz", "conv1d", "--examples", "25", "--seed", seed, "--reports", "r" + seed]) == 0
        runs.append(sorted((tmp_path / ("r" + seed) / "runs").iterdir())[-1])
    first, again, other = (_variant_ids(r) for r in runs)
    assert first == again and len(first) == 25
    assert first != other


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["conv4d"], "unknown fuzz target conv4d; valid targets: "),
        (["conv2d", "--budget", "0s"], "expected a positive duration"),
        (["conv2d", "--budget", "soon"], "expected a positive duration"),
        (["conv2d", "--budget", "-5"], "expected a positive duration"),
        (["conv2d", "-o", "/"], "is outside the project"),
        (["conv2d", "--dtype", "int64"], "fuzz checks against the float reference"),
        (["conv2d", "--device", "tpu"], "unknown device"),
        (["conv2d", "--examples", "0"], "expected a whole number >= 1"),
    ],
)
def test_bad_usage_exits_2_with_a_message(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    message: str,
) -> None:
    from cnnbench.cli import main

    monkeypatch.chdir(tmp_path)
    assert main(["fuzz", *args]) == 2
    err = capsys.readouterr().err
    assert message in " ".join(err.split()) and "Traceback" not in err
    assert not (tmp_path / "reports").exists()


def test_bad_usage_exits_2_from_the_command_line(tmp_path: Path) -> None:
    proc = cnnbench("fuzz", "conv2d", "nonsense", cwd=tmp_path)
    assert (
        proc.returncode == 2
        and "unknown fuzz target nonsense" in proc.stderr
        and "Traceback" not in proc.stderr
    )


def test_missing_hypothesis_exits_2(tmp_path: Path) -> None:
    code = "import sys; sys.modules['hypothesis'] = None; from cnnbench.cli import main; raise SystemExit(main(sys.argv[1:]))"
    proc = subprocess.run(
        [sys.executable, "-c", code, "fuzz", "conv2d"],
        check=False,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2 and "pip install 'cnnbench[fuzz]'" in proc.stderr


def test_shrink_writes_the_smallest_still_failing_case(tmp_path: Path) -> None:
    case = tmp_path / "cases.yaml"
    case.write_text(
        "cases:\n"
        "  - id: wide\n"
        "    op: conv2d\n"
        "    fill: exact\n"
        "    args: {stride: 3, dilation: 2, padding: 1}\n"
        "    inputs:\n"
        "      input: {randn: [3, 4, 12, 10], seed: 1}\n"
        "      weight: {randn: [5, 4, 3, 2], seed: 2}\n"
        "      bias: {randn: [5], seed: 3}\n"
        "    devices: [cpu]\n"
        "    expect: {reference: numpy}\n"
    )
    ok = cnnbench("shrink", "wide[cpu-float32]", str(case), cwd=tmp_path)
    assert ok.returncode == 0 and "does not fail" in ok.stdout, ok.stdout + ok.stderr
    proc = cnnbench(
        "shrink", "wide[cpu-float32]", str(case), "-o", "found", cwd=tmp_path, fault="conv-dilation2-stride3"
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    (written,) = (tmp_path / "found").iterdir()
    text = written.read_text()
    assert (
        "randn: [1, 1, 1, 1]" in text
        and "source: fuzz" in text
        and "cnnbench shrink wide[cpu-float32]" in text
    )
    from cnnbench.casefile.load import load_file

    (shrunk,) = [c.spec for c in load_file(written).cases]
    assert shrunk.id == "wide-shrunk" and shrunk.source == "fuzz"
    assert [list(t.randn) for t in shrunk.inputs.values()] == [[1, 1, 1, 1], [1, 1, 1, 1]]  # type: ignore[attr-defined]
    assert (shrunk.args["stride"], shrunk.args["dilation"], shrunk.args.get("padding", 0)) == (3, 2, 0)
    rerun = cnnbench("run", str(written), "--no-save", cwd=tmp_path, fault="conv-dilation2-stride3")
    assert rerun.returncode == 1, rerun.stdout
    assert cnnbench("run", str(written), "--no-save", cwd=tmp_path).returncode == 0
    missing = cnnbench("shrink", "nope[cpu-float32]", str(case), cwd=tmp_path)
    assert missing.returncode == 2 and "no case 'nope'" in missing.stderr
