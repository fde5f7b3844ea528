"""Validation errors located and explained (cnnbench.casefile.locate, through load): an unknown nested key's hint
comes from the keys of its own level, every duplicate id comes with every other error, errors come sorted."""

from __future__ import annotations

from pathlib import Path

import pytest

from cnnbench.casefile.load import load_paths, load_text
from cnnbench.errors import CaseFileError

BAD = """\
cases:
  - id: b
    op: relu
    inputs: {input: [1]}
    expect: {shape: [1], refrence: numpy}
  - id: a
    op: relu
    inputs: {input: [1]}
    expect: {outptu: [1]}
  - id: a
    op: relu
    inputs: {input: {randn: [2], sed: 1}}
    tolerance: {float32: {atl: 1}}
    expect: {shape: [2]}
  - id: c
    op: relu
    inputs: {input: [1]}
    tolerance: {rtl: 0}
    expect: {shape: [1]}
"""


def errors_of(text: str) -> list[str]:
    with pytest.raises(CaseFileError) as info:
        load_text(text, "f.yaml")
    return [str(e) for e in info.value.errors]


@pytest.mark.parametrize(
    ("key", "hint", "level"),
    [
        ("expect.refrence", "reference", "deterministic, dtype, error"),
        ("expect.outptu", "output", "deterministic, dtype, error"),
        ("inputs.input.sed", "seed", "dtype, randn, seed"),
        ("tolerance.float32.atl", "atol", "atol, rtol"),
        ("tolerance.rtl", "rtol", "atol, rtol"),
    ],
)
def test_an_unknown_nested_key_is_hinted_from_its_own_level(key: str, hint: str, level: str) -> None:
    (error,) = [e for e in errors_of(BAD) if f".{key}:" in e]
    assert f'(did you mean "{hint}"?); expected one of: {level}' in error
    assert "benchmark_defaults" not in error


def test_a_duplicate_id_comes_with_the_other_errors_sorted_by_line() -> None:
    errors = errors_of(BAD)
    assert 'f.yaml:10:5: cases[2].id: duplicate case id "a" (first at line 6)' in errors
    lines = [int(e.split(":")[1]) for e in errors]
    assert lines == sorted(lines) and len(errors) == 6


def test_a_duplicate_id_across_files_comes_with_the_files_own_errors(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(
        "cases:\n  - id: x\n    op: relu\n    inputs: {input: [1]}\n    expect: {shape: [1]}\n"
    )
    (tmp_path / "b.yaml").write_text(
        "cases:\n  - id: y\n    op: relu\n    inputs: {input: [1]}\n    expect: {shap: [1]}\n"
        "  - id: x\n    op: relu\n    inputs: {input: [1]}\n    expect: {shape: [1]}\n"
    )
    with pytest.raises(CaseFileError) as info:
        load_paths([tmp_path])
    errors = [str(e) for e in info.value.errors]
    assert len(errors) == 2, errors
    assert 'unknown key "shap" (did you mean "shape"?)' in errors[0]
    assert 'duplicate case id "x"' in errors[1] and "a.yaml:2" in errors[1] and "b.yaml:6" in errors[1]
