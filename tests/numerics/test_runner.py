"""Running variants: every expectation kind, statuses, and failures that become rows (cnnbench.numerics.runner)."""

from __future__ import annotations

import pytest

from cnnbench.casefile.load import load_text
from cnnbench.casefile.variants import Variant, expand
from cnnbench.environment import device_available
from cnnbench.execution.dispatch import run_variant
from cnnbench.store.result import Result

CONV = """
  - id: conv
    op: conv2d
    inputs:
      input: [[[[1, 2, 1, 0], [2, 0, 1, 3], [0, 5, 4, 2], [4, 1, 2, 5]]]]
      weight: [[[[0, 1, 0], [2, 1, 1], [1, 0, 1]]]]
    expect:
      output: [[[[11, 12], [15, {value}]]]]
"""


def variants(body: str, dtypes: str = "[float32]") -> dict[str, Variant]:
    text = f"defaults:\n  devices: [cpu]\n  dtypes: {dtypes}\ncases:{body}"
    return {v.id: v for v in expand(load_text(text, "t.yaml").cases)}


def run_one(body: str, dtypes: str = "[float32]") -> tuple[str, str, object]:
    (variant,) = variants(body, dtypes).values()
    r = run_variant(variant)
    return r.status, r.message, r


@pytest.mark.parametrize("dtype", ["float64", "float32", "float16", "bfloat16", "int64"])
def test_literal_output_passes_in_every_dtype(dtype: str) -> None:
    status, message, _ = run_one(CONV.format(value=23), f"[{dtype}]")
    assert status == "passed", message


def test_wrong_value_fails_naming_index_expected_got() -> None:
    status, message, r = run_one(CONV.format(value=24))
    assert status == "failed"
    assert "1 of 4 elements differ" in message
    assert "at [0, 0, 1, 1]: expected 24, got 23" in message
    assert r.mismatches == 1 and r.max_abs_err == 1.0  # type: ignore[attr-defined]
    assert r.examples == [{"index": [0, 0, 1, 1], "expected": 24.0, "got": 23.0}]  # type: ignore[attr-defined]


def test_expected_shape_differs_is_a_failed_row() -> None:
    body = CONV.replace("output: [[[[11, 12], [15, {value}]]]]", "output: [[[[11, 12, 13]]]]")
    status, message, _ = run_one(body)
    assert status == "failed"
    assert "expected shape [1, 1, 1, 3], got [1, 1, 2, 2]" in message


def test_tolerance_override_per_dtype() -> None:
    body = """
  - id: sig
    op: sigmoid
    tolerance: {float16: {atol: 0.01, rtol: 0}}
    inputs: {input: [0.5]}
    expect: {output: [0.62]}
"""
    by_id = {vid: run_variant(v) for vid, v in variants(body, "[float16, float32]").items()}
    assert by_id["sig[cpu-float16]"].status == "passed"
    assert by_id["sig[cpu-float32]"].status == "failed"


def test_tuple_output_with_indices() -> None:
    body = """
  - id: mp
    op: max_pool2d
    args: {kernel_size: 3, ceil_mode: true, return_indices: true}
    inputs: {input: [[[[1, 2, 1, 0], [2, 0, 1, 3], [0, 5, 4, 2], [4, 1, 2, 5]]]]}
    expect:
      output: [[[[[5, 3], [4, 5]]]], [[[[9, 7], [12, 15]]]]]
      shape: [[1, 1, 2, 2], [1, 1, 2, 2]]
"""
    status, message, _ = run_one(body)
    assert status == "passed", message
    status, message, _ = run_one(body.replace("[12, 15]", "[12, 14]"))
    assert status == "failed" and "output[1]" in message


def test_error_expectation() -> None:
    body = """
  - id: e
    op: conv2d
    inputs: {input: {ones: [1, 1, 2, 2]}, weight: {ones: [1, 1, 3, 3]}}
    expect: {error: {type: RuntimeError, match: "Kernel size can't be greater"}}
"""
    assert run_one(body)[0] == "passed"
    status, message, _ = run_one(body.replace("Kernel size", "Nope"))
    assert status == "failed" and 'expected RuntimeError matching "Nope can\'t be greater"' in message
    status, message, _ = run_one(body.replace("[1, 1, 3, 3]", "[1, 1, 1, 1]"))
    assert status == "failed" and "but the call returned normally" in message


def test_exception_in_call_is_an_error_row() -> None:
    body = """
  - id: bad
    op: conv2d
    args: {strid: 2}
    inputs: {input: {ones: [1, 1, 4, 4]}, weight: {ones: [1, 1, 3, 3]}}
    expect: {shape: [1, 1, 2, 2]}
"""
    status, message, _ = run_one(body)
    assert status == "error"
    assert "TypeError" in message and "strid" in message


def test_module_state_repr_and_state_shapes() -> None:
    body = """
  - id: m
    module: Conv2d
    args: {in_channels: 1, out_channels: 1, kernel_size: 3, padding: 1, bias: false}
    state: {weight: [[[[1, 2, 3], [4, 5, 6], [7, 8, 9]]]]}
    inputs: {input: {ones: [1, 1, 3, 3]}}
    expect:
      output: [[[[28, 39, 24], [33, 45, 27], [16, 21, 12]]]]
      repr: "Conv2d(1, 1, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1), bias=False)"
      state_shapes: {weight: [1, 1, 3, 3]}
"""
    for v in variants(body, "[float64, float32, bfloat16]").values():
        r = run_variant(v)
        assert r.status == "passed", r.message
    status, message, _ = run_one(body.replace("padding=(1, 1), bias", "bias"))
    assert status == "failed" and "repr: expected" in message


def test_state_with_wrong_shape_is_an_error_not_a_broadcast() -> None:
    body = """
  - id: m
    module: Conv2d
    args: {in_channels: 1, out_channels: 1, kernel_size: 3, bias: false}
    state: {weight: [[[[1]]]]}
    inputs: {input: {ones: [1, 1, 3, 3]}}
    expect: {shape: [1, 1, 1, 1]}
"""
    status, message, _ = run_one(body)
    assert status == "error"
    assert 'state "weight" has shape [1, 1, 1, 1], the module\'s is [1, 1, 3, 3]' in message


def test_batch_norm_training_updates_running_stats() -> None:
    body = """
  - id: bn
    module: BatchNorm2d
    args: {num_features: 1}
    mode: train
    inputs: {input: [[[[1.0, 3.0]]], [[[5.0, 7.0]]]]}
    expect:
      state: {running_mean: [0.4], running_var: [1.5666666666666667], num_batches_tracked: 1}
"""
    # batch mean 4, unbiased variance 20/3; running = 0.9 * init + 0.1 * batch (init mean 0, var 1)
    status, message, _ = run_one(body, "[float64]")
    assert status == "passed", message


def test_layers_shapes_per_layer() -> None:
    body = """
  - id: net
    layers:
      - {module: Conv2d, args: {in_channels: 1, out_channels: 4, kernel_size: 5, padding: 2}}
      - {module: ReLU}
      - {module: MaxPool2d, args: {kernel_size: 2}}
      - {module: Flatten}
    inputs: {input: {randn: [2, 1, 8, 8]}}
    expect:
      layer_shapes: [[2, 4, 8, 8], [2, 4, 8, 8], [2, 4, 4, 4], [2, 64]]
"""
    assert run_one(body)[0] == "passed"
    status, message, _ = run_one(body.replace("[2, 4, 4, 4]", "[2, 4, 3, 3]"))
    assert status == "failed"
    assert "layer 2 (MaxPool2d) output: expected shape [2, 4, 3, 3], got [2, 4, 4, 4]" in message


def test_skip_xfail_and_xpass() -> None:
    body = """
  - id: r
    op: relu
    skip: [{dtype: float16, reason: not today}]
    xfail: [{dtype: float64, reason: known bad}, {dtype: bfloat16, reason: wrongly declared}]
    inputs: {input: [-1.0, 2.0]}
    expect: {output: [0.0, 3.0]}
"""
    by_id = {vid: run_variant(v) for vid, v in variants(body, "[float16, float64]").items()}
    assert by_id["r[cpu-float16]"].status == "skipped"
    assert by_id["r[cpu-float16]"].reason == "not today"
    assert by_id["r[cpu-float64]"].status == "xfail"
    assert by_id["r[cpu-float64]"].reason == "known bad"
    passing = body.replace("[0.0, 3.0]", "[0.0, 2.0]")
    (v,) = [v for vid, v in variants(passing, "[bfloat16]").items()]
    r = run_variant(v)
    assert r.status == "xpass" and "wrongly declared" in r.message


def test_unavailable_device_is_skipped_not_failed() -> None:
    text = (
        "cases:\n  - id: a\n    op: relu\n    devices: [xpu, mtia]\n    inputs: {input: [1.0]}\n"
        "    expect: {shape: [1]}\n"
    )
    for v in expand(load_text(text).cases):
        if device_available(v.device):
            continue
        r = run_variant(v)
        assert r.status == "skipped" and "not available" in r.reason


def test_seeded_random_inputs_match_across_dtypes() -> None:
    body = """
  - id: r
    op: relu
    inputs: {input: {randn: [64], seed: 3}}
    expect: {shape: [64]}
"""
    from cnnbench.numerics.fill import make_tensor

    (v,) = variants(body).values()
    spec = v.case.spec.inputs["input"]
    a = make_tensor(spec, "float64")
    b = make_tensor(spec, "float16")
    assert (a.to(b.dtype) == b).all()
    assert (make_tensor(spec, "float64") == a).all()


def test_checked_row_records_budget_and_ulps() -> None:
    def row(body: str) -> Result:
        (variant,) = variants(body).values()
        return run_variant(variant)

    exact = row(CONV.format(value=23))
    assert exact.budget_used == 0.0 and exact.ulps_max == 0.0 and exact.ulps_p99 == 0.0
    sigmoid = row("""
  - id: sig
    op: sigmoid
    inputs: {input: [0.5, 1.0, 2.0]}
    expect: {output: [0.6224593312018546, 0.7310585786300049, 0.8807970779778823]}
""")
    # float32 sigmoid is within an ulp or two of the exact value and uses little of assert_close's tolerance
    assert sigmoid.budget_used is not None and 0 < sigmoid.budget_used < 0.1
    assert sigmoid.ulps_max is not None and 0 < sigmoid.ulps_max <= 4
    failed = row(CONV.format(value=24))
    assert failed.budget_used == pytest.approx(1.0 / (1e-5 + 1.3e-6 * 24))
    assert failed.ulps_max == 2.0**19  # an error of 1 at 24, where one float32 ulp is 2^-23 * 16
