"""Mixed-precision benchmark rows (autocast axis), cudnn.benchmark per row and the rows' compute precision
(cnnbench.bench.workload, cnnbench.bench.runner); CPU only, tiny models, no timing assertions."""

from __future__ import annotations

import pytest
import torch

from cnnbench.bench import runner, workload
from cnnbench.casefile.load import load_text
from cnnbench.casefile.variants import BenchVariant, expand_benchmarks

AMP = """\
benchmark_defaults: {devices: [cpu], max_time_s: 0.05}
benchmarks:
  - id: lenet
    model: lenet
    batch: [2]
    dtypes: [float32, bfloat16]
    autocast: [false, true]
    modes: [inference, train]
    memory_formats: [contiguous, channels_last]
    cudnn_benchmark: false
  - id: fc
    op: linear
    inputs: {x: {randn: [4, 8]}, w: {randn: [3, 8]}}
"""


def variants(text: str = AMP) -> dict[str, BenchVariant]:
    return {v.id: v for v in expand_benchmarks(load_text(text, "b.yaml").benchmarks)}


def test_autocast_axis_expands_only_for_half_dtypes() -> None:
    ids = set(variants())
    assert "lenet[cpu-bfloat16-b2-train-channels_last-autocast]" in ids
    assert "lenet[cpu-bfloat16-b2-inference-contiguous]" in ids  # the pure bfloat16 row stays
    assert not any("float32" in i and "autocast" in i for i in ids)
    assert len([i for i in ids if i.startswith("lenet")]) == 12  # 4 float32 + 4 pure + 4 autocast


def test_autocast_workload_keeps_float32_weights_and_computes_in_the_half_dtype() -> None:
    v = variants()["lenet[cpu-bfloat16-b2-inference-contiguous-autocast]"]
    w = workload.build_workload(v)
    assert w.module is not None and next(w.module.parameters()).dtype == torch.float32
    assert w.inputs[0].dtype == torch.float32
    assert workload.first_tensor(w.forward()).dtype == torch.bfloat16  # autocast's output dtype
    pure = workload.build_workload(v, autocast=False, dtype="float32")
    assert workload.first_tensor(pure.forward()).dtype == torch.float32


@pytest.mark.parametrize(
    "vid",
    [
        "lenet[cpu-bfloat16-b2-inference-channels_last-autocast]",
        "lenet[cpu-bfloat16-b2-train-contiguous-autocast]",
    ],
)
def test_autocast_rows_run_and_are_checked_against_float32(vid: str) -> None:
    torch.backends.cudnn.benchmark = True
    row = runner.run_benchmark(variants()[vid])
    assert row.status == "passed", row.message
    assert row.metrics["autocast"] is True and row.metrics["cudnn_benchmark"] is False
    assert row.metrics["max_rel_err_vs_fp32"] < runner.CHECK_THRESHOLDS["bfloat16"]
    assert row.compute_precision == "bfloat16"
    assert torch.backends.cudnn.benchmark is True  # the row's choice was undone


def test_compute_precision_of_float32_rows_follows_the_flags() -> None:
    from cnnbench import device

    vs = variants()
    conv_row, fc_row = (
        vs["lenet[cpu-float32-b2-inference-contiguous]"],
        vs["fc[cpu-float32-b4-inference-contiguous]"],
    )
    assert runner.bench_compute_precision(conv_row) == "ieee"
    with device.pin_fp32_precision("tf32"):
        assert runner.bench_compute_precision(conv_row) == "tf32"
        assert runner.bench_compute_precision(fc_row) == "tf32"
    assert runner.bench_compute_precision(vs["lenet[cpu-bfloat16-b2-inference-contiguous]"]) == "bfloat16"


def test_repeated_autocast_value_is_refused() -> None:
    from cnnbench.errors import CaseFileError

    with pytest.raises(CaseFileError, match="autocast must not repeat"):
        variants(AMP.replace("autocast: [false, true]", "autocast: [true, true]"))
