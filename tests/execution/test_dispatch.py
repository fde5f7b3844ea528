"""A GPU error that poisons the device's context (cnnbench.execution.dispatch, cnnbench.numerics.runner): the
variant becomes an error row, the later variants on that device type are not run in this process (error rows
saying why), CPU variants go on and every finished row is kept."""

from __future__ import annotations

from typing import Any

import pytest

from cnnbench.casefile.load import load_text
from cnnbench.casefile.variants import Variant, expand
from cnnbench.execution import dispatch
from cnnbench.numerics import runner
from cnnbench.store.result import Result

CASES = """
defaults: {devices: [cuda, cpu], dtypes: [float32, float64]}
cases:
  - {id: a, op: relu, inputs: {x: [-1.0, 2.0]}, expect: {output: [0.0, 2.0]}}
  - {id: b, op: relu, inputs: {x: [-1.0, 2.0]}, expect: {output: [0.0, 2.0]}}
"""

ILLEGAL = "CUDA error: an illegal memory access was encountered"


def _variants() -> list[Variant]:
    return list(expand(load_text(CASES, "t.yaml").cases))


def test_run_check_marks_a_poisoning_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(variant: Variant, result: Result | None = None) -> list[Any]:
        raise RuntimeError(ILLEGAL)

    monkeypatch.setattr(runner, "_execute", boom)
    cpu = next(v for v in _variants() if v.device == "cpu")
    row = runner.run_check(cpu)
    assert row.status == "error" and ILLEGAL in row.message and row.metrics["context_poisoned"] is True


def test_poisoned_device_stops_its_variants_and_keeps_the_rest(monkeypatch: pytest.MonkeyPatch) -> None:
    ran: list[str] = []

    def fake_check(variant: Variant) -> Result:
        ran.append(variant.id)
        row = runner.base_result(variant)
        if variant.id == "a[cuda-float32]":
            row.message, row.metrics["context_poisoned"] = ILLEGAL, True
        else:
            row.status = "passed"
        return row

    monkeypatch.setattr(dispatch, "run_check", fake_check)
    monkeypatch.setattr(dispatch, "POISONED", {})
    rows = {v.id: dispatch.run_variant(v) for v in _variants()}
    assert rows["a[cuda-float32]"].status == "error"
    for later in ("a[cuda-float64]", "b[cuda-float32]", "b[cuda-float64]"):
        assert later not in ran
        assert rows[later].status == "error" and "context of this process is unusable" in rows[later].message
        assert "--isolate" in rows[later].message and "a[cuda-float32]" in rows[later].message
    assert all(rows[v].status == "passed" for v in rows if "[cpu-" in v)  # CPU variants go on


def test_a_poisoning_error_on_the_cpu_stops_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    def fake_check(variant: Variant) -> Result:
        row = runner.base_result(variant)
        row.metrics["context_poisoned"] = True
        return row

    monkeypatch.setattr(dispatch, "run_check", fake_check)
    monkeypatch.setattr(dispatch, "POISONED", {})
    for v in _variants():
        if v.device == "cpu":
            dispatch.run_variant(v)
    assert dispatch.POISONED == {}
