"""The fuzz targets come from the reference's registry (cnnbench.fuzz.targets)."""

from __future__ import annotations

import pytest

from cnnbench.errors import UsageError
from cnnbench.fuzz.targets import check_targets, fuzz_targets
from cnnbench.numerics.reference import REFERENCES


def test_targets_are_the_reference_ops_a_strategy_covers() -> None:
    targets = fuzz_targets()
    for op in ("conv1d", "conv3d", "conv_transpose2d", "max_pool3d", "avg_pool1d", "adaptive_max_pool3d"):
        assert op in targets
    for op in ("batch_norm", "interpolate", "relu", "sigmoid", "tanh", "softmax", "log_softmax"):
        assert op in targets
    assert set(targets) <= set(REFERENCES)
    assert "linear" not in targets and "pad" not in targets  # in the reference, but no geometry to fuzz


def test_ops_added_to_the_reference_join_automatically(monkeypatch: pytest.MonkeyPatch) -> None:
    for op in ("layer_norm", "group_norm", "gelu", "instance_norm"):
        monkeypatch.setitem(REFERENCES, op, lambda x, **_: x)
    targets = fuzz_targets()
    assert {"layer_norm", "group_norm", "gelu", "instance_norm"} <= set(targets)


def test_an_unknown_target_lists_the_valid_ones() -> None:
    with pytest.raises(UsageError, match=r"unknown fuzz target conv4d; valid targets: .*conv2d.*max_pool2d"):
        check_targets(["conv2d", "conv4d"])
    with pytest.raises(UsageError, match="give one or more targets"):
        check_targets([])
    assert check_targets(["relu", "relu", "conv2d"]) == ["relu", "conv2d"]
