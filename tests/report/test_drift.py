"""Numerics drift in cnnbench compare (cnnbench.report.drift): budget used and ulps per variant and per
target x dtype x device, --max-budget-growth with per-group overrides, A/A, rows not recorded."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from synthetic_runs import check_row, drifted_row, make_run

from cnnbench.cli import main
from cnnbench.errors import UsageError
from cnnbench.report.diff import Comparison, compare_runs
from cnnbench.report.drift import BUDGET_FLOOR, DriftLimits, budget_factor, parse_group_budget_growth
from cnnbench.report.markdown import render_comparison_markdown
from cnnbench.store.result import Result
from cnnbench.store.run import RunStore

#: The new run's machine differs (another CPU capability), as when the hardware or its kernels change: outputs
#: are not compared bitwise there, so only the drift of budget used says how far the numerics moved.
NEW_MACHINE = {"cpu_capability": "AVX512"}


def _runs(tmp_path: Path, base: list[Result], new: list[Result]) -> tuple[Path, Path]:
    return make_run(tmp_path / "base", base).path, make_run(tmp_path / "new", new, NEW_MACHINE).path


def _compare(tmp_path: Path, base: list[Result], new: list[Result], **kw: Any) -> Comparison:
    a, b = _runs(tmp_path, base, new)
    return compare_runs(RunStore().load(str(a)), RunStore().load(str(b)), **kw)


def _pair(k_base: int, k_new: int, dtype: str = "float32") -> tuple[list[Result], list[Result]]:
    """conv drifting from k_base to k_new ulps; pool unchanged at 1 ulp."""
    base = [drifted_row("conv", k_base, dtype), drifted_row("pool", 1, dtype, target="max_pool2d")]
    new = [drifted_row("conv", k_new, dtype), drifted_row("pool", 1, dtype, target="max_pool2d")]
    return base, new


def test_k_ulps_of_drift_show_with_their_factor_and_pass_without_a_limit(tmp_path: Path) -> None:
    base, new = _pair(2, 8)
    assert all(r.status == "passed" for r in base + new)  # 8 ulps are well within the tolerance
    c = _compare(tmp_path, base, new)
    assert not c.regressed and len(c.not_comparable) == 2
    (moved,) = c.drift.moved
    assert moved.variant_id == "conv[cpu-float32]"
    assert moved.factor == pytest.approx(4.0)  # budget is linear in the error: 8 ulps / 2 ulps
    assert (moved.base_ulps_max, moved.new_ulps_max) == (2.0, 8.0)
    assert moved.new_budget == base[0].budget_used * 4 == pytest.approx(new[0].budget_used)  # type: ignore[operator]
    groups = {(g.target, g.dtype, g.device): g for g in c.drift.groups}
    conv = groups[("conv2d", "float32", "cpu")]
    assert conv.factor == pytest.approx(4.0) and conv.moved == 1 and conv.variants == 1
    assert groups[("max_pool2d", "float32", "cpu")].factor == 1.0
    assert groups[("max_pool2d", "float32", "cpu")].moved == 0


def test_growth_beyond_max_budget_growth_is_a_regression_and_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base, new = _pair(2, 8)
    a, b = _runs(tmp_path, base, new)
    assert main(["compare", str(a), str(b)]) == 0
    out = capsys.readouterr().out
    assert "Numerics drift (1 of 2 variants moved)" in out
    assert "conv2d float32 cpu: budget p50" in out and "4x" in out
    assert main(["compare", str(a), str(b), "--max-budget-growth", "2"]) == 1
    out = capsys.readouterr().out
    assert (
        "Regressions (1)" in out
        and "conv[cpu-float32] drift budget used" in out
        and "grew more than 2x" in out
    )
    assert main(["compare", str(a), str(b), "--max-budget-growth", "5"]) == 0
    # a per-group override wins over the default, matching the target as --group-threshold does
    assert (
        main(["compare", str(a), str(b), "--max-budget-growth", "2", "--group-budget-growth", "conv2d=5"])
        == 0
    )
    assert (
        main(["compare", str(a), str(b), "--max-budget-growth", "5", "--group-budget-growth", "conv*=3"]) == 1
    )
    assert main(["compare", str(a), str(b), "--group-budget-growth", "conv*=3"]) == 1  # a group limit alone
    assert main(["compare", str(a), str(b), "--group-budget-growth", "max_pool2d=1"]) == 0
    md = tmp_path / "c.md"
    assert (
        main(["compare", str(a), str(b), "--max-budget-growth", "2", "--format", "markdown", "-o", str(md)])
        == 1
    )
    text = md.read_text()
    assert "| `conv[cpu-float32]` | drift | budget used" in text
    assert "## Numerics drift (1 of 2 variants moved)" in text


def test_a_a_compare_shows_no_drift_even_with_a_limit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base, _ = _pair(3, 3)
    again, _ = _pair(3, 3)
    a, b = _runs(tmp_path, base, again)
    assert main(["compare", str(a), str(b), "--max-budget-growth", "1"]) == 0
    out = capsys.readouterr().out
    assert "Numerics drift: none (2 variants, budget and ulps unchanged)" in out
    c = compare_runs(make_run(tmp_path / "x", base), make_run(tmp_path / "y", again))
    assert c.drift.moved == [] and all(g.factor == 1.0 for g in c.drift.groups)
    assert "## Numerics drift: none" in render_comparison_markdown(c)


def test_rows_without_a_budget_are_not_recorded_never_drift(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old = [dataclasses.replace(r, budget_used=None, ulps_max=None, ulps_p99=None) for r in _pair(1, 1)[0]]
    a, b = _runs(tmp_path, old, _pair(1, 8)[1])
    assert main(["compare", str(a), str(b), "--max-budget-growth", "1"]) == 0
    out = capsys.readouterr().out
    assert "conv2d float32 cpu: budget not recorded (1 variants" in out
    c = compare_runs(make_run(tmp_path / "x", old), make_run(tmp_path / "y", _pair(1, 8)[1], NEW_MACHINE))
    assert c.drift.variants == [] and sorted(c.drift.not_recorded) == [
        "conv[cpu-float32]",
        "pool[cpu-float32]",
    ]
    assert all(g.factor is None for g in c.drift.groups)


def test_rows_that_measured_nothing_are_neither_drift_nor_not_recorded(tmp_path: Path) -> None:
    shape_only = check_row("shape", max_abs_err=None, max_rel_err=None, budget_used=None, ulps_max=None)
    c = compare_runs(make_run(tmp_path / "a", [shape_only]), make_run(tmp_path / "b", [shape_only]))
    assert c.drift.variants == [] and c.drift.not_recorded == [] and c.drift.groups == []


def test_failing_rows_drift_is_shown_but_judged_by_status(tmp_path: Path) -> None:
    base = [check_row("conv", budget_used=0.2)]
    new = [check_row("conv", status="failed", budget_used=3.0, mismatches=1, message="off")]
    c = compare_runs(
        make_run(tmp_path / "a", base), make_run(tmp_path / "b", new), drift_limits=DriftLimits(2.0)
    )
    assert [ch.kind for ch in c.regressions] == ["status"]
    assert c.drift.moved[0].factor == pytest.approx(15.0) and not c.drift.moved[0].passing


def test_growth_from_a_tiny_budget_is_measured_from_the_floor(tmp_path: Path) -> None:
    base = [check_row("conv", budget_used=0.0), check_row("pool", budget_used=0.001)]
    new = [check_row("conv", budget_used=0.015), check_row("pool", budget_used=0.03)]
    c = compare_runs(
        make_run(tmp_path / "a", base), make_run(tmp_path / "b", new), drift_limits=DriftLimits(2.0)
    )
    # conv: 0 -> 0.015 is an infinite factor but under 2 x BUDGET_FLOOR; pool: 0.03 > 2 x 0.01
    assert BUDGET_FLOOR == 0.01
    assert [ch.variant_id for ch in c.regressions] == ["pool[cpu-float32]"]
    assert math.isinf(next(v for v in c.drift.variants if v.variant_id == "conv[cpu-float32]").factor)


def test_on_the_same_machine_bits_are_judged_first_and_drift_bounds_an_accepted_change(
    tmp_path: Path,
) -> None:
    base, new = _pair(2, 8)
    a, b = make_run(tmp_path / "a", base).path, make_run(tmp_path / "b", new).path
    c = compare_runs(RunStore().load(str(a)), RunStore().load(str(b)))
    assert [ch.kind for ch in c.regressions] == ["bitwise"] and c.drift.moved[0].factor == pytest.approx(4.0)
    bits = tmp_path / "bits.yaml"
    bits.write_text("allow:\n  conv*: {reason: new conv kernel in 2.14, changes: [bitwise]}\n")
    assert main(["compare", str(a), str(b), "--accepted", str(bits)]) == 0
    # the bits may change, but not the error by more than 2x
    assert main(["compare", str(a), str(b), "--accepted", str(bits), "--max-budget-growth", "2"]) == 1
    both = tmp_path / "both.yaml"
    both.write_text("allow:\n  conv*: {reason: new conv kernel in 2.14, changes: [bitwise, drift]}\n")
    assert main(["compare", str(a), str(b), "--accepted", str(both), "--max-budget-growth", "2"]) == 0


def test_budget_factor_and_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert budget_factor(0.0, 0.0) == 1.0 and budget_factor(0.1, 0.4) == pytest.approx(4.0)
    assert math.isinf(budget_factor(0.0, 0.1))
    assert parse_group_budget_growth("conv2d=4") == ("conv2d", 4.0)
    for bad in ("conv2d", "=2", "conv2d=x", "conv2d=0.5"):
        with pytest.raises(UsageError, match="GROUP=FACTOR"):
            parse_group_budget_growth(bad)
    run = make_run(tmp_path / "a", [check_row("conv")]).path
    assert main(["compare", str(run), str(run), "--max-budget-growth", "0.5"]) == 2
    assert main(["compare", str(run), str(run), "--group-budget-growth", "conv"]) == 2
    err = capsys.readouterr().err
    assert "--max-budget-growth" in err and "GROUP=FACTOR" in err


def _example_row(case_id: str, k: int, target: str = "conv2d") -> Result:
    """docs/ci-gate.md's worked example: float32 output [1.25, -0.5, 3, 0], the first element k ulps off."""
    import torch

    from cnnbench.numerics.checks import check_close
    from cnnbench.numerics.tolerance import DEFAULT_TOLERANCES

    expected = torch.tensor([1.25, -0.5, 3.0, 0.0], dtype=torch.float64)
    got = expected.clone()
    got[0] += k * 2.0**-23
    c = check_close("output", got.float(), expected, DEFAULT_TOLERANCES["float32"])
    return check_row(
        case_id,
        target=target,
        max_abs_err=c.max_abs_err,
        max_rel_err=c.max_rel_err,
        budget_used=c.budget_used,
        ulps_max=c.ulps_max,
        ulps_p99=c.ulps_p99,
    )


def test_the_worked_example_of_the_gate_docs(tmp_path: Path) -> None:
    from repo import REPO

    from cnnbench.report.drift import group_line, variant_line
    from cnnbench.report.ledger import build_ledger, render_ledger_markdown

    doc = (REPO / "docs" / "ci-gate.md").read_text()
    rows = {k: [_example_row("seed001-conv", k), _example_row("seed001-conv-s2", 2)] for k in (6, 24)}
    pool = _example_row("seed003-pool", 0, "max_pool2d")
    base = make_run(tmp_path / "gate-2.14.1", [*rows[6], pool], started_at="2026-12-01T00:00:00Z")
    new = make_run(
        tmp_path / "gate-2.13.0",
        [*rows[24], pool],
        {"torch_version": "2.13.0"},
        started_at="2026-12-01T01:00:00Z",
    )
    c = compare_runs(base, new, drift_limits=DriftLimits(2.0))
    (moved,) = c.drift.moved
    assert f"    {moved.variant_id} {variant_line(moved)}\n" in doc
    conv = next(g for g in c.drift.groups if g.target == "conv2d")
    assert f"  {group_line(conv)}\n" in doc
    assert [ch.kind for ch in c.regressions] == ["drift"]  # the digests are equal here: only the drift
    assert (
        f"`seed001-conv[cpu-float32] drift {variant_line(moved).split(';')[0]}; ...: grew more than 2x`"
        in doc
    )
    ledger = render_ledger_markdown(build_ledger([base, new]))
    table = [x for x in ledger.splitlines() if x.startswith("| ")]
    assert all(line in doc for line in table), table


REAL_CONV = """
cases:
  - id: conv
    op: conv2d
    devices: [cpu]
    dtypes: [float32]
    inputs:
      input: {randn: [2, 4, 9, 9], seed: 1}
      weight: {randn: [6, 4, 3, 3], seed: 2}
    expect: {reference: numpy}
"""


def test_real_runs_a_a_has_no_drift_and_a_perturbed_conv_drifts(
    write_case: Callable[..., Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import torch
    import torch.nn.functional as F

    cases = write_case(REAL_CONV)

    def run(name: str) -> str:
        assert main(["run", str(cases), "--reports", str(tmp_path / name)]) == 0
        return str(RunStore(tmp_path / name).load(None).path)

    a, b = run("a"), run("b")
    base_row = RunStore().load(a).results[0]
    assert base_row.budget_used is not None and 0 < base_row.budget_used < 1 and base_row.ulps_max
    capsys.readouterr()
    assert main(["compare", a, b, "--max-budget-growth", "1"]) == 0
    assert "Numerics drift: none (1 variants, budget and ulps unchanged)" in capsys.readouterr().out
    original = F.conv2d

    def drifting(*args: Any, **kwargs: Any) -> torch.Tensor:
        out = original(*args, **kwargs)
        return (
            out * (1 + 2.0**-21) if out.dtype == torch.float32 else out
        )  # about 4 ulps: still within tolerance

    monkeypatch.setattr(F, "conv2d", drifting)
    c = run("c")
    monkeypatch.undo()
    new_row = RunStore().load(c).results[0]
    assert new_row.status == "passed" and new_row.budget_used is not None
    factor = new_row.budget_used / base_row.budget_used
    assert factor > 1.5
    accepted = tmp_path / "bits.yaml"
    accepted.write_text("allow:\n  conv*: {reason: perturbed on purpose, changes: [bitwise]}\n")
    capsys.readouterr()
    assert main(["compare", a, c, "--accepted", str(accepted)]) == 0
    assert (
        f"budget used {base_row.budget_used:.3g} -> {new_row.budget_used:.3g} ({factor:.3g}x)"
        in capsys.readouterr().out
    )
    assert main(["compare", a, c, "--accepted", str(accepted), "--max-budget-growth", "1.5"]) == 1


def test_group_figures_are_over_variants_passing_in_both_runs(tmp_path: Path) -> None:
    base = [
        check_row("conv-a", budget_used=0.1),
        check_row("conv-b", budget_used=0.2),
        check_row("pool", target="max_pool2d", budget_used=0.1),
    ]
    new = [
        check_row("conv-a", budget_used=0.1),
        check_row("conv-b", status="failed", budget_used=9.0, mismatches=1),
        check_row("pool", target="max_pool2d", status="failed", budget_used=5.0, mismatches=1),
    ]
    c = compare_runs(make_run(tmp_path / "a", base), make_run(tmp_path / "b", new))
    (conv,) = c.drift.groups  # the pool group has no variant passing in both runs: no figures to show
    assert (conv.target, conv.variants, conv.moved, conv.new_max, conv.factor) == ("conv2d", 1, 0, 0.1, 1.0)
    assert sorted(v.variant_id for v in c.drift.moved) == ["conv-b[cpu-float32]", "pool[cpu-float32]"]


def test_a_stored_v2_run_shows_as_not_recorded(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    row = check_row("conv").to_json()
    for name in ("compute_precision", "budget_used", "ulps_max", "ulps_p99", "warnings"):
        del row[name]
    old = tmp_path / "v2"
    old.mkdir()
    (old / "meta.json").write_text(json.dumps({"run_id": "v2", "schema_version": 2, "complete": True}))
    (old / "results.jsonl").write_text(json.dumps(row) + "\n")
    new = make_run(tmp_path / "v3", [check_row("conv", budget_used=0.9)]).path
    assert main(["compare", str(old), str(new), "--max-budget-growth", "1"]) == 0
    assert "conv2d float32 cpu: budget not recorded (1 variants" in capsys.readouterr().out
    assert main(["ledger", str(old), str(new)]) == 0
    assert "| conv2d | float32 | cpu | not recorded | 0.9 / 0.9 |" in capsys.readouterr().out
