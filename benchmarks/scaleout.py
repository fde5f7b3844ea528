"""Scale-out figures of issue 9: ``--workers`` against serial, and each step of a large sweep, per 10^5 variants.

Usage: python benchmarks/scaleout.py [--sizes 10000 100000] [--million] [--workers 2] [--skip-speedup]
                                     [--skip-sweep] [--resume-48k] [--json PATH] [--keep DIR]

1. Speed-up: ``cnnbench run cases/ --kind check`` serially and with ``--workers N``, side by side (serial, pool,
   serial, pool), wall-clock seconds each. Target: >= 1.5x on 2 cores, never slower.
2. A generated sweep of n small variants (conv2d and max_pool2d against ``reference: numpy``, float32 and
   float64) for each size: load (expand + select), run with --workers, run again and SIGKILL it half-way then
   ``--resume`` it, resume the complete run (its bookkeeping alone: meta, row count, case-file hash; then the
   whole command with its report), merge the run split into 4 shards, compare two runs, render markdown. Each
   step is its own process: wall seconds, seconds per 10^5 variants, the peak RSS of the step's process, and the
   peak total PSS of it and every process it started (a pool's zygote and workers share their pages
   copy-on-write: PSS counts each page once over them, RSS once per process). Targets: linear; RSS at 10^6 <
   2 GiB; resume of a complete 10^6 run < 10 s of bookkeeping. 10^6 only with --million (about half an hour on
   2 cores).
3. --resume-48k: a 48,000-variant run whose last line was torn; the resume bookkeeping (load the stored run,
   find what is left) timed in-process apart from loading the case files. Target: < 1 s.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

_HERE = Path(__file__).resolve().parent
_REPO = _HERE.parent
#: Peak RSS of the step's own process: VmHWM (ru_maxrss would carry the benchmark's own peak over the exec).
_PEAK = "int(next(l for l in open('/proc/self/status') if l.startswith('VmHWM')).split()[1]) * 1024"
_STEP = f"""
import json, sys, time
sys.argv = ["cnnbench", *json.loads(sys.argv[1])]
t = time.perf_counter()
from cnnbench.cli import main
code = main(sys.argv[1:])
print(json.dumps({{"rc": code, "s": time.perf_counter() - t, "rss": {_PEAK}}}), file=sys.stderr)
"""
_LOAD = f"""
import json, sys, time
t = time.perf_counter()
from cnnbench.execution.session import load_variants
variants, _ = load_variants([sys.argv[1]])
print(json.dumps({{"rc": 0, "s": time.perf_counter() - t, "n": len(variants), "rss": {_PEAK}}}), file=sys.stderr)
"""


#: What `cnnbench run --resume` of a complete run does before it reports it: read the meta, count the stored rows,
#: hash the case files (the bookkeeping figure; the report that follows is the "resume complete run" step's).
_BOOKKEEPING = f"""
import json, sys, time
t = time.perf_counter()
from cnnbench.execution.resume import load_resume
done = load_resume(sys.argv[1], sys.argv[2], rows=False).finished()
print(json.dumps({{"rc": 0 if done else 1, "s": time.perf_counter() - t, "rss": {_PEAK}}}), file=sys.stderr)
"""


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(_REPO), env.get("PYTHONPATH", "")])
    return env


def _tree(root: int) -> list[int]:
    """root and every process descended from it (a pool's zygote and workers)."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            parents[int(entry)] = int(stat[stat.rfind(")") + 2 :].split()[1])
    found, frontier = [root], [root]
    while frontier:
        frontier = [pid for pid, ppid in parents.items() if ppid in frontier]
        found += frontier
    return found


def _pss_kib(pid: int) -> int:
    """A process's proportional set size: its private pages plus its share of those it shares (a forked
    worker's copy-on-write pages count once over the tree, not once per worker as RSS counts them)."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _step(name: str, code: str, *args: str, cwd: Path) -> dict[str, Any]:
    """Run one step in its own process; its wall seconds, its own peak RSS, and the peak total PSS of it and
    every process it started (sampled every 0.2 s)."""
    with tempfile.TemporaryFile("w+", encoding="utf-8") as err:  # a pipe could fill and stall the step
        proc = subprocess.Popen(
            [sys.executable, "-c", code, *args], cwd=cwd, stdout=subprocess.DEVNULL, stderr=err, env=_env()
        )
        peak_pss = 0
        while proc.poll() is None:
            peak_pss = max(peak_pss, sum(_pss_kib(pid) for pid in _tree(proc.pid)))
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=0.2)
        err.seek(0)
        stderr = err.read()
    last = [line for line in stderr.splitlines() if line.startswith("{")]
    if not last:
        raise SystemExit(f"step {name} failed (rc {proc.returncode}):\n{stderr[-3000:]}")
    figures: dict[str, Any] = json.loads(last[-1])
    figures["step"] = name
    figures["tree_pss"] = peak_pss * 1024
    return figures


def _cli(name: str, *args: str, cwd: Path) -> dict[str, Any]:
    return _step(name, _STEP, json.dumps(list(args)), cwd=cwd)


def write_sweep(folder: Path, n: int) -> Path:
    """Case files with n variants: conv2d and max_pool2d cases sweeping the case's seed and the input's own seed
    (two axes: 40 x 25 values name 1,000 combinations in 65 YAML nodes, where one axis of 1,000 seeds would need
    1,000, and a million variants' file would pass the loader's 500,000-node limit), in 2 dtypes."""
    folder.mkdir(parents=True, exist_ok=True)
    per_case = 1000 if n >= 10_000 else 10
    cases = n // (2 * per_case)
    outer = min(per_case, 40)
    seeds = f"seed: [{', '.join(str(s) for s in range(outer))}]"
    if per_case > outer:
        seeds += f", inputs.input.seed: [{', '.join(str(100 + s) for s in range(per_case // outer))}]"
    lines = ["defaults: {devices: [cpu], dtypes: [float32, float64]}", "cases:"]
    for i in range(cases):
        if i % 2 == 0:
            lines += [
                f"  - id: conv{i}",
                "    op: conv2d",
                "    inputs: {input: {randn: [1, 2, 5, 5]}, weight: {randn: [2, 2, 3, 3], seed: 7}}",
            ]
        else:
            lines += [
                f"  - id: pool{i}",
                "    op: max_pool2d",
                "    args: {kernel_size: 2}",
                "    inputs: {input: {randn: [1, 2, 6, 6]}}",
            ]
        lines += [
            f"    max_cases: {per_case}",
            f"    sweep: {{{seeds}}}",
            "    expect: {reference: numpy}",
        ]
    path = folder / "sweep.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _kill_half_way(args: list[str], reports: Path, full_bytes: int, cwd: Path) -> float:
    """Start a run, SIGKILL it (and its workers) once half its rows are stored (its results.jsonl half the size
    of the same run's complete one: counting a million rows' lines five times a second would load the machine);
    return its seconds."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "cnnbench", *args],
        cwd=cwd,
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    while proc.poll() is None:
        time.sleep(0.2)
        found = list((cwd / reports).glob("runs/*/results.jsonl"))
        if found and found[0].stat().st_size >= full_bytes // 2:
            os.killpg(proc.pid, signal.SIGKILL)
            break
    proc.wait()
    return time.perf_counter() - start


def _count_lines(path: Path) -> int:
    with open(path, "rb") as f:
        return sum(1 for _ in f)


def _only_run(reports: Path) -> Path:
    return reports / "runs" / (reports / "latest").read_text().strip()


def _split_into_shards(run_dir: Path, out: Path, count: int) -> list[Path]:
    """The stored run rewritten as count shard runs (as `--shard K/count` would have stored them)."""
    from cnnbench.execution.shard import shard_of

    meta = json.loads((run_dir / "meta.json").read_text())
    for k in range(1, count + 1):
        (out / f"s{k}").mkdir(parents=True)
    files = [open(out / f"s{k}" / "results.jsonl", "w") for k in range(1, count + 1)]  # noqa: SIM115
    with open(run_dir / "results.jsonl") as rows:
        for line in rows:
            vid = json.loads(line)["variant_id"]
            files[shard_of(vid, count) - 1].write(line)
    for k, f in enumerate(files, start=1):
        f.close()
        (out / f"s{k}" / "meta.json").write_text(
            json.dumps({**meta, "shard": f"{k}/{count}", "run_id": f"s{k}"})
        )
    return [out / f"s{k}" for k in range(1, count + 1)]


def sweep_figures(n: int, workers: int, scratch: Path) -> list[dict[str, Any]]:
    """Every step of issue 9's large-sweep target at size n."""
    work = scratch / f"n{n}"
    if work.exists():
        shutil.rmtree(work)
    cases = write_sweep(work / "cases", n)
    w = str(workers)
    out = [_step("load", _LOAD, str(cases), cwd=work)]
    assert out[0]["n"] == n, out[0]
    out.append(_cli("run", "run", str(cases), "--workers", w, "--reports", "a", cwd=work))
    run_a = _only_run(work / "a")
    full_bytes = (run_a / "results.jsonl").stat().st_size
    killed_s = _kill_half_way(
        ["run", str(cases), "--workers", w, "--reports", "b"], Path("b"), full_bytes, cwd=work
    )
    run_b = _only_run(work / "b")
    stored = _count_lines(run_b / "results.jsonl")
    resumed = _cli("resume after SIGKILL", "run", "--resume", str(run_b), "--reports", "b", cwd=work)
    resumed.update(killed_after_s=round(killed_s, 2), rows_before=stored)
    out.append(resumed)
    out.append(_step("resume bookkeeping, complete run", _BOOKKEEPING, str(run_a), "a", cwd=work))
    out.append(_cli("resume complete run", "run", "--resume", str(run_a), "--reports", "a", cwd=work))
    shards = _split_into_shards(run_a, work / "shards", 4)
    out.append(_cli("merge 4 shards", "merge", *map(str, shards), "-o", str(work / "merged"), cwd=work))
    out.append(_cli("compare", "compare", str(run_a), str(run_b), "-o", str(work / "cmp.txt"), cwd=work))
    out.append(
        _cli(
            "report markdown",
            "report",
            str(run_a),
            "--format",
            "markdown",
            "-o",
            str(work / "r.md"),
            cwd=work,
        )
    )
    for figure in out:
        figure["n"] = n
        figure["s_per_1e5"] = figure["s"] * 1e5 / n
    rows_a, rows_b = _count_lines(run_a / "results.jsonl"), _count_lines(run_b / "results.jsonl")
    assert rows_a == n and rows_b == n, (rows_a, rows_b)
    return out


def speedup(workers: int, rounds: int) -> dict[str, Any]:
    """Serial and pooled `cnnbench run cases/ --kind check`, alternated; wall seconds of each."""
    serial, pooled = [], []
    for _ in range(rounds):
        for seconds, extra in ((serial, []), (pooled, ["--workers", str(workers)])):
            start = time.perf_counter()
            subprocess.run(
                [sys.executable, "-m", "cnnbench", "run", "cases/", "--kind", "check", "--no-save", *extra],
                cwd=_REPO,
                env=_env(),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                check=False,
            )
            seconds.append(time.perf_counter() - start)
    return {
        "serial_s": serial,
        "workers_s": pooled,
        "workers": workers,
        "serial_median_s": statistics.median(serial),
        "workers_median_s": statistics.median(pooled),
        "speedup_of_medians": statistics.median(serial) / statistics.median(pooled),
        "slowest_pool_vs_fastest_serial": min(serial) / max(pooled),
    }


def resume_48k(scratch: Path) -> dict[str, Any]:
    """Resume of a 48,000-variant run whose last line was torn: bookkeeping seconds, in-process."""
    from cnnbench.casefile.load import case_files_hash
    from cnnbench.execution.resume import load_resume
    from cnnbench.execution.session import RunOptions, RunSession
    from cnnbench.store.result import Result
    from cnnbench.store.run import RunStore

    work = scratch / "r48k"
    if work.exists():
        shutil.rmtree(work)
    cases = write_sweep(work / "cases", 48_000)
    options = RunOptions(paths=(str(cases),))
    session = RunSession(options, None)
    writer = RunStore(work / "reports").create(
        {**options.meta(), "case_files_hash": case_files_hash([str(cases)])}
    )
    for v in session.variants:
        writer.append(
            Result(v.id, v.case.id, v.case.file, v.case.line, "conv2d", v.device, v.dtype, "passed")
        )
    writer.close(complete=False)
    results = writer.path / "results.jsonl"
    data = results.read_bytes()
    results.write_bytes(data[: len(data) - 40])  # the last row torn, as by a kill mid-write
    start = time.perf_counter()
    resume = load_resume(str(writer.path), work / "reports")
    loaded = time.perf_counter()
    resumed = RunSession(RunOptions.restore(resume), RunStore(work / "reports"), resume=resume)
    selected = time.perf_counter()
    meta = resumed._meta()  # imports torch and fingerprints the environment: not resume bookkeeping
    found = time.perf_counter()
    _, earlier, todo = resumed._open(meta)
    done = time.perf_counter()
    resumed_writer = RunStore.reopen(resume.run)
    resumed_writer.close(complete=False)
    return {
        "variants": len(session.variants),
        "rows_stored": len(earlier),
        "todo": len(todo),
        "load_stored_run_s": loaded - start,
        "load_case_files_s": selected - loaded,
        "environment_s": found - selected,
        "find_todo_s": done - found,
        "bookkeeping_s": (loaded - start) + (done - found),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="*", default=[10_000, 100_000])
    parser.add_argument("--million", action="store_true", help="also 10^6 variants (hours on 2 cores)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2, help="serial/pool pairs for the speed-up")
    parser.add_argument("--skip-speedup", action="store_true")
    parser.add_argument("--skip-sweep", action="store_true")
    parser.add_argument("--resume-48k", action="store_true")
    parser.add_argument("--json", help="write the figures here")
    parser.add_argument("--keep", help="scratch folder to keep (default: a temporary one, removed)")
    args = parser.parse_args(argv)
    scratch = Path(args.keep or tempfile.mkdtemp(prefix="cnnbench-scaleout-"))
    figures: dict[str, Any] = {"cores": len(os.sched_getaffinity(0))}
    try:
        if not args.skip_speedup:
            figures["speedup"] = speedup(args.workers, args.rounds)
            print(json.dumps(figures["speedup"]), flush=True)
        if args.resume_48k:
            figures["resume_48k"] = resume_48k(scratch)
            print(json.dumps(figures["resume_48k"]), flush=True)
        if not args.skip_sweep:
            sizes = [*args.sizes, *([1_000_000] if args.million else [])]
            figures["sweep"] = []
            for n in sizes:
                for figure in sweep_figures(n, args.workers, scratch):
                    figures["sweep"].append(figure)
                    print(
                        f"n={n:>8} {figure['step']:<22} {figure['s']:8.2f} s  {figure['s_per_1e5']:8.2f} s/1e5"
                        f"  rss {figure['rss'] / 2**20:7.1f} MiB  tree pss {figure['tree_pss'] / 2**20:7.1f} MiB"
                        f"  rc {figure['rc']}",
                        flush=True,
                    )
    finally:
        if not args.keep:
            shutil.rmtree(scratch, ignore_errors=True)
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
