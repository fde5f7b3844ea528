"""Tests pinning cnnbench.numerics.reference.dense (F.linear) to PyTorch (float64, CPU)."""

from __future__ import annotations

import pytest
import torch.nn.functional as F
from reference_support import (
    T,
    assert_close,
    assert_grads,
    autograd,
    rng_for,
)

from cnnbench.numerics import reference as R


@pytest.mark.parametrize("shape", [(5,), (3, 5), (2, 3, 5)])
@pytest.mark.parametrize("bias", [False, True])
def test_linear_matches_torch(shape: tuple[int, ...], bias: bool) -> None:
    rng = rng_for("linear", shape, bias)
    x, w, b = (
        rng.standard_normal(shape),
        rng.standard_normal((4, 5)),
        rng.standard_normal(4) if bias else None,
    )
    assert_close(R.linear(x, w, b), F.linear(T(x), T(w), None if b is None else T(b)))


@pytest.mark.parametrize("shape", [(5,), (3, 5), (2, 3, 5)])
def test_linear_gradients_match_autograd(shape: tuple[int, ...]) -> None:
    rng = rng_for("glinear", shape)
    x, w, b = rng.standard_normal(shape), rng.standard_normal((4, 5)), rng.standard_normal(4)
    go, theirs = autograd(F.linear, rng, {"x": x, "w": w, "b": b})
    assert_grads(
        R.GRADIENTS["linear"](go, x, w, b), {"input": theirs["x"], "weight": theirs["w"], "bias": theirs["b"]}
    )
