"""Whether two sets of timing replicates differ for real: Mann-Whitney U and order-statistic intervals."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["P_THRESHOLD", "Significance", "is_different", "mann_whitney_u", "median_interval"]

#: asv's threshold: a change is real only when p < 0.002, so a few hundred benchmarks compared at once rarely
#: report a false regression.
P_THRESHOLD = 0.002
#: Coverage of the distribution-free median interval used when there are too few replicates for the U test.
_INTERVAL_CONFIDENCE = 0.99
#: Sizes up to this (both samples, no ties) get the exact U distribution; beyond it the normal approximation is
#: within a fraction of a percent of it and much cheaper.
_EXACT_MAX_N = 50


@dataclass(frozen=True)
class Significance:
    """The outcome of comparing two samples: whether they differ, and how that was decided."""

    different: bool
    method: str
    """"mann-whitney" or "intervals" (when a U test could never reach the threshold)."""
    p_value: float | None = None


def _exact_counts(n1: int, n2: int) -> list[int]:
    """How many of the C(n1+n2, n1) orderings give each U = 0 .. n1*n2 (no ties).

    The counts are the coefficients of the Gaussian binomial [n1+n2 choose n1] in q, built as the product of
    (1 - q^(n1+i)) / (1 - q^i) for i = 1..n2; dividing by (1 - q^i) is a running sum with stride i.
    """
    size = n1 * n2 + 1
    poly = [0] * size
    poly[0] = 1
    for i in range(1, n2 + 1):
        shift = n1 + i
        for k in range(size - 1, shift - 1, -1):
            poly[k] -= poly[k - shift]
        for k in range(i, size):
            poly[k] += poly[k - i]
    return poly


def mann_whitney_u(a: Sequence[float], b: Sequence[float]) -> tuple[float, float]:
    """The U statistic of a against b and its two-sided p-value (exact without ties, else normal + tie term)."""
    n1, n2 = len(a), len(b)
    if n1 == 0 or n2 == 0:
        raise ValueError("Mann-Whitney U needs at least one value in each sample")
    pooled = sorted([(x, 0) for x in a] + [(y, 1) for y in b])
    ranks = [0.0] * len(pooled)
    ties: list[int] = []
    i = 0
    while i < len(pooled):
        j = i
        while j + 1 < len(pooled) and pooled[j + 1][0] == pooled[i][0]:
            j += 1
        for k in range(i, j + 1):
            ranks[k] = (i + j) / 2 + 1
        if j > i:
            ties.append(j - i + 1)
        i = j + 1
    rank_sum_a = sum(r for r, (_, group) in zip(ranks, pooled, strict=True) if group == 0)
    u = rank_sum_a - n1 * (n1 + 1) / 2
    mean = n1 * n2 / 2
    if not ties and n1 <= _EXACT_MAX_N and n2 <= _EXACT_MAX_N:
        counts = _exact_counts(n1, n2)
        total = math.comb(n1 + n2, n1)
        k = round(u)
        lower = sum(counts[: k + 1]) / total
        upper = sum(counts[k:]) / total
        return u, min(1.0, 2 * min(lower, upper))
    n = n1 + n2
    tie_term = sum(t**3 - t for t in ties) / (n * (n - 1))
    sigma = math.sqrt(n1 * n2 / 12 * ((n + 1) - tie_term))
    if sigma == 0:
        return u, 1.0
    z = (abs(u - mean) - 0.5) / sigma
    return u, min(1.0, math.erfc(max(z, 0.0) / math.sqrt(2)))


def median_interval(values: Sequence[float], confidence: float = _INTERVAL_CONFIDENCE) -> tuple[float, float]:
    """A distribution-free interval for the median from order statistics; the full range when n is too small."""
    ordered = sorted(values)
    n = len(ordered)
    if n == 0:
        raise ValueError("an interval needs at least one value")
    alpha = 1 - confidence
    # The largest k with P(Binomial(n, 1/2) < k) <= alpha / 2: [x_(k), x_(n-k+1)] covers the median.
    cumulative, k = 0.0, 0
    for j in range(n):
        cumulative += math.comb(n, j) / 2**n
        if cumulative > alpha / 2:
            break
        k = j + 1
    if k == 0:
        return ordered[0], ordered[-1]
    return ordered[k - 1], ordered[n - k]


def is_different(a: Sequence[float], b: Sequence[float], p_threshold: float = P_THRESHOLD) -> Significance:
    """asv's rule: a U test when the samples are big enough for it ever to reach p_threshold, else the samples'
    99% median intervals must not overlap (a pessimistic test: it rarely calls noise a change)."""
    a = [x for x in a if not math.isnan(x)]
    b = [x for x in b if not math.isnan(x)]
    if not a or not b:
        return Significance(False, "none")
    smallest_p = 2 / math.comb(len(a) + len(b), min(len(a), len(b)))
    if smallest_p < p_threshold:
        _, p = mann_whitney_u(a, b)
        return Significance(p < p_threshold, "mann-whitney", p)
    lo_a, hi_a = median_interval(a)
    lo_b, hi_b = median_interval(b)
    return Significance(hi_a < lo_b or hi_b < lo_a, "intervals")
