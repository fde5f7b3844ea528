"""Benchmarks in case files (cnnbench.casefile.load and .format): axes and ids, load errors with file:line
through ``cnnbench validate``."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from cnnbench.casefile.load import load_text
from cnnbench.casefile.variants import BenchVariant, expand_benchmarks
from cnnbench.cli import main
from cnnbench.errors import CaseFileError


def _variants(text: str) -> dict[str, BenchVariant]:
    return {v.id: v for v in expand_benchmarks(load_text(text, "b.yaml").benchmarks)}


def test_axes_multiply_out_into_ids() -> None:
    text = """\
    benchmark_defaults: {devices: [cpu, cuda], max_time_s: 0.5}
    benchmarks:
      - id: r18
        model: resnet18
        batch: [1, 8]
        dtypes: [float32, bfloat16]
        memory_formats: [contiguous, channels_last]
        modes: [inference, train]
        compile: [false, true]
    """
    variants = _variants(textwrap.dedent(text))
    assert len(variants) == 2 * 2 * 2 * 2 * 2 * 2
    v = variants["r18[cuda-bfloat16-b8-train-channels_last-compiled]"]
    assert (v.device, v.dtype, v.batch, v.mode, v.memory_format, v.compile) == (
        "cuda",
        "bfloat16",
        8,
        "train",
        "channels_last",
        True,
    )
    assert v.time_budget_s == 0.5 and v.kind == "bench"
    assert "r18[cpu-float32-b1-inference-contiguous]" in variants


def test_a_file_may_hold_only_benchmarks_but_not_nothing() -> None:
    assert len(load_text("benchmarks: [{id: a, model: lenet}]\n").benchmarks) == 1
    with pytest.raises(CaseFileError, match=r'missing required key "cases".*or "benchmarks"'):
        load_text("defaults: {devices: [cpu]}\n")


BAD = """\
benchmark_defaults: {max_time_s: 1}
benchmarks:
  - id: a
    model: resnet19
  - id: b
    op: conv2d
    batch: [2]
    inputs: {input: [[1.0, 2.0]], weight: {randn: [1, 1, 1, 1]}}
  - id: c
    model: lenet
    min_replicates: 2
  - id: d
    model: lenet
    op: relu
  - id: e
    op: relu
    inputs: {x: {randn: [4, 8]}}
    memory_formats: [channels_last]
  - {id: f, model: lenet, dtypes: [int64]}
  - {id: ok, model: lenet}
  - {id: ok, model: mnist_cnn}
  - {id: relu, model: lenet}
cases:
  - {id: relu, op: relu, inputs: {x: [1.0]}, expect: {output: [1.0]}}
"""


def test_bad_benchmarks_exit_2_with_file_and_line(
    write_case: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_case(BAD)
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    for line, text in (
        (4, 'benchmarks[0].model: unknown model "resnet19" (did you mean "resnet18"?)'),
        (5, "batch: replaces the leading dimension of inputs.input"),
        (11, "benchmarks[2].min_replicates: Input should be greater than or equal to 5"),
        (12, "exactly one of model, op, module, layers (found: model, op)"),
        (15, "channels_last needs a 4-D first input"),
        (19, "benchmark dtypes must be floating point, not int64"),
        (21, 'duplicate id "ok" (first at line 20)'),
        (22, 'duplicate id "relu" (first at line 24)'),
    ):
        assert any(e.startswith(f"error: {path}:{line}:") and text in e for e in err.splitlines()), (
            line,
            text,
        )


def test_a_bad_benchmark_default_points_at_benchmark_defaults(
    write_case: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_case("benchmark_defaults:\n  modes: [training]\nbenchmarks:\n  - {id: a, model: lenet}\n")
    assert main(["validate", str(path)]) == 2
    assert f"{path}:2:" in capsys.readouterr().err


def test_the_same_id_in_cases_and_benchmarks_of_two_files_is_refused(
    write_case: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    write_case("cases:\n  - {id: x, op: relu, inputs: {x: [1.0]}, expect: {output: [1.0]}}\n", "a.yaml")
    path = write_case("benchmarks:\n  - {id: x, model: lenet}\n", "b.yaml")
    assert main(["validate", str(path.parent)]) == 2
    assert 'duplicate benchmark id "x"' in capsys.readouterr().err
