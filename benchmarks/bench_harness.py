"""Harness self-check: cnnbench.bench.timing.measure vs torch's Timer and vs a raw loop, interleaved in one process.

Usage: python benchmarks/bench_harness.py [--json PATH] [--rounds N] [--max-rounds M] [--wait-quiet S]
                                          [--threads N] [--batch N] [--skip-resnet]

1. resnet18, batch 8, fp32, CPU, under torch.inference_mode(): ``measure(fn).median_s`` against
   ``Timer(stmt="fn()", globals={"fn": fn}, num_threads=<threads in force>).blocked_autorange(min_run_time=2)
   .median``; target ratio within 3 %.
2. Harness overhead per timed call: ``(measure(fn).median_s - raw) / raw`` where ``raw`` is the per-call time
   from a tight ``time.perf_counter`` loop around many calls; target < 1 % for calls >= 1 ms.

Each comparison alternates its two sides round by round, swapping which goes first (AB, BA, AB, ...), so
drift on a shared machine hits both. Ratios are reported per round and as the ratio of the medians, over all
rounds and over the "clean" rounds in which other processes used <= 0.1 cores (read from /proc/stat) while
either side ran.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.nn import functional
from torch.utils.benchmark import Timer

try:
    from cnnbench.bench import models, timing
except ImportError:  # a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from cnnbench.bench import models, timing

_TIMER_MIN_RUN_TIME_S = 2.0  # the reference: Timer.blocked_autorange(min_run_time=2)
_MEASURE_MAX_TIME_S = 2.0  # give measure() the same time budget as the reference
_OVERHEAD_BUDGET_S = 1.0  # per side and round for the overhead comparison
_RAW_BLOCK_S = 0.02  # raw loop: calls per block chosen so a block lasts >= 20 ms (clock overhead < 1e-5)
_RATIO_TARGET = 0.03  # measure vs Timer median: within 3 %
_OVERHEAD_TARGET = 0.01  # < 1 % overhead for calls >= 1 ms
_QUIET_FOREIGN_LOAD = 0.1  # a round is "clean" when other processes used <= 0.1 cores meanwhile
_QUIET_WINDOW_S = 0.5  # window over which wait_quiet samples the machine's load


def raw_per_call_s(fn: Callable[[], object], budget_s: float) -> float:
    """Median per-call time of ``fn`` from tight perf_counter loops (blocks of >= 20 ms) over ``budget_s``.

    The cyclic GC is off during the loops, as timeit (hence Timer and measure) turns it off during a block.
    """
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        number = 1
        while True:  # calibrate (doubles as warm-up)
            t0 = time.perf_counter()
            for _ in range(number):
                fn()
            block = time.perf_counter() - t0
            if block >= _RAW_BLOCK_S:
                break
            number *= 2 if block * 10 >= _RAW_BLOCK_S else 10
        per_call: list[float] = []
        start = time.perf_counter()
        while len(per_call) < 5 or time.perf_counter() - start < budget_s:
            t0 = time.perf_counter()
            for _ in range(number):
                fn()
            per_call.append((time.perf_counter() - t0) / number)
    finally:
        if gc_was_enabled:
            gc.enable()
    return statistics.median(per_call)


def _busy_cpu_s() -> float | None:
    """CPU seconds all processes have been busy (from /proc/stat), or None where there is no /proc."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    busy = sum(fields[:8]) - idle  # user nice system idle iowait irq softirq steal; guest is inside user
    return busy / os.sysconf("SC_CLK_TCK")


@dataclass
class Interleaved:
    """Values of two sides measured round by round, with the foreign CPU load during each."""

    a: list[float] = field(default_factory=list)
    b: list[float] = field(default_factory=list)
    a_foreign_load: list[float | None] = field(default_factory=list)
    b_foreign_load: list[float | None] = field(default_factory=list)

    def clean_rounds(self) -> list[int]:
        """Rounds in which neither side shared the machine with > 0.1 cores of other processes' work."""

        def quiet(load: float | None) -> bool:
            return load is not None and load <= _QUIET_FOREIGN_LOAD

        pairs = zip(self.a_foreign_load, self.b_foreign_load, strict=True)
        return [i for i, (la, lb) in enumerate(pairs) if quiet(la) and quiet(lb)]

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready lists."""
        return {
            "a": self.a,
            "b": self.b,
            "a_foreign_load_cores": self.a_foreign_load,
            "b_foreign_load_cores": self.b_foreign_load,
            "clean_rounds": self.clean_rounds(),
        }


def _run_side(side: Callable[[], float]) -> tuple[float, float | None]:
    """Run one side; return its value and the other processes' average CPU load (in cores) meanwhile."""
    busy0, own0, wall0 = _busy_cpu_s(), time.process_time(), time.perf_counter()
    value = side()
    busy1, own1, wall1 = _busy_cpu_s(), time.process_time(), time.perf_counter()
    if busy0 is None or busy1 is None:
        return value, None
    return value, max(0.0, (busy1 - busy0) - (own1 - own0)) / (wall1 - wall0)


def wait_quiet(max_wait_s: float) -> float | None:
    """Wait (at most ``max_wait_s``) until other processes use <= 0.1 cores over a 0.5 s window.

    Returns the last window's load in cores (None without /proc/stat). This process is idle meanwhile.
    """
    deadline = time.perf_counter() + max_wait_s
    load: float | None = None
    while True:
        busy0, t0 = _busy_cpu_s(), time.perf_counter()
        time.sleep(_QUIET_WINDOW_S)
        busy1, t1 = _busy_cpu_s(), time.perf_counter()
        if busy0 is None or busy1 is None:
            return None
        load = (busy1 - busy0) / (t1 - t0)
        if load <= _QUIET_FOREIGN_LOAD or time.perf_counter() >= deadline:
            return load


@dataclass(frozen=True)
class Plan:
    """How many interleaved rounds to run: at least ``rounds``, more (up to ``max_rounds``) until ``rounds``
    of them are clean; before each round wait up to ``wait_quiet_s`` for a quiet machine."""

    rounds: int
    max_rounds: int
    wait_quiet_s: float


def _interleaved(
    side_a: Callable[[], float], side_b: Callable[[], float], plan: Plan, label: str
) -> Interleaved:
    """Run both sides round after round, alternating which goes first (AB, BA, ...), as ``plan`` says."""
    out = Interleaved()
    sides = (("A", side_a, out.a, out.a_foreign_load), ("B", side_b, out.b, out.b_foreign_load))
    r = 0
    while r < plan.rounds or (r < plan.max_rounds and len(out.clean_rounds()) < plan.rounds):
        if plan.wait_quiet_s > 0:
            wait_quiet(plan.wait_quiet_s)
        for name, side, values, loads in sides if r % 2 == 0 else sides[::-1]:
            value, load = _run_side(side)
            values.append(value)
            loads.append(load)
            shown = "n/a" if load is None else f"{load:.2f}"
            print(f"  {label} round {r + 1} {name}: {value * 1e3:.4f} ms  (foreign load {shown})", flush=True)
        r += 1
    return out


def _ratio_summary(num: list[float], den: list[float], rounds: list[int]) -> dict[str, Any]:
    """Ratio of medians and per-round ratios over the given rounds (None when there are none)."""
    if not rounds:
        return {"rounds": [], "ratio_of_medians": None, "per_round": []}
    n = [num[i] for i in rounds]
    d = [den[i] for i in rounds]
    return {
        "rounds": rounds,
        "ratio_of_medians": statistics.median(n) / statistics.median(d),
        "per_round": [x / y for x, y in zip(n, d, strict=True)],
    }


def compare_resnet18(plan: Plan, threads: int, batch: int) -> dict[str, Any]:
    """measure() vs Timer.blocked_autorange on resnet18 inference, interleaved."""
    model = models.build_model("resnet18").eval()
    x = models.example_input("resnet18", batch)

    def fn() -> torch.Tensor:
        out: torch.Tensor = model(x)
        return out

    measurements: list[timing.Measurement] = []

    def side_measure() -> float:
        m = timing.measure(fn, max_time_s=_MEASURE_MAX_TIME_S)
        measurements.append(m)
        return m.median_s

    def side_timer() -> float:
        # num_threads must be given: Timer's default of 1 thread would time a different configuration.
        timer = Timer(stmt="fn()", globals={"fn": fn}, num_threads=threads)
        return float(timer.blocked_autorange(min_run_time=_TIMER_MIN_RUN_TIME_S).median)

    with torch.inference_mode():
        fn()  # build oneDNN primitives once before either side runs
        sides = _interleaved(side_measure, side_timer, plan, f"resnet18 b{batch}")
    return {
        "model": "resnet18",
        "batch": batch,
        "dtype": "float32",
        "device": "cpu",
        "sides": {
            "a": "cnnbench.bench.timing.measure median_s",
            "b": "Timer.blocked_autorange(min_run_time=2).median",
        },
        "values": sides.as_dict(),
        "all_rounds": _ratio_summary(sides.a, sides.b, list(range(len(sides.a)))),
        "clean_rounds": _ratio_summary(sides.a, sides.b, sides.clean_rounds()),
        "measure_details": [m.as_dict() for m in measurements],
    }


def _overhead_callables() -> dict[str, Callable[[], object]]:
    """A conv of roughly 1 ms on this class of CPU, a tiny tensor add (~µs) and a Python no-op (~50 ns)."""
    x = torch.randn(1, 48, 56, 56)
    w = torch.randn(48, 48, 3, 3)
    a = torch.randn(8)

    def conv() -> torch.Tensor:
        return functional.conv2d(x, w, padding=1)

    def tiny_add() -> torch.Tensor:
        return a + a

    def noop() -> None:
        return None

    return {"conv2d_1x48x56x56_k3": conv, "tensor_add_8": tiny_add, "python_noop": noop}


def compare_overhead(plan: Plan) -> list[dict[str, Any]]:
    """measure() median vs a raw perf_counter loop, per callable, interleaved."""
    rows: list[dict[str, Any]] = []
    with torch.inference_mode():
        for name, fn in _overhead_callables().items():
            measurements: list[timing.Measurement] = []

            def side_measure(
                fn: Callable[[], object] = fn, sink: list[timing.Measurement] = measurements
            ) -> float:
                m = timing.measure(fn, max_time_s=_OVERHEAD_BUDGET_S)
                sink.append(m)
                return m.median_s

            def side_raw(fn: Callable[[], object] = fn) -> float:
                return raw_per_call_s(fn, _OVERHEAD_BUDGET_S)

            sides = _interleaved(side_measure, side_raw, plan, name)
            rows.append(
                {
                    "callable": name,
                    "sides": {
                        "a": "cnnbench.bench.timing.measure median_s",
                        "b": "raw perf_counter loop median",
                    },
                    "values": sides.as_dict(),
                    "number_per_run": [m.number_per_run for m in measurements],
                    "measure_rel_iqr": [m.rel_iqr for m in measurements],
                    "all_rounds": _ratio_summary(sides.a, sides.b, list(range(len(sides.a)))),
                    "clean_rounds": _ratio_summary(sides.a, sides.b, sides.clean_rounds()),
                    "target_applies": statistics.median(sides.b) >= 1e-3,
                }
            )
    return rows


def _fmt_time(seconds: float) -> str:
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.3f} ms"
    if seconds >= 1e-6:
        return f"{seconds * 1e6:.3f} us"
    return f"{seconds * 1e9:.1f} ns"


def _fmt_ratio(summary: dict[str, Any]) -> str:
    ratio = summary["ratio_of_medians"]
    if ratio is None:
        return f"{'-':>9} {'':>17}"
    per_round = summary["per_round"]
    spread = f"{(min(per_round) - 1) * 100:+.1f}..{(max(per_round) - 1) * 100:+.1f}%"
    return f"{(ratio - 1) * 100:>+8.2f}% {spread:>17}"


def _print_table(
    title: str, a: list[float], b: list[float], all_r: dict[str, Any], clean: dict[str, Any]
) -> None:
    n_clean = len(clean["rounds"])
    print(
        f"{title:<40} {_fmt_time(statistics.median(a)):>12} {_fmt_time(statistics.median(b)):>12} "
        f"{_fmt_ratio(all_r)} {_fmt_ratio(clean)} {n_clean:>3}/{len(a)}"
    )


def main(argv: list[str] | None = None) -> int:
    """Run both comparisons, print a table and optionally write JSON."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--json", type=Path, help="write the results as JSON here")
    parser.add_argument("--rounds", type=int, default=4, help="interleaved rounds per comparison (default 4)")
    parser.add_argument(
        "--max-rounds", type=int, default=0, metavar="M", help="run up to M rounds to get --rounds clean ones"
    )
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: leave as is)")
    parser.add_argument("--batch", type=int, default=8, help="resnet18 batch size (default 8)")
    parser.add_argument("--skip-resnet", action="store_true", help="only run the overhead comparison")
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=0.0,
        metavar="S",
        help="wait up to S s for a quiet machine per round",
    )
    args = parser.parse_args(argv)

    threads = timing.set_threads(args.threads)
    plan = Plan(
        rounds=args.rounds, max_rounds=max(args.rounds, args.max_rounds), wait_quiet_s=args.wait_quiet
    )
    env: dict[str, Any] = {
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "torch_threads": threads,
        "rounds": args.rounds,
        "max_rounds": plan.max_rounds,
        "wait_quiet_s": args.wait_quiet,
        "loadavg_before": os.getloadavg() if hasattr(os, "getloadavg") else None,
    }
    print(
        f"torch {env['torch']}, {threads} threads, {env['cpu_count']} CPUs, {args.rounds} rounds", flush=True
    )
    t0 = time.perf_counter()
    resnet = None if args.skip_resnet else compare_resnet18(plan, threads, args.batch)
    overhead = compare_overhead(plan)
    env["wall_s"] = time.perf_counter() - t0
    env["loadavg_after"] = os.getloadavg() if hasattr(os, "getloadavg") else None

    print()
    head = f"{'ratio-1':>9} {'per round':>17}"
    print(
        f"{'comparison (A vs B)':<40} {'A: cnnbench':>12} {'B: reference':>12} {head}  (clean rounds) {head}"
    )
    if resnet is not None:
        v = resnet["values"]
        title = f"resnet18 b{args.batch} vs Timer.blocked_autorange"
        _print_table(title, v["a"], v["b"], resnet["all_rounds"], resnet["clean_rounds"])
    for row in overhead:
        v = row["values"]
        _print_table(f"{row['callable']} vs raw loop", v["a"], v["b"], row["all_rounds"], row["clean_rounds"])
    print(
        f"targets: |ratio-1| <= {_RATIO_TARGET:.0%} for resnet18; overhead < {_OVERHEAD_TARGET:.0%} for calls"
        f" >= 1 ms. Clean rounds: other processes used <= {_QUIET_FOREIGN_LOAD} cores during both sides."
    )
    print(f"wall time {env['wall_s']:.1f} s")

    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"env": env, "resnet18": resnet, "overhead": overhead}, indent=2))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
