"""Tests pinning cnnbench.numerics.reference.resample (F.interpolate) to PyTorch (float64, CPU)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch.nn.functional as F
from reference_support import (
    T,
    assert_close,
    rng_for,
)

from cnnbench.numerics import reference as R

INTERP_IN = [(5, 7), (4, 4), (10, 3)]


INTERP_ARGS: list[dict[str, Any]] = [
    {"size": (10, 14)},
    {"size": (3, 4)},
    {"size": (7, 5)},
    {"size": 1},
    {"size": (13, 3)},
    {"scale_factor": 2},
    {"scale_factor": 1.5},
    {"scale_factor": 0.5},
    {"scale_factor": (2.5, 0.7)},
    {"scale_factor": 1.05},  # floor(in * 1.05) == in for small in: torch copies (the out == in shortcut)
    {"scale_factor": 2.1},
    {"scale_factor": 1.7, "recompute_scale_factor": True},
    {"scale_factor": (0.3, 3.3)},
]


@pytest.mark.parametrize(
    ("mode", "align_corners"),
    [("nearest", None), ("nearest-exact", None), ("bilinear", False), ("bilinear", True)],
)
@pytest.mark.parametrize("args", INTERP_ARGS, ids=repr)
def test_interpolate_2d_matches_torch(mode: str, align_corners: bool | None, args: dict[str, Any]) -> None:
    rng = rng_for("interp", mode, align_corners, repr(args))
    for size in INTERP_IN:
        x = rng.standard_normal((2, 2, *size))
        try:
            expected = F.interpolate(T(x), mode=mode, align_corners=align_corners, **args)
        except (RuntimeError, ValueError):
            continue  # e.g. an output size of 0
        assert_close(R.interpolate(x, mode=mode, align_corners=align_corners, **args), expected)


@pytest.mark.parametrize(
    ("mode", "align_corners", "shape", "args"),
    [
        ("linear", False, (2, 3, 7), {"size": 11}),
        ("linear", True, (2, 3, 7), {"scale_factor": 0.6}),
        ("nearest", None, (2, 3, 7), {"scale_factor": 2.7}),
        ("trilinear", False, (1, 2, 3, 4, 5), {"size": (5, 3, 8)}),
        ("trilinear", True, (1, 2, 3, 4, 5), {"scale_factor": 1.5}),
        ("nearest", None, (1, 2, 3, 4, 5), {"size": (6, 2, 7)}),
    ],
)
def test_interpolate_1d_3d_matches_torch(
    mode: str, align_corners: bool | None, shape: Any, args: Any
) -> None:
    x = np.random.default_rng(7).standard_normal(shape)
    assert_close(
        R.interpolate(x, mode=mode, align_corners=align_corners, **args),
        F.interpolate(T(x), mode=mode, align_corners=align_corners, **args),
    )


def test_interpolate_nearest_uses_float32_scale_like_torch() -> None:
    # For in=7, out=20 (not 2*in), torch computes floorf(dst * float32(7/20)); a float64 floor(dst*in/out)
    # differs at dst=20*k/7 boundaries only by rounding: check a range of sizes exhaustively against torch.
    rng = np.random.default_rng(8)
    for n_in in range(1, 12):
        for n_out in range(1, 30):
            x = rng.standard_normal((1, 1, n_in))
            np.testing.assert_array_equal(
                R.interpolate(x, size=n_out),
                F.interpolate(T(x), size=n_out).numpy(),
                err_msg=f"{n_in}->{n_out}",
            )


def test_interpolate_rejects_bad_arguments() -> None:
    x = np.zeros((1, 1, 4, 4))
    with pytest.raises(ValueError):
        R.interpolate(x, size=2, scale_factor=2)
    with pytest.raises(ValueError):
        R.interpolate(x, size=2, align_corners=True)
    with pytest.raises(ValueError):
        R.interpolate(x[0], size=2, mode="bicubic")
    with pytest.raises(ValueError):
        R.interpolate(x[0], size=2, mode="bilinear")
    with pytest.raises(ValueError):
        R.interpolate(x, size=2, mode="area", align_corners=False)
    with pytest.raises(ValueError):
        R.interpolate(x, size=2, mode="nearest", antialias=True)
    with pytest.raises(ValueError):
        R.interpolate(x[0], size=2, mode="linear", antialias=True)


@pytest.mark.parametrize("align_corners", [False, True])
@pytest.mark.parametrize("args", INTERP_ARGS, ids=repr)
def test_bicubic_matches_torch(align_corners: bool, args: dict[str, Any]) -> None:
    """PyTorch's cubic convolution (A = -0.75), taps clamped at the border, align_corners both ways."""
    rng = rng_for("bicubic", align_corners, repr(args))
    for size in INTERP_IN:
        x = rng.standard_normal((2, 2, *size))
        expected = F.interpolate(T(x), mode="bicubic", align_corners=align_corners, **args)
        assert_close(R.interpolate(x, mode="bicubic", align_corners=align_corners, **args), expected)


@pytest.mark.parametrize("args", INTERP_ARGS, ids=repr)
def test_area_is_adaptive_average_pooling_like_torch(args: dict[str, Any]) -> None:
    rng = rng_for("area", repr(args))
    for size in INTERP_IN:
        x = rng.standard_normal((2, 2, *size))
        assert_close(R.interpolate(x, mode="area", **args), F.interpolate(T(x), mode="area", **args))


@pytest.mark.parametrize(("shape", "size"), [((2, 3, 7), 3), ((2, 3, 7), 11), ((1, 2, 5, 4, 6), (2, 7, 3))])
def test_area_in_1d_and_3d_matches_torch(shape: tuple[int, ...], size: Any) -> None:
    x = np.random.default_rng(9).standard_normal(shape)
    assert_close(R.interpolate(x, size=size, mode="area"), F.interpolate(T(x), size=size, mode="area"))


def _comparable(size: tuple[int, int], args: dict[str, Any]) -> bool:
    """Whether torch resizes size with args (no empty output), other than to one column after a height change."""
    try:
        out = F.interpolate(T(np.zeros((1, 1, *size))), mode="bilinear", antialias=True, **args).shape[2:]
    except RuntimeError:
        return False  # an output size of 0
    return not (out[1] == 1 and out[0] != size[0] and size[1] != 1)


@pytest.mark.parametrize(
    ("mode", "align_corners"),
    [("bilinear", False), ("bilinear", True), ("bicubic", False), ("bicubic", True)],
)
@pytest.mark.parametrize("args", INTERP_ARGS, ids=repr)
def test_antialias_matches_torch(mode: str, align_corners: bool, args: dict[str, Any]) -> None:
    """PyTorch's separable antialiasing filter (triangle; Keys' cubic with a = -0.5), stretched when downsampling."""
    rng = rng_for("antialias", mode, align_corners, repr(args))
    for size in [*INTERP_IN, (12, 9), (2, 17)]:
        if not _comparable(size, args):
            continue  # one column: torch's two-pass kernel mis-handles it (test_antialias_to_one_column_is_separable)
        x = rng.standard_normal((2, 2, *size))
        expected = F.interpolate(T(x), mode=mode, align_corners=align_corners, antialias=True, **args)
        got = R.interpolate(x, mode=mode, align_corners=align_corners, antialias=True, **args)
        assert_close(got, expected)


def test_antialias_to_one_column_is_separable() -> None:
    """Downsampling height and width to one column at once, torch 2.14's CPU kernel repeats its first output row
    (a PyTorch bug the reference does not copy): the reference equals torch's own two single-axis passes."""
    x = np.random.default_rng(10).standard_normal((2, 2, 10, 3))
    for mode in ("bilinear", "bicubic"):
        rows = F.interpolate(T(x), size=(5, 3), mode=mode, antialias=True)
        both = F.interpolate(rows, size=(5, 1), mode=mode, antialias=True)
        assert_close(R.interpolate(x, size=(5, 1), mode=mode, antialias=True), both)
