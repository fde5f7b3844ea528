"""`cnnbench import opinfo` (cnnbench.conformance.opinfo): samples -> reference cases, listed refusals, layout."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest
import torch
import yaml
from repo import REPO

from cnnbench.cli import main
from cnnbench.conformance import opinfo

pytest.importorskip("expecttest")

COMMITTED = REPO / "cases" / "conformance" / "opinfo"


def test_conv2d_samples_become_reference_cases(tmp_path: Path) -> None:
    assert (
        main(["import", "opinfo", "--ops", "nn.functional.conv2d,max_pool2d", "-o", str(tmp_path / "s")]) == 0
    )
    doc = yaml.safe_load((tmp_path / "s" / "conv.yaml").read_text())
    assert len(doc["cases"]) == opinfo.MAX_SAMPLES
    case = doc["cases"][0]
    assert case["id"] == "opinfo.nn.functional.conv2d.000" and case["op"] == "conv2d"
    assert case["expect"] == {"reference": "numpy", "match": "cpu"}
    assert case["source"] == f"torch {torch.__version__} OpInfo nn.functional.conv2d sample 0"
    skipped = (tmp_path / "s" / "SKIPPED.md").read_text()
    assert "nn.functional.max_pool2d (" in skipped and "over the cap" in skipped
    assert sorted(p.name for p in (tmp_path / "s").glob("*.yaml")) == ["conv.yaml", "max_pool.yaml"]


def test_reimport_is_byte_identical_to_the_committed_suite(tmp_path: Path) -> None:
    header = (COMMITTED / "conv.yaml").read_text().splitlines()[0]
    if f"torch {torch.__version__}" not in header:
        pytest.skip(f"the committed suite is from another torch ({header}); installed {torch.__version__}")
    assert main(["import", "opinfo", "-o", str(tmp_path / "again")]) == 0
    files = sorted(p.relative_to(COMMITTED) for p in COMMITTED.rglob("*") if p.is_file())
    again = sorted(p.relative_to(tmp_path / "again") for p in (tmp_path / "again").rglob("*") if p.is_file())
    assert files == again
    assert [
        str(f) for f in files if (COMMITTED / f).read_bytes() != (tmp_path / "again" / f).read_bytes()
    ] == []


def test_split_keeps_positional_tensors_and_refuses_gaps() -> None:
    class Sample:
        def __init__(self, *args: object, **kwargs: object) -> None:
            self.input, self.args, self.kwargs = args[0], args[1:], kwargs

    x, w = torch.ones(1, 2, 3, 3), torch.ones(2, 2, 1, 1)
    _, params, tensors = opinfo.OPINFO_OPS["nn.functional.conv2d"]
    assert opinfo._split(Sample(x, w, None, stride=(2, 2)), params, tensors)[1] == {"stride": [2, 2]}
    _, params, tensors = opinfo.OPINFO_OPS["nn.functional.batch_norm"]
    with pytest.raises(opinfo._UnexpressibleError, match="positional"):
        opinfo._split(Sample(x, None, None, weight=torch.ones(2)), params, tensors)


def test_an_unknown_torch_layout_exits_2_naming_the_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = types.ModuleType("torch.testing._internal.common_methods_invocations")
    fake.op_db = [object()]  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "torch.testing._internal.common_methods_invocations", fake)
    opinfo._op_db.cache_clear()
    try:
        assert main(["import", "opinfo", "-o", str(tmp_path / "out")]) == 2
    finally:
        opinfo._op_db.cache_clear()
    err = " ".join(capsys.readouterr().err.split())
    assert (
        f"torch {torch.__version__}: expected torch.testing._internal.common_methods_invocations.op_db" in err
    )
    assert list(tmp_path.iterdir()) == []
