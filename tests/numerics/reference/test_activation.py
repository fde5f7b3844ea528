"""Tests pinning cnnbench.numerics.reference.activation to PyTorch (float64, CPU)."""

from __future__ import annotations

import warnings

import numpy as np
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

EXTREMES = np.array(
    [-1000.0, -800.0, -30.0, -1.0, -0.0, 0.0, 1e-300, 0.5, 30.0, 800.0, 1000.0, np.inf, -np.inf]
)


@pytest.mark.parametrize("name", ["relu", "sigmoid", "tanh"])
def test_activations_match_torch(name: str) -> None:
    x = np.concatenate([EXTREMES, np.random.default_rng(1).standard_normal(50) * 5, [np.nan]])
    assert_close(R.REFERENCES[name](x), getattr(F, name)(T(x)), equal_nan=True)


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@pytest.mark.parametrize(
    ("shape", "dim"), [((7,), 0), ((3, 7), -1), ((3, 7), 0), ((2, 3, 4), 1), ((2, 3, 4, 5), 1)]
)
def test_softmax_family_matches_torch(name: str, shape: tuple[int, ...], dim: int) -> None:
    x = np.random.default_rng(2).standard_normal(shape) * 10
    x.flat[0] = 1000.0  # stability: no overflow
    x.flat[-1] = -1000.0
    assert_close(R.REFERENCES[name](x, dim), getattr(F, name)(T(x), dim))


@pytest.mark.parametrize("shape", [(7,), (3, 4), (2, 3, 4), (2, 3, 4, 5)])
def test_softmax_implicit_dim_follows_torch_legacy_rule(shape: tuple[int, ...]) -> None:
    x = np.random.default_rng(4).standard_normal(shape)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert_close(R.softmax(x), F.softmax(T(x)))
        assert_close(R.log_softmax(x), F.log_softmax(T(x)))


@pytest.mark.parametrize("name", ["relu", "sigmoid", "tanh"])
def test_activation_gradients_match_autograd(name: str) -> None:
    rng = rng_for("gact", name)
    x = np.concatenate([rng.standard_normal(40) * 4, [0.0, -0.0, 30.0, -30.0]])
    go, theirs = autograd(getattr(F, name), rng, {"x": x})
    assert_grads(R.GRADIENTS[name](go, x), {"input": theirs["x"]})


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@pytest.mark.parametrize("dim", [0, 1, -1])
def test_softmax_gradients_match_autograd(name: str, dim: int) -> None:
    rng = rng_for("gsoft", name, dim)
    x = rng.standard_normal((3, 4, 5)) * 3
    go, theirs = autograd(getattr(F, name), rng, {"x": x}, dim=dim)
    assert_grads(R.GRADIENTS[name](go, x, dim), {"input": theirs["x"]})
