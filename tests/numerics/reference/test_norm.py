"""Tests pinning cnnbench.numerics.reference.norm (batch norm) to PyTorch (float64, CPU)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from reference_support import (
    T,
    assert_close,
    assert_grads,
    autograd,
    rng_for,
)

from cnnbench.numerics import reference as R


@pytest.mark.parametrize("shape", [(4, 3), (2, 3, 5), (2, 3, 4, 5), (2, 3, 2, 3, 4)])
@pytest.mark.parametrize("training", [False, True])
@pytest.mark.parametrize("affine", [False, True])
@pytest.mark.parametrize("momentum", [0.1, 0.3])
def test_batch_norm_matches_torch(
    shape: tuple[int, ...], training: bool, affine: bool, momentum: float
) -> None:
    rng = rng_for("bn", shape, training, affine, momentum)
    x = rng.standard_normal(shape) * 3 + 1
    rm, rv = rng.standard_normal(3), rng.random(3) + 0.5
    w, b = (rng.standard_normal(3), rng.standard_normal(3)) if affine else (None, None)
    t_rm, t_rv = T(rm.copy()), T(rv.copy())
    expected = F.batch_norm(
        T(x), t_rm, t_rv, None if w is None else T(w), None if b is None else T(b), training, momentum, 1e-3
    )
    out = R.batch_norm(x, rm, rv, w, b, training, momentum, 1e-3)
    assert_close(out, expected)
    assert_close(rm, t_rm)  # running stats updated in place (unbiased variance) when training
    assert_close(rv, t_rv)


def test_batch_norm_training_without_running_stats_and_errors() -> None:
    x = np.random.default_rng(0).standard_normal((3, 2, 4))
    assert_close(R.batch_norm(x, None, None, training=True), F.batch_norm(T(x), None, None, training=True))
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        R.batch_norm(x[:1, :, :1], None, None, training=True)
    with pytest.raises(ValueError):
        R.batch_norm(x, None, None, training=False)


@pytest.mark.parametrize("shape", [(4, 3), (2, 3, 5), (2, 3, 4, 5)])
@pytest.mark.parametrize("training", [False, True])
@pytest.mark.parametrize("affine", [False, True])
def test_batch_norm_gradients_match_autograd(shape: tuple[int, ...], training: bool, affine: bool) -> None:
    rng = rng_for("gbn", shape, training, affine)
    x = rng.standard_normal(shape) * 2 + 0.5
    rm, rv = rng.standard_normal(3), rng.random(3) + 0.5
    w, b = (rng.standard_normal(3), rng.standard_normal(3)) if affine else (None, None)
    rm_before, rv_before = rm.copy(), rv.copy()

    def fn(x: torch.Tensor, w: torch.Tensor | None, b: torch.Tensor | None) -> torch.Tensor:
        return F.batch_norm(x, T(rm.copy()), T(rv.copy()), w, b, training=training, eps=1e-4)

    go, theirs = autograd(fn, rng, {"x": x, "w": w, "b": b})
    ours = R.GRADIENTS["batch_norm"](go, x, rm, rv, w, b, training=training, eps=1e-4)
    expected = {"input": theirs["x"], **({"weight": theirs["w"], "bias": theirs["b"]} if affine else {})}
    assert_grads(ours, expected)
    np.testing.assert_array_equal(rm, rm_before)  # the backward never touches the running stats
    np.testing.assert_array_equal(rv, rv_before)
