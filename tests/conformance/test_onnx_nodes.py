"""The ONNX attribute mappings (cnnbench.conformance.onnx_nodes, onnx_resize) on hand-made node tests, checked by
running the mapped torch call against what ONNX's semantics give; no onnx package needed."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cnnbench.conformance.onnx_nodes import MAPPERS, Mapped, NodeTest, UnmappedError
from cnnbench.conformance.onnx_resize import map_resize, map_upsample


def _test(
    op_type: str, attrs: dict[str, Any], *inputs: Any, outputs: list[Any] | None = None, opset: int = 22
) -> NodeTest:
    arrays = [None if a is None else np.asarray(a, dtype=np.float32) for a in inputs]
    return NodeTest("t", op_type, opset, attrs, arrays, outputs or [np.zeros(1, np.float32)], 1e-3, 1e-7)


def _run(m: Mapped) -> Any:
    assert "op" in m.call
    fn = getattr(F, m.call["op"])
    return fn(*(torch.from_numpy(a) for _, a in m.inputs), **m.args)


def test_conv_asymmetric_pads_become_zero_padding_of_the_input() -> None:
    x = np.random.default_rng(0).standard_normal((1, 2, 5, 6))
    w = np.random.default_rng(1).standard_normal((3, 2, 3, 3))
    m = MAPPERS["Conv"](_test("Conv", {"pads": [1, 0, 2, 1], "strides": [2, 1]}, x, w))
    assert m.call == {"op": "conv2d"} and m.args["padding"] == [0, 0] and m.notes
    expected = F.conv2d(
        F.pad(torch.tensor(x, dtype=torch.float32), (0, 1, 1, 2)),
        torch.tensor(w, dtype=torch.float32),
        stride=(2, 1),
    )
    torch.testing.assert_close(_run(m), expected)


@pytest.mark.parametrize(
    ("auto_pad", "begin", "end"), [("SAME_UPPER", [0, 0], [1, 1]), ("SAME_LOWER", [1, 1], [0, 0])]
)
def test_conv_same_pads_follow_onnx(auto_pad: str, begin: list[int], end: list[int]) -> None:
    x, w = np.ones((1, 1, 6, 6)), np.ones((1, 1, 2, 2))
    m = MAPPERS["Conv"](_test("Conv", {"auto_pad": auto_pad}, x, w))
    assert m.inputs[0][1].shape == (1, 1, 7, 7)
    padded = m.inputs[0][1][0, 0]
    assert padded[: begin[0]].sum() == 0 and padded[padded.shape[0] - end[0] :].sum() == 0
    assert tuple(_run(m).shape) == (1, 1, 6, 6)


def test_conv_transpose_output_shape_becomes_output_padding() -> None:
    x, w = np.ones((1, 1, 3, 3)), np.ones((1, 2, 3, 3))
    m = MAPPERS["ConvTranspose"](_test("ConvTranspose", {"strides": [3, 2], "output_shape": [10, 8]}, x, w))
    assert m.args["padding"] == [0, 0] and m.args["output_padding"] == [1, 1]
    assert tuple(_run(m).shape) == (1, 2, 10, 8)


def test_conv_transpose_unequal_pads_use_output_padding_or_are_refused() -> None:
    x, w = np.ones((1, 1, 3, 3)), np.ones((1, 1, 3, 3))
    m = MAPPERS["ConvTranspose"](_test("ConvTranspose", {"strides": [2, 2], "pads": [1, 1, 0, 0]}, x, w))
    assert m.args["padding"] == [1, 1] and m.args["output_padding"] == [1, 1]
    full = F.conv_transpose2d(torch.ones(1, 1, 3, 3), torch.ones(1, 1, 3, 3), stride=2)
    torch.testing.assert_close(_run(m), full[:, :, 1:, 1:])
    with pytest.raises(UnmappedError, match="output_padding"):
        MAPPERS["ConvTranspose"](_test("ConvTranspose", {"strides": [2, 2], "pads": [0, 0, 1, 1]}, x, w))


@pytest.mark.parametrize("storage_order", [0, 1])
def test_max_pool_indices_become_torch_per_plane_row_major(storage_order: int) -> None:
    x = np.random.default_rng(2).permutation(2 * 3 * 4 * 5).reshape(2, 3, 4, 5).astype(np.float32)
    values, torch_idx = F.max_pool2d(torch.from_numpy(x), 2, return_indices=True)
    h, w = np.unravel_index(torch_idx.numpy(), (4, 5))
    plane = (np.arange(2)[:, None, None, None] * 3 + np.arange(3)[None, :, None, None]) * 20
    onnx_idx = plane + (h + w * 4 if storage_order else h * 5 + w)
    t = _test(
        "MaxPool",
        {"kernel_shape": [2, 2], "strides": [2, 2], "storage_order": storage_order},
        x,
        outputs=[values.numpy(), onnx_idx],
    )
    m = MAPPERS["MaxPool"](t)
    assert m.args["return_indices"] is True and m.pinned == [None, "int64"]
    np.testing.assert_array_equal(m.outputs[1], torch_idx.numpy())


def test_pool_refusals_say_why() -> None:
    x = np.ones((1, 1, 5, 5))
    with pytest.raises(UnmappedError, match="no dilation"):
        MAPPERS["AveragePool"](_test("AveragePool", {"kernel_shape": [2, 2], "dilations": [2, 2]}, x))
    with pytest.raises(UnmappedError, match="count the padded zeros"):
        MAPPERS["AveragePool"](_test("AveragePool", {"kernel_shape": [3, 3], "pads": [2, 2, 2, 2]}, x))
    with pytest.raises(UnmappedError, match="ceil mode"):
        MAPPERS["MaxPool"](
            _test("MaxPool", {"kernel_shape": [3, 3], "pads": [0, 0, 1, 1], "ceil_mode": 1}, x)
        )


def test_avg_pool_counted_asymmetric_pads_pad_the_input() -> None:
    x = np.random.default_rng(3).standard_normal((1, 1, 5, 5))
    m = MAPPERS["AveragePool"](
        _test("AveragePool", {"kernel_shape": [2, 2], "auto_pad": "SAME_UPPER", "count_include_pad": 1}, x)
    )
    expected = F.avg_pool2d(F.pad(torch.tensor(x, dtype=torch.float32), (0, 1, 0, 1)), 2, stride=1)
    torch.testing.assert_close(_run(m), expected)


def test_activation_attributes() -> None:
    x = np.linspace(-3, 3, 13)
    assert MAPPERS["LeakyRelu"](_test("LeakyRelu", {"alpha": 0.1}, x)).args == {
        "negative_slope": pytest.approx(0.1)
    }
    m = MAPPERS["ThresholdedRelu"](_test("ThresholdedRelu", {"alpha": 2.0}, x))
    torch.testing.assert_close(
        _run(m),
        torch.where(torch.tensor(x, dtype=torch.float32) > 2, torch.tensor(x, dtype=torch.float32), 0.0),
    )
    with pytest.raises(UnmappedError, match="fixed"):
        MAPPERS["HardSigmoid"](_test("HardSigmoid", {}, x))
    with pytest.raises(UnmappedError, match="fixed"):
        MAPPERS["Selu"](_test("Selu", {"alpha": 2.0, "gamma": 3.0}, x))
    assert MAPPERS["Flatten"](_test("Flatten", {"axis": -2}, np.ones((2, 3, 4, 5)))).args == {
        "shape": [6, 20]
    }
    assert MAPPERS["Flatten"](_test("Flatten", {"axis": -3}, np.ones((2, 3, 4, 5)))).args == {"start_dim": 1}


@pytest.mark.parametrize(
    ("attrs", "mode", "align"),
    [
        (
            {"mode": "nearest", "coordinate_transformation_mode": "asymmetric", "nearest_mode": "floor"},
            "nearest",
            None,
        ),
        ({"mode": "nearest", "nearest_mode": "round_prefer_ceil"}, "nearest-exact", None),
        ({"mode": "linear"}, "bilinear", False),
        ({"mode": "linear", "coordinate_transformation_mode": "align_corners"}, "bilinear", True),
        ({"mode": "cubic"}, "bicubic", False),
    ],
)
def test_resize_modes(attrs: dict[str, Any], mode: str, align: bool | None) -> None:
    x = np.ones((1, 1, 2, 2))
    m = map_resize(_test("Resize", attrs, x, None, np.array([1, 1, 2, 3])))
    assert m.args["mode"] == mode and m.args.get("align_corners") == align
    assert m.args["scale_factor"] == [2.0, 3.0]
    assert tuple(_run(m).shape) == (1, 1, 4, 6)


def test_resize_refusals_and_ties() -> None:
    x = np.ones((1, 1, 2, 2))
    with pytest.raises(UnmappedError, match="ties"):  # 2 -> 7: source (3 + 0.5) / 3.5 - 0.5 = 0.5
        map_resize(_test("Resize", {"mode": "nearest"}, x, None, None, np.array([1, 1, 7, 8])))
    with pytest.raises(UnmappedError, match="asymmetric"):
        map_resize(
            _test(
                "Resize",
                {"mode": "linear", "coordinate_transformation_mode": "asymmetric"},
                x,
                None,
                np.array([1, 1, 2, 2]),
            )
        )
    with pytest.raises(UnmappedError, match="tf_crop_and_resize"):
        map_resize(
            _test(
                "Resize",
                {"coordinate_transformation_mode": "tf_crop_and_resize"},
                x,
                None,
                np.array([1, 1, 2, 2]),
            )
        )
    m = map_upsample(_test("Upsample", {"mode": "nearest"}, x, np.array([1, 1, 2, 3]), opset=9))
    assert m.args == {"scale_factor": [2.0, 3.0], "mode": "nearest"}


@pytest.mark.parametrize(
    ("mode", "torch_mode"), [("constant", "constant"), ("edge", "replicate"), ("wrap", "circular")]
)
def test_pad_pairs_become_last_dim_first(mode: str, torch_mode: str) -> None:
    x = np.random.default_rng(4).standard_normal((1, 3, 4, 5))
    pads = np.array([0, 0, 1, 3, 0, 0, 2, 4])  # begin (N, C, H, W), then end
    m = MAPPERS["Pad"](_test("Pad", {"mode": mode}, x, pads, np.array(1.5)))
    assert m.args["pad"] == [3, 4, 1, 2] and m.args["mode"] == torch_mode
    assert tuple(_run(m).shape) == (1, 3, 7, 12)
    axes = MAPPERS["Pad"](_test("Pad", {}, x, np.array([0, 3, 0, 4]), np.array(1.5), np.array([-3, -1])))
    assert axes.args == {"pad": [3, 4], "mode": "constant", "value": 1.5}
