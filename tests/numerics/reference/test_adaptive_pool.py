"""Tests pinning cnnbench.numerics.reference.adaptive_pool to PyTorch (float64, CPU)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch.nn.functional as F
from reference_support import (
    T,
    assert_close,
    assert_grads,
    autograd,
    rng_for,
    tie_heavy,
)

from cnnbench.numerics import reference as R


@pytest.mark.parametrize(
    "output_size", [1, 2, 3, (4, 5), (None, 3), (7, None), 8, (10, 3), (1, 9), [2, 2], (None, None)]
)
def test_adaptive_pools_match_torch(output_size: Any) -> None:
    rng = rng_for("adaptive", output_size)
    for size in [(5, 7), (8, 8), (3, 10)]:
        x = tie_heavy(rng, (2, 3, *size))
        assert_close(R.adaptive_avg_pool2d(x, output_size), F.adaptive_avg_pool2d(T(x), output_size))
        out, idx = R.adaptive_max_pool2d(x, output_size, return_indices=True)
        t_out, t_idx = F.adaptive_max_pool2d(T(x), output_size, return_indices=True)
        assert_close(out, t_out)
        np.testing.assert_array_equal(idx, t_idx.numpy())
        assert_close(R.adaptive_max_pool2d(x[0], output_size), F.adaptive_max_pool2d(T(x[0]), output_size))


@pytest.mark.parametrize("output_size", [1, 3, 4, 7, 12])
def test_adaptive_pools_1d_3d_match_torch(output_size: int) -> None:
    rng = rng_for("adaptive13", output_size)
    x = tie_heavy(rng, (2, 3, 7))
    assert_close(R.adaptive_avg_pool1d(x, output_size), F.adaptive_avg_pool1d(T(x), output_size))
    out, idx = R.adaptive_max_pool1d(x, output_size, return_indices=True)
    t_out, t_idx = F.adaptive_max_pool1d(T(x), output_size, return_indices=True)
    assert_close(out, t_out)
    np.testing.assert_array_equal(idx, t_idx.numpy())
    y = tie_heavy(rng, (1, 2, 4, 5, 6))
    size3 = (output_size % 4 + 1, None, output_size)
    assert_close(R.adaptive_avg_pool3d(y, size3), F.adaptive_avg_pool3d(T(y), size3))
    out, idx = R.adaptive_max_pool3d(y, size3, return_indices=True)
    t_out, t_idx = F.adaptive_max_pool3d(T(y), size3, return_indices=True)
    assert_close(out, t_out)
    np.testing.assert_array_equal(idx, t_idx.numpy())


@pytest.mark.parametrize("output_size", [1, 3, (4, 5), (None, 2), (9, 2)])
def test_adaptive_pool_gradients_match_autograd(output_size: Any) -> None:
    rng = rng_for("gadaptive", output_size)
    x = tie_heavy(rng, (2, 2, 5, 7))
    go, theirs = autograd(F.adaptive_avg_pool2d, rng, {"x": x}, output_size=output_size)
    assert_grads(R.GRADIENTS["adaptive_avg_pool2d"](go, x, output_size), {"input": theirs["x"]})
    go, theirs = autograd(F.adaptive_max_pool2d, rng, {"x": x}, output_size=output_size)
    assert_grads(R.GRADIENTS["adaptive_max_pool2d"](go, x, output_size), {"input": theirs["x"]})
    x1 = x[:, :, 0]
    size1 = 3 if output_size is None or not isinstance(output_size, int) else output_size
    go, theirs = autograd(F.adaptive_avg_pool1d, rng, {"x": x1}, output_size=size1)
    assert_grads(R.GRADIENTS["adaptive_avg_pool1d"](go, x1, size1), {"input": theirs["x"]})
    go, theirs = autograd(F.adaptive_max_pool1d, rng, {"x": x1}, output_size=size1)
    assert_grads(R.GRADIENTS["adaptive_max_pool1d"](go, x1, size1), {"input": theirs["x"]})


@pytest.mark.parametrize("name", ["adaptive_avg_pool2d_backward", "adaptive_max_pool2d_backward"])
def test_adaptive_pool_gradients_reject_a_grad_output_of_another_shape(name: str) -> None:
    # the forward output is (1, 1, 3, 2); a (1, 1, 2, 3) gradient has as many values and was once scattered
    # into the max pool's argmaxes without complaint (a plausible, wrong gradient)
    x = np.random.default_rng(9).standard_normal((1, 1, 6, 4))
    with pytest.raises(ValueError, match=r"grad_output has shape \(1, 1, 2, 3\), expected \(1, 1, 3, 2\)"):
        getattr(R, name)(np.ones((1, 1, 2, 3)), x, (3, 2))


@pytest.mark.parametrize("name", ["adaptive_avg_pool2d", "adaptive_max_pool2d"])
def test_adaptive_pool_gradient_of_an_empty_batch(name: str) -> None:
    x = np.zeros((0, 2, 5, 4))
    go, theirs = autograd(getattr(F, name), rng_for("gadaptive-empty", name), {"x": x}, output_size=(2, 3))
    assert_grads(R.GRADIENTS[name](go, x, (2, 3)), {"input": theirs["x"]})
