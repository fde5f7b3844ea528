"""Selection in one place (cnnbench.casefile.select): -k, --device, --dtype and --kind, and their bad values."""

from __future__ import annotations

import pytest

from cnnbench.casefile.load import load_text
from cnnbench.casefile.select import check_filters, select
from cnnbench.casefile.variants import AnyVariant, expand, expand_benchmarks
from cnnbench.errors import UsageError

TEXT = """\
cases:
  - {id: c, op: relu, devices: [cpu, "cuda:1"], dtypes: [float32, float64], inputs: {x: [1.0]}, expect: {output: [1.0]}}
benchmarks:
  - {id: b, op: relu, devices: [cpu], inputs: {x: {randn: [2, 3]}}}
"""


@pytest.fixture
def variants() -> list[AnyVariant]:
    loaded = load_text(TEXT, "sel.yaml")
    return [*expand(loaded.cases), *expand_benchmarks(loaded.benchmarks)]


def ids(selected: list[AnyVariant]) -> list[str]:
    return [v.id for v in selected]


def test_filters_combine(variants: list[AnyVariant]) -> None:
    assert len(select(variants)) == 5
    assert ids(select(variants, devices=["cuda"])) == ["c[cuda:1-float32]", "c[cuda:1-float64]"]
    assert ids(select(variants, devices=["cuda:1"], dtypes=["float64"])) == ["c[cuda:1-float64]"]
    assert ids(select(variants, kind="bench")) == [v.id for v in variants if v.kind == "bench"]
    assert ids(select(variants, kind="check", keyword="float64 and not cuda")) == ["c[cpu-float64]"]
    assert ids(select(variants, keyword="sel.yaml and relu and float32", kind="check")) == [
        "c[cpu-float32]",
        "c[cuda:1-float32]",
    ]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"devices": ["cdua"]}, 'did you mean "cuda"'),
        ({"dtypes": ["float33"]}, 'did you mean "float32"'),
        ({"kind": "checks"}, "--kind checks: expected one of all, check, bench"),
    ],
)
def test_unknown_filter_values_are_usage_errors(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        check_filters(**kwargs)  # type: ignore[arg-type]
