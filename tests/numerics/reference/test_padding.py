"""Tests pinning cnnbench.numerics.reference.padding (F.pad) to PyTorch (float64, CPU)."""

from __future__ import annotations

import numpy as np
import pytest
import torch.nn.functional as F
from reference_support import (
    T,
    assert_close,
)

from cnnbench.numerics import reference as R


@pytest.mark.parametrize("mode", ["constant", "reflect", "replicate", "circular"])
@pytest.mark.parametrize("pad", [(1, 2), (0, 3, 2, 1), (2, 0, 0, 2), (1, 1, 1, 1, 1, 1)])
def test_pad_matches_torch(mode: str, pad: tuple[int, ...]) -> None:
    x = np.random.default_rng(5).standard_normal((2, 3, 4, 5))
    if mode != "constant":  # torch pads k dims of a (k+1)-D or (k+2)-D input only
        x = x.reshape((-1, *x.shape[-(len(pad) // 2) :]))
    assert_close(R.pad(x, pad, mode), F.pad(T(x), pad, mode))
    if mode != "constant":
        with pytest.raises((NotImplementedError, RuntimeError, AssertionError)):  # varies by torch version
            F.pad(T(x[None, None]), pad, mode)
        with pytest.raises(ValueError):
            R.pad(x[None, None], pad, mode)


def test_pad_constant_value_and_negative_crop() -> None:
    x = np.random.default_rng(6).standard_normal((2, 3, 4))
    for pad in [(1, -2), (-1, 0, 2, -1), (0, 0, -1, -1, 1, 0)]:
        assert_close(R.pad(x, pad, value=2.5), F.pad(T(x), pad, value=2.5))
    with pytest.raises(ValueError):
        R.pad(x, (4, 0), mode="reflect")


@pytest.mark.parametrize("pad", [(-1, 1, -2, 1), (2, -1), (-1, 2, 1, -2)])
def test_pad_circular_wraps_within_the_cropped_input(pad: tuple[int, ...]) -> None:
    """torch crops a negative side first, then wraps the positive side around what is left (the OpInfo sample
    nn.functional.pad.circular 7 of torch 2.14 caught the reference wrapping around the uncropped input)."""
    x = np.random.default_rng(7).standard_normal((1, 3, 4, 4))
    if len(pad) == 2:
        x = x[0]
    assert_close(R.pad(x, pad, "circular"), F.pad(T(x), pad, "circular"))
