"""The declared table of arguments each NumPy reference op models (cnnbench.ops.modelled) and the load-time
refusal of a reference expectation outside it."""

from __future__ import annotations

import inspect

import pytest

from cnnbench.casefile.load import load_text
from cnnbench.errors import CaseFileError
from cnnbench.numerics.reference import REFERENCES
from cnnbench.ops.lowering import REFERENCE_OPS
from cnnbench.ops.modelled import NOT_PASSED, REFERENCE_ARGS, one_of, unmodelled


def test_every_reference_op_has_a_row() -> None:
    assert set(REFERENCE_ARGS) == set(REFERENCES) == set(REFERENCE_OPS)


@pytest.mark.parametrize("op", sorted(REFERENCE_ARGS))
def test_every_modelled_argument_is_a_parameter_of_the_reference(op: str) -> None:
    params = inspect.signature(REFERENCES[op]).parameters
    missing = [name for name in REFERENCE_ARGS[op] if name not in params and name not in NOT_PASSED]
    assert not missing, f"{op}: the table names {missing}, which the reference does not take"


def test_rules() -> None:
    assert unmodelled("interpolate", {"mode": "bicubic", "antialias": True, "size": [2, 2]}) == []
    assert unmodelled("interpolate", {"mode": "nearest", "antialias": True}) == [
        "antialias=True (antialias applies to bilinear and bicubic only)"
    ]
    assert unmodelled("max_pool2d", {"kernel_size": 2, "ceil_mode": 1}) == [
        "ceil_mode=1 (modelled values: True, False)"
    ]
    (problem,) = unmodelled("softmax", {"dim": 1, "_stacklevel": 5})
    assert problem.startswith("_stacklevel (not modelled; the reference of softmax models: dim, dtype)")
    assert unmodelled("no_such_op", {"x": 1}) and unmodelled("no_such_op", {}) == []
    assert one_of(None, False)(None, {}) is None and one_of(False)(0, {}) is not None


CASE = """\
defaults: {{devices: [cpu]}}
cases:
  - id: c
    {call}
    args: {args}
    inputs: {{input: {{randn: [1, 1, 4, 4]}}}}
    expect: {{reference: numpy}}
"""


@pytest.mark.parametrize(
    ("call", "args"),
    [
        ("op: interpolate", "{size: [2, 2], mode: nearest, antialias: true}"),
        ("op: avg_pool2d", "{kernel_size: 2, ceil_mode: yes_please}"),
        ("op: max_pool2d", "{kernel_size: 2, extra_arg: 1}"),
    ],
)
def test_a_reference_case_with_an_unmodelled_argument_is_a_load_time_error(call: str, args: str) -> None:
    with pytest.raises(CaseFileError) as info:
        load_text(CASE.format(call=call, args=args), "f.yaml")
    (error,) = [str(e) for e in info.value.errors]
    assert error.startswith("f.yaml:7:") and "the NumPy reference of" in error and "does not model" in error


@pytest.mark.parametrize(
    ("call", "args"),
    [
        ("op: interpolate", "{size: [2, 3], mode: bicubic, align_corners: true}"),
        ("op: interpolate", "{size: [3, 2], mode: area}"),
        ("op: interpolate", "{size: [2, 2], mode: bilinear, antialias: true}"),
        ("module: Upsample", "{scale_factor: 2, mode: bicubic}"),
    ],
)
def test_modes_the_reference_now_models_load(call: str, args: str) -> None:
    load_text(CASE.format(call=call, args=args), "f.yaml")
