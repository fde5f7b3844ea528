"""`cnnbench import onnx` (cnnbench.conformance.onnx_import) on known ONNX node tests; needs the onnx package."""

from __future__ import annotations

import sys
import types
from pathlib import Path
from typing import Any

import pytest
import yaml
from repo import REPO

from cnnbench.casefile.load import load_paths
from cnnbench.casefile.variants import expand
from cnnbench.cli import main
from cnnbench.conformance import onnx_import
from cnnbench.execution.dispatch import run_variant

onnx = pytest.importorskip("onnx")

COMMITTED = REPO / "cases" / "conformance" / "onnx"


@pytest.fixture(scope="module")
def suite_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("onnx") / "suite"
    assert main(["import", "onnx", "--ops", "Conv,MaxPool,AveragePool", "-o", str(out)]) == 0
    return out


def _case(suite_dir: Path, family: str, case_id: str) -> dict[str, Any]:
    doc = yaml.safe_load((suite_dir / f"{family}.yaml").read_text())
    return next(c for c in doc["cases"] if c["id"] == case_id)


def _statuses(suite_dir: Path, case_ids: set[str]) -> dict[str, str]:
    variants = [v for v in expand(load_paths([suite_dir])) if v.device == "cpu" and v.case.id in case_ids]
    return {v.case.id: run_variant(v).status for v in variants}


def test_maxpool_2d_ceil(suite_dir: Path) -> None:
    case = _case(suite_dir, "max_pool", "onnx.test_maxpool_2d_ceil")
    assert case["op"] == "max_pool2d"
    assert case["args"] == {
        "kernel_size": [3, 3],
        "stride": [2, 2],
        "padding": [0, 0],
        "dilation": [1, 1],
        "ceil_mode": True,
    }
    assert case["expect"]["output"] == [[[[11.0, 12.0], [15.0, 16.0]]]]
    assert case["tolerance"] == {"atol": 1e-7, "rtol": 1e-3}
    assert case["source"].startswith(
        f"onnx {onnx.__version__} node test test_maxpool_2d_ceil (MaxPool, opset"
    )
    ids = {"onnx.test_maxpool_2d_ceil", "onnx.test_maxpool_2d_ceil.ref"}
    assert _statuses(suite_dir, ids) == dict.fromkeys(ids, "passed")


def test_averagepool_2d_pads(suite_dir: Path) -> None:
    """Pads 2 around a 3x3 kernel, not counted: torch cannot pad more than half the kernel, and padding the stored
    input would count the zeros. Listed, not imported; the counted variant pads the input and passes."""
    skipped = (suite_dir / "SKIPPED.md").read_text()
    assert (
        "| AveragePool | `test_averagepool_2d_pads` | pads begin [2, 2], end [2, 2] (count_include_pad=0"
        in skipped
    )
    case = _case(suite_dir, "avg_pool", "onnx.test_averagepool_2d_pads_count_include_pad")
    assert case["args"]["padding"] == [0, 0] and case["args"]["count_include_pad"] is True
    assert case["inputs"]["input"] == {"file": "data/test_averagepool_2d_pads_count_include_pad.input.npy"}
    assert "applied to the stored input as zeros" in case["note"]
    ids = {
        "onnx.test_averagepool_2d_pads_count_include_pad",
        "onnx.test_averagepool_2d_pads_count_include_pad.ref",
    }
    assert _statuses(suite_dir, ids) == dict.fromkeys(ids, "passed")


def test_conv_with_strides_and_asymmetric_padding(suite_dir: Path) -> None:
    case = _case(suite_dir, "conv", "onnx.test_conv_with_strides_and_asymmetric_padding")
    assert case["op"] == "conv2d"
    assert case["args"] == {"stride": [2, 2], "padding": [1, 0], "dilation": [1, 1]}  # pads [1, 0, 1, 0]
    assert len(case["expect"]["output"][0][0]) == 4 and len(case["expect"]["output"][0][0][0]) == 2
    ids = {
        "onnx.test_conv_with_strides_and_asymmetric_padding",
        "onnx.test_conv_with_strides_and_asymmetric_padding.ref",
    }
    assert _statuses(suite_dir, ids) == dict.fromkeys(ids, "passed")


def test_reimport_is_byte_identical_to_the_committed_suite(tmp_path: Path) -> None:
    header = (COMMITTED / "conv.yaml").read_text().splitlines()[0]
    if f"onnx {onnx.__version__}" not in header:
        pytest.skip(f"the committed suite is from another onnx ({header}); installed {onnx.__version__}")
    assert main(["import", "onnx", "-o", str(tmp_path / "again")]) == 0
    files = sorted(p.relative_to(COMMITTED) for p in COMMITTED.rglob("*") if p.is_file())
    again = sorted(p.relative_to(tmp_path / "again") for p in (tmp_path / "again").rglob("*") if p.is_file())
    assert files == again
    changed = [str(f) for f in files if (COMMITTED / f).read_bytes() != (tmp_path / "again" / f).read_bytes()]
    assert changed == []


def test_an_unknown_onnx_layout_exits_2_naming_the_version_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(
        sys.modules, "onnx.backend.test.case.node", types.ModuleType("onnx.backend.test.case.node")
    )
    onnx_import._onnx_testcases.cache_clear()
    try:
        assert main(["import", "onnx", "-o", str(tmp_path / "out")]) == 2
    finally:
        onnx_import._onnx_testcases.cache_clear()
    err = capsys.readouterr().err
    assert f"onnx {onnx.__version__}: expected onnx.backend.test.case.node.collect_testcases()" in " ".join(
        err.split()
    )
    assert not (tmp_path / "out").exists() and list(tmp_path.iterdir()) == []


def test_an_unknown_op_type_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["import", "onnx", "--ops", "Convv", "-o", str(tmp_path / "out")]) == 2
    assert "convv" in capsys.readouterr().err.lower()
    assert not (tmp_path / "out").exists()
