"""The case format's models (cnnbench.casefile.format): keyword tensors, call_args, module-only cases."""

from __future__ import annotations

import pytest

from cnnbench.casefile.load import load_text
from cnnbench.casefile.tensors import RandnSpec, tensor_args
from cnnbench.errors import CaseFileError


def errors_of(text: str) -> list[str]:
    with pytest.raises(CaseFileError) as info:
        load_text(text, "f.yaml")
    return [str(e) for e in info.value.errors]


KEYWORD = """\
cases:
  - id: gn
    op: group_norm
    args:
      num_groups: 2
      weight: {randn: [4], seed: 3}
      bias: {data: [0.5, -1, 2, 0]}
    inputs: {input: {randn: [2, 4, 3, 3], seed: 1}}
    expect:
      shape: [2, 4, 3, 3]
"""


def test_a_tensor_mapping_in_args_is_a_keyword_tensor() -> None:
    (case,) = load_text(KEYWORD, "f.yaml").cases
    tensors = tensor_args(case.spec.args)
    assert list(tensors) == ["weight", "bias"]
    assert isinstance(tensors["weight"], RandnSpec) and tensors["weight"].seed == 3
    assert case.spec.args["num_groups"] == 2


def test_a_bad_keyword_tensor_is_located_at_its_key() -> None:
    (error,) = errors_of(KEYWORD.replace("{randn: [4], seed: 3}", "{randn: [4], sed: 3}"))
    assert error.startswith("f.yaml:6:")
    assert "args.weight" in error and 'unknown key "sed"' in error


def test_a_ragged_keyword_tensor_is_refused() -> None:
    (error,) = errors_of(KEYWORD.replace("{data: [0.5, -1, 2, 0]}", "{data: [[1], [2, 3]]}"))
    assert error.startswith("f.yaml:7:") and "ragged" in error


def test_keyword_tensors_count_against_the_budget() -> None:
    text = KEYWORD.replace("{randn: [4], seed: 3}", "{randn: [100]}")
    load_text(text, "f.yaml", max_case_bytes=2000)
    with pytest.raises(CaseFileError, match=r"args.weight \[100\]"):
        load_text(text, "f.yaml", max_case_bytes=1000)


CONV_BIAS = """cases:
  - id: conv
    op: conv2d
    args: {bias: {randn: [2]}, padding: 1}
    inputs:
      input: {randn: [1, 3, 5, 5], seed: 1}
      weight: {randn: [2, 3, 3, 3], seed: 2}
    expect:
      reference: numpy
"""


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            ("op: group_norm", "module: GroupNorm"),
            "a module's constructor takes no tensors; set its parameters with state:",
        ),
        (("reference: numpy", "grad: reference"), "grad: reference differentiates"),
        (
            ("    expect:", "    fill: exact\n    expect:"),
            "fill: exact does not fill tensors passed by keyword",
        ),
        (
            ("    expect:", "    call_args: {output_size: [4, 4]}\n    expect:"),
            "an op's keyword arguments go in args",
        ),
    ],
)
def test_keyword_tensors_refused_where_they_cannot_apply(change: tuple[str, str], message: str) -> None:
    errors = errors_of(
        (CONV_BIAS if "reference" in change[0] or "fill" in change[1] else KEYWORD).replace(*change)
    )
    assert any(message in e for e in errors), errors


MODULE_ONLY = """\
cases:
  - id: conv-repr
    module: Conv2d
    args: {in_channels: 3, out_channels: 64, kernel_size: 3, stride: 1}
    expect:
      repr: "Conv2d(3, 64, kernel_size=(3, 3), stride=(1, 1))"
"""


def test_a_module_only_case_needs_no_input() -> None:
    (case,) = load_text(MODULE_ONLY, "f.yaml").cases
    assert case.spec.inputs == {}
    stack = MODULE_ONLY.replace(
        "module: Conv2d\n    args: {in_channels: 3, out_channels: 64, kernel_size: 3, stride: 1}",
        "layers: [{module: ReLU}]",
    )
    load_text(
        stack.replace('repr: "Conv2d(3, 64, kernel_size=(3, 3), stride=(1, 1))"', "state_shapes: {}"),
        "f.yaml",
    )


@pytest.mark.parametrize(
    ("expect", "named"),
    [
        ("shape: [1]", "expect.shape"),
        ("reference: numpy", "expect.reference"),
        ("deterministic: true", "expect.deterministic"),
    ],
)
def test_expectations_of_the_call_still_need_an_input(expect: str, named: str) -> None:
    (error,) = errors_of(MODULE_ONLY + f"      {expect}\n")
    assert "inputs: is empty, so the module is built but never called" in error and named in error
    assert error.startswith("f.yaml:2:")


def test_an_op_case_still_needs_an_input() -> None:
    (error,) = errors_of("cases:\n  - id: r\n    op: relu\n    expect: {shape: [1]}\n")
    assert "an op or chain case needs at least one input tensor" in error


CHAIN = """\
cases:
  - id: pool-unpool
    chain:
      - {op: max_pool2d, args: {kernel_size: 2, return_indices: true}}
      - {op: max_unpool2d, args: {kernel_size: 2}}
    inputs: {input: {randn: [1, 1, 4, 4]}}
    expect:
      shape: [1, 1, 4, 4]
"""


def test_a_chain_loads_and_names_its_steps() -> None:
    (case,) = load_text(CHAIN, "f.yaml").cases
    assert case.spec.chain is not None and [s.op for s in case.spec.chain] == ["max_pool2d", "max_unpool2d"]
    assert case.spec.target == "max_pool2d>max_unpool2d"


def test_a_chain_sweeps_by_step() -> None:
    text = CHAIN.replace("    expect:", "    sweep: {chain.0.args.kernel_size: [2, 4]}\n    expect:")
    cases = load_text(
        text.replace("kernel_size: 2}}\n    inputs", "kernel_size: 2}}\n    inputs"), "f.yaml"
    ).cases
    assert [c.spec.chain[0].args["kernel_size"] for c in cases if c.spec.chain] == [2, 4]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            ("      shape: [1, 1, 4, 4]", "      reference: numpy"),
            "needs an op or a module case, not a chain",
        ),
        (
            ("    inputs:", "    args: {kernel_size: 2}\n    inputs:"),
            "a chain's arguments go in each step's args:",
        ),
        (("      shape: [1, 1, 4, 4]", "      layer_shapes: [[1]]"), "1 shapes for 2 chain steps"),
        (("      shape: [1, 1, 4, 4]", "      repr: x"), "expect.repr needs a module or layers"),
        (
            ("    inputs: {input: {randn: [1, 1, 4, 4]}}\n", ""),
            "an op or chain case needs at least one input",
        ),
        (
            ("    chain:", "    op: relu\n    chain:"),
            "exactly one of op, module, layers, chain (found: op, chain)",
        ),
        (("{op: max_unpool2d,", "{op: max_unpool2dd,"), 'unknown op "max_unpool2dd"'),
    ],
)
def test_a_chain_refuses_what_does_not_apply(change: tuple[str, str], message: str) -> None:
    errors = errors_of(CHAIN.replace(*change))
    assert any(message in e for e in errors), errors


def test_the_json_schema_states_keyword_tensors_call_args_and_chains() -> None:
    from cnnbench.casefile.schema import json_schema

    case = json_schema()["$defs"]["CaseSpec"]["properties"]  # type: ignore[index]
    assert {"call_args", "chain"} <= set(case)
    assert "tensor passed by keyword" in str(case["args"]) and "randn" in str(case["args"])
    assert "ChainStep" in str(case["chain"])
