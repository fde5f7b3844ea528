"""Tests of cnnbench.bench.runner: the time budget, benchmark rows through the CLI, FLOP counts, the slow-path
flag, the correctness check, torchvision missing, Ctrl-C. No timing assertions: the machine is shared."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from cnnbench.bench import runner, workload
from cnnbench.casefile.load import load_text
from cnnbench.casefile.variants import BenchVariant, estimated_seconds, expand, expand_benchmarks
from cnnbench.cli import main
from cnnbench.report.markdown import render_markdown
from cnnbench.store.result import Result
from cnnbench.store.run import RunStore

TINY = """\
benchmark_defaults:
  devices: [cpu]
  max_time_s: 0.05
cases:
  - {id: relu, op: relu, devices: [cpu], inputs: {x: [-1.0, 2.0]}, expect: {output: [0.0, 2.0]}}
benchmarks:
  - id: lenet
    model: lenet
    batch: [2]
    modes: [inference, train]
    memory_formats: [contiguous, channels_last]
  - id: mnist
    model: mnist_cnn
    batch: [2]
"""

#: Every metric a timed CPU row carries (the report, the comparison and the HTML page read these names).
ROW_METRICS = {
    "median_ms",
    "iqr_ms",
    "min_ms",
    "mean_ms",
    "n",
    "times_ms",
    "noisy",
    "samples_per_s",
    "flop_fwd",
    "flop_fwd_bwd",
    "gmacs",
    "gflops",
    "flop",
    "bytes_moved",
    "gbs",
    "intensity",
    "compute_ceiling_gflops",
    "bandwidth_gbs",
    "bound",
    "pct_of_bound",
    "slow_path",
    "params",
    "peak_mem_bytes",
    "first_call_ms",
    "warmup_ms",
    "threads",
    "batch",
    "mode",
    "memory_format",
    "compile",
}
CHECK_METRICS = {"top1_agreement", "max_abs_err_vs_fp32", "max_rel_err_vs_fp32"}

needs_torchvision = pytest.mark.skipif(
    importlib.util.find_spec("torchvision") is None, reason="torchvision is not installed"
)


def _variants(text: str) -> dict[str, BenchVariant]:
    return {v.id: v for v in expand_benchmarks(load_text(text, "b.yaml").benchmarks)}


def test_override_of_the_time_budget() -> None:
    loaded = load_text(TINY, "t.yaml")
    (v, *_) = expand_benchmarks(loaded.benchmarks, max_time_s=3.0)
    assert v.time_budget_s == 3.0 and v.max_time_s == 3.0
    assert estimated_seconds(v) > estimated_seconds(next(expand(loaded.cases))) * 10


def test_tiny_benchmarks_run_through_the_cli_with_every_metric(
    write_case: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_case(TINY)
    reports = tmp_path / "reports"
    assert (
        main(["run", str(path), "--reports", str(reports), "--threads", "1", "--max-time-per-case", "0.05"])
        == 0
    )
    run = RunStore(reports).load(None)
    bench = {r.variant_id: r for r in run.results if r.kind == "bench"}
    assert [r.variant_id for r in run.results if r.kind == "check"] == ["relu[cpu-float32]"]
    assert len(bench) == 5 and all(r.status == "passed" for r in bench.values())
    for r in bench.values():
        assert r.metrics.keys() >= ROW_METRICS, ROW_METRICS - r.metrics.keys()
        assert r.metrics["n"] >= 5 and len(r.metrics["times_ms"]) == r.metrics["n"]
        assert r.metrics["threads"] == 1 and r.metrics["slow_path"] is False
        assert r.metrics["peak_mem_bytes"] is None and "not measured" in r.metrics["peak_mem_note"]
    reference = bench["lenet[cpu-float32-b2-inference-contiguous]"]
    assert CHECK_METRICS.isdisjoint(reference.metrics)
    checked = bench["lenet[cpu-float32-b2-train-channels_last]"].metrics
    assert checked.keys() >= CHECK_METRICS and checked["top1_agreement"] == 1.0
    assert (
        reference.metrics["flop_fwd"] == bench["lenet[cpu-float32-b2-train-contiguous]"].metrics["flop_fwd"]
    )
    assert run.meta["environment"]["num_threads"] == 1
    assert run.meta["options"]["threads"] == 1 and run.meta["options"]["max_time_per_case"] == 0.05
    threads = "|t1"
    assert set(run.meta["ceilings"]["entries"]) == {
        f"compute|cpu|float32|ieee{threads}",
        f"bandwidth|cpu{threads}",
    }
    for r in bench.values():  # the session compared every row with the machine's ceilings
        assert r.metrics["bound"] in ("compute", "memory") and 0 < r.metrics["pct_of_bound"] <= 100
    out = capsys.readouterr().out
    assert "benchmarks" in out and "6 passed" in out and "% of bound" in out
    markdown = render_markdown(run)
    assert "## Benchmarks" in markdown and "Ceilings (measured once per machine: " in markdown
    assert "cpu float32 " in markdown and "GFLOP/s" in markdown


def test_kind_check_leaves_the_benchmarks_out(write_case: Callable[..., Path], tmp_path: Path) -> None:
    path = write_case(TINY)
    assert main(["run", str(path), "--reports", str(tmp_path), "--kind", "check"]) == 0
    assert [r.kind for r in RunStore(tmp_path).load(None).results] == ["check"]


def test_isolated_workers_run_benchmarks_with_the_run_options(
    write_case: Callable[..., Path], tmp_path: Path
) -> None:
    path = write_case(TINY)
    args = ["run", str(path), "--reports", str(tmp_path), "-k", "mnist", "--isolate", "--threads", "1"]
    assert main([*args, "--max-time-per-case", "0.05"]) == 0
    (row,) = RunStore(tmp_path).load(None).results
    assert row.kind == "bench" and row.status == "passed" and row.metrics["threads"] == 1


@needs_torchvision
def test_resnet18_forward_is_3_63_gflop_per_image() -> None:
    variants = _variants("benchmarks:\n  - {id: r18, model: resnet18, devices: [cpu], batch: [1, 2]}\n")
    for batch in (1, 2):
        forward, both = runner.count_variant_flops(
            variants[f"r18[cpu-float32-b{batch}-inference-contiguous]"]
        )
        assert round(forward / batch / 1e9, 2) == 3.63
        assert 2.5 < both / forward < 3.0  # backward is twice the forward, less the stem's input gradient


def test_a_depthwise_convolution_backward_is_counted_per_group() -> None:
    text = """\
benchmarks:
  - id: dw
    module: Conv2d
    devices: [cpu]
    args: {in_channels: 32, out_channels: 32, kernel_size: 3, padding: 1, groups: 32}
    inputs: {input: {randn: [2, 32, 16, 16]}}
"""
    (variant,) = _variants(text).values()
    forward, both = runner.count_variant_flops(variant)
    assert forward == 2 * 2 * 32 * 16 * 16 * 9 and both == 3 * forward


def _run(text: str, monkeypatch: pytest.MonkeyPatch, **patches: Any) -> Result:
    (variant,) = _variants(text).values()
    monkeypatch.setattr(runner, "measure_variant", _quick_measure)
    for name, value in patches.items():
        monkeypatch.setattr(runner, name, value)
    return runner.run_benchmark(variant)


def _quick_measure(step: Callable[[], object], variant: BenchVariant) -> Any:
    from cnnbench.bench.timing import measure

    return measure(step, device=variant.device, min_replicates=5, max_time_s=0.01)


LENET_BF16 = "benchmarks:\n  - {id: l, model: lenet, devices: [cpu], dtypes: [bfloat16], batch: [2]}\n"


def test_a_slow_path_row_is_flagged_in_the_report(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    result = _run(LENET_BF16, monkeypatch)
    assert result.status == "passed" and "slow_path" not in result.metrics  # the run's ceilings decide it
    assert result.metrics["bytes_moved"] > 0 and result.metrics["flop"] > 0
    from synthetic_runs import make_run

    result.metrics["slow_path"] = True
    assert "🐢 slow path" in render_markdown(make_run(tmp_path / "run", [result]))


def test_a_wrong_low_precision_output_fails_the_row(monkeypatch: pytest.MonkeyPatch) -> None:
    real = workload.build_workload

    def broken(variant: BenchVariant, **overrides: Any) -> workload.Workload:
        built = real(variant, **overrides)
        if "dtype" not in overrides:  # the variant's own configuration, not the float32 reference
            forward = built.forward
            built.forward = lambda: -2 * workload.first_tensor(forward())
        return built

    result = _run(LENET_BF16, monkeypatch, build_workload=broken)
    assert result.status == "failed"
    assert "over the bfloat16 threshold 0.1" in result.message and "top-1 agreement" in result.message
    assert result.metrics["median_ms"] > 0  # still timed


def test_near_ties_are_forgiven_and_real_flips_are_not() -> None:
    (variant,) = _variants(LENET_BF16).values()
    ref = torch.tensor([[1.0, 0.999, -1.0], [2.0, 0.0, -2.0]])
    tie = ref.clone()
    tie[0, 1] = 1.001  # flips sample 0 between two nearly tied classes
    check = runner.check_against_reference(variant, tie, ref)
    assert check.top1_agreement == 0.5 and check.problems == ()
    flipped = ref.clone()
    flipped[1] = torch.tensor([0.0, 2.0, -2.0])
    check = runner.check_against_reference(variant, flipped, ref)
    assert any("sample 1: top-1 class 1 instead of 0" in p for p in check.problems)


def test_torchvision_models_are_skipped_without_torchvision(monkeypatch: pytest.MonkeyPatch) -> None:
    (variant,) = _variants("benchmarks:\n  - {id: r, model: resnet18, devices: [cpu]}\n").values()
    monkeypatch.setitem(sys.modules, "torchvision", None)  # `import torchvision` now raises ImportError
    workload.torchvision_missing.cache_clear()
    try:
        result = runner.run_benchmark(variant)
    finally:
        workload.torchvision_missing.cache_clear()
    assert result.status == "skipped" and "torchvision is not available" in result.reason
    assert result.kind == "bench"
    lenet = next(iter(_variants("benchmarks:\n  - {id: l, model: lenet, devices: [cpu]}\n").values()))
    assert runner._skip_reason(lenet) is None


def test_ctrl_c_inside_a_benchmark_propagates(monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupt(step: Callable[[], object], variant: BenchVariant) -> Any:
        raise KeyboardInterrupt

    (variant,) = _variants(LENET_BF16.replace("bfloat16", "float32")).values()
    monkeypatch.setattr(runner, "measure_variant", interrupt)
    with pytest.raises(KeyboardInterrupt):
        runner.run_benchmark(variant)


def test_a_benchmark_runs_where_torch_testing_froze_the_cudnn_flags(tmp_path: Path) -> None:
    """Importing torch.testing._internal (cnnbench import opinfo) calls disable_global_flags: assigning
    torch.backends.cudnn.benchmark then raised, and every benchmark row after it in the process errored. In a
    subprocess, since the flags cannot be unfrozen."""
    import subprocess

    (tmp_path / "b.yaml").write_text(TINY)
    code = (
        "import torch, torch.backends\n"
        "from cnnbench.casefile.load import load_text\n"
        "from cnnbench.casefile.variants import expand_benchmarks\n"
        "from cnnbench.bench.runner import run_benchmark\n"
        "torch.backends.disable_global_flags()\n"
        "precision = torch.backends.cudnn.conv.fp32_precision\n"
        "suite = load_text(open('b.yaml').read(), 'b.yaml')\n"
        "(v,) = [v for v in expand_benchmarks(suite.benchmarks) if v.case.id == 'mnist']\n"
        "r = run_benchmark(v)\n"
        "print(r.status, torch.backends.cudnn.conv.fp32_precision == precision, r.message[:300])\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, check=False
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split()[:2] == ["passed", "True"], proc.stdout
