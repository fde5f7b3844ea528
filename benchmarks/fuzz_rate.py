"""Fuzz rate: configurations `cnnbench fuzz` checks per second, for conv2d and max_pool2d in float32 on the CPU.

Usage: python benchmarks/fuzz_rate.py [--budget SECONDS] [--targets conv2d max_pool2d] [--seed S] [--json PATH]

Each target is fuzzed on unbroken torch for --budget seconds (default 20) exactly as `cnnbench fuzz TARGET
--budget ...` does (hypothesis generation, the case built and validated, the numerics runner with the float64
reference and the arithmetic shape check, the row stored). Reported per target: configurations checked per
wall-clock second of fuzzing (target >= 200/s), and per CPU second of the fuzzing process (which tells a busy
shared machine from a slow fuzzer), with the load average seen.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

try:
    from cnnbench.fuzz.engine import FuzzOptions, fuzz
except ImportError:  # a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from cnnbench.fuzz.engine import FuzzOptions, fuzz

from cnnbench.casefile.budget import resolve_budget
from cnnbench.store.run import RunStore

TARGET_RATE = 200.0


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measure(target: str, budget_s: float, seed: int) -> dict[str, Any]:
    """Fuzz one target for budget_s; the rate over the fuzzing itself (start-up excluded)."""
    with tempfile.TemporaryDirectory() as tmp:
        options = FuzzOptions(
            targets=(target,),
            budget_s=budget_s,
            examples=None,
            device="cpu",
            dtypes=("float32",),
            seed=seed,
            out_dir=Path(tmp) / "found",
            max_case_bytes=resolve_budget(None),
        )
        cpu_before, load_before = _children_cpu_s(), os.getloadavg()[0]
        started = time.perf_counter()
        outcome = fuzz(options, RunStore(Path(tmp) / "reports"))
        wall = time.perf_counter() - started
        cpu = _children_cpu_s() - cpu_before
        found = [str(f.path.name) for f in outcome.found]
    checked = outcome.checked[target]
    return {
        "target": target,
        "checked": checked,
        "budget_s": budget_s,
        "wall_s": round(wall, 2),
        "per_s": round(checked / budget_s, 1),
        "per_cpu_s": round(checked / cpu, 1) if cpu > 0 else None,
        "load_average": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "found": found,
        "meets_target": checked / budget_s >= TARGET_RATE,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--budget", type=float, default=20.0, help="seconds of fuzzing per target (default 20)"
    )
    parser.add_argument("--targets", nargs="+", default=["conv2d", "max_pool2d"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    rows = [measure(t, args.budget, args.seed) for t in args.targets]
    print(
        f"{'target':<12} {'checked':>8} {'per s':>8} {'per CPU s':>10}  load avg  (target >= {TARGET_RATE:.0f}/s)"
    )
    for r in rows:
        load = "->".join(f"{v:.1f}" for v in r["load_average"])
        print(f"{r['target']:<12} {r['checked']:>8} {r['per_s']:>8} {r['per_cpu_s']!s:>10}  {load}")
        if r["found"]:
            print(f"  found on unbroken torch: {', '.join(r['found'])}")
    print(f"cores: {os.cpu_count()}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    return 0 if all(r["meets_target"] for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
