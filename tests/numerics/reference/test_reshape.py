"""Tests pinning cnnbench.numerics.reference.reshape (flatten) to PyTorch."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from reference_support import (
    T,
)

from cnnbench.numerics import reference as R


@pytest.mark.parametrize(("start", "end"), [(0, -1), (1, -1), (1, 2), (-2, -1), (2, 2), (0, 0)])
def test_flatten_matches_torch(start: int, end: int) -> None:
    x = np.arange(120.0).reshape(2, 3, 4, 5)
    np.testing.assert_array_equal(R.flatten(x, start, end), torch.flatten(T(x), start, end).numpy())
    assert R.flatten(np.float64(3.0)).shape == torch.flatten(torch.tensor(3.0)).shape
