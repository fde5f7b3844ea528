"""Mann-Whitney U (exact and normal), median intervals and asv's is_different rule."""

from __future__ import annotations

import itertools
import random

import pytest

from cnnbench.report.significance import is_different, mann_whitney_u, median_interval


def _brute_force_p(a: list[float], b: list[float]) -> float:
    """Two-sided exact p by enumerating every split of the pooled sample (small samples only)."""
    pooled, n1 = a + b, len(a)

    def u(x: list[float], y: list[float]) -> float:
        return sum((p > q) + 0.5 * (p == q) for p in x for q in y)

    mean, observed = n1 * len(b) / 2, u(a, b)
    splits = list(itertools.combinations(range(len(pooled)), n1))
    extreme = 0
    for chosen in splits:
        x = [pooled[i] for i in chosen]
        y = [pooled[i] for i in range(len(pooled)) if i not in chosen]
        extreme += abs(u(x, y) - mean) >= abs(observed - mean) - 1e-9
    return extreme / len(splits)


@pytest.mark.parametrize("seed", range(4))
def test_exact_p_matches_enumeration(seed: int) -> None:
    rng = random.Random(seed)
    a = [rng.random() for _ in range(4)]
    b = [rng.random() + 0.3 for _ in range(5)]
    u, p = mann_whitney_u(a, b)
    assert p == pytest.approx(_brute_force_p(a, b))
    assert u == sum(x > y for x in a for y in b)


def test_matches_scipy_reference_values() -> None:
    # Reference values from scipy.stats.mannwhitneyu(a, b, alternative="two-sided").
    rng = random.Random(1)
    a = [rng.random() for _ in range(30)]
    b = [rng.random() + 0.2 for _ in range(25)]
    assert mann_whitney_u(a, b) == pytest.approx((198.0, 0.0023856760270992))  # method="exact"
    tied_a, tied_b = [1, 2, 2, 3, 3, 3, 4] * 3, [3, 4, 4, 5, 5, 6, 6] * 3
    assert mann_whitney_u(tied_a, tied_b) == pytest.approx((31.5, 1.27246933588267e-06))  # asymptotic


def test_identical_samples_are_not_different() -> None:
    assert mann_whitney_u([1.0] * 5, [1.0] * 5) == (12.5, 1.0)
    assert not is_different([1.0] * 20, [1.0] * 20).different


def test_empty_sample_is_an_error() -> None:
    with pytest.raises(ValueError, match="at least one"):
        mann_whitney_u([], [1.0])
    with pytest.raises(ValueError, match="at least one"):
        median_interval([])
    assert is_different([], [1.0]).method == "none"


def test_median_interval() -> None:
    assert median_interval(list(range(20))) == (3, 16)
    assert median_interval([3.0, 1.0, 2.0]) == (1.0, 3.0)  # too few points: the whole range


def test_small_samples_fall_back_to_intervals() -> None:
    far = is_different([1.0, 1.1, 0.9], [2.0, 2.1, 1.9])
    near = is_different([1.0, 1.5, 0.9], [1.4, 2.1, 1.9])
    assert far.different and far.method == "intervals"
    assert not near.different


def test_nan_replicates_are_dropped() -> None:
    a = [10.0 + 0.01 * i for i in range(12)] + [float("nan")]
    b = [13.0 + 0.01 * i for i in range(12)]
    result = is_different(a, b)
    assert result.different and result.method == "mann-whitney"
