"""Tests of cnnbench.bench.ceilings: probing, the per-machine cache and its reuse, --reprobe, a probe failing,
a row raising its ceiling, the slow-path flag from the dtypes' ceilings, the shapes probed."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import torch

from cnnbench.bench import ceilings
from cnnbench.bench.ceilings import QUICK, CeilingBook, apply_roofline, effective, pick_shapes
from cnnbench.store.result import Result


def _row(dtype: str = "float32", flop: float = 1e9, nbytes: float = 1e6, median_ms: float = 100.0) -> Result:
    metrics = {"median_ms": median_ms, "bytes_moved": nbytes, "flop": flop}
    return Result(
        f"x[cpu-{dtype}]", "x", "x.yaml", 1, "conv2d", "cpu", dtype, "passed", kind="bench", metrics=metrics
    )


def _fake_probes(monkeypatch: pytest.MonkeyPatch, gflops: dict[str, float], gbs: float = 10.0) -> list[str]:
    calls: list[str] = []

    def compute(device: str, dtype: str, shapes: list[Any], plan: Any) -> dict[str, Any]:
        calls.append(f"compute {dtype} {shapes}")
        return {"measured": gflops[dtype], "shapes": [], "how": "fake"}

    def stream(device: str, plan: Any) -> dict[str, Any]:
        calls.append("bandwidth")
        return {"measured": gbs, "how": "fake"}

    monkeypatch.setattr(ceilings, "_compute_probe", compute)
    monkeypatch.setattr(ceilings, "stream_gbs", stream)
    return calls


def test_the_real_quick_probe_measures_every_ceiling(tmp_path: Path) -> None:
    book = CeilingBook(tmp_path, plan=QUICK)
    compute = book.compute("cpu", "float32", shapes=[(64, 32, 48)])
    assert compute["measured"] > 0 and {s["origin"] for s in compute["shapes"]} == {"square", "workload"}
    assert compute["measured"] == max(s["gflops"] for s in compute["shapes"])  # the best, not a median
    assert "theoretical_how" in compute and compute["plan"] == "quick"
    bandwidth = book.bandwidth("cpu")
    assert bandwidth["measured"] == max(bandwidth["copy_gbs"], bandwidth["triad_gbs"]) > 0


def test_ceilings_are_cached_per_machine_and_reused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _fake_probes(monkeypatch, {"float32": 100.0})
    book = CeilingBook(tmp_path, plan=QUICK)
    assert effective(book.compute("cpu", "float32", shapes=[(64, 64, 64)])) == 100.0
    assert effective(book.bandwidth("cpu")) == 10.0
    book.compute("cpu", "float32")
    assert calls == ["compute float32 [(64, 64, 64)]", "bandwidth"]  # one probe per ceiling and run
    book.save()
    stored = json.loads(book.path.read_text())
    assert book.path.name == f"{ceilings.fingerprint(ceilings.machine_facts())}.json"
    assert stored["machine"]["cpu_model"] and set(stored["ceilings"]) == {
        f"compute|cpu|float32|ieee|t{torch.get_num_threads()}",
        f"bandwidth|cpu|t{torch.get_num_threads()}",
    }
    later = CeilingBook(tmp_path, plan=QUICK)
    assert effective(later.compute("cpu", "float32")) == 100.0 and effective(later.bandwidth("cpu")) == 10.0
    assert len(calls) == 2  # a later run on the machine probes nothing
    again = CeilingBook(tmp_path, plan=QUICK, reprobe=True)
    again.compute("cpu", "float32")
    again.compute("cpu", "float32")
    assert len(calls) == 3  # --reprobe measures once more, once per run
    assert len(CeilingBook(tmp_path, plan=ceilings.FULL).compute("cpu", "float32")) and len(calls) == 4


def test_a_failing_probe_leaves_the_ceiling_missing_and_the_row_without_percent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_probes(monkeypatch, {"float32": 100.0})

    def out_of_memory(*args: Any, **kwargs: Any) -> float:
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 64 GiB")

    monkeypatch.setattr(ceilings, "_compute_probe", lambda *a: {"measured": ceilings.gemm_flops(*a[:2])})
    monkeypatch.setattr(ceilings, "gemm_flops", out_of_memory)
    book = CeilingBook(tmp_path, plan=QUICK)
    row = _row()
    apply_roofline(row, book)
    assert row.status == "passed" and row.metrics["pct_of_bound"] is None and row.metrics["bound"] is None
    assert "OutOfMemoryError" in row.metrics["roofline_note"] and "64 GiB" in row.metrics["roofline_note"]
    assert row.metrics["gbs"] == pytest.approx(0.01)  # the achieved rates stay
    pool = _row(flop=0.0)
    apply_roofline(pool, book)  # a row without FLOPs needs the bandwidth only
    assert pool.metrics["bound"] == "memory" and pool.metrics["pct_of_bound"] == pytest.approx(0.1)
    book.save()
    stored = json.loads(book.path.read_text())["ceilings"]
    assert all("compute" not in k for k in stored)  # a failure is not cached: the next run tries again
    meta = book.meta()["entries"]
    assert any("OutOfMemoryError" in str(e.get("error")) for e in meta.values())


def test_a_row_beating_its_ceiling_raises_it_for_the_run_and_the_machine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_probes(monkeypatch, {"float32": 5.0})
    book = CeilingBook(tmp_path, plan=QUICK)
    fast = _row(flop=1e9, nbytes=1e6, median_ms=100.0)  # 10 GFLOP/s against a 5 GFLOP/s probe
    apply_roofline(fast, book)
    assert fast.metrics["ceiling_raised"] == ["compute"] and fast.metrics["pct_of_bound"] == pytest.approx(
        100.0
    )
    assert fast.metrics["compute_ceiling_gflops"] == pytest.approx(10.0)
    slower = _row(median_ms=200.0)
    apply_roofline(slower, book)
    assert slower.metrics["pct_of_bound"] == pytest.approx(50.0) and slower.metrics["ceiling_raised"] == []
    book.save()
    later = CeilingBook(tmp_path, plan=QUICK).compute("cpu", "float32")
    assert later["measured"] == 5.0 and later["practical"] == pytest.approx(10.0)
    assert later["raised_by"] == "x[cpu-float32]" and effective(later) == pytest.approx(10.0)


def test_slow_path_compares_the_dtypes_ceilings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_probes(monkeypatch, {"float32": 100.0, "bfloat16": 0.5, "float16": 60.0})
    book = CeilingBook(tmp_path, plan=QUICK)
    rows = {d: _row(d, median_ms=1e4) for d in ("float32", "bfloat16", "float16")}
    for r in rows.values():
        apply_roofline(r, book)
    assert [rows[d].metrics["slow_path"] for d in ("float32", "bfloat16", "float16")] == [False, True, False]


def test_a_row_whose_flops_were_not_counted_is_not_taken_for_a_flopless_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_probes(monkeypatch, {"float32": 100.0, "bfloat16": 0.5})
    row = _row("bfloat16")
    del row.metrics["flop"]
    row.metrics["flop_note"] = "not counted: NotImplementedError: no meta kernel"
    apply_roofline(row, CeilingBook(tmp_path, plan=QUICK))
    assert "pct_of_bound" not in row.metrics and "bound" not in row.metrics
    assert "no meta kernel" in row.metrics["roofline_note"] and row.metrics["slow_path"] is True


def test_pick_shapes_takes_the_heaviest_that_fit() -> None:
    # FLOPs x occurrences: 128^3 once (4.2 M) beats 64^3 four times (2.1 M), which beats 32^3 once.
    shapes = Counter({(64, 64, 64): 4, (128, 128, 128): 1, (2048, 2048, 2048): 1, (32, 32, 32): 1})
    assert pick_shapes(shapes, QUICK) == [(128, 128, 128)]  # 2048^3 exceeds the quick plan's size
    assert pick_shapes(shapes, ceilings.FULL) == [(2048, 2048, 2048), (128, 128, 128)]


POOL_CASE = """\
benchmarks:
  - id: pool
    op: max_pool2d
    devices: [cpu]
    max_time_s: 0.05
    args: {kernel_size: 2, stride: 2}
    inputs: {input: {randn: [2, 8, 32, 32]}}
"""


def test_runs_reuse_the_machine_file_and_reprobe_measures_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from cnnbench.cli import main
    from cnnbench.store.run import RunStore

    case = tmp_path / "pool.yaml"
    case.write_text(POOL_CASE, encoding="utf-8")
    reports = tmp_path / "reports"
    monkeypatch.delenv("CNNBENCH_MACHINES")  # the default: <reports>/machines

    def run(*extra: str) -> tuple[dict[str, Any], str, str]:
        assert main(["run", str(case), "--reports", str(reports), "--threads", "1", *extra]) == 0
        (machine,) = (reports / "machines").glob("*.json")
        captured = capsys.readouterr()
        return json.loads(machine.read_text())["ceilings"], captured.out, captured.err

    first, out, err = run()
    assert "probing the cpu bandwidth ceiling" in err and "% of bound" in out
    second, _, err = run()
    key = "bandwidth|cpu|t1"
    assert "probing" not in err and second[key]["probed_at"] == first[key]["probed_at"]
    third, _, err = run("--reprobe")
    assert "probing the cpu bandwidth ceiling" in err and third[key]["probe_s"] != first[key]["probe_s"]
    row = RunStore(reports).load(None).results[0]
    assert row.metrics["bound"] == "memory" and 0 < row.metrics["pct_of_bound"] <= 100
    assert RunStore(reports).load(None).meta["options"]["reprobe"] is True


def test_a_shape_too_slow_for_the_budget_is_left_out(monkeypatch: pytest.MonkeyPatch) -> None:
    rates = {(128, 128, 128): 1e9, (4096, 4096, 4096): 1e9}  # 1 GFLOP/s: a 4096^3 call would take 137 s
    monkeypatch.setattr(ceilings, "gemm_flops", lambda device, dtype, shape, max_time_s: rates[tuple(shape)])
    found = ceilings._compute_probe("cpu", "float32", [(4096, 4096, 4096)], QUICK)
    (square, big) = found["shapes"]
    assert square["gflops"] == 1.0 and "gflops" not in big and "would take ~1.4e+02 s" in big["skipped"]
    assert found["measured"] == 1.0
