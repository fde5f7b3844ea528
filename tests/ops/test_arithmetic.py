"""Tests of the convolution-arithmetic formulas against PyTorch's actual output shapes."""

from __future__ import annotations

import itertools
import warnings
from typing import Any

import pytest
import torch
import torch.nn.functional as F

from cnnbench.ops.arithmetic import (
    conv_output_size,
    conv_transpose_output_size,
    expected_output_shape,
    pool_output_size,
    same_padding,
)


@pytest.fixture(autouse=True, scope="module")
def _single_threaded_torch() -> Any:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def torch_shape(fn: Any, *args: Any, **kwargs: Any) -> tuple[int, ...] | None:
    """The output shape torch gives, or None when torch rejects the configuration."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = fn(*args, **kwargs)
    except (RuntimeError, ValueError):
        return None
    return tuple((out[0] if isinstance(out, tuple) else out).shape)


# ---------------------------------------------------------------------------------------------------------
# seed facts
# ---------------------------------------------------------------------------------------------------------


def test_seed_conv_5_to_10_on_100x100() -> None:
    # Conv2d(5, 10, 3) on 1x5x100x100 -> 1x10x98x98
    assert conv_output_size(100, 3) == 98
    assert expected_output_shape("conv2d", (1, 5, 100, 100), {"weight_shape": (10, 5, 3, 3)}) == (
        1,
        10,
        98,
        98,
    )
    assert torch.nn.Conv2d(5, 10, 3)(torch.zeros(1, 5, 100, 100)).shape == (1, 10, 98, 98)


def test_seed_conv_3_to_6_on_132() -> None:
    assert conv_output_size(132, 3) == 130
    assert expected_output_shape("conv2d", (1, 3, 132, 132), {"weight_shape": (6, 3, 3, 3)}) == (
        1,
        6,
        130,
        130,
    )


def test_seed_rectangular_kernel_stride_padding() -> None:
    # Conv2d(1, 1, (3, 5), padding=(0, 1), stride=(3, 4)) on 8x8 -> 2x2
    assert conv_output_size(8, 3, stride=3, padding=0) == 2
    assert conv_output_size(8, 5, stride=4, padding=1) == 2
    args = {"weight_shape": (1, 1, 3, 5), "padding": (0, 1), "stride": (3, 4)}
    assert expected_output_shape("conv2d", (1, 1, 8, 8), args) == (1, 1, 2, 2)
    conv = torch.nn.Conv2d(1, 1, (3, 5), padding=(0, 1), stride=(3, 4))
    assert conv(torch.zeros(1, 1, 8, 8)).shape == (1, 1, 2, 2)


def test_seed_max_pool_3_padding_1_stride_2_on_4x4() -> None:
    assert pool_output_size(4, 3, 2, padding=1) == 2
    assert expected_output_shape(
        "max_pool2d", (1, 1, 4, 4), {"kernel_size": 3, "padding": 1, "stride": 2}
    ) == (
        1,
        1,
        2,
        2,
    )
    assert torch.nn.MaxPool2d(3, padding=1, stride=2)(torch.zeros(1, 1, 4, 4)).shape == (1, 1, 2, 2)


def test_classic_formula_special_cases() -> None:
    # (W - F + 2P)/S + 1 for the textbook cases
    assert conv_output_size(32, 5) == 28
    assert conv_output_size(32, 3, padding=1) == 32
    assert conv_output_size(227, 11, stride=4) == 55
    assert conv_output_size(7, 3, stride=2) == 3
    assert conv_output_size(10, 3, dilation=2) == 6  # effective kernel 5
    assert pool_output_size(4, 3, 3, ceil_mode=True) == 2
    assert pool_output_size(4, 3, 3, ceil_mode=False) == 1
    assert pool_output_size(5, 2, 2, padding=1, ceil_mode=True) == 3  # the 4th window would start in padding
    assert conv_transpose_output_size(3, 3, stride=2, padding=1, output_padding=1) == 6
    assert same_padding(3) == (1, 1)
    assert same_padding(4) == (1, 2)
    assert same_padding(2, dilation=3) == (1, 2)


# ---------------------------------------------------------------------------------------------------------
# formulas against torch over grids
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kernel", "stride", "padding", "dilation"),
    list(itertools.product([1, 2, 3, 5], [1, 2, 3], [0, 1, 2], [1, 2])),
)
def test_conv_output_size_matches_torch(kernel: int, stride: int, padding: int, dilation: int) -> None:
    weight = torch.zeros(1, 1, kernel)
    for size in range(1, 12):
        expected = torch_shape(
            F.conv1d, torch.zeros(1, 1, size), weight, stride=stride, padding=padding, dilation=dilation
        )
        if expected is None:
            with pytest.raises(ValueError):
                conv_output_size(size, kernel, stride, padding, dilation)
        else:
            assert conv_output_size(size, kernel, stride, padding, dilation) == expected[-1], size


@pytest.mark.parametrize(
    ("kernel", "stride", "padding", "dilation", "ceil_mode"),
    list(itertools.product([1, 2, 3, 4, 5], [1, 2, 3], [0, 1, 2], [1, 2], [False, True])),
)
def test_pool_output_size_matches_torch(
    kernel: int, stride: int, padding: int, dilation: int, ceil_mode: bool
) -> None:
    for size in range(1, 13):
        x = torch.zeros(1, 1, size)
        args = {"stride": stride, "padding": padding, "dilation": dilation, "ceil_mode": ceil_mode}
        expected = torch_shape(F.max_pool1d, x, kernel, return_indices=True, **args)
        if expected is None:
            with pytest.raises(ValueError):
                pool_output_size(size, kernel, stride, padding, dilation, ceil_mode)
            continue
        assert pool_output_size(size, kernel, stride, padding, dilation, ceil_mode) == expected[-1], size
        if dilation == 1:
            avg = torch_shape(F.avg_pool1d, x, kernel, stride, padding, ceil_mode)
            assert avg == expected


@pytest.mark.parametrize(
    ("kernel", "stride", "padding", "output_padding", "dilation"),
    list(itertools.product([1, 2, 3], [1, 2, 3], [0, 1, 2], [0, 1, 2], [1, 2])),
)
def test_conv_transpose_output_size_matches_torch(
    kernel: int, stride: int, padding: int, output_padding: int, dilation: int
) -> None:
    weight = torch.zeros(1, 1, kernel)
    for size in [1, 2, 3, 5, 8]:
        args = {"stride": stride, "padding": padding, "output_padding": output_padding, "dilation": dilation}
        expected = torch_shape(F.conv_transpose1d, torch.zeros(1, 1, size), weight, **args)
        if expected is None:
            with pytest.raises(ValueError):
                conv_transpose_output_size(size, kernel, stride, padding, output_padding, dilation)
        else:
            assert (
                conv_transpose_output_size(size, kernel, stride, padding, output_padding, dilation)
                == expected[-1]
            )


# ---------------------------------------------------------------------------------------------------------
# expected_output_shape against torch
# ---------------------------------------------------------------------------------------------------------

SHAPE_CASES: list[tuple[str, tuple[int, ...], dict[str, Any]]] = [
    ("conv2d", (2, 4, 9, 7), {"weight_shape": (6, 2, 3, 2), "groups": 2, "stride": (2, 1), "padding": 1}),
    ("conv2d", (4, 9, 7), {"weight_shape": (6, 4, 3, 3), "dilation": 2}),  # unbatched
    ("conv2d", (2, 4, 9, 8), {"weight_shape": (6, 4, 4, 2), "padding": "same", "dilation": (1, 3)}),
    ("conv2d", (2, 4, 9, 8), {"weight_shape": (6, 4, 4, 2), "padding": "valid"}),
    ("conv1d", (2, 3, 17), {"weight_shape": (5, 3, 4), "stride": 3, "padding": 2, "dilation": 2}),
    ("conv3d", (1, 2, 5, 6, 7), {"weight_shape": (3, 2, 2, 3, 2), "stride": (1, 2, 3)}),
    (
        "conv_transpose2d",
        (2, 4, 5, 6),
        {"weight_shape": (4, 3, 3, 3), "stride": 2, "padding": 1, "output_padding": 1},
    ),
    (
        "conv_transpose2d",
        (2, 4, 5, 6),
        {
            "weight_shape": (4, 3, 3, 2),
            "stride": (3, 2),
            "groups": 2,
            "dilation": 2,
            "output_padding": (2, 1),
        },
    ),
    (
        "conv_transpose1d",
        (2, 4, 5),
        {"weight_shape": (4, 2, 5), "stride": 4, "padding": 2, "output_padding": 3},
    ),
    ("max_pool2d", (2, 3, 7, 8), {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True}),
    ("max_pool2d", (3, 7, 8), {"kernel_size": (2, 3), "dilation": 2}),
    ("max_pool1d", (2, 3, 11), {"kernel_size": 4, "stride": 3, "ceil_mode": True}),
    ("avg_pool2d", (2, 3, 7, 8), {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True}),
    ("avg_pool2d", (2, 3, 6, 6), {"kernel_size": 2}),
    ("avg_pool1d", (2, 3, 10), {"kernel_size": 3, "ceil_mode": True}),
    ("adaptive_avg_pool2d", (2, 3, 7, 8), {"output_size": (3, None)}),
    ("adaptive_max_pool2d", (2, 3, 7, 8), {"output_size": 5}),
    ("adaptive_avg_pool1d", (2, 3, 7), {"output_size": 4}),
    ("relu", (2, 3, 4), {}),
    ("softmax", (2, 3, 4), {"dim": 1}),
    ("linear", (2, 3, 5), {"weight_shape": (4, 5)}),
    ("interpolate", (2, 3, 5, 7), {"size": (10, 3)}),
    ("interpolate", (2, 3, 5, 7), {"scale_factor": 1.5}),
    ("flatten", (2, 3, 4, 5), {"start_dim": 1}),
]


def run_torch(op: str, input_shape: tuple[int, ...], args: dict[str, Any]) -> tuple[int, ...] | None:
    args = dict(args)
    x = torch.zeros(input_shape)
    if op == "flatten":
        return torch_shape(torch.flatten, x, **args)
    weight_shape = args.pop("weight_shape", None)
    if weight_shape is not None:
        return torch_shape(getattr(F, op), x, torch.zeros(weight_shape), **args)
    if op.startswith(("max_pool", "avg_pool")):
        return torch_shape(getattr(F, op), x, args.pop("kernel_size"), **args)
    return torch_shape(getattr(F, op), x, **args)


@pytest.mark.parametrize(
    ("op", "input_shape", "args"), SHAPE_CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(SHAPE_CASES)]
)
def test_expected_output_shape_matches_torch(
    op: str, input_shape: tuple[int, ...], args: dict[str, Any]
) -> None:
    expected = run_torch(op, input_shape, args)
    assert expected is not None
    assert expected_output_shape(op, input_shape, args) == expected


@pytest.mark.parametrize(
    ("op", "input_shape", "args"),
    [
        ("conv2d", (1, 1, 2, 2), {"weight_shape": (1, 1, 3, 3)}),  # kernel larger than the input
        ("conv2d", (1, 3, 8, 8), {"weight_shape": (1, 2, 3, 3)}),  # channel mismatch
        ("conv2d", (1, 2, 8, 8), {"weight_shape": (3, 1, 3, 3), "groups": 2}),  # out channels not divisible
        ("conv2d", (1, 1, 8, 8), {"weight_shape": (1, 1, 3, 3), "padding": "same", "stride": 2}),
        ("conv_transpose2d", (1, 1, 4, 4), {"weight_shape": (1, 1, 3, 3), "stride": 2, "output_padding": 2}),
        ("max_pool2d", (1, 1, 8, 8), {"kernel_size": 3, "padding": 2}),  # padding > kernel/2
        ("avg_pool2d", (1, 1, 8, 8), {"kernel_size": 2, "padding": 2}),
        ("max_pool2d", (1, 1, 2, 2), {"kernel_size": 3}),  # output < 1
        ("adaptive_avg_pool2d", (1, 1, 4, 4), {"output_size": 0}),
    ],
)
def test_expected_output_shape_rejects_what_torch_rejects(
    op: str, input_shape: tuple[int, ...], args: dict[str, Any]
) -> None:
    if op != "adaptive_avg_pool2d":  # torch returns an empty tensor there instead of raising
        assert run_torch(op, input_shape, args) is None
    with pytest.raises(ValueError):
        expected_output_shape(op, input_shape, args)


def test_expected_output_shape_unknown_op_and_missing_args() -> None:
    assert expected_output_shape("embedding_bag", (2, 3), {}) is None
    with pytest.raises(ValueError, match="weight_shape"):
        expected_output_shape("conv2d", (1, 1, 4, 4), {})
    with pytest.raises(ValueError, match="kernel_size"):
        expected_output_shape("max_pool2d", (1, 1, 4, 4), {})
    with pytest.raises(ValueError):
        expected_output_shape("conv2d", (4, 4), {"weight_shape": (1, 1, 3, 3)})


@pytest.mark.parametrize("stride", [1, 2, 3])
@pytest.mark.parametrize("padding", [0, 1, 2])
@pytest.mark.parametrize("ceil_mode", [False, True])
def test_expected_pool_shape_grid_matches_torch(stride: int, padding: int, ceil_mode: bool) -> None:
    for (h, w), kernel in itertools.product([(4, 4), (5, 6), (7, 8), (8, 8)], [2, 3, 4, (3, 5)]):
        args = {"kernel_size": kernel, "stride": stride, "padding": padding, "ceil_mode": ceil_mode}
        for op in ("max_pool2d", "avg_pool2d"):
            expected = run_torch(op, (1, 2, h, w), args)
            if expected is None:
                with pytest.raises(ValueError):
                    expected_output_shape(op, (1, 2, h, w), args)
            else:
                assert expected_output_shape(op, (1, 2, h, w), args) == expected, (op, h, w, kernel)


def test_arithmetic_rejects_bad_arguments() -> None:
    for bad in [{"kernel": 0}, {"stride": 0}, {"dilation": 0}, {"padding": -1}]:
        params = {"size": 5, "kernel": 3, **bad}
        with pytest.raises(ValueError):
            conv_output_size(**params)
    with pytest.raises(ValueError, match="half"):
        pool_output_size(8, 2, 2, padding=2)
    with pytest.raises(ValueError, match="output_padding"):
        conv_transpose_output_size(4, 3, stride=2, output_padding=2)
    assert conv_transpose_output_size(4, 3, stride=1, output_padding=1, dilation=2) == 9  # 3 + 4 + 1 + 1
