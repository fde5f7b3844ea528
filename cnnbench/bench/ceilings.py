"""A machine's ceilings, measured once and reused: the compute ceiling per (device, dtype, compute precision) --
the best of a few GEMM shapes, the run's own among them -- and the memory-bandwidth ceiling per device (a
STREAM-style copy and triad on arrays beyond the last-level cache), with the theoretical peak beside them.

They are stored per machine fingerprint in ``<reports>/machines/<fingerprint>.json`` (``$CNNBENCH_MACHINES``
overrides the folder), so later runs on the same machine compare against the same ceilings; ``--reprobe``
measures again. A row faster than a ceiling raises it (the practical ceiling, recorded with the row that set
it); a probe that fails leaves that ceiling missing with the reason, for this run only.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from cnnbench.bench.peak import gemm_flops, is_slow_path, theoretical_peak
from cnnbench.bench.roofline import BYTES_NOTE, GemmShape, gemm_shapes, roofline
from cnnbench.bench.timing import measure
from cnnbench.casefile.variants import BenchVariant
from cnnbench.environment import cpu_model
from cnnbench.numerics.fill import torch_dtype
from cnnbench.store.result import Result

__all__ = [
    "FULL",
    "PROBE_ENV",
    "QUICK",
    "CeilingBook",
    "ProbePlan",
    "apply_roofline",
    "fingerprint",
    "machine_facts",
    "machines_dir",
    "pick_shapes",
    "prepare",
    "stream_gbs",
]

#: The folder of the machine files, when set (default: <reports>/machines).
MACHINES_ENV = "CNNBENCH_MACHINES"
#: "quick" probes with tiny sizes (the test suite's); anything else, or unset, with the full plan.
PROBE_ENV = "CNNBENCH_PROBE"
_SCHEMA = 1
_MIB = 2**20


@dataclass(frozen=True)
class ProbePlan:
    """What a probe measures and for how long."""

    name: str
    cpu_squares: tuple[int, ...]
    accel_squares: tuple[int, ...]
    workload_shapes: int
    """How many of the run's own GEMM shapes (the most FLOP-heavy) are probed besides the squares."""
    max_elements: int
    """Largest m*k + k*n + m*n of a workload shape probed."""
    gemm_time_s: float
    stream_min_bytes: int
    stream_max_bytes: int
    stream_time_s: float
    slow_square: int = 256
    """Probed first: a dtype over 4x below float32 there (emulated) is not probed at the larger sizes."""


FULL = ProbePlan("full", (1024,), (4096, 8192), 2, 2**25, 0.2, 64 * _MIB, 512 * _MIB, 0.3, slow_square=512)
QUICK = ProbePlan("quick", (128,), (512,), 1, 2**18, 0.02, 4 * _MIB, 4 * _MIB, 0.02, slow_square=64)


def active_plan() -> ProbePlan:
    """QUICK when $CNNBENCH_PROBE is "quick", FULL otherwise."""
    return QUICK if os.environ.get(PROBE_ENV) == "quick" else FULL


def machines_dir(reports_root: str | Path) -> Path:
    """Where the machine files live: $CNNBENCH_MACHINES, else <reports_root>/machines."""
    return Path(os.environ.get(MACHINES_ENV) or Path(reports_root) / "machines")


def _mem_total_bytes() -> int | None:
    return _meminfo("MemTotal")


def _meminfo(key: str) -> int | None:
    try:
        with open("/proc/meminfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def machine_facts() -> dict[str, Any]:
    """What makes a machine's ceilings its own: CPU, memory, accelerators, torch build (not the host name)."""
    accelerators = []
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            p = torch.cuda.get_device_properties(i)
            accelerators.append([p.name, f"{p.major}.{p.minor}", p.total_memory, p.multi_processor_count])
    get_capability = getattr(torch.backends.cpu, "get_cpu_capability", None)
    return {
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
        "mem_total_bytes": _mem_total_bytes(),
        "cpu_capability": str(get_capability()) if get_capability else None,
        "torch_version": torch.__version__,
        "torch_config_hash": hashlib.sha256(torch.__config__.show().encode()).hexdigest()[:16],
        "accelerators": accelerators,
    }


def fingerprint(facts: dict[str, Any]) -> str:
    """A short hash of machine_facts: the machine file's name."""
    return hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()[:16]


def _llc_bytes(device: torch.device) -> int | None:
    """The last-level cache: the largest /sys CPU cache, or the GPU's L2."""
    if device.type == "cuda":
        return int(getattr(torch.cuda.get_device_properties(device), "L2_cache_size", 0)) or None
    sizes = []
    for index in Path("/sys/devices/system/cpu/cpu0/cache").glob("index*"):
        try:
            text = (index / "size").read_text().strip().upper()
            scale = {"K": 1024, "M": _MIB}.get(text[-1:], 1)
            sizes.append(int(text.rstrip("KM")) * scale)
        except (OSError, ValueError):
            continue
    return max(sizes) if sizes else None


def stream_gbs(device: str, plan: ProbePlan) -> dict[str, Any]:
    """STREAM-style copy (b = a) and triad (a = b + s c) on float32 arrays of about 4x the last-level cache
    (within the plan's bounds and an eighth of free memory): the best GB/s of each, and what was probed."""
    dev = torch.device(device)
    llc = _llc_bytes(dev)
    wanted = 4 * llc if llc else plan.stream_max_bytes
    size = min(max(wanted, plan.stream_min_bytes), plan.stream_max_bytes)
    free = _meminfo("MemAvailable") if dev.type == "cpu" else None
    if free is not None:
        size = max(plan.stream_min_bytes, min(size, free // 8))
    n = size // 4
    with torch.no_grad():
        a = torch.full((n,), 1.0, device=dev)
        b = torch.full((n,), 2.0, device=dev)
        c = torch.full((n,), 0.5, device=dev)
        copy = measure(lambda: b.copy_(a), device=str(dev), min_replicates=3, max_time_s=plan.stream_time_s)
        triad = measure(
            lambda: torch.add(b, c, alpha=3.0, out=a),
            device=str(dev),
            min_replicates=3,
            max_time_s=plan.stream_time_s,
        )
    copy_gbs, triad_gbs = 2 * size / copy.min_s / 1e9, 3 * size / triad.min_s / 1e9
    return {
        "measured": max(copy_gbs, triad_gbs),
        "copy_gbs": copy_gbs,
        "triad_gbs": triad_gbs,
        "array_bytes": size,
        "llc_bytes": llc,
        "how": f"best of copy/triad on 3 float32 arrays of {size / _MIB:.0f} MiB"
        + (
            f" ({size / llc:.1f}x the {llc / _MIB:.0f} MiB last-level cache)"
            if llc
            else " (cache size unknown)"
        ),
    }


def pick_shapes(shapes: Counter[GemmShape], plan: ProbePlan) -> list[GemmShape]:
    """The run's most FLOP-heavy GEMM shapes (FLOPs x occurrences) that fit the plan's size limit."""

    def fits(s: GemmShape) -> bool:
        m, n, k = s
        return m * k + k * n + m * n <= plan.max_elements

    ranked = sorted((s for s in shapes if fits(s)), key=lambda s: -2 * math.prod(s) * shapes[s])
    return ranked[: plan.workload_shapes]


#: Dtypes whose CPU GEMM may be emulated (~100x slower): checked at a small size before the larger ones.
_MAYBE_EMULATED = frozenset({"bfloat16", "float16"})
_SMALL_FP32: dict[tuple[str, int, int], float] = {}


def _small_fp32(device: str, plan: ProbePlan) -> float:
    """float32's GFLOP/s at the plan's small square (once per process and thread count): what an emulated
    dtype is recognised against, at the same size."""
    key = (device, plan.slow_square, torch.get_num_threads())
    if key not in _SMALL_FP32:
        shape = (plan.slow_square,) * 3
        _SMALL_FP32[key] = gemm_flops(device, torch.float32, shape, max_time_s=plan.gemm_time_s) / 1e9
    return _SMALL_FP32[key]


def _compute_probe(device: str, dtype: str, shapes: list[GemmShape], plan: ProbePlan) -> dict[str, Any]:
    """Best GFLOP/s over square GEMMs and the run's shapes. A shape whose one call would take over a third of
    the per-shape budget at the best rate so far is left out (so is every larger one of an emulated dtype)."""
    dev = torch.device(device)
    t = torch_dtype(dtype)
    probed: list[dict[str, Any]] = []

    def probe(shape: GemmShape, origin: str) -> None:
        entry: dict[str, Any] = {"m": shape[0], "n": shape[1], "k": shape[2], "origin": origin}
        best = max((p["gflops"] for p in probed if "gflops" in p), default=None)
        call_s = 2 * math.prod(shape) / (best * 1e9) if best else 0.0
        if call_s > plan.gemm_time_s / 3:
            entry["skipped"] = f"one call would take ~{call_s:.2g} s at {best:.3g} GFLOP/s"
        else:
            entry["gflops"] = gemm_flops(device, t, shape, max_time_s=plan.gemm_time_s) / 1e9
        probed.append(entry)

    squares = plan.cpu_squares if dev.type == "cpu" else plan.accel_squares
    how = "best GEMM of the shapes"
    if dev.type == "cpu" and dtype in _MAYBE_EMULATED:
        probe((plan.slow_square,) * 3, "square")
        if is_slow_path(probed[0]["gflops"], _small_fp32(device, plan)):
            how = f"{dtype} over 4x below float32 at {plan.slow_square}^3 (emulated): not probed larger"
            return {"measured": probed[0]["gflops"], "shapes": probed, "how": how}
    for n in squares:
        probe((n, n, n), "square")
    for shape in shapes:
        probe(shape, "workload")
    return {"measured": max(p["gflops"] for p in probed if "gflops" in p), "shapes": probed, "how": how}


def _load_average() -> float | None:
    try:
        return float(Path("/proc/loadavg").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _key(kind: str, device: str, dtype: str = "", precision: str = "") -> str:
    threads = f"|t{torch.get_num_threads()}" if torch.device(device).type == "cpu" else ""
    return "|".join(p for p in (kind, device, dtype, precision) if p) + threads


def effective(entry: dict[str, Any] | None) -> float | None:
    """The ceiling an entry stands for: its measured value, or the practical one a row raised it to."""
    if not entry or entry.get("measured") is None:
        return None
    return max(float(entry["measured"]), float(entry.get("practical") or 0.0))


class CeilingBook:
    """The ceilings of one machine file, probed when missing (or on reprobe), raised by rows, saved back."""

    def __init__(
        self,
        directory: str | Path,
        *,
        reprobe: bool = False,
        plan: ProbePlan | None = None,
        say: Callable[[str], None] | None = None,
    ) -> None:
        self.facts = machine_facts()
        self.fingerprint = fingerprint(self.facts)
        self.path = Path(directory) / f"{self.fingerprint}.json"
        self.reprobe = reprobe
        self.plan = plan or active_plan()
        self.say = say or (lambda _msg: None)
        self.entries = self._read()
        self.used: dict[str, dict[str, Any]] = {}
        """The entries this run used (failures included), by key: the run's meta["ceilings"]."""
        self._changed: set[str] = set()
        self._fresh: set[str] = set()

    def _read(self) -> dict[str, dict[str, Any]]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        if not isinstance(data, dict) or data.get("schema") != _SCHEMA:
            return {}
        found = data.get("ceilings")
        return {str(k): v for k, v in found.items() if isinstance(v, dict)} if isinstance(found, dict) else {}

    def _get(self, key: str, probe: Callable[[], dict[str, Any]], what: str) -> dict[str, Any]:
        entry = self.entries.get(key)
        stale = (
            entry is None or entry.get("plan") != self.plan.name or (self.reprobe and key not in self._fresh)
        )
        if key in self.used and not stale:
            return self.used[key]
        if stale:
            self.say(f"probing the {what} ceiling")
            started = time.perf_counter()
            try:
                entry = probe()
            except Exception as exc:  # out of memory, no kernel for the dtype: the ceiling is missing
                entry = {"measured": None, "error": f"the {what} probe failed: {type(exc).__name__}: {exc}"}
            else:
                self._changed.add(key)
            entry.update(plan=self.plan.name, probed_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
            entry["load_average"] = _load_average()  # a probe on a busy machine reads low: this says so
            entry["probe_s"] = time.perf_counter() - started
            self.entries[key] = entry
            self._fresh.add(key)
        assert entry is not None
        self.used[key] = entry
        return entry

    def compute(
        self, device: str, dtype: str, precision: str = "ieee", shapes: Iterable[GemmShape] = ()
    ) -> dict[str, Any]:
        """The compute ceiling entry of (device, dtype, precision), probed with shapes when not stored."""
        key = _key("compute", device, dtype, precision)

        def probe() -> dict[str, Any]:
            entry = _compute_probe(device, dtype, list(shapes), self.plan)
            peak = theoretical_peak(device, dtype, precision)
            entry["theoretical"] = peak.flops / 1e9 if peak.flops is not None else None
            entry["theoretical_how"] = peak.how
            return entry

        entry = self._get(key, probe, f"{device} {dtype} compute")
        entry.setdefault("unit", "GFLOP/s")
        return entry

    def bandwidth(self, device: str) -> dict[str, Any]:
        """The memory-bandwidth ceiling entry of device."""
        entry = self._get(
            _key("bandwidth", device), lambda: stream_gbs(device, self.plan), f"{device} bandwidth"
        )
        entry.setdefault("unit", "GB/s")
        return entry

    def raise_to(self, entry: dict[str, Any], rate: float, variant_id: str) -> None:
        """Record rate as the entry's practical ceiling, set by variant_id (saved with the machine file)."""
        entry["practical"] = rate
        entry["raised_by"] = variant_id
        for key, value in self.entries.items():
            if value is entry:
                self._changed.add(key)

    def save(self) -> None:
        """Write the entries this run probed or raised into the machine file (others' entries kept)."""
        if not self._changed:
            return
        current = self._read()
        for key in self._changed:
            current[key] = self.entries[key]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = {
            "schema": _SCHEMA,
            "fingerprint": self.fingerprint,
            "machine": self.facts,
            "ceilings": current,
        }
        tmp = self.path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        os.replace(tmp, self.path)
        self._changed.clear()

    def meta(self) -> dict[str, Any]:
        """The run's meta["ceilings"]: the machine file and every entry used, with its effective value."""
        entries = {k: {**v, "ceiling": effective(v)} for k, v in sorted(self.used.items())}
        return {"fingerprint": self.fingerprint, "file": str(self.path), "entries": entries}


def _missing(entry: dict[str, Any], what: str) -> str:
    return str(entry.get("error") or f"no {what} ceiling")


def _slow_path(result: Result, book: CeilingBook, own: float | None) -> bool | None:
    """Whether the row's dtype is over 4x below float32 on its device, by their compute ceilings (None: one is
    missing)."""
    if result.dtype == "float32":
        return False
    fp32 = effective(book.compute(result.device, "float32"))
    return is_slow_path(own, fp32) if own and fp32 else None


def apply_roofline(result: Result, book: CeilingBook) -> None:
    """Put the row's roofline into its metrics: GB/s, intensity, the ceilings, bound, % of bound, slow path.

    A row beating a ceiling raises it (metrics["ceiling_raised"] names which), so its % is at most 100; a
    ceiling missing, or FLOPs or bytes not counted, leave the row without a % and say why
    (metrics["roofline_note"]).
    """
    m = result.metrics
    if result.kind != "bench" or not isinstance(m.get("median_ms"), int | float):
        return
    precision = result.compute_precision or "ieee"
    compute = book.compute(result.device, result.dtype, precision)
    m["compute_precision"] = precision
    m["slow_path"] = _slow_path(result, book, effective(compute))
    flop, nbytes = m.get("flop"), m.get("bytes_moved")
    if not isinstance(flop, int | float) or not isinstance(nbytes, int | float):
        m["roofline_note"] = "FLOPs or bytes moved not counted: " + str(
            m.get("flop_note") or m.get("bytes_note")
        )
        return
    bandwidth = book.bandwidth(result.device)
    raised_entries = {"compute": compute, "memory": bandwidth}

    def on_raise(kind: str, rate: float) -> None:
        book.raise_to(raised_entries[kind], rate, result.variant_id)

    seconds = float(m["median_ms"]) / 1e3
    line = roofline(float(flop), nbytes, seconds, effective(compute), effective(bandwidth), on_raise=on_raise)
    m.update(
        bytes_note=BYTES_NOTE,
        intensity=line.intensity,
        gbs=line.gbs,
        compute_ceiling_gflops=line.compute_gflops,
        bandwidth_gbs=line.bandwidth_gbs,
        bound=line.bound,
        bound_gflops=line.bound_gflops,
        pct_of_bound=line.pct_of_bound,
        ceiling_raised=list(line.raised),
    )
    if line.pct_of_bound is None:
        reasons = []
        if flop > 0 and line.compute_gflops is None:
            reasons.append(_missing(compute, "compute"))
        if line.bandwidth_gbs is None:
            reasons.append(_missing(bandwidth, "bandwidth"))
        m["roofline_note"] = "; ".join(reasons) or "no FLOPs or bytes to compare"


def _runnable(variant: BenchVariant) -> bool:
    from cnnbench.environment import device_available

    return variant.skip_rule is None and device_available(variant.device)


def prepare(book: CeilingBook, variants: Iterable[BenchVariant]) -> None:
    """Make sure the book has every ceiling the variants will be compared with (probing what is missing, with
    each device's most FLOP-heavy workload GEMMs), float32's on each device for the slow-path flag."""
    by_device: dict[str, set[str]] = {}
    shapes: dict[str, Counter[GemmShape]] = {}
    for v in variants:
        if not _runnable(v):
            continue
        by_device.setdefault(v.device, {"float32"}).add(v.dtype)
        try:
            shapes.setdefault(v.device, Counter()).update(gemm_shapes(v))
        except Exception:  # torchvision missing, an op without a meta kernel: its row will say so
            continue
    for device, dtypes in sorted(by_device.items()):
        picked = pick_shapes(shapes.get(device, Counter()), book.plan)
        book.bandwidth(device)
        for dtype in sorted(dtypes, key=lambda d: d != "float32"):
            book.compute(device, dtype, shapes=picked)
