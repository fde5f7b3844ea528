"""End-to-end runs of the command line: exit codes, summary line, stored runs and reports (cnnbench.cli)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from repo import REPO

from cnnbench.store.run import RunStore

CASES = """
defaults:
  devices: [cpu, cuda]
  dtypes: [float64, float32, float16]
cases:
  - id: conv
    source: "seed 000, hand-computed 3x3 convolution"
    op: conv2d
    inputs:
      input: [[[[1, 2, 1, 0], [2, 0, 1, 3], [0, 5, 4, 2], [4, 1, 2, 5]]]]
      weight: [[[[0, 1, 0], [2, 1, 1], [1, 0, 1]]]]
    expect:
      output: [[[[11, 12], [15, 23]]]]
  - id: pool
    op: max_pool2d
    args: {kernel_size: 3, ceil_mode: true}
    inputs: {input: [[[[1, 2, 1, 0], [2, 0, 1, 3], [0, 5, 4, 2], [4, 1, 2, 5]]]]}
    expect: {output: [[[[5, 3], [4, 5]]]]}
"""


def cnnbench(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cnnbench", *args],
        check=False,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_run_passes_stores_and_reports(write_case: Callable[..., Path], tmp_path: Path) -> None:
    write_case(CASES, "cases/a.yaml")
    proc = cnnbench("run", "cases/", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    last = proc.stdout.strip().splitlines()
    assert "6 passed, 0 failed, 6 skipped" in last[-2]
    # The absent device is one line, not a table row per target (issue 13 item 14).
    assert "cuda: not available, 6 variants skipped" in proc.stdout and "│ cuda" not in proc.stdout
    assert "12 variants of 2 cases" in last[-1]
    run_dirs = list((tmp_path / "reports" / "runs").iterdir())
    assert len(run_dirs) == 1
    meta = json.loads((run_dirs[0] / "meta.json").read_text())
    assert meta["complete"] is True
    assert meta["environment"]["torch_version"]
    assert len((run_dirs[0] / "results.jsonl").read_text().splitlines()) == 12

    md = cnnbench("report", "--format", "markdown", cwd=tmp_path)
    assert md.returncode == 0
    assert "**6 passed, 0 failed, 6 skipped**" in md.stdout
    assert "| conv2d | cpu | ✅ 1/1 | ✅ 1/1 | ✅ 1/1 |" in md.stdout
    assert "device cuda is not available" in md.stdout

    js = json.loads(cnnbench("report", "--format", "json", cwd=tmp_path).stdout)
    assert len(js["results"]) == 12
    assert set(js["results"][0]) >= {"variant_id", "status", "max_abs_err", "duration_s"}

    csv = cnnbench("report", "--format", "csv", "-o", "out/r.csv", cwd=tmp_path)
    assert csv.returncode == 0
    header = (tmp_path / "out" / "r.csv").read_text().splitlines()[0]
    assert header.startswith("variant_id,case_id,file,line,target,device,dtype,status")


def test_one_wrong_value_fails_with_exit_1(write_case: Callable[..., Path], tmp_path: Path) -> None:
    write_case(CASES.replace("[15, 23]", "[15, 24]"), "cases/a.yaml")
    proc = cnnbench("run", "cases/", "--device", "cpu", cwd=tmp_path)
    assert proc.returncode == 1
    out = proc.stdout
    for dtype in ("float64", "float32", "float16"):
        assert f"FAILED conv[cpu-{dtype}]" in out
    assert "at [0, 0, 1, 1]: expected 24, got 23" in out
    assert "cnnbench run cases/a.yaml -k 'conv[cpu-float32]'" in out
    assert "3 passed, 3 failed, 0 skipped" in out
    md = cnnbench("report", cwd=tmp_path).stdout
    assert "### ❌ `conv[cpu-float32]` — failed" in md
    assert "cases/a.yaml:5" in md


def test_keyword_and_filters(write_case: Callable[..., Path], tmp_path: Path) -> None:
    write_case(CASES, "cases/a.yaml")
    proc = cnnbench("list", "cases/", "-k", "pool and not float16", "--device", "cpu", cwd=tmp_path)
    assert proc.returncode == 0
    assert proc.stdout.split() == ["pool[cpu-float64]", "pool[cpu-float32]", "2", "variants"]
    proc = cnnbench("run", "cases/", "--dtype", "float32", "--no-save", cwd=tmp_path)
    assert proc.returncode == 0 and "2 passed, 0 failed, 2 skipped" in proc.stdout
    assert not (tmp_path / "reports").exists()


def test_bad_case_file_exits_2_with_location_and_no_traceback(
    write_case: Callable[..., Path], tmp_path: Path
) -> None:
    write_case(
        CASES.replace("op: max_pool2d", "op: max_pool2").replace("dtypes: [float64,", "dtypes: [flaot64,")
    )
    for command in ("run", "list", "validate"):
        proc = cnnbench(command, "cases.yaml", cwd=tmp_path)
        assert proc.returncode == 2, proc.stderr
        assert "Traceback" not in proc.stderr
        assert 'cases.yaml:3:12: defaults.dtypes[0]: unknown dtype "flaot64" (did you mean "float64"?)' in (
            proc.stderr.replace("\n", "")
        )
        assert 'cases.yaml:14:5: cases[1].op: unknown op "max_pool2" (did you mean "max_pool2d"?)' in (
            proc.stderr.replace("\n", "")
        )


def test_usage_errors_exit_2(tmp_path: Path, write_case: Callable[..., Path]) -> None:
    write_case(CASES)
    assert cnnbench("run", "missing.yaml", cwd=tmp_path).returncode == 2
    proc = cnnbench("run", "cases.yaml", "--dtype", "float31", cwd=tmp_path)
    assert proc.returncode == 2 and 'did you mean "float32"' in proc.stderr
    proc = cnnbench("report", cwd=tmp_path)
    assert proc.returncode == 2 and "no stored run" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_crashing_variant_is_a_row_and_the_run_goes_on(
    write_case: Callable[..., Path], tmp_path: Path
) -> None:
    body = CASES + (
        "  - id: broken\n    op: conv2d\n    args: {groups: 3}\n"
        "    inputs: {input: {ones: [1, 2, 4, 4]}, weight: {ones: [1, 2, 3, 3]}}\n    expect: {shape: [1]}\n"
    )
    write_case(body, "cases.yaml")
    proc = cnnbench("run", "cases.yaml", "--device", "cpu", cwd=tmp_path)
    assert proc.returncode == 1
    assert "6 passed, 0 failed, 3 error, 0 skipped" in proc.stdout
    assert "ERROR broken[cpu-float32]" in proc.stdout and "RuntimeError" in proc.stdout


def test_python_m_and_console_script_agree(tmp_path: Path) -> None:
    script = Path(sys.executable).parent / "cnnbench"
    for cmd in ([sys.executable, "-m", "cnnbench", "--version"], [str(script), "--version"]):
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, check=True)
        assert proc.stdout.startswith("cnnbench ")


def test_the_command_exits_at_once_yet_writes_everything(
    write_case: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The command skips the interpreter's teardown (cli.entry: os._exit once stdout and stderr are flushed): its
    exit status, a report longer than a pipe's buffer, and the stored run are all there, the same as main's."""
    from cnnbench.cli import main

    many = "".join(
        f"  - id: relu{i}\n    op: relu\n    inputs: {{input: [[-1.0, {i}.0]]}}\n    expect: {{output: [[0.0, {i}.0]]}}\n"
        for i in range(150)
    )
    write_case(CASES + many, "cases/a.yaml")
    proc = cnnbench("run", "cases/", "--reports", "r", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    stored = RunStore(tmp_path / "r").load(None)
    assert stored.complete and len(stored.results) == stored.meta["variants_selected"] > 300
    report = cnnbench("report", "--reports", "r", "--format", "json", cwd=tmp_path)
    assert report.returncode == 0
    assert len(report.stdout) > 65536  # more than a pipe holds: written through, not cut at the exit
    capsys.readouterr()
    assert main(["report", "--reports", str(tmp_path / "r"), "--format", "json"]) == 0
    assert json.loads(report.stdout) == json.loads(capsys.readouterr().out)
    failed = cnnbench("run", "cases/", "-k", "no-such-case", cwd=tmp_path)
    assert failed.returncode == 5 and "no variants selected" in failed.stderr


def test_schema_is_json_schema() -> None:
    proc = cnnbench("schema", cwd=REPO)
    schema = json.loads(proc.stdout)
    assert schema["title"] == "cnnbench case file"
    assert "cases" in schema["properties"]


def test_compare_fails_on_a_new_variant_that_fails(write_case: Callable[..., Path], tmp_path: Path) -> None:
    cases = write_case(CASES, "cases.yaml")
    assert cnnbench("run", "cases.yaml", "--device", "cpu", "--reports", "a", cwd=tmp_path).returncode == 0
    broken = "  - id: added\n    op: relu\n    inputs: {x: [-1.0, 2.0]}\n    expect: {output: [0.0, 3.0]}\n"
    cases.write_text(cases.read_text() + broken)
    assert cnnbench("run", "cases.yaml", "--device", "cpu", "--reports", "b", cwd=tmp_path).returncode == 1
    base, new = (str(next((tmp_path / d / "runs").iterdir())) for d in ("a", "b"))
    proc = cnnbench("compare", base, new, cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout
    assert "new failure (no row in base): failed" in proc.stdout
    assert "regressions (3 new failures)" in proc.stdout
    md = cnnbench("compare", base, new, "--format", "markdown", cwd=tmp_path)
    assert md.returncode == 1 and "❌ regressions found" in md.stdout and "new failure" in md.stdout


def test_explicit_absent_device_exits_2_and_a_run_where_nothing_ran_exits_5(
    write_case: Callable[..., Path], tmp_path: Path
) -> None:
    from cnnbench.environment import device_available

    write_case(CASES)
    absent = next(d for d in ("cuda", "mps", "xpu") if not device_available(d))
    proc = cnnbench("run", "cases.yaml", "--device", absent, cwd=tmp_path)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert f"--device {absent}: not available on this machine (devices present: cpu" in proc.stderr
    assert not (tmp_path / "reports").exists()
    # Zero variants selected: nothing ran, exit 5 (pytest's "no tests ran"), not a usage error.
    proc = cnnbench("run", "cases.yaml", "-k", "nothing-matches", cwd=tmp_path)
    assert proc.returncode == 5 and "no variants selected, nothing ran" in proc.stderr
    # Every selected variant skipped (an absent device named only by the file's defaults): exit 5, said so.
    write_case(CASES.replace("devices: [cpu, cuda]", f"devices: [{absent}]"), "absent.yaml")
    proc = cnnbench("run", "absent.yaml", cwd=tmp_path)
    assert proc.returncode == 5, proc.stdout + proc.stderr
    assert "0 passed, 0 failed, 6 skipped · nothing ran: all 6 variants skipped" in proc.stdout


LONG_ID = "a-very-long-case-identifier-that-keeps-going-and-going-past-eighty-columns-of-text"


def test_piped_output_never_wraps_and_console_report_writes_its_file(
    write_case: Callable[..., Path], tmp_path: Path
) -> None:
    write_case(
        f"cases:\n  - id: {LONG_ID}\n    op: relu\n    devices: [cpu]\n    inputs: {{x: [-1.0, 2.0]}}\n"
        "    expect: {output: [0.0, 2.5]}\n"
    )
    proc = cnnbench("run", "cases.yaml", cwd=tmp_path)  # stdout and stderr are pipes, not a terminal
    assert proc.returncode == 1
    lines = proc.stdout.splitlines()
    assert f"repro: cnnbench run cases.yaml -k '{LONG_ID}[cpu-float32]'" in lines
    assert f"FAILED {LONG_ID}[cpu-float32]  cases.yaml:2" in lines
    proc = cnnbench("run", "cases.yaml", "--device", "cpu", "-k", f"{LONG_ID} and nothing-else", cwd=tmp_path)
    assert proc.returncode == 5 and len(proc.stderr.strip().splitlines()) == 1
    # report --format console -o FILE writes the file (and nothing on stdout).
    proc = cnnbench("report", "--format", "console", "-o", "out/console.txt", cwd=tmp_path)
    assert proc.returncode == 0 and proc.stdout == ""
    text = (tmp_path / "out" / "console.txt").read_text()
    assert f"repro: cnnbench run cases.yaml -k '{LONG_ID}[cpu-float32]'" in text.splitlines()
    assert text.rstrip().splitlines()[-1] == "0 passed, 1 failed, 0 skipped"


WARNING_CASE = """
cases:
  - id: same-even
    op: conv2d
    devices: [cpu]
    dtypes: [float32]
    args: {padding: same}
    inputs: {input: {ones: [1, 1, 4, 4]}, weight: {ones: [1, 1, 2, 2]}}
    expect: {shape: [1, 1, 4, 4]}
"""


def test_warnings_are_captured_per_variant_and_torch_benchmark_is_not_imported(
    write_case: Callable[..., Path], tmp_path: Path
) -> None:
    write_case(WARNING_CASE)
    proc = cnnbench("run", "cases.yaml", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    # PyTorch's UserWarning is not printed as raised inside cnnbench, nor is torch.utils.benchmark's CUDA notice.
    assert "UserWarning" not in proc.stderr and "No CUDA runtime" not in proc.stderr
    assert "1 variant raised warnings (-v shows them)" in proc.stdout
    (row,) = json.loads(cnnbench("report", "--format", "json", cwd=tmp_path).stdout)["results"]
    assert row["warnings"] == [
        w for w in row["warnings"] if w.startswith("UserWarning: Using padding='same'")
    ]
    assert len(row["warnings"]) == 1
    verbose = cnnbench("report", "--format", "console", cwd=tmp_path).stdout
    assert "warning same-even[cpu-float32]: UserWarning: Using padding='same'" in verbose
    md = cnnbench("report", "--format", "markdown", cwd=tmp_path).stdout
    assert "## Warnings (1)" in md and "| 1 | `same-even[cpu-float32]` |" in md
    probe = (
        "import sys; from cnnbench.cli import main; main(['run', 'cases.yaml', '--no-save']); "
        "print('torch.utils.benchmark' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    assert done.stdout.splitlines()[-1] == "False"


def test_xfail_and_xpass_have_their_own_marks_and_a_legend(
    write_case: Callable[..., Path], tmp_path: Path
) -> None:
    write_case(
        CASES + "  - id: known\n    op: relu\n    inputs: {x: [1.0]}\n    expect: {output: [3.0]}\n"
        "    xfail: [{reason: documented bug}]\n  - id: fixed\n    op: relu\n    inputs: {x: [1.0]}\n"
        "    expect: {output: [1.0]}\n    xfail: [{reason: was a bug, dtype: float64}]\n"
    )
    proc = cnnbench(
        "run", "cases.yaml", "--device", "cpu", "--dtype", "float64", "--dtype", "float32", cwd=tmp_path
    )
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr
    assert "⚠️ 1 xpass ❎ 1 xfail" in out and "✅ 1 ❎ 1 xfail" in out and "✅ 2/2" not in out
    assert "legend: ✅ passed · ❎ xfail (failed, as expected) · ⚠️ xpass (passed, expected to fail)" in out
    md = cnnbench("report", cwd=tmp_path).stdout
    assert "| relu | cpu | ⚠️ 1 xpass ❎ 1 xfail | ✅ 1 ❎ 1 xfail |" in md and "legend: ✅ passed" in md
    html = cnnbench("report", "--format", "html", cwd=tmp_path)
    if importlib.util.find_spec("matplotlib") is not None:  # the html extra
        assert html.returncode == 0, html.stderr
        assert 'title="xfail">●</span> 1 xfail' in html.stdout and '<p class="legend">' in html.stdout
