"""The -k grammar (cnnbench.casefile.keyword): pytest's keyword expressions over substrings, ignoring case."""

from __future__ import annotations

import re

import pytest

from cnnbench.casefile.keyword import Keyword
from cnnbench.errors import UsageError


@pytest.mark.parametrize(
    ("expr", "names", "expected"),
    [
        ("conv", ("conv2d-k3[cpu-float32]",), True),
        ("CONV", ("conv2d-k3[cpu-float32]",), True),
        ("pool", ("conv2d-k3[cpu-float32]",), False),
        ("conv and float32", ("conv2d-k3[cpu-float32]",), True),
        ("conv and not float32", ("conv2d-k3[cpu-float32]",), False),
        ("pool or float32", ("conv2d-k3[cpu-float32]",), True),
        ("not (pool or cuda)", ("conv2d-k3[cpu-float32]",), True),
        ("not not conv", ("conv2d-k3[cpu-float32]",), True),
        ("conv2d-k3[cpu-float32]", ("conv2d-k3[cpu-float32]",), True),
        ("relu", ("x[cpu-float32]", "relu", "seeds.yaml"), True),
        ("seeds.yaml", ("x[cpu-float32]", "relu", "seeds.yaml"), True),
        ("a or b and c", ("a",), True),
        ("(a or b) and c", ("a",), False),
    ],
)
def test_expressions(expr: str, names: tuple[str, ...], expected: bool) -> None:
    assert Keyword.compile(expr).matches(*names) is expected


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("", "empty expression"),
        ("   ", "empty expression"),
        ("(conv", "missing closing parenthesis"),
        ("conv)", "unexpected ')'"),
        ("conv and", "ends too early"),
        ("and conv", "unexpected 'and'"),
        ("conv;rm", "unexpected character ';'"),
    ],
)
def test_malformed_expressions_are_usage_errors(expr: str, message: str) -> None:
    with pytest.raises(UsageError, match=re.escape(message)):
        Keyword.compile(expr)
