"""Tolerances and elementwise comparison (cnnbench.numerics.checks)."""

from __future__ import annotations

import math

import pytest
import torch

from cnnbench.casefile.format import ToleranceOverride as ToleranceSpec
from cnnbench.numerics.checks import check_close, check_shape, machine_epsilon
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


def _step(t: torch.Tensor, k: int) -> torch.Tensor:
    """t moved k representable numbers of its dtype towards +inf."""
    for _ in range(k):
        t = torch.nextafter(t, torch.full_like(t, float("inf")))
    return t


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("k", [1, 3, 8])
def test_k_representable_steps_are_k_ulps(dtype: torch.dtype, k: int) -> None:
    expected = torch.tensor([1.0, 1.5, -3.0, 0.625, 100.0], dtype=dtype)
    check = check_close("o", _step(expected, k), expected.double(), Tolerance(atol=0, rtol=0.5))
    assert check.passed
    assert check.ulps_max == k and check.ulps_p99 == k


def test_budget_is_the_largest_share_of_the_allowed_error() -> None:
    expected = torch.tensor([1.0, 10.0, 0.0], dtype=torch.float64)
    got = expected + torch.tensor([0.1, 0.5, 0.05], dtype=torch.float64)
    tol = Tolerance(atol=0.1, rtol=0.1)
    check = check_close("o", got, expected, tol)
    # allowed 0.2, 1.1, 0.1: shares 0.5, 0.4545, 0.5
    assert check.passed and check.budget_used == pytest.approx(0.5)
    failing = check_close("o", got * 1.0 + torch.tensor([0.0, 2.0, 0.0], dtype=torch.float64), expected, tol)
    assert not failing.passed and failing.budget_used == pytest.approx(2.5 / 1.1)
    # nothing allowed: exact is 0, anything else is an infinite share
    assert check_close("o", expected, expected, Tolerance(0, 0)).budget_used == 0.0
    assert check_close("o", got, expected, Tolerance(0, 0)).budget_used == math.inf


def test_ulps_floor_keeps_zero_expected_values_finite() -> None:
    expected = torch.tensor([4.0, 0.0, 1e-30], dtype=torch.float64)
    got = torch.tensor([4.0, 2.0**-12, 1e-30], dtype=torch.float32)
    check = check_close("o", got, expected, Tolerance(atol=1e-3, rtol=0))
    # the floor is 4 * 2^-10 = 2^-8: one float32 ulp there is 2^-23 * 2^-8, and the error 2^-12 is 2^19 of them
    assert check.ulps_max == 2.0**19
    assert check.ulps_max is not None and math.isfinite(check.ulps_max)
    # an all-zero expected tensor falls back to the dtype's smallest normal number
    zero = check_close("o", torch.zeros(3), torch.zeros(3, dtype=torch.float64), Tolerance(0, 0))
    assert zero.ulps_max == 0.0 and zero.budget_used == 0.0


def test_ulps_unit_follows_dtype_and_compute_precision() -> None:
    assert machine_epsilon("float32") == 2.0**-23 == machine_epsilon("float32", "ieee")
    assert machine_epsilon("float32", "tf32") == 2.0**-10
    assert machine_epsilon("float16", "tf32") == 2.0**-10  # never finer than the dtype itself
    assert machine_epsilon("bfloat16", "tf32") == 2.0**-7
    assert machine_epsilon("int64") is None
    with pytest.raises(ValueError, match="compute precision 'fp8'"):
        machine_epsilon("float32", "fp8")
    expected = torch.tensor([1.0, 2.0], dtype=torch.float64)
    got = (expected + 2.0**-10).float()  # one tf32 ulp at 1, half of one at 2
    ieee = check_close("o", got, expected, Tolerance(1e-2, 0))
    tf32 = check_close("o", got, expected, Tolerance(1e-2, 0), compute_precision="tf32")
    assert ieee.ulps_max == 2.0**13 and tf32.ulps_max == 1.0 and tf32.ulps_p99 == 1.0
    as_half = check_close("o", got, expected, Tolerance(1e-2, 0), dtype="float16")
    assert as_half.ulps_max == 1.0


def test_integer_results_have_a_budget_but_no_ulps() -> None:
    check = check_close("o", torch.tensor([1, 2, 3]), torch.tensor([1, 2, 4]), Tolerance(0, 0))
    assert not check.passed and check.budget_used == math.inf
    assert check.ulps_max is None and check.ulps_p99 is None


def test_ulps_p99_is_the_nearest_rank_percentile() -> None:
    expected = torch.ones(200, dtype=torch.float32)
    got = expected.clone()
    got[:2] = _step(expected[:2], 5)  # the two largest errors are the top 1%
    got[2:10] = _step(expected[2:10], 1)
    check = check_close("o", got, expected.double(), Tolerance(0, 0.1))
    assert check.ulps_max == 5.0 and check.ulps_p99 == 1.0
