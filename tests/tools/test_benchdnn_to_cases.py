"""tools/benchdnn_to_cases.py: benchdnn descriptors parsed with benchdnn's defaults, and cases/shapes/ regenerated."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from cnnbench.casefile.load import load_paths

REPO = Path(__file__).resolve().parents[2]


def _load_tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "benchdnn_to_cases", REPO / "tools" / "benchdnn_to_cases.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


tool = _load_tool()


def test_defaults_mb2_g1_w_from_h_stride1_pad0_no_dilation() -> None:
    layer = tool.parse_descriptor("ic3ih5oc4kh3", "conv")
    assert (layer.mb, layer.groups, layer.ic, layer.oc) == (2, 1, 3, 4)
    assert layer.input == (5, 5) and layer.kernel == (3, 3)
    assert layer.stride == (1, 1) and layer.padding == (0, 0) and layer.dilation == (1, 1)
    assert layer.output == (None, None)
    assert layer.name is None and layer.count == 1


def test_w_values_given_override_h_values() -> None:
    layer = tool.parse_descriptor("g2mb1ic4ih8iw20oc6kh3kw5sh2sw1ph1pw2", "conv")
    assert layer.groups == 2 and layer.mb == 1
    assert (layer.input, layer.kernel, layer.stride, layer.padding) == ((8, 20), (3, 5), (2, 1), (1, 2))


def test_dilation_is_benchdnn_value_plus_one() -> None:
    assert tool.parse_descriptor("ic1ih8oc1kh3dh0", "conv").dilation == (1, 1)
    assert tool.parse_descriptor("ic1ih8oc1kh3dh1", "conv").dilation == (2, 2)
    assert tool.parse_descriptor("ic1ih8iw8oc1kh3kw3dh2dw0", "conv").dilation == (3, 1)


def test_names_with_repeat_counts_and_underscores() -> None:
    layer = tool.parse_descriptor(
        'mb32_g1ic3oc32_ih224oh112kh3sh2dh0ph1_iw224ow112kw3sw2dw0pw1_n"mobilenet:conv1*3"', "conv"
    )
    assert layer.name == "mobilenet:conv1" and layer.count == 3
    assert layer.output == (112, 112) and layer.padding == (1, 1)
    assert tool.parse_descriptor('ic1ih4oc1kh1n"net:x"', "conv").count == 1


def test_dimensionality_from_the_sizes_given() -> None:
    one = tool.parse_descriptor('mb16ic64_iw32ow16kw3sw2_n"pool_ci_1d:regular"', "pool")
    assert one.input == (32,) and one.oc == 64 and one.ndims == 1
    three = tool.parse_descriptor("mb8ic32_id16od8kd3sd2", "pool")
    assert three.input == (16, 16, 16) and three.stride == (2, 2, 2) and three.output == (8, None, None)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("ic3ih5oc4kh3x7", "cannot read"),
        ("ih5oc4kh3", "no ic"),
        ("ic3oc4kh3", "no ih"),
        ("ic3ih5ih6kh3", "given twice"),
    ],
)
def test_malformed_descriptors_are_refused(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        tool.parse_descriptor(text, "conv", line=7)


def test_pool_keeps_its_channels() -> None:
    with pytest.raises(ValueError, match="keeps its channels"):
        tool.parse_descriptor("ic3oc4ih5kh2", "pool")


def test_comments_and_commented_out_layers_are_skipped(tmp_path: Path) -> None:
    path = tmp_path / "list"
    path.write_text(
        '# header\n\nic1ih4oc1kh1n"a"\n# ic1ih4oc1kh3n"b"   # a duplicate\nic2ih4oc2kh1 # trailing\n'
    )
    layers = tool.parse_file(path, "conv")
    assert [(layer.name, layer.line) for layer in layers] == [("a", 3), (None, 5)]


def test_derived_outputs_floor_and_ceil() -> None:
    conv = tool.parse_descriptor("ic3ih224oc64kh7sh2ph3", "conv")
    assert tool.derive_outputs(conv) == (112, 112)
    pool = tool.parse_descriptor("ic16_ih50oh26kh3sh2ph1", "pool")
    assert tool.derive_outputs(pool) == (25, 25)
    assert tool.derive_outputs(pool, ceil_mode=True) == (26, 26)  # benchdnn's extra right padding
    with pytest.raises(ValueError, match="at most half of the kernel"):
        tool.derive_outputs(tool.parse_descriptor("ic16_ih13oh14kh3sh1ph3", "pool"))


@pytest.mark.parametrize(
    ("size", "kernel", "stride", "padding"), [(224, 7, 2, 3), (56, 1, 2, 0), (161, 5, 2, 0), (28, 3, 1, 1)]
)
def test_reduced_input_keeps_the_right_edge_and_caps_the_output(
    size: int, kernel: int, stride: int, padding: int
) -> None:
    from cnnbench.ops.arithmetic import conv_output_size

    out = conv_output_size(size, kernel, stride, padding)
    small = tool.reduced_input(size, out, stride, 4)
    assert conv_output_size(small, kernel, stride, padding) == min(out, 4)
    assert (small + 2 * padding - kernel) % stride == (size + 2 * padding - kernel) % stride


def test_reduced_input_keeps_at_least_one_element() -> None:
    assert tool.reduced_input(1, 21, 1, 4) == 1  # output all padding: nothing to cut


def render(descriptors: list[str], kind: str = "conv") -> tuple[str, list[str]]:
    suite = tool.Suite("list", kind, "t", "Test")
    layers = [tool.parse_descriptor(text, kind, n) for n, text in enumerate(descriptors, 1)]
    return tool.render_suite(suite, layers)


def test_stated_output_differing_from_pytorch_is_noted() -> None:
    text, warnings = render(["ic4ih8oc6oh5kh3ph1dh1"])  # benchdnn pads 1 left, 0 right
    assert warnings == ["list:1: benchdnn gives oh5 (PyTorch's 6); the case checks PyTorch's geometry"]
    assert "asymmetric padding PyTorch cannot express" in text


def test_pool_output_reachable_by_ceil_mode_uses_it() -> None:
    text, warnings = render(['mb1ic16_ih50oh26kh3sh2ph1_n"p:asym"'], "pool")
    assert warnings == [] and text.count("ceil_mode: true") == 3
    assert "PyTorch expresses as ceil_mode" in text


def test_geometry_pytorch_rejects_becomes_an_error_case() -> None:
    text, warnings = render(['ic16_ih13oh14kh3sh1ph3_n"p:pad"'], "pool")
    assert text.count("expect: {error: {type: RuntimeError}}") == 3 and len(warnings) == 1


def test_repeated_geometry_is_merged_and_big_low_precision_skipped() -> None:
    text, _ = render(["mb1ic512ih7oc512kh3ph1", "mb2ic512ih7oc512kh3ph1", "mb1ic8ih7oc8kh3ph1"])
    assert text.count("  - id:") == 2 and "also stands for line 2 (mb2)" in text
    assert text.count("skip:") == 1 and "multiply-adds" in text


def test_generated_suites_load_and_are_named_by_layer() -> None:
    cases = load_paths([REPO / "cases" / "shapes"])
    ids = {c.id for c in cases}
    assert "shapes.resnet_50.res2a_branch1" in ids and "shapes.mobilenet.conv2_1-dw" in ids
    assert all(c.spec.fill == "exact" for c in cases)


@pytest.mark.skipif(not tool.DEFAULT_DATA.is_dir(), reason=f"no benchdnn shape lists at {tool.DEFAULT_DATA}")
def test_the_script_regenerates_the_committed_cases_exactly(tmp_path: Path) -> None:
    tool.convert(tool.DEFAULT_DATA, tmp_path)
    committed = sorted(p.name for p in (REPO / "cases" / "shapes").glob("*.yaml"))
    assert sorted(p.name for p in tmp_path.glob("*.yaml")) == committed
    for name in committed:
        assert (tmp_path / name).read_text() == (REPO / "cases" / "shapes" / name).read_text(), name
