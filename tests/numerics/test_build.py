"""Case-file values as torch takes them, and the calls built from them (cnnbench.numerics.build): lists as tuples,
tensors passed by keyword."""

from __future__ import annotations

import torch

from cnnbench.casefile.load import load_text
from cnnbench.casefile.tensors import tensor_args
from cnnbench.casefile.variants import expand
from cnnbench.execution.dispatch import run_variant
from cnnbench.numerics.build import as_called, build_layers, build_module, convert_args, tensor_kwargs


def run_body(body: str, dtypes: str = "[float32]") -> list[tuple[str, str]]:
    text = f"defaults:\n  devices: [cpu]\n  dtypes: {dtypes}\ncases:{body}"
    rows = [run_variant(v) for v in expand(load_text(text, "t.yaml").cases)]
    return [(r.status, r.message) for r in rows]


def test_lists_become_tuples_nested_too() -> None:
    assert as_called([2, 3]) == (2, 3)
    assert as_called([[1, 2], [3]]) == ((1, 2), (3,))
    assert convert_args({"kernel_size": [2, 3], "dtype": "float64", "mode": "x"}) == {
        "kernel_size": (2, 3),
        "dtype": torch.float64,
        "mode": "x",
    }


def test_module_repr_reads_tuples_like_pytorch() -> None:
    module = build_module("MaxPool2d", {"kernel_size": [2, 3], "stride": [1, 2]})
    assert (
        str(module) == "MaxPool2d(kernel_size=(2, 3), stride=(1, 2), padding=0, dilation=1, ceil_mode=False)"
    )
    from cnnbench.casefile.format import LayerSpec

    stack = build_layers([LayerSpec(module="AvgPool2d", args={"kernel_size": [2, 2]})])
    assert "kernel_size=(2, 2)" in str(stack)


REPR_CASE = """
  - id: pool-repr
    module: MaxPool2d
    args: {kernel_size: [2, 3], stride: [1, 2]}
    inputs: {input: {randn: [1, 1, 4, 6]}}
    expect:
      repr: "MaxPool2d(kernel_size=(2, 3), stride=(1, 2), padding=0, dilation=1, ceil_mode=False)"
      shape: [1, 1, 3, 2]
"""


def test_a_repr_expectation_with_tuples_passes() -> None:
    assert run_body(REPR_CASE) == [("passed", "")]


def test_keyword_tensors_are_built_in_the_variant_dtype() -> None:
    (case,) = load_text(
        "cases:\n  - id: c\n    op: conv2d\n    args: {bias: {data: [1, 2]}, stride: 1}\n"
        "    inputs: {input: {ones: [1, 1, 2, 2]}, weight: {ones: [2, 1, 1, 1]}}\n    expect: {shape: [1, 2, 2, 2]}\n",
        "t.yaml",
    ).cases
    built = tensor_kwargs(case.spec.args, "float16", "cpu")
    assert list(built) == ["bias"] and built["bias"].dtype == torch.float16
    assert built["bias"].tolist() == [1.0, 2.0]
    assert "bias" not in convert_args(case.spec.args) and list(tensor_args(case.spec.args)) == ["bias"]


CONV_BIAS = """
  - id: conv-bias
    op: conv2d
    args: {{bias: {{data: [{bias}]}}}}
    inputs:
      input: {{ones: [1, 1, 2, 2]}}
      weight: {{full: [2, 1, 1, 1], value: 2}}
    expect:
      output: [[[[7, 7], [7, 7]], [[-3, -3], [-3, -3]]]]
"""


def test_a_bias_by_keyword_reaches_the_call() -> None:
    assert run_body(CONV_BIAS.format(bias="5, -5"), "[float64, float32]") == [("passed", ""), ("passed", "")]
    ((status, message),) = run_body(CONV_BIAS.format(bias="5, -4"))
    assert status == "failed" and "expected -3, got -2" in message


GROUP_NORM = """
  - id: gn
    op: group_norm
    args:
      num_groups: 2
      weight: {data: [1, 2, 3, 4]}
      bias: {data: [0, 10, 20, 30]}
    inputs: {input: [[[1, 3], [1, 3], [5, 5], [5, 5]]]}
    expect:
      output: [[[-1, 1], [8, 12], [20, 20], [30, 30]]]
"""


def test_group_norm_with_weight_and_bias_by_keyword() -> None:
    # group 0 holds 1, 3, 1, 3: mean 2, variance 1 -> -1, 1 (times weight 1 and 2, plus bias 0 and 10);
    # group 1 is constant: normalised to 0, so the output is the bias.
    body = GROUP_NORM.replace("    expect:", "    tolerance: {atol: 1e-3, rtol: 0}\n    expect:")
    assert run_body(body, "[float64, float32]") == [("passed", ""), ("passed", "")]


BATCH_NORM = """
  - id: bn
    op: batch_norm
    args:
      running_mean: {data: [1, -1, 0]}
      running_var: {data: [4, 1, 0.25]}
      weight: {full: [3], value: 2.0}
      bias: {zeros: [3]}
      training: false
    inputs: {input: {randn: [2, 3, 4], seed: 1}}
    expect: {reference: numpy}
"""


def test_batch_norm_statistics_by_keyword_agree_with_the_reference() -> None:
    assert run_body(BATCH_NORM, "[float64, float32]") == [("passed", ""), ("passed", "")]
    # The reference sees the keyword tensors: a running mean the call does not use would be caught.
    (case,) = load_text("cases:" + BATCH_NORM, "t.yaml").cases
    from cnnbench.numerics.oracle import _reference_call
    from cnnbench.numerics.runner import _subject

    (variant,) = [v for v in expand([case]) if v.device == "cpu"]
    op, args, _, _ = _reference_call(case.spec, _subject(variant, "cpu", "float64", "contiguous"))
    assert op == "batch_norm" and args["running_var"].tolist() == [4.0, 1.0, 0.25]


POOL_UNPOOL = """
  - id: pool-unpool
    chain:
      - {op: max_pool2d, args: {kernel_size: 2, return_indices: true}}
      - {op: max_unpool2d, args: {kernel_size: 2}}
    inputs: {input: [[[[1, 5, 2, 8], [7, 3, 6, 4], [9, 13, 15, 10], [14, 12, 11, 16]]]]}
    expect:
      layer_shapes: [[1, 1, 2, 2], [1, 1, 4, 4]]
      output: [[[[0, 0, 0, 8], [7, 0, 0, 0], [0, 0, 0, 0], [14, 0, 0, WRONG]]]]
"""


def test_a_chain_feeds_the_indices_of_a_pool_to_unpool() -> None:
    assert run_body(POOL_UNPOOL.replace("WRONG", "16"), "[float64, float32]") == [
        ("passed", ""),
        ("passed", ""),
    ]
    ((status, message),) = run_body(POOL_UNPOOL.replace("WRONG", "15"))
    assert status == "failed" and "expected 15, got 16" in message
    ((status, message),) = run_body(
        POOL_UNPOOL.replace("WRONG", "16").replace("[1, 1, 2, 2]", "[1, 1, 3, 3]")
    )
    assert status == "failed" and "step 0 (max_pool2d) output" in message


def test_chain_trace_spreads_tuples() -> None:
    from cnnbench.casefile.format import ChainStep
    from cnnbench.numerics.build import Chain

    chain = Chain(
        [
            ChainStep(op="max_pool1d", args={"kernel_size": 2, "return_indices": True}),
            ChainStep(op="max_unpool1d", args={"kernel_size": 2}),
        ],
        "float32",
        "cpu",
    )
    values, unpooled = chain.trace(torch.tensor([[[1.0, 3.0, 2.0, 0.0]]]))
    assert isinstance(values, tuple) and values[1].tolist() == [[[1, 2]]]
    assert unpooled.tolist() == [[[0.0, 3.0, 2.0, 0.0]]]
