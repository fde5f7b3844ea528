"""Subtly wrong PyTorch numerics must make bundled cases fail: each test patches one torch op, runs the seeds
suite and the reference suite in-process, and checks which cases caught it (and that they pass unpatched)."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator

import pytest
from mutation_support import MUTATIONS, patch_conv2d_float32_relative_error
from repo import REPO

from cnnbench.casefile.load import load_paths
from cnnbench.casefile.variants import Variant, expand
from cnnbench.execution.dispatch import run_variant
from cnnbench.numerics.oracle import clear_cache

SUITES = [REPO / "cases" / "seeds", REPO / "cases" / "reference"]


@functools.cache
def _cpu_variants() -> tuple[Variant, ...]:
    return tuple(v for v in expand(load_paths(SUITES)) if v.device == "cpu")


def _variants(case_ids: set[str]) -> list[Variant]:
    """The CPU variants of the cases named (the accelerator ones are skipped here anyway)."""
    return [v for v in _cpu_variants() if v.case.id in case_ids]


def _failing(variants: list[Variant]) -> dict[str, list[str]]:
    """case id -> the variant ids that failed or errored."""
    clear_cache()
    caught: dict[str, list[str]] = {}
    for variant in variants:
        result = run_variant(variant)
        if result.status in ("failed", "error"):
            caught.setdefault(variant.case.id, []).append(variant.id)
    return caught


@contextlib.contextmanager
def _patched(patch: Callable[[pytest.MonkeyPatch], None]) -> Iterator[None]:
    with pytest.MonkeyPatch.context() as mp:
        patch(mp)
        yield


@pytest.mark.parametrize("name", sorted(MUTATIONS))
def test_bundled_cases_catch_the_mutation(name: str) -> None:
    patch, must_catch = MUTATIONS[name]
    variants = _variants(must_catch)
    assert {v.case.id for v in variants} == must_catch
    assert _failing(variants) == {}, "the unpatched op must pass every variant first"
    with _patched(patch):
        caught = _failing(variants)
    missed = must_catch - set(caught)
    assert not missed, f"{name}: not caught by {sorted(missed)}; caught by {sorted(caught)}"
    assert all(ids for ids in caught.values())


def test_float32_conv_error_is_diagnosed_as_genuinely_off() -> None:
    """The float64 cross-check says the float32 result is off while torch in float64 agrees with the reference."""
    variants = [v for v in _variants({"ref-conv2d-same-groups2"}) if v.dtype == "float32"]
    with _patched(patch_conv2d_float32_relative_error):
        clear_cache()
        result = run_variant(variants[0])
    assert result.status == "failed"
    assert "genuinely off" in result.message
    assert result.metrics["low_precision_genuinely_off"] is True
    assert result.metrics["torch_float64_vs_reference_max_abs_err"] < 1e-12
