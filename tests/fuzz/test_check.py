"""A configuration becomes a case checked by the numerics runner (cnnbench.fuzz.check)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from cnnbench.fuzz.check import FUZZ_FILE, REFERENCE_BUG, case_dict, check_case, config_id
from cnnbench.fuzz.strategies import Call
from cnnbench.numerics import oracle
from cnnbench.numerics.reference import REFERENCES

BUDGET = 1 << 30


def _conv(**args: Any) -> Call:
    inputs = {"input": {"randn": [1, 2, 6, 6], "seed": 1}, "weight": {"randn": [3, 2, 3, 3], "seed": 2}}
    return Call("conv2d", args, inputs, "float32", 1, exact=True)


def test_a_valid_configuration_is_checked_against_the_reference() -> None:
    checked = check_case(case_dict(_conv(stride=2, padding=1), "cpu"), BUDGET)
    assert checked.result.status == "passed", checked.result.message
    assert checked.result.file == FUZZ_FILE and checked.result.source == "fuzz"
    assert checked.result.atol == 0 and checked.result.rtol == 0  # fill: exact: zero tolerance
    assert checked.case["expect"] == {"reference": "numpy"}
    assert not checked.failed


def test_a_rejected_geometry_must_raise() -> None:
    checked = check_case(case_dict(_conv(padding="same", stride=2), "cpu"), BUDGET)
    assert checked.case["expect"] == {"error": {"type": "RuntimeError"}}
    assert "must reject" in checked.case["note"] and "fill" not in checked.case
    assert checked.result.status == "passed", checked.result.message


def test_a_rejection_torch_does_not_make_is_a_failure() -> None:
    call = _conv(stride=1)
    forced = Call(call.op, call.args, call.inputs, call.dtype, call.seed, reject="RuntimeError")
    checked = check_case(case_dict(forced, "cpu"), BUDGET)
    assert checked.failed and "returned normally" in checked.result.message


def test_the_reference_raising_is_reported_as_a_cnnbench_bug(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: Any, **kwargs: Any) -> np.ndarray:
        raise IndexError("reference bug")

    oracle.clear_cache()
    monkeypatch.setitem(REFERENCES, "conv2d", broken)
    checked = check_case(case_dict(_conv(), "cpu"), BUDGET)
    oracle.clear_cache()
    assert checked.result.status == "error"
    assert checked.result.message.startswith(REFERENCE_BUG)
    assert (
        "cnnbench.numerics.reference.conv2d" in checked.result.message
        and "PyTorch is not at fault" in checked.result.message
    )
    assert checked.reference_bug and checked.result.metrics["reference_error"] is True


def test_a_torch_error_is_not_blamed_on_the_reference() -> None:
    call = Call(
        "conv2d", {}, {"input": {"randn": [1, 2, 6, 6]}, "weight": {"randn": [3, 5, 3, 3]}}, "float32", 0
    )
    checked = check_case(case_dict(call, "cpu"), BUDGET)
    # The arithmetic knows the channel mismatch: an error is expected and raised.
    assert checked.case["expect"]["error"]["type"] == "RuntimeError" and checked.result.status == "passed"


def test_ids_are_stable_and_follow_the_content() -> None:
    a, b = case_dict(_conv(stride=2), "cpu"), case_dict(_conv(stride=2), "cpu")
    assert a["id"] == b["id"] == config_id("conv2d", a) and a["id"].startswith("fuzz-conv2d-")
    assert case_dict(_conv(stride=3), "cpu")["id"] != a["id"]


def test_memory_format_becomes_the_variant_format() -> None:
    call = _conv()
    cl = Call(call.op, call.args, call.inputs, call.dtype, call.seed, True, "channels_last")
    checked = check_case(case_dict(cl, "cpu"), BUDGET)
    assert checked.variant.memory_format == "channels_last" and checked.variant.id.endswith("-channels_last]")
    assert checked.result.status == "passed", checked.result.message
