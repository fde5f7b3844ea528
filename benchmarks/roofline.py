"""The judged figures of the roofline (issue 10): how long probing the ceilings takes, and how stable a row's
% of bound is once they are cached.

Usage: python benchmarks/roofline.py [--json PATH] [--runs N] [--max-time-per-case S] [-k EXPR] [--threads N]

1. Probe time: a fresh machine folder, the full probe plan, the CPU's bandwidth ceiling and the compute ceilings
   of float32, float64, bfloat16 and float16 (with the GEMM shapes of ``cases/bench/layers.yaml``, as
   ``cnnbench run cases/bench`` probes them). Target: <= 15 s. Then the same again from the stored file: the
   probe must be skipped (target: under 0.5 s, no probe at all).
2. Stability: ``cnnbench run cases/bench/layers.yaml -k resnet50`` N times (default 3) against one reports
   folder (the ceilings probed by the first run, cached for the others). Per row, the spread (max - min) of its
   % of bound over the runs. Targets: every spread <= 5 points and no % above 100.

The machine the figures are measured on should be quiet; the script says how loaded it was (/proc/loadavg).
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

_HERE = Path(__file__).resolve().parent
_REPO = _HERE.parent
if importlib.util.find_spec("cnnbench") is None:  # a checkout without `pip install -e .`
    sys.path.insert(0, str(_REPO))

from cnnbench.bench.ceilings import FULL, CeilingBook, effective, prepare  # noqa: E402
from cnnbench.casefile.load import load_file  # noqa: E402
from cnnbench.casefile.variants import expand_benchmarks  # noqa: E402

_DTYPES = ("float32", "float64", "bfloat16", "float16")
_PROBE_TARGET_S = 15.0
_CACHED_TARGET_S = 0.5
_SPREAD_TARGET = 5.0


def _load() -> str:
    try:
        return Path("/proc/loadavg").read_text().split()[0]
    except OSError:
        return "?"


def probe_time(threads: int | None) -> dict[str, Any]:
    """Seconds to probe every ceiling from nothing, then to get them again from the machine file."""
    import torch

    if threads:
        torch.set_num_threads(threads)
    layers = load_file(str(_REPO / "cases" / "bench" / "layers.yaml")).benchmarks
    variants = [
        dataclasses.replace(v, dtype=dtype)
        for v in expand_benchmarks(layers)
        if v.device == "cpu"
        for dtype in _DTYPES
    ]
    with tempfile.TemporaryDirectory(prefix="cnnbench-machines-") as folder:
        book = CeilingBook(folder, plan=FULL, say=lambda msg: print(f"  {msg}", flush=True))
        started = time.perf_counter()
        prepare(book, variants)
        probe_s = time.perf_counter() - started
        book.save()
        ceilings = {
            k: {
                "ceiling": effective(v),
                "probe_s": v.get("probe_s"),
                "how": v.get("how"),
                "theoretical": v.get("theoretical"),
                "theoretical_how": v.get("theoretical_how"),
                "shapes": v.get("shapes"),
                "error": v.get("error"),
            }
            for k, v in book.used.items()
        }
        probes: list[str] = []
        again = CeilingBook(folder, plan=FULL, say=probes.append)
        started = time.perf_counter()
        prepare(again, variants)
        cached_s = time.perf_counter() - started
    return {"probe_s": probe_s, "cached_s": cached_s, "cached_probes": probes, "ceilings": ceilings}


def stability(runs: int, max_time: float | None, keyword: str, threads: int | None) -> dict[str, Any]:
    """% of bound of each row over runs against one reports folder."""
    from cnnbench.store.run import RunStore

    rows: dict[str, list[float | None]] = {}
    bounds: dict[str, str | None] = {}
    with tempfile.TemporaryDirectory(prefix="cnnbench-reports-") as reports:
        env = {k: v for k, v in os.environ.items() if k not in ("CNNBENCH_MACHINES", "CNNBENCH_PROBE")}
        for i in range(runs):
            args = [
                sys.executable,
                "-m",
                "cnnbench",
                "run",
                str(_REPO / "cases" / "bench" / "layers.yaml"),
                "--reports",
                reports,
                "-k",
                keyword,
                "--device",
                "cpu",
            ]
            args += ["--max-time-per-case", str(max_time)] if max_time else []
            args += ["--threads", str(threads)] if threads else []
            started = time.perf_counter()
            subprocess.run(args, env=env, check=False, capture_output=True, text=True, cwd=_REPO)
            print(f"  run {i + 1}/{runs}: {time.perf_counter() - started:.1f} s, load {_load()}", flush=True)
            for r in RunStore(reports).load(None).results:
                if r.kind == "bench" and r.status != "skipped":
                    rows.setdefault(r.variant_id, []).append(r.metrics.get("pct_of_bound"))
                    bounds[r.variant_id] = r.metrics.get("bound")
    table = {}
    for vid, pcts in rows.items():
        known = [p for p in pcts if isinstance(p, int | float)]
        table[vid] = {
            "pct_of_bound": pcts,
            "bound": bounds[vid],
            "spread": max(known) - min(known) if len(known) == len(pcts) and known else None,
        }
    return table


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--json", help="write the figures here too")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--max-time-per-case", type=float, default=None, help="each row's budget (reduced runs)"
    )
    parser.add_argument("-k", dest="keyword", default="resnet50", help="the rows of the stability runs")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--skip-probe", action="store_true")
    args = parser.parse_args()
    print(f"load average before: {_load()}")
    out: dict[str, Any] = {"load_before": _load()}
    ok = True
    if not args.skip_probe:
        print("1. probing fp32/fp64/bf16/fp16 compute and the bandwidth ceiling from nothing")
        probe = probe_time(args.threads)
        out["probe"] = probe
        for key, c in sorted(probe["ceilings"].items()):
            value = f"{c['ceiling']:.4g}" if c["ceiling"] is not None else f"missing: {c['error']}"
            theory = c["theoretical"] if c["theoretical"] is not None else c["theoretical_how"]
            print(f"  {key}: {value} ({c['how']}; {c['probe_s']:.2f} s); theoretical: {theory}")
        print(
            f"  probe {probe['probe_s']:.1f} s (target <= {_PROBE_TARGET_S:g} s); "
            f"cached {probe['cached_s']:.3f} s, probes run: {len(probe['cached_probes'])}"
        )
        ok &= probe["probe_s"] <= _PROBE_TARGET_S and probe["cached_s"] <= _CACHED_TARGET_S
        ok &= not probe["cached_probes"]
    print(f"2. {args.runs} runs of cases/bench/layers.yaml -k {args.keyword}")
    table = stability(args.runs, args.max_time_per_case, args.keyword, args.threads)
    out["stability"] = table
    for vid, row in table.items():
        pcts = ", ".join(f"{p:.1f}" if isinstance(p, int | float) else "-" for p in row["pct_of_bound"])
        spread = f"{row['spread']:.1f}" if row["spread"] is not None else "?"
        print(f"  {vid}: {row['bound']} bound, % of bound {pcts}; spread {spread} points")
        ok &= row["spread"] is not None and row["spread"] <= _SPREAD_TARGET
        ok &= all(isinstance(p, int | float) and p <= 100 for p in row["pct_of_bound"])
    out["load_after"] = _load()
    out["targets_met"] = bool(ok)
    print(f"load average after: {out['load_after']}; targets {'met' if ok else 'NOT met'}")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
