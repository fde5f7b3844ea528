"""Tolerances and elementwise comparison (cnnbench.numerics.checks)."""

from __future__ import annotations

import torch

from cnnbench.casefile.format import ToleranceOverride as ToleranceSpec
from cnnbench.numerics.checks import check_close, check_shape
from cnnbench.numerics.tolerance import DEFAULT_TOLERANCES, Tolerance, tolerance_for


def test_defaults_follow_assert_close() -> None:
    assert tolerance_for("float32") == Tolerance(atol=1e-5, rtol=1.3e-6)
    assert tolerance_for("float16") == Tolerance(atol=1e-5, rtol=1e-3)
    assert tolerance_for("bfloat16") == Tolerance(atol=1e-5, rtol=1.6e-2)
    assert tolerance_for("float64") == Tolerance(atol=1e-7, rtol=1e-7)
    assert tolerance_for("int64") == Tolerance(0.0, 0.0)
    assert tolerance_for("bool") == Tolerance(0.0, 0.0)


def test_overrides_flat_per_dtype_and_partial() -> None:
    flat = ToleranceSpec(atol=0.5)
    assert tolerance_for("float32", flat) == Tolerance(atol=0.5, rtol=DEFAULT_TOLERANCES["float32"].rtol)
    per = {"float16": ToleranceSpec(atol=0.1, rtol=0.2)}
    assert tolerance_for("float16", per) == Tolerance(0.1, 0.2)
    assert tolerance_for("float32", per) == DEFAULT_TOLERANCES["float32"]
    # integer results stay exact whatever the override says
    assert tolerance_for("int64", flat) == Tolerance(0.0, 0.0)


def test_check_close_pass_and_fail_records_examples() -> None:
    expected = torch.arange(20, dtype=torch.float64).reshape(4, 5)
    got = expected.clone().float()
    assert check_close("out", got, expected, Tolerance(0, 0)).passed
    got[1, 2] += 0.5
    got[3, 4] -= 2
    check = check_close("out", got, expected, Tolerance(atol=0.1, rtol=0))
    assert not check.passed
    assert check.mismatches == 2 and check.numel == 20
    assert check.max_abs_err == 2.0
    assert [m.index for m in check.examples] == [(1, 2), (3, 4)]
    assert check.examples[0].expected == 7.0 and check.examples[0].got == 7.5
    assert "2 of 20 elements differ" in check.message
    assert "at [3, 4]: expected 19, got 17" in check.message


def test_check_close_limits_examples() -> None:
    check = check_close("out", torch.ones(50), torch.zeros(50, dtype=torch.float64), Tolerance(0, 0))
    assert len(check.examples) == 10
    assert "... and 40 more" in check.message


def test_nan_and_inf_semantics() -> None:
    nan, inf = float("nan"), float("inf")
    expected = torch.tensor([nan, inf, -inf, 1.0], dtype=torch.float64)
    assert check_close("o", expected.clone(), expected, Tolerance(0, 0)).passed
    got = torch.tensor([1.0, inf, inf, nan], dtype=torch.float64)
    check = check_close("o", got, expected, Tolerance(1, 1))
    assert check.mismatches == 3
    # an expected infinity is not matched by a finite value however large the tolerance
    inf_expected = torch.tensor([inf], dtype=torch.float64)
    assert not check_close("o", torch.tensor([1e30]), inf_expected, Tolerance(1, 1)).passed


def test_shapes_never_broadcast() -> None:
    check = check_close("o", torch.ones(1, 4), torch.ones(4, dtype=torch.float64), Tolerance(1, 1))
    assert not check.passed and "expected shape [4], got [1, 4]" in check.message
    assert check_shape("s", (2, 3), [2, 3]).passed


def test_relative_tolerance_scales_with_magnitude() -> None:
    expected = torch.tensor([1000.0], dtype=torch.float64)
    assert check_close("o", torch.tensor([1000.5]), expected, Tolerance(0, 1e-3)).passed
    assert not check_close("o", torch.tensor([1001.5]), expected, Tolerance(0, 1e-3)).passed
