"""Peak memory of a call: torch's allocator high-water mark on accelerators, a child process's peak RSS on CPU."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch

from cnnbench import device as device_module
from cnnbench.bench.timing import sync

__all__ = ["RssPeak", "cpu_peak_rss_bytes", "peak_memory_bytes"]

_RSS_TARGET_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*$")
_RSS_TIMEOUT_S = 600.0  # a child that has not finished in 10 minutes is hung, not slow.
_STDERR_TAIL_CHARS = 2000  # enough of a child's traceback to diagnose, not a whole log.

# The child of cpu_peak_rss_bytes: fixed code (never built from user input). It imports the target by
# "module:function", records its RSS before the call, resets the kernel's high-water mark if it can, calls the
# target and writes the high-water mark as JSON. On Linux it reads VmHWM/VmRSS from /proc/self/status rather
# than ru_maxrss: ru_maxrss survives exec, so a child of a big parent (fork/vfork then exec) reports at least
# the parent's RSS. Writing "5" to /proc/self/clear_refs resets VmHWM (Linux >= 4.0) so the peak covers the
# call only. Elsewhere (macOS) it falls back to ru_maxrss (bytes there, KiB on Linux).
_RSS_CHILD_CODE = """\
import gc, importlib, json, resource, sys

def _maxrss():
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r if sys.platform == "darwin" else r * 1024

def _status():
    try:
        fields = {}
        with open("/proc/self/status") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key in ("VmHWM", "VmRSS"):
                    fields[key] = int(value.split()[0]) * 1024
        return fields["VmRSS"], fields["VmHWM"]
    except (OSError, ValueError, IndexError, KeyError):
        return None

def _reset_hwm():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False

target, kwargs_json, out_path = sys.argv[1:4]
module_name, _, func_name = target.partition(":")
func = getattr(importlib.import_module(module_name), func_name)
kwargs = json.loads(kwargs_json)
gc.collect()
before = _status()
if before is None:
    baseline = baseline_peak = _maxrss()
    call_only = False
else:
    baseline, baseline_peak = before
    call_only = _reset_hwm()
func(**kwargs)
after = _status()
peak = _maxrss() if after is None else after[1]
result = {"baseline": baseline, "baseline_peak": baseline_peak, "peak": peak, "call_only": call_only}
with open(out_path, "w") as f:
    json.dump(result, f)
"""


def peak_memory_bytes(fn: Callable[[], object], device: str) -> int | None:
    """Peak device memory allocated by torch while ``fn()`` runs; ``None`` on CPU (use cpu_peak_rss_bytes).

    The allocator's peak counter (``torch.cuda.max_memory_allocated``, or torch.accelerator's, through
    cnnbench.device) is reset first, so the figure is the high-water mark of allocated memory during the call,
    including tensors that were already allocated (weights, inputs); ``None`` when the device keeps no such
    counter.
    """
    if torch.device(device).type == "cpu":
        return None
    sync(device)
    if not device_module.reset_peak_memory(device):
        return None
    fn()
    sync(device)
    return device_module.max_memory_allocated(device)


@dataclass(frozen=True)
class RssPeak:
    """Resident-set sizes of a fresh child process around one call, in bytes."""

    peak_bytes: int  # the child's peak RSS: during the call if peak_covers_call_only, else whole lifetime
    baseline_bytes: int  # the child's current RSS just before the call (after importing the target)
    baseline_peak_bytes: int  # the child's high-water RSS just before the call (interpreter + imports)
    peak_covers_call_only: bool  # True when the high-water mark was reset just before the call (Linux)

    @property
    def increment_bytes(self) -> int:
        """How far the peak rose above the RSS in force just before the call."""
        return self.peak_bytes - self.baseline_bytes


def cpu_peak_rss_bytes(
    target: str,
    kwargs: Mapping[str, Any] | None = None,
    *,
    timeout_s: float = _RSS_TIMEOUT_S,
) -> RssPeak:
    """Run ``module:function(**kwargs)`` once in a fresh Python process and return its RSS figures.

    A true CPU peak needs an isolated process, since the RSS high-water mark is per process. On Linux the
    child reads VmHWM (not ``ru_maxrss``, which a child inherits from a big parent across exec) after
    resetting it just before the call, so ``peak_bytes`` is the child's peak RSS during the call and
    ``increment_bytes`` what the call added; elsewhere it falls back to ``ru_maxrss`` (lifetime peak).
    The target is imported by name (no code from strings): pass only allowlisted, trusted targets.
    ``kwargs`` must be JSON-serialisable. The child sees this process's ``sys.path`` (via ``PYTHONPATH``),
    so anything importable here is importable there. Unix only (uses ``resource``). Raises ``RuntimeError``
    when the child fails or times out.
    """
    if not _RSS_TARGET_RE.match(target):
        raise ValueError(f"target must look like 'package.module:function', got {target!r}")
    try:
        kwargs_json = json.dumps(dict(kwargs or {}))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"kwargs must be JSON-serialisable: {exc}") from exc
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    with tempfile.TemporaryDirectory(prefix="cnnbench-rss-") as tmp:
        out_path = os.path.join(tmp, "rss.json")
        cmd = [sys.executable, "-c", _RSS_CHILD_CODE, target, kwargs_json, out_path]
        try:
            proc = subprocess.run(
                cmd, capture_output=True, text=True, env=env, timeout=timeout_s, check=False
            )
        except subprocess.TimeoutExpired as exc:
            raise RuntimeError(f"peak-RSS child for {target} timed out after {timeout_s} s") from exc
        if proc.returncode != 0 or not os.path.exists(out_path):
            tail = proc.stderr[-_STDERR_TAIL_CHARS:]
            raise RuntimeError(f"peak-RSS child for {target} failed (exit {proc.returncode}):\n{tail}")
        with open(out_path) as f:
            data = json.load(f)
    return RssPeak(
        peak_bytes=int(data["peak"]),
        baseline_bytes=int(data["baseline"]),
        baseline_peak_bytes=int(data["baseline_peak"]),
        peak_covers_call_only=bool(data["call_only"]),
    )
