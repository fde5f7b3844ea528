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
    assert "an op case needs at least one input tensor" in error
