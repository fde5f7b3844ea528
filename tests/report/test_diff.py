"""cnnbench compare: numeric drift, real perf changes only, environment keys, accepted differences, CLI exit
codes."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import pytest
from synthetic_runs import bench_row, check_row, make_run, replicates

from cnnbench.cli import main
from cnnbench.errors import UsageError
from cnnbench.report.accepted import load_accepted
from cnnbench.report.diff import Thresholds, compare_runs, parse_group_threshold
from cnnbench.report.markdown import render_comparison_markdown
from cnnbench.store.run import RunStore

CASES = """
cases:
  - id: add-ones
    op: add
    devices: [cpu]
    dtypes: [float32, float64]
    inputs: {a: {ones: [2, 2]}, b: {ones: [2, 2]}}
    expect: {output: [[2, 2], [2, 2]]}
  - id: relu-small
    op: relu
    devices: [cpu]
    inputs: {x: [-1.5, 0.0, 2.5]}
    expect: {output: [0.0, 0.0, 2.5]}
"""


def _run(cases: Path, reports: Path) -> Path:
    main(["run", str(cases), "--reports", str(reports)])
    return RunStore(reports).load(None).path


@pytest.fixture
def two_runs(write_case: Callable[..., Path], tmp_path: Path) -> tuple[Path, Path, Path]:
    cases = write_case(CASES)
    return cases, _run(cases, tmp_path / "a"), _run(cases, tmp_path / "b")


def test_identical_runs_compare_clean(
    two_runs: tuple[Path, Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    _, base, new = two_runs
    assert main(["compare", str(base), str(new)]) == 0
    out = capsys.readouterr().out
    assert "0 regressions" in out and "3 variants compared" in out


def test_a_wrong_result_is_a_regression_naming_the_variant(
    two_runs: tuple[Path, Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cases, base, _ = two_runs
    cases.write_text(cases.read_text().replace("[0.0, 0.0, 2.5]", "[0.0, 0.0, 2.25]"))
    new = _run(cases, tmp_path / "c")
    capsys.readouterr()
    assert main(["compare", str(base), str(new), "--format", "markdown", "-o", str(tmp_path / "c.md")]) == 1
    text = (tmp_path / "c.md").read_text()
    assert "regressions found" in text
    assert "`relu-small[cpu-float32]` | status | passed -> failed" in text
    assert "add-ones" not in text.split("## Regressions")[1].split("##")[0]
    assert "case files (case_files_hash differs)" in text
    assert main(["compare", str(base), str(new)]) == 1
    assert "relu-small[cpu-float32]" in capsys.readouterr().out


def test_a_fix_is_an_improvement_not_a_regression(tmp_path: Path) -> None:
    base = make_run(tmp_path / "a", [check_row("conv", status="failed", mismatches=3, max_abs_err=0.5)])
    new = make_run(tmp_path / "b", [check_row("conv")])
    c = compare_runs(base, new)
    assert not c.regressed
    assert [ch.detail for ch in c.improvements] == ["failed -> passed"]


def test_error_past_tolerance_in_an_xfail_row_is_drift(tmp_path: Path) -> None:
    base = make_run(tmp_path / "a", [check_row("conv", status="xfail", mismatches=0)])
    new = make_run(tmp_path / "b", [check_row("conv", status="xfail", mismatches=2, max_abs_err=0.1)])
    c = compare_runs(base, new)
    assert [ch.kind for ch in c.regressions] == ["tolerance"]
    assert "2 of 16 elements now outside tolerance" in c.regressions[0].detail


def test_bitwise_change_is_drift_and_an_accepted_difference_covers_it(tmp_path: Path) -> None:
    base = make_run(tmp_path / "a", [check_row("conv"), check_row("pool")])
    new = make_run(tmp_path / "b", [check_row("conv", output_digest="ffffffffffffffff"), check_row("pool")])
    c = compare_runs(base, new)
    assert [(ch.variant_id, ch.kind) for ch in c.regressions] == [("conv[cpu-float32]", "bitwise")]
    allow = tmp_path / "allow.yaml"
    allow.write_text(
        "allow:\n"
        "  'conv[cpu-*]': {reason: oneDNN changed its conv algorithm, changes: [bitwise]}\n"
        "  'gone[cpu-float32]': stale entry\n"
    )
    c = compare_runs(base, new, accepted=load_accepted(allow))
    assert not c.regressed
    assert c.allowed[0].allowed == "oneDNN changed its conv algorithm"
    assert [e.pattern for e in c.unused_accepted] == ["gone[cpu-float32]"]
    assert "oneDNN changed its conv algorithm" in render_comparison_markdown(c)


def test_accepted_bitwise_difference_does_not_excuse_a_failure(tmp_path: Path) -> None:
    base = make_run(tmp_path / "a", [check_row("conv")])
    new = make_run(tmp_path / "b", [check_row("conv", status="failed", message="output: 1 of 16 differ")])
    allow = tmp_path / "allow.yaml"
    allow.write_text("allow:\n  'conv[cpu-float32]': {reason: bits only, changes: [bitwise]}\n")
    assert compare_runs(base, new, accepted=load_accepted(allow)).regressed


def test_thirty_percent_slower_benchmark_is_a_regression(tmp_path: Path) -> None:
    base = make_run(tmp_path / "a", [bench_row("resnet18", replicates(40.0, seed=1))])
    new = make_run(tmp_path / "b", [bench_row("resnet18", replicates(52.0, seed=2))])
    c = compare_runs(base, new)
    assert [ch.kind for ch in c.regressions] == ["perf"]
    change = c.regressions[0]
    assert change.variant_id == "bench-resnet18-b8[cpu-float32]"
    assert change.ratio == pytest.approx(1.3, rel=0.03)
    assert change.p_value is not None and change.p_value < 0.002
    assert main(["compare", str(base.path), str(new.path)]) == 1


def test_thirty_percent_faster_is_an_improvement(tmp_path: Path) -> None:
    base = make_run(tmp_path / "a", [bench_row("resnet18", replicates(52.0, seed=1))])
    new = make_run(tmp_path / "b", [bench_row("resnet18", replicates(40.0, seed=2))])
    c = compare_runs(base, new)
    assert not c.regressed and [ch.kind for ch in c.improvements] == ["perf"]


def test_noisy_change_that_is_not_significant_is_not_reported(tmp_path: Path) -> None:
    # The medians differ by ~15% (past the 10% threshold) but with 25% noise the U test cannot tell them apart.
    base = make_run(tmp_path / "a", [bench_row("resnet18", replicates(40.0, n=10, spread=0.25, seed=3))])
    new = make_run(tmp_path / "b", [bench_row("resnet18", replicates(46.0, n=10, spread=0.25, seed=4))])
    c = compare_runs(base, new)
    assert not c.regressed and not c.improvements


def test_change_below_the_noise_floor_is_ignored(tmp_path: Path) -> None:
    base = make_run(tmp_path / "a", [bench_row("tiny", replicates(0.004, spread=0.001, seed=1))])
    new = make_run(tmp_path / "b", [bench_row("tiny", replicates(0.008, spread=0.001, seed=2))])
    assert not compare_runs(base, new).regressed
    assert compare_runs(base, new, Thresholds(noise_floor_ms=0.0)).regressed


def test_group_threshold_applies_to_its_rows_only(tmp_path: Path) -> None:
    rows_a = [bench_row(m, replicates(10.0, seed=i)) for i, m in enumerate(("vgg11", "lenet"))]
    rows_b = [bench_row(m, replicates(12.5, seed=10 + i)) for i, m in enumerate(("vgg11", "lenet"))]
    base, new = make_run(tmp_path / "a", rows_a), make_run(tmp_path / "b", rows_b)
    c = compare_runs(base, new, Thresholds(groups=(parse_group_threshold("vgg*=0.5"),)))
    assert [ch.variant_id for ch in c.regressions] == ["bench-lenet-b8[cpu-float32]"]


@pytest.mark.parametrize("text", ["conv2d", "=0.2", "conv2d=x", "conv2d=-1", "a=nan"])
def test_bad_group_threshold(text: str) -> None:
    with pytest.raises(UsageError, match="GROUP=FRACTION"):
        parse_group_threshold(text)


def test_rows_from_different_machines_are_not_comparable(tmp_path: Path) -> None:
    base = make_run(tmp_path / "a", [bench_row("resnet18", replicates(40.0, seed=1)), check_row("conv")])
    new_rows = [bench_row("resnet18", replicates(80.0, seed=2)), check_row("conv", output_digest="00")]
    new = make_run(tmp_path / "b", new_rows, env={"cpu_model": "Other CPU"})
    c = compare_runs(base, new)
    assert not c.regressed
    assert len(c.not_comparable) == 2
    assert "cpu_model: 'Synthetic CPU' -> 'Other CPU'" in c.not_comparable[0].detail
    assert "2 rows: cpu_model" in render_comparison_markdown(c)


def test_rows_skipped_in_both_runs_are_not_listed_as_not_comparable(tmp_path: Path) -> None:
    """The numerics gate on CPU-only CI listed 5,151 cuda rows, skipped in both runs, as not comparable."""
    skipped = check_row("conv", status="skipped", reason="device cuda is not available")
    skipped = dataclasses.replace(skipped, device="cuda", variant_id="conv[cuda-float32]")
    ran = dataclasses.replace(check_row("pool"), device="cuda", variant_id="pool[cuda-float32]")
    base = make_run(tmp_path / "a", [skipped, ran], env={"cudnn_version": 92400})
    new = make_run(tmp_path / "b", [skipped, ran], env={"cudnn_version": None})
    c = compare_runs(base, new)
    assert [ch.variant_id for ch in c.not_comparable] == ["pool[cuda-float32]"]


def test_thread_count_of_a_bench_row_is_an_environment_key(tmp_path: Path) -> None:
    base = make_run(tmp_path / "a", [bench_row("resnet18", replicates(40.0, seed=1))])
    new = make_run(
        tmp_path / "b", [bench_row("resnet18", replicates(20.0, seed=2), metrics={"num_threads": 4})]
    )
    c = compare_runs(base, new)
    assert not c.improvements and "num_threads: 2 -> 4" in c.not_comparable[0].detail


def test_added_removed_and_other_status_changes_are_listed(tmp_path: Path) -> None:
    base = make_run(tmp_path / "a", [check_row("old"), check_row("conv")], complete=False)
    new = make_run(tmp_path / "b", [check_row("conv", status="skipped"), check_row("fresh")])
    c = compare_runs(base, new)
    assert not c.regressed
    assert c.only_in_base == ["old[cpu-float32]"] and c.only_in_new == ["fresh[cpu-float32]"]
    assert [ch.detail for ch in c.status_changes] == ["passed -> skipped"]
    assert any("incomplete" in w for w in c.warnings)
    md = render_comparison_markdown(c)
    assert "Only in the base run (1)" in md and "Other status changes (1)" in md


def test_bench_row_without_replicates_uses_the_ratio_unless_noisy(tmp_path: Path) -> None:
    def row(ms: float, noisy: bool) -> object:
        r = bench_row("resnet18", [ms] * 3)
        return dataclasses.replace(r, metrics={"median_ms": ms, "noisy": noisy})

    base = make_run(tmp_path / "a", [row(40.0, False)])  # type: ignore[list-item]
    assert compare_runs(base, make_run(tmp_path / "b", [row(60.0, False)])).regressed  # type: ignore[list-item]
    assert not compare_runs(base, make_run(tmp_path / "c", [row(60.0, True)])).regressed  # type: ignore[list-item]


def test_compare_cli_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = make_run(tmp_path / "a", [check_row("conv")])
    assert main(["compare", str(run.path), str(tmp_path / "missing")]) == 2
    assert main(["compare", str(run.path), str(run.path), "--group-threshold", "conv"]) == 2
    assert main(["compare", str(run.path), str(run.path), "--threshold", "-1"]) == 2
    err = capsys.readouterr().err
    assert "no stored run" in err and "GROUP=FRACTION" in err


def test_a_variant_failing_with_no_row_in_base_is_a_new_failure(tmp_path: Path) -> None:
    base = make_run(tmp_path / "a", [check_row("conv")])
    new = make_run(
        tmp_path / "b",
        [
            check_row("conv"),
            check_row("fresh", status="failed", message="at [0]: expected 1, got 2"),
            check_row("ok"),
        ],
    )
    c = compare_runs(base, new)
    assert c.regressed
    assert [ch.variant_id for ch in c.new_failures] == ["fresh[cpu-float32]"]
    assert c.regressions[0].detail == "new failure (no row in base): failed: at [0]: expected 1, got 2"
    assert c.summary().startswith("1 regressions (1 new failure),")
    md = render_comparison_markdown(c)
    assert "regressions found" in md and "new failure (no row in base)" in md
    # An accepted difference of kind status covers it, as it covers any other failure.
    accepted = tmp_path / "accepted.yaml"
    accepted.write_text("allow:\n  fresh*: {reason: known, changes: [status]}\n")
    assert not compare_runs(base, new, accepted=load_accepted(accepted)).regressed
