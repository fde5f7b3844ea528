"""Variant-id patterns: * and ? only, brackets literal."""

from __future__ import annotations

from cnnbench.report.pattern import variant_pattern


def test_star_and_question_mark_and_literal_brackets() -> None:
    assert variant_pattern("conv[cpu-*]").fullmatch("conv[cpu-float32]")
    assert variant_pattern("conv[cpu-float?2]").fullmatch("conv[cpu-float32]")
    assert not variant_pattern("conv[cpu-float?2]").fullmatch("conv[cpu-float322]")
    assert not variant_pattern("c[op]").fullmatch("o")  # fnmatch would read [op] as a class
    assert variant_pattern("a.b").fullmatch("a.b") and not variant_pattern("a.b").fullmatch("axb")
