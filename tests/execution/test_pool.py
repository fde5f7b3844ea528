"""The worker pool (cnnbench.execution.pool): plans, identity with a serial run, crashes, and benchmarks alone."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from repo import REPO

from cnnbench.casefile.load import load_file
from cnnbench.casefile.variants import AnyVariant, expand, expand_benchmarks
from cnnbench.errors import UsageError
from cnnbench.execution.dispatch import run_variant
from cnnbench.execution.pool import AUTO, WorkerPool, parse_workers, plan_pool
from cnnbench.store.run import RunStore

FAULTS_DIR = REPO / "tests" / "faults"

#: Every status, and outputs with digests (a conv on random data, a reduction), on the CPU.
MIXED = """
defaults: {devices: [cpu], dtypes: [float32, float64]}
cases:
  - id: conv
    op: conv2d
    args: {padding: 1}
    inputs: {input: {randn: [2, 3, 9, 9], seed: 1}, weight: {randn: [4, 3, 3, 3], seed: 2}}
    expect: {reference: numpy}
  - id: mean
    op: adaptive_avg_pool2d
    args: {output_size: 1}
    inputs: {input: {randn: [2, 4, 40, 40], seed: 3}}
    expect: {reference: numpy}
  - id: passes
    op: conv2d
    inputs: {input: {arange: [1, 1, 3, 3]}, weight: {ones: [1, 1, 2, 2]}}
    expect: {output: [[[[8, 12], [20, 24]]]]}
  - id: fails
    op: relu
    inputs: {input: [1.0, -2.0]}
    expect: {output: [1.0, -2.0]}
  - id: errors
    module: Conv2d
    args: {in_channels: 2, out_channels: 1, kernel_size: 1}
    inputs: {input: {randn: [1, 3, 2, 2], seed: 1}}
    expect: {shape: [1, 1, 2, 2]}
  - id: xfails
    op: relu
    inputs: {input: [-1.0]}
    expect: {output: [5.0]}
    xfail: [{dtype: float64, reason: "demonstrates xfail"}]
    skip: [{dtype: float32, reason: "demonstrates skip"}]
"""

#: Checks and two short CPU benchmarks: the benchmarks must each run with no other variant running.
WITH_BENCH = """
defaults: {devices: [cpu], dtypes: [float32]}
cases:
"""
WITH_BENCH += "".join(
    f"""  - id: c{i}
    op: relu
    inputs: {{input: {{randn: [64, 64], seed: {i}}}}}
    expect: {{reference: numpy}}
"""
    for i in range(12)
)
WITH_BENCH += """benchmark_defaults: {devices: [cpu], dtypes: [float32], max_time_s: 0.3}
benchmarks:
  - id: b1
    op: relu
    inputs: {input: {randn: [256, 256], seed: 1}}
  - id: b2
    op: tanh
    inputs: {input: {randn: [256, 256], seed: 2}}
"""


def _variants(path: Path) -> list[AnyVariant]:
    loaded = load_file(path)
    return [*expand(loaded.cases), *expand_benchmarks(loaded.benchmarks)]


@pytest.mark.parametrize("text", ["0", "-1", "two", "1.5", ""])
def test_bad_worker_counts_are_usage_errors(text: str) -> None:
    with pytest.raises(UsageError, match="--workers"):
        parse_workers(text)


def test_plan_shares_the_cores_or_pins_one_worker_per_gpu(write_case: Callable[..., Path]) -> None:
    cpu = _variants(write_case(MIXED))
    assert plan_pool(2, cpu, cores=8).threads == 4
    assert plan_pool(AUTO, cpu, cores=8).workers == 8
    assert plan_pool(3, cpu, cores=2).threads == 1
    assert plan_pool(2, cpu, cores=8, threads=3).threads == 3
    # CPU-only work never asks for GPUs, even where there are some.
    assert plan_pool(AUTO, cpu, cores=4, gpus=8).gpus == ()
    gpu = _variants(write_case(MIXED.replace("devices: [cpu]", "devices: [cpu, cuda]"), "gpu.yaml"))
    eight = plan_pool(AUTO, gpu, cores=64, gpus=8)
    assert (eight.workers, eight.gpus, eight.threads) == (8, tuple(range(8)), 8)
    with pytest.raises(UsageError, match="only 2 GPUs visible"):
        plan_pool(3, gpu, cores=8, gpus=2)
    # No GPU visible: GPU variants get their skipped rows from CPU workers.
    assert plan_pool(AUTO, gpu, cores=2, gpus=0).workers == 2


def test_pool_rows_equal_a_serial_run(write_case: Callable[..., Path]) -> None:
    variants = _variants(write_case(MIXED))
    plan = plan_pool(2, variants, cores=2)
    previous = torch.get_num_threads()
    torch.set_num_threads(plan.threads)  # digests of reductions depend on the intra-op thread count
    try:
        serial = {r.variant_id: r for r in map(run_variant, variants)}
    finally:
        torch.set_num_threads(previous)
    pool = WorkerPool(plan)
    try:
        parallel = {r.variant_id: r for r in pool.imap(variants)}
    finally:
        pool.close()
    assert parallel.keys() == serial.keys()
    for vid, row in serial.items():
        assert (parallel[vid].status, parallel[vid].output_digest) == (row.status, row.output_digest), vid
    assert {r.status for r in serial.values()} == {"passed", "failed", "error", "skipped", "xfail"}
    assert sum(r.output_digest is not None for r in serial.values()) >= 4
    assert {r.metrics["worker"] for r in parallel.values()} == {0, 1}
    assert pool.restarts == 0


def test_a_killed_worker_is_an_error_row_and_is_replaced(
    write_case: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(FAULTS_DIR), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.setenv("CNNBENCH_TEST_FAULTS", "fails[cpu-float32]=oom;mean[cpu-float64]=segv")
    variants = _variants(write_case(MIXED))
    pool = WorkerPool(plan_pool(2, variants, cores=2))
    try:
        rows = {r.variant_id: r for r in pool.imap(variants)}
    finally:
        pool.close()
    assert len(rows) == len(variants)
    assert rows["fails[cpu-float32]"].status == "error"
    assert rows["fails[cpu-float32]"].message.startswith("worker killed by signal 9 (SIGKILL")
    assert rows["mean[cpu-float64]"].message.startswith("worker killed by signal 11 (SIGSEGV")
    assert pool.restarts == 2
    # The rest ran on, in the replacement workers as well.
    assert rows["conv[cpu-float64]"].status == "passed" and rows["passes[cpu-float64]"].status == "passed"
    assert rows["fails[cpu-float64]"].status == "failed"


def test_a_hung_variant_times_out_and_the_others_finish(
    write_case: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(FAULTS_DIR), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.setenv("CNNBENCH_TEST_FAULTS", "conv[cpu-float32]=hang")
    variants = _variants(write_case(MIXED))
    pool = WorkerPool(plan_pool(2, variants, cores=2), timeout=3)
    try:
        rows = {r.variant_id: r for r in pool.imap(variants)}
    finally:
        pool.close()
    assert rows["conv[cpu-float32]"].message == "timed out after 3 s; the worker running it was killed"
    assert sum(r.status == "passed" for r in rows.values()) >= 5
    # The variant queued behind the hung one on its worker ran on in the replacement.
    assert rows["conv[cpu-float64]"].status == "passed"
    # The other worker went on while one hung: rows finished before the hung one was given up.
    hung = rows["conv[cpu-float32]"]
    assert any(r.metrics["ended_at"] < hung.metrics["ended_at"] - 1 for r in rows.values() if r is not hung)


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cnnbench", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_cli_workers_benchmarks_never_overlap_another_variant(
    write_case: Callable[..., Path], tmp_path: Path
) -> None:
    path = write_case(WITH_BENCH)
    proc = _cli("run", str(path), "--workers", "2", "--reports", str(tmp_path / "r"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    run = RunStore(tmp_path / "r").load()
    assert run.meta["pool"]["workers"] == 2 and run.meta["pool"]["threads_per_worker"] == 1
    assert run.meta["options"]["workers"] == 2
    rows = run.results
    benches = [r for r in rows if r.kind == "bench"]
    assert len(benches) == 2 and all(r.status == "passed" for r in benches)
    assert len({r.metrics["worker"] for r in rows}) == 2
    for bench in benches:
        start, end = bench.metrics["started_at"], bench.metrics["ended_at"]
        for other in rows:
            if other is not bench:
                assert other.metrics["ended_at"] <= start or other.metrics["started_at"] >= end, (
                    other.variant_id
                )
        assert bench.metrics["threads"] == 2  # alone on the CPU, it has every core
    # Stored as they finished, loaded in one order: checks by line, then benchmarks.
    assert [r.variant_id for r in rows] == [f"c{i}[cpu-float32]" for i in range(12)] + [
        "b1[cpu-float32-b256-inference-contiguous]",
        "b2[cpu-float32-b256-inference-contiguous]",
    ]
    lines = (run.path / "results.jsonl").read_text().splitlines()
    assert len(lines) == 14 and all(json.loads(line)["variant_id"] for line in lines)


@pytest.mark.parametrize("value", ["0", "-2", "many"])
def test_cli_bad_workers_exit_2(value: str, write_case: Callable[..., Path], tmp_path: Path) -> None:
    proc = _cli("run", str(write_case(MIXED)), "--workers", value, "--no-save", cwd=tmp_path)
    assert proc.returncode == 2
    assert "--workers" in proc.stderr and "expected a whole number >= 1 or auto" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_planning_a_cpu_pool_imports_no_torch(write_case: Callable[..., Path]) -> None:
    """--workers is checked, and a pool planned, before torch is imported (a bad count fails fast)."""
    path = write_case(MIXED)
    code = (
        "import sys\n"
        "from cnnbench.execution.session import RunOptions, load_variants\n"
        "from cnnbench.execution.pool import plan_pool\n"
        f"variants, _ = load_variants([{str(path)!r}])\n"
        "plan = plan_pool(RunOptions(paths=('x',), workers='2').workers, variants)\n"
        "assert plan.workers == 2, plan\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]


def test_a_serial_run_resumed_with_workers_is_sorted_on_load(
    write_case: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cnnbench.cli import main

    monkeypatch.chdir(tmp_path)
    path = write_case(MIXED)
    assert main(["run", str(path), "--reports", "r"]) == 1  # MIXED has a failing and an erroring case
    run = RunStore(tmp_path / "r").load(None)
    order = [r.variant_id for r in run.results]
    results = run.path / "results.jsonl"
    results.write_text("".join(results.read_text().splitlines(keepends=True)[:3]))  # killed after 3 rows
    assert main(["run", "--resume", str(run.path), "--reports", "r", "--workers", "2"]) == 1
    resumed = RunStore(tmp_path / "r").load(None)
    assert resumed.complete and resumed.meta["pool"]["workers"] == 2
    assert sorted(r.variant_id for r in resumed.results) == sorted(order)
    rows = resumed.results
    assert all((a.file, a.line) <= (b.file, b.line) for a, b in itertools.pairwise(rows))


def _children(pid: int) -> list[int]:
    found = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":\t", 1) for line in status.read_text().splitlines() if ":\t" in line)
        except OSError:
            continue
        if fields.get("PPid", "").strip() == str(pid):
            found.append(int(status.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_sigterm_stops_a_pool_keeps_its_rows_and_leaves_no_worker(
    write_case: Callable[..., Path], tmp_path: Path
) -> None:
    import signal
    import time

    path = write_case(WITH_BENCH.split("benchmark_defaults")[0])
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(FAULTS_DIR), os.environ.get("PYTHONPATH", "")]),
        "CNNBENCH_TEST_FAULTS": "c11[cpu-float32]=hang",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "cnnbench", "run", str(path), "--workers", "2", "--reports", "r"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 180
    rows: list[Path] = []
    while time.monotonic() < deadline:
        rows = list((tmp_path / "r").glob("runs/*/results.jsonl"))
        if rows and len(rows[0].read_text().splitlines()) >= 11:  # every row but the hung one
            break
        time.sleep(0.2)
    zygotes = _children(proc.pid)
    started = zygotes + [w for z in zygotes for w in _children(z)]
    assert len(started) >= 3  # the zygote and its two workers
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert "interrupted: 11 of 12 variants finished and kept" in err
    run = RunStore(tmp_path / "r").load(None)
    assert not run.complete and len(run.results) == 11
    deadline = time.monotonic() + 10
    while any(_alive(p) for p in started) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(_alive(p) for p in started)


def test_gpu_benchmarks_wait_for_their_own_gpu_to_be_idle() -> None:
    """Scheduling alone (no GPU needed): one worker per GPU; a benchmark starts on its GPU's worker only when no
    running variant uses that GPU, a CPU benchmark only when every worker is idle; checks go anywhere."""
    from collections import deque
    from types import SimpleNamespace

    from cnnbench.execution.pool import PoolPlan, _Running, _Slot

    def v(vid: str, device: str, kind: str = "check") -> Any:
        return SimpleNamespace(id=vid, device=device, kind=kind)

    pool = WorkerPool(PoolPlan(2, 4, 8, (0, 1)))
    pool._slots = [_Slot(0, 0), _Slot(1, 1)]
    sent: list[tuple[int, str]] = []

    def send(slot: Any, variant: Any) -> None:
        slot.running.append(_Running(variant, 0.0, 0.0, None))
        slot.exclusive = variant.kind == "bench" and variant.device == "cpu"
        sent.append((slot.index, variant.id))

    pool._send = send  # type: ignore[method-assign]

    def finish(index: int) -> None:
        pool._slots[index].running.clear()
        pool._slots[index].exclusive = False

    checks = deque([deque([v("c-on-gpu1", "cuda:1")])])
    benches = deque(
        [v("b-gpu0", "cuda", "bench"), v("b-gpu1", "cuda:1", "bench"), v("b-cpu", "cpu", "bench")]
    )
    pool._dispatch(checks, benches)
    # The check naming GPU 1 went to worker 0; the idle worker 1 may not start a benchmark on GPU 1 meanwhile.
    assert sent == [(0, "c-on-gpu1")]
    finish(0)
    pool._dispatch(checks, benches)
    assert sent[1:] == [(0, "b-gpu0"), (1, "b-gpu1")]  # two GPUs, two benchmarks side by side
    finish(1)
    pool._dispatch(checks, benches)
    assert len(sent) == 3  # the CPU benchmark waits while worker 0 still runs
    finish(0)
    pool._dispatch(checks, benches)
    assert sent[3] == (0, "b-cpu") and not benches


def test_a_poisoned_gpu_context_gets_a_new_worker_for_what_was_queued_behind_it(
    write_case: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A row that says its worker's GPU context is unusable retires the worker: the variants already sent to it
    (the rest of its case) run in a replacement, not in the poisoned process."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(FAULTS_DIR), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.setenv("CNNBENCH_TEST_FAULTS", "conv[cpu-float32]=poison")
    variants = _variants(write_case(MIXED))
    pool = WorkerPool(plan_pool(1, variants, cores=2))
    try:
        rows = {r.variant_id: r for r in pool.imap(variants)}
    finally:
        pool.close()
    assert rows["conv[cpu-float32]"].metrics["context_poisoned"] is True
    assert pool.restarts == 1
    assert len(rows) == len(variants)
    assert rows["conv[cpu-float64]"].status == "passed"
    assert "context_poisoned" not in rows["conv[cpu-float64]"].metrics


def test_checks_are_grouped_by_case_and_split_at_the_group_size(write_case: Callable[..., Path]) -> None:
    """A case's variants go to one worker together (its cached reference serves them all), at most
    GROUP_SIZE at a time, in order."""
    from cnnbench.execution.pool import group_checks

    variants = [v for v in _variants(write_case(MIXED)) if v.kind == "check"]
    groups = group_checks(variants)
    assert [[v.id for v in g] for g in groups][:2] == [
        ["conv[cpu-float32]", "conv[cpu-float64]"],
        ["mean[cpu-float32]", "mean[cpu-float64]"],
    ]
    assert [v for g in groups for v in g] == variants
    small = group_checks(variants, size=1)
    assert all(len(g) == 1 for g in small) and len(small) == len(variants)


def test_an_idle_worker_takes_half_of_the_longest_queue_when_no_group_is_left() -> None:
    from collections import deque

    from cnnbench.execution.pool import PoolPlan, _Slot

    pool = WorkerPool(PoolPlan(2, 1, 2))
    pool._slots = [_Slot(0, None), _Slot(1, None)]
    pool._slots[0].queue = deque(["a", "b", "c", "d", "e"])  # type: ignore[list-item]
    assert pool._refill(pool._slots[1], deque())
    assert list(pool._slots[0].queue) == ["a", "b", "c"] and list(pool._slots[1].queue) == ["d", "e"]
    pool._slots[0].queue = deque(["a"])  # type: ignore[list-item]
    pool._slots[1].queue.clear()
    assert not pool._refill(pool._slots[1], deque())  # one left: its own worker runs it


def test_the_zygote_is_handed_the_parents_parsed_case_files(
    write_case: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The parent's parsed variants reach the zygote's cache (keyed as a worker looks them up) through a file
    descriptor sent over the control socket; "nopreload" leaves it empty; a closed socket ends the zygote."""
    import socket

    from cnnbench.execution import isolation, worker

    path = write_case(MIXED)
    variants = _variants(path)
    monkeypatch.setattr(worker, "_FILES", {})
    monkeypatch.setattr(isolation, "PRELOAD_CHUNK", 5)  # several pickles, the last one short
    assert len(variants) % 5 != 0
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    zygote = object.__new__(isolation._Zygote)
    zygote.control, zygote._preload_pending = ours, True
    zygote.preload(variants, lambda file: worker.cache_key(file, 123, None))
    zygote.preload(variants, lambda file: ("sent", "twice"))  # only the first is sent
    worker._preload(theirs)
    ((key, found),) = worker._FILES.items()
    assert key == (str(path), 123, None)
    assert {k: v.id for k, v in found.items()} == {v.id: v.id for v in variants}
    assert found[variants[0].id] == variants[0] and found[variants[0].id] is not variants[0]
    zygote._preload_pending = True
    zygote._skip_preload()
    worker._preload(theirs)
    assert len(worker._FILES) == 1
    exits: list[int] = []
    monkeypatch.setattr(worker.os, "_exit", exits.append)
    ours.close()
    worker._preload(theirs)
    assert exits == [0]
    theirs.close()


def test_a_pool_hands_its_zygote_the_selection_and_the_fp32_pin(
    write_case: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """--workers: the zygote is started to wait for the preload, with --fp32-precision in its environment (it
    starts before the parent pins its own flags, so it would not inherit the pin), and is handed the selected
    variants under the budget and time limit the pool's requests name."""
    from cnnbench.environment import FP32_PRECISION_ENV
    from cnnbench.execution import isolation
    from cnnbench.execution.session import RunOptions, RunSession

    seen: dict[str, Any] = {}

    class Recorded:
        def __init__(self, **kwargs: Any) -> None:
            seen["init"] = kwargs

        def preload(self, variants: Any, key: Callable[[str], Any]) -> None:
            seen["ids"] = [v.id for v in variants]
            seen["key"] = key("f.yaml")

        def close(self) -> int:
            return 0

    class Probe:  # the machine's answers, without a worker
        gpus, present = 0, ["cpu"]

        def __init__(self, zygote: Any) -> None:
            seen["probed"] = zygote

        def devices(self, names: Any) -> None:
            seen["devices"] = sorted(set(names))

        def is_available(self, name: str) -> bool:
            return name == "cpu"

    from cnnbench.execution import pool

    monkeypatch.setattr(isolation, "_Zygote", Recorded)
    monkeypatch.setattr(pool, "MachineProbe", Probe)
    path = write_case(MIXED)
    options = RunOptions(
        paths=(str(path),), workers=2, keyword="conv", fp32_precision="tf32", max_case_bytes=1 << 20
    )
    session = RunSession(options, None)
    assert seen["init"]["preload"] is True
    assert seen["init"]["env"] == {FP32_PRECISION_ENV: "tf32"}
    assert seen["ids"] == [v.id for v in session.variants] and seen["ids"]
    assert seen["key"] == ("f.yaml", 1 << 20, None)
    assert isinstance(seen["probed"], Recorded) and seen["devices"] == ["cpu"]


def test_workers_cap_numpys_blas_threads_at_their_share_of_the_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    from cnnbench.execution.isolation import BLAS_THREAD_VARIABLES, blas_environment
    from cnnbench.execution.pool import threads_per_worker

    for name in BLAS_THREAD_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MKL_NUM_THREADS", "7")  # the user's own setting is kept
    env = blas_environment(threads_per_worker(2, cores=8))
    assert env is not None
    assert (env["OPENBLAS_NUM_THREADS"], env["OMP_NUM_THREADS"], env["MKL_NUM_THREADS"]) == ("4", "4", "7")
    assert blas_environment(None) is None
    assert threads_per_worker(AUTO, cores=8) == 1 and threads_per_worker(3, threads=5, cores=8) == 5


def _record_zygotes(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every zygote started from now on (real ones), in order."""
    from cnnbench.execution import isolation

    started: list[Any] = []
    real = isolation._Zygote

    class Recorded(real):  # type: ignore[misc,valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            started.append(self)

    monkeypatch.setattr(isolation, "_Zygote", Recorded)
    return started


def test_refused_case_files_stop_the_zygote_started_ahead(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The zygote starts before the case files are loaded; when they are refused it is killed, not left."""
    from cnnbench.errors import CnnbenchError
    from cnnbench.execution.session import RunOptions, RunSession

    started = _record_zygotes(monkeypatch)
    bad = tmp_path / "bad.yaml"
    bad.write_text("cases:\n  - id: x\n    op: no_such_op\n", encoding="utf-8")
    with pytest.raises(CnnbenchError):
        RunSession(RunOptions(paths=(str(bad),), workers=2), None)
    assert len(started) == 1
    assert started[0].proc.wait(timeout=30) is not None


def test_a_pool_run_equals_a_serial_run_end_to_end_under_an_fp32_pin(
    write_case: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`cnnbench run --workers 2` against the same run serially, both under --fp32-precision tf32 and one thread:
    the workers run the variants the parent handed their zygote, pinned as the parent is (they used to compute
    in ieee: the zygote starts before the parent pins its flags), with the same statuses, digests and
    compute precision."""
    from cnnbench.cli import main

    monkeypatch.chdir(tmp_path)
    path = write_case(MIXED)
    common = ["run", str(path), "--fp32-precision", "tf32", "--threads", "1"]
    assert main([*common, "--reports", "serial"]) == 1  # MIXED has a failing and an erroring case
    assert main([*common, "--reports", "pool", "--workers", "2"]) == 1
    serial, pool = (RunStore(tmp_path / name).load(None) for name in ("serial", "pool"))

    def columns(run: Any) -> dict[str, tuple[Any, ...]]:
        return {r.variant_id: (r.status, r.output_digest, r.compute_precision) for r in run.results}

    assert columns(pool) == columns(serial)
    assert {r.compute_precision for r in pool.results if r.variant_id == "conv[cpu-float32]"} == {"tf32"}


@pytest.mark.parametrize(
    ("extra", "code"), [([], 2), (["--shard", "5/2"], 2), (["-k", "x and"], 2), (["-k", "nothing"], 5)]
)
def test_the_cli_starts_the_zygote_first_and_stops_it_on_refused_input(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, extra: list[str], code: int
) -> None:
    """`cnnbench run --workers` starts its zygote before loading anything; a refused case file or option (exit 2)
    or a selection of nothing (exit 5) leaves no zygote behind."""
    from cnnbench.cli import main

    started = _record_zygotes(monkeypatch)
    bad = tmp_path / "bad.yaml"
    good = "cases:\n  - id: x\n    op: relu\n    inputs: {input: [[1.0]]}\n    expect: {output: [[1.0]]}\n"
    bad.write_text(good if extra else "cases:\n  - id: x\n    op: no_such_op\n", encoding="utf-8")
    assert main(["run", str(bad), "--workers", "2", "--no-save", *extra]) == code
    assert len(started) == 1
    assert started[0].proc.wait(timeout=30) is not None


_TORCH_FREE_PARENT = """
import json, sys
from cnnbench.cli import main
code = main(sys.argv[1:])
print(json.dumps({"code": code, "torch": "torch" in sys.modules}))
"""


def test_a_pools_parent_never_imports_torch(write_case: Callable[..., Path], tmp_path: Path) -> None:
    """--workers: the parent loads, schedules, stores and reports without torch (0.7 GiB and 1.5 s it would
    cost); a worker forked for it answers which devices this machine has and fingerprints the environment as
    the workers run (their thread count, the run's precision pin). Rows of missing devices (cuda:7 is missing
    on any machine this runs on) are the skipped rows a worker would write."""
    path = write_case(MIXED.replace("devices: [cpu]", 'devices: [cpu, "cuda:7"]'))
    args = [
        "run",
        str(path),
        "--workers",
        "2",
        "--threads",
        "1",
        "--fp32-precision",
        "tf32",
        "--reports",
        "r",
    ]
    proc = subprocess.run(
        [sys.executable, "-c", _TORCH_FREE_PARENT, *args], cwd=tmp_path, capture_output=True, text=True,
        timeout=300, check=False,
    )  # fmt: skip
    assert proc.stdout.strip(), proc.stderr
    outcome = json.loads(proc.stdout.strip().splitlines()[-1])
    assert outcome == {"code": 1, "torch": False}, proc.stderr  # MIXED has a failing and an erroring case
    run = RunStore(tmp_path / "r").load(None)
    env = run.meta["environment"]
    assert env["torch_version"] == torch.__version__ and env["num_threads"] == 1
    assert env["mkldnn_conv_fp32_precision"] == env["cudnn_conv_fp32_precision"] == "tf32"  # the run's pin
    assert env["argv"] == ["-c", *args] and "cpu" in env["devices"]  # the command's, not the worker's
    missing = [r for r in run.results if r.device == "cuda:7"]
    assert missing and all(r.status == "skipped" for r in missing)
    assert {r.reason for r in missing} >= {"device cuda:7 is not available"}
    assert all("worker" not in r.metrics for r in missing)  # written by the parent, no round trip


def test_a_pool_refuses_a_missing_device_by_its_workers_answer(
    write_case: Callable[..., Path], tmp_path: Path
) -> None:
    path = write_case(MIXED)
    proc = _cli("run", str(path), "--workers", "1", "--device", "cuda:7", "--no-save", cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "--device cuda:7: not available on this machine (devices present: cpu" in proc.stderr


def test_the_machine_probe_asks_one_worker_and_lets_it_go(monkeypatch: pytest.MonkeyPatch) -> None:
    from cnnbench.execution.isolation import _Zygote
    from cnnbench.execution.pool import MachineProbe

    zygote = _Zygote()
    try:
        probe = MachineProbe(zygote)
        probe.devices(["cpu", "cuda:7"])
        assert probe.available == {"cpu": True, "cuda:7": False}
        assert probe.present[0] == "cpu" and probe.gpus >= 0
        assert probe.is_available("meta") is True  # not asked before: asked now
        env = probe.environment(1)
        assert env["num_threads"] == 1 and env["torch_version"] == torch.__version__
        worker = probe._worker
        assert worker is not None
        probe.close()
        assert probe._worker is None and worker.sock.fileno() == -1
    finally:
        zygote.close()
