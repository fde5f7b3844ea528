"""The GPU check (tools/gpu-check runs this after setting up): the numerics suite on one device in every float
dtype, float32 under both IEEE and TF32, the match: cpu cross-checks, and the GPU benchmark set; stored runs
and their markdown and HTML reports go to OUT_DIR; the last line printed is ``N passed, N failed``.

Run: ``python tools/gpu_check.py OUT_DIR [--device cuda|cpu] [--limit-s 480]``. Unattended: every phase has
its time (what is left, less a reserve for the phases after it: a phase that overruns is killed, its finished
rows kept, and counted as one failure), nothing asks. With
``--device cpu`` it runs the same phases on the CPU with gpu/bench_cpu.yaml, so it works end to end anywhere.
Exit 0 when nothing failed, 1 otherwise, 2 on bad arguments.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
#: Dense fp16/bf16 tensor-core peaks (FLOP/s, no sparsity) of the GPUs the note reports against.
DENSE_HALF_PEAK = {"H200": 989e12, "H100": 989e12, "A100": 312e12, "L40S": 362e12, "A10": 125e12}
#: Each phase's expected share of the limit; a phase may use what is left less RESERVE of the later phases'
#: shares, so time an early phase does not need goes to the later ones and a slow one can borrow.
SHARES = {"numerics": 0.35, "float32-ieee": 0.15, "float32-tf32": 0.15, "bench": 0.30}
RESERVE = 0.6
#: Seconds kept back for the reports and the summary after the last phase.
TAIL_S = 15.0
FAILING = ("failed", "error")


@dataclass
class Phase:
    name: str
    args: list[str]
    rc: int | None = None
    seconds: float = 0.0
    timed_out: bool = False
    run_dir: Path | None = None
    counts: Counter[str] = field(default_factory=Counter)


def _cnnbench(*args: str, timeout: float | None = None) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "cnnbench", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)


def _phases(device: str, store: Path, cases: str, bench: str) -> list[Phase]:
    # On an accelerator each variant runs in a worker: a GPU error that poisons the context costs one row.
    common = ["--reports", str(store), "--device", device, *(["--isolate"] if device != "cpu" else [])]
    # On the CPU torch's default float32 is IEEE (the next phase): the first phase runs the other dtypes only.
    others = (
        [] if device != "cpu" else [a for d in ("float64", "float16", "bfloat16") for a in ("--dtype", d)]
    )
    return [
        # Every case file in every dtype it lists, with torch's default flags (TF32 convolutions on CUDA).
        Phase("numerics", ["run", cases, "--kind", "check", *others, *common]),
        Phase("float32-ieee", ["run", cases, "--kind", "check", "--dtype", "float32", "--fp32-precision",
                               "ieee", *common]),
        Phase("float32-tf32", ["run", cases, "--kind", "check", "--dtype", "float32", "--fp32-precision",
                               "tf32", *common]),
        Phase("bench", ["run", bench, "--kind", "bench", *common]),
    ]  # fmt: skip


def _latest_run(store: Path, before: set[Path]) -> Path | None:
    runs = store / "runs"
    new = sorted(set(runs.iterdir()) - before) if runs.is_dir() else []
    return new[-1] if new else None


def _rows(run_dir: Path) -> list[dict[str, Any]]:
    path = run_dir / "results.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _text(data: str | bytes | None) -> str:
    return data.decode(errors="replace") if isinstance(data, bytes) else data or ""


def _run_phase(phase: Phase, store: Path, budget_s: float, out: Path) -> None:
    runs = store / "runs"
    before = set(runs.iterdir()) if runs.is_dir() else set()
    started = time.perf_counter()
    try:
        proc = _cnnbench(*phase.args, timeout=max(budget_s, 10.0))
        phase.rc = proc.returncode
        log = proc.stdout + proc.stderr
    except subprocess.TimeoutExpired as exc:
        phase.timed_out = True
        log = f"timed out after {budget_s:.0f} s\n{_text(exc.stdout)}{_text(exc.stderr)}"
    phase.seconds = time.perf_counter() - started
    (out / f"{phase.name}.log").write_text(log)
    phase.run_dir = _latest_run(store, before)
    if phase.run_dir is not None:
        phase.counts = Counter(row["status"] for row in _rows(phase.run_dir))
        for fmt, ext in (("markdown", "md"), ("html", "html")):
            _cnnbench("report", phase.run_dir.name, "--format", fmt, "--reports", str(store), "-o",
                      str(out / f"{phase.name}.{ext}"))  # fmt: skip
    print(f"  {phase.name}: {_describe(phase)} in {phase.seconds:.0f} s", flush=True)


def _describe(phase: Phase) -> str:
    counts = ", ".join(f"{n} {status}" for status, n in sorted(phase.counts.items())) or "no rows"
    if phase.timed_out:
        counts += " (TIMED OUT: counted as one failure)"
    elif phase.rc not in (0, 1):
        counts += f" (exit {phase.rc}: counted as one failure; see {phase.name}.log)"
    return counts


def _per_dtype(phases: list[Phase]) -> list[str]:
    lines = [
        "| phase | dtype | compute precision | passed | failed | xfail | skipped |",
        "|---|---|---|---:|---:|---:|---:|",
    ]
    for phase in phases:
        if phase.run_dir is None or phase.name == "bench":
            continue
        table: dict[tuple[str, str], Counter[str]] = {}
        for row in _rows(phase.run_dir):
            key = (row["dtype"], row.get("compute_precision") or "-")
            table.setdefault(key, Counter())[row["status"]] += 1
        for (dtype, precision), c in sorted(table.items()):
            failed = sum(c[s] for s in FAILING)
            lines.append(f"| {phase.name} | {dtype} | {precision} | {c['passed']} | {failed} | {c['xfail']} | "
                         f"{c['skipped']} |")  # fmt: skip
    return lines


def _tf32_tolerances(phases: list[Phase]) -> list[str]:
    """The TF32 variants' tolerances next to their errors: what TF32 needed."""
    lines = []
    for phase in phases:
        if phase.run_dir is None:
            continue
        for row in _rows(phase.run_dir):
            if (
                row.get("compute_precision") == "tf32"
                and row.get("atol") is not None
                and row["status"] != "skipped"
            ):
                lines.append(f"| {row['variant_id']} | {row['status']} | {row.get('max_abs_err')} | {row['atol']:.3g} | "
                             f"{row['rtol']:.3g} |")  # fmt: skip
    head = ["| TF32 variant | status | max abs err | atol | rtol |", "|---|---|---:|---:|---:|"]
    return head + lines[:60] if lines else []


def _throughput(phases: list[Phase], gpu_name: str) -> list[str]:
    bench = next((p for p in phases if p.name == "bench" and p.run_dir is not None), None)
    if bench is None or bench.run_dir is None:
        return []
    peak = next((v for k, v in DENSE_HALF_PEAK.items() if k in gpu_name), None)
    lines = ["| row | status | images/s | TFLOP/s | of dense half peak |", "|---|---|---:|---:|---:|"]
    for row in _rows(bench.run_dir):
        m = row.get("metrics") or {}
        ips, gflops = m.get("samples_per_s"), m.get("gflops")
        share = f"{100 * gflops * 1e9 / peak:.1f} %" if peak and gflops and row["dtype"] != "float32" else "-"
        shown_ips = f"{ips:.4g}" if isinstance(ips, int | float) else "-"
        shown_tf = f"{gflops / 1e3:.3g}" if isinstance(gflops, int | float) else "-"
        lines.append(f"| {row['variant_id']} | {row['status']} | {shown_ips} | {shown_tf} | {share} |")
    return lines


def _gpu_name(device: str) -> str:
    if device == "cpu":
        return "cpu"
    probe = "import torch; print(torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'none')"
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=False)
    return proc.stdout.strip() or "none"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", metavar="OUT_DIR", help="where the stored runs, reports and summary.md go")
    parser.add_argument("--device", default="cuda", help="cuda (default), cuda:N, accelerator, or cpu")
    parser.add_argument("--limit-s", type=float, default=480.0, help="the whole check's time limit (8 min)")
    parser.add_argument("--cases", default="cases/", help="the numerics suite (default cases/)")
    parser.add_argument(
        "--bench", help="the benchmark set (default gpu/bench.yaml, gpu/bench_cpu.yaml on cpu)"
    )
    args = parser.parse_args(argv)
    bench = args.bench or ("gpu/bench_cpu.yaml" if args.device == "cpu" else "gpu/bench.yaml")
    started = time.perf_counter()
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    store = out / "store"
    name = _gpu_name(args.device)
    if args.device != "cpu" and name == "none":
        print(
            f"error: --device {args.device}: torch sees no CUDA device here; run with --device cpu",
            file=sys.stderr,
        )
        return 2
    print(f"gpu-check on {args.device} ({name}), limit {args.limit_s:.0f} s, into {out}", flush=True)
    phases = _phases(args.device, store, args.cases, bench)
    for i, phase in enumerate(phases):
        left = args.limit_s - TAIL_S - (time.perf_counter() - started)
        reserve = RESERVE * args.limit_s * sum(SHARES[p.name] for p in phases[i + 1 :])
        _run_phase(phase, store, left - reserve, out)
    passed = sum(p.counts["passed"] for p in phases)
    failed = sum(sum(p.counts[s] for s in FAILING) for p in phases)
    failed += sum(1 for p in phases if p.timed_out or p.rc not in (0, 1))
    elapsed = time.perf_counter() - started
    summary = [
        f"# gpu-check on {args.device} ({name})",
        "",
        f"{passed} passed, {failed} failed in {elapsed:.0f} s (limit {args.limit_s:.0f} s)",
        "",
        *(f"- {p.name}: {_describe(p)} in {p.seconds:.0f} s" for p in phases),
        "",
        "## Numerics per dtype",
        "",
        *_per_dtype(phases),
        "",
        "## TF32 tolerances",
        "",
        *_tf32_tolerances(phases),
        "",
        "## Benchmarks",
        "",
        *_throughput(phases, name),
        "",
    ]
    (out / "summary.md").write_text("\n".join(summary))
    xfail = sum(p.counts["xfail"] for p in phases)
    skipped = sum(p.counts["skipped"] for p in phases)
    print(f"({xfail} xfail, {skipped} skipped; {elapsed:.0f} s; summary: {out / 'summary.md'})")
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
