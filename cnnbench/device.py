"""Every accelerator-specific call in one place: which devices exist, synchronisation, timing events, memory
statistics, seeds, the float32 precision flags and the GPU's fingerprint.

Callers name devices as case files do (``cpu``, ``cuda``, ``cuda:1``, ``mps``, ``xpu``, ``accelerator``) and
never branch on the device type themselves. The per-type calls go through :func:`backend`: ``torch.cuda`` for
CUDA (and ROCm), ``torch.xpu``/``torch.mps``/``torch.mtia`` where torch has them, ``torch.accelerator`` for
anything else (a PrivateUse1 backend); tests swap it for a fake.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from typing import Any

import torch

__all__ = [
    "ACCELERATOR",
    "DEVICE_KINDS",
    "available",
    "backend",
    "compute_precision",
    "context_poisoned",
    "event_pair",
    "flush_cache",
    "fp32_precision",
    "gpu_fingerprint",
    "is_available",
    "max_memory_allocated",
    "pin_fp32_precision",
    "precision_flags",
    "reset_peak_memory",
    "resolve",
    "seed_all",
    "seed_parameters",
    "set_fp32_precision",
    "synchronize",
]

#: A case's ``devices:`` may name this for "whatever accelerator this machine has" (torch.accelerator).
ACCELERATOR = "accelerator"
#: Device types probed by :func:`available`, besides the current torch.accelerator.
DEVICE_KINDS = ("cuda", "xpu", "mps", "mtia")
#: Bytes written to flush the last-level cache when the device does not say its size (H100/H200: 50 MiB).
_DEFAULT_FLUSH_BYTES = 256 * 2**20
#: Errors after which a CUDA context cannot run anything more (every later call fails the same way).
_POISONED = re.compile(
    r"illegal memory access|device-side assert|unspecified launch failure|misaligned address|"
    r"an illegal instruction|CUDA error: (?:an? )?(?:illegal|unspecified|launch)|"
    r"uncorrectable ECC|cudaErrorIllegalAddress|CUBLAS_STATUS_EXECUTION_FAILED",
    re.IGNORECASE,
)


# ---------------------------------------------------------------------------------------------------------
# names and availability
# ---------------------------------------------------------------------------------------------------------


def _kind(device: str | torch.device) -> tuple[str, int | None]:
    text = str(device)
    kind, _, index = text.partition(":")
    return kind, int(index) if index.isdigit() else None


def backend(kind: str) -> Any:
    """The torch module owning kind's runtime calls (synchronize, Event, memory stats), or None (CPU)."""
    if kind in ("cpu", "meta"):
        return None
    module = getattr(torch, kind, None)
    if module is not None and hasattr(module, "is_available"):
        return module
    return getattr(torch, "accelerator", None)


def _current_accelerator() -> str | None:
    accel = getattr(torch, "accelerator", None)
    if accel is None or not accel.is_available():
        return None
    current = accel.current_accelerator()
    return None if current is None else str(current.type)


def resolve(device: str) -> str | None:
    """The concrete device a name means here: ``accelerator`` becomes this machine's accelerator type
    (None when it has none); every other name is itself."""
    if device.partition(":")[0] == ACCELERATOR:
        current = _current_accelerator()
        index = device.partition(":")[2]
        return None if current is None else current + (f":{index}" if index else "")
    return device


def is_available(device: str) -> bool:
    """Whether torch can run on device here ("cpu", "cuda", "cuda:1", "mps", "accelerator", ...)."""
    concrete = resolve(device)
    if concrete is None:
        return False
    kind, index = _kind(concrete)
    if kind in ("cpu", "meta"):
        return True
    module = backend(kind)
    if kind == "mps":
        module = getattr(torch.backends, "mps", None)
    probe = getattr(module, "is_available", None)
    if probe is None or not probe():
        return False
    if module is getattr(torch, "accelerator", None) and _current_accelerator() != kind:
        return False
    if index is not None:
        count = getattr(backend(kind), "device_count", lambda: 1)()
        return index < int(count)
    return True


def available() -> list[str]:
    """Every device type torch can run on here, CPU first."""
    found = ["cpu"]
    for kind in DEVICE_KINDS:
        if is_available(kind):
            found.append(kind)
    current = _current_accelerator()
    if current is not None and current not in found:
        found.append(current)
    return found


# ---------------------------------------------------------------------------------------------------------
# synchronisation, events, memory, seeds
# ---------------------------------------------------------------------------------------------------------


def _module_for(device: str | torch.device, what: str) -> Any:
    kind, _ = _kind(device)
    module = backend(kind)
    if module is None:
        return None
    probe = getattr(module, "is_available", None)
    if probe is not None and not probe():
        shown = {"cuda": "CUDA", "xpu": "XPU", "mps": "MPS"}.get(kind, kind)
        raise RuntimeError(f"cannot {what} on {device}: {shown} is not available")
    return module


def synchronize(device: str | torch.device) -> None:
    """Wait for all queued work on device; nothing on the CPU."""
    module = _module_for(device, "synchronize")
    if module is None:
        return
    if not hasattr(module, "synchronize"):
        raise RuntimeError(f"do not know how to synchronize device {device}")
    try:
        module.synchronize(torch.device(device))
    except TypeError:  # torch.mps.synchronize takes no device
        module.synchronize()


def event_pair(device: str | torch.device) -> tuple[Any, Any] | None:
    """Two timing events on device's current stream (start, end), or None where the device has none (CPU)."""
    module = _module_for(device, "time")
    event = getattr(module, "Event", None) if module is not None else None
    if event is None:
        return None
    return event(enable_timing=True), event(enable_timing=True)


def reset_peak_memory(device: str | torch.device) -> bool:
    """Reset device's allocator high-water mark; False where it keeps none (CPU, some backends)."""
    module = _module_for(device, "measure memory")
    reset = getattr(module, "reset_peak_memory_stats", None) if module is not None else None
    if reset is None or not hasattr(module, "max_memory_allocated"):
        return False
    reset(torch.device(device))
    return True


def max_memory_allocated(device: str | torch.device) -> int | None:
    """The allocator's high-water mark of allocated bytes on device since the last reset; None without one."""
    module = _module_for(device, "measure memory")
    read = getattr(module, "max_memory_allocated", None) if module is not None else None
    return None if read is None else int(read(torch.device(device)))


def seed_parameters(seed: int, device: str) -> None:
    """Seed the generator a module's initial parameters are drawn from: modules are built on the CPU, then moved.

    For a CPU variant only the CPU generator is seeded, directly: ``torch.manual_seed`` draws the same numbers but
    also queues a lazy seed with a captured stack for an accelerator that is not initialized yet, behind
    dynamo's disable wrapper, ~2 ms a call and a third of a small check's time. On an accelerator it is
    ``torch.manual_seed``, so the device's own generator (a dropout in train mode) is seeded as well.
    """
    if device.partition(":")[0] == "cpu":
        torch.default_generator.manual_seed(seed)
    else:
        torch.manual_seed(seed)


def seed_all(seed: int) -> None:
    """Seed torch's CPU generator and every accelerator's (torch.manual_seed covers CUDA and most others)."""
    torch.manual_seed(seed)
    for kind in DEVICE_KINDS:
        module = getattr(torch, kind, None)
        seed_fn = getattr(module, "manual_seed_all", None)
        probe = getattr(module, "is_available", None)
        if seed_fn is not None and probe is not None and probe():
            seed_fn(seed)


def flush_cache(device: str | torch.device, buffer: torch.Tensor | None = None) -> torch.Tensor:
    """Evict the device's last-level cache by writing a buffer larger than it (triton.testing.do_bench's
    cold-cache step); returns the buffer for the next call to reuse."""
    if buffer is None:
        size = _DEFAULT_FLUSH_BYTES
        kind, index = _kind(device)
        if kind == "cuda" and torch.cuda.is_available():
            l2 = int(getattr(torch.cuda.get_device_properties(index or 0), "L2_cache_size", 0) or 0)
            size = max(2 * l2, 2**20) if l2 else size
        buffer = torch.empty(size // 4, dtype=torch.int32, device=torch.device(device))
    buffer.zero_()
    return buffer


def context_poisoned(exc: BaseException) -> bool:
    """True for an accelerator error after which the process's context runs nothing more (illegal memory
    access, device-side assert, launch failure): the variants left need a new process."""
    return bool(_POISONED.search(f"{type(exc).__name__}: {exc}"))


# ---------------------------------------------------------------------------------------------------------
# the float32 precision flags
# ---------------------------------------------------------------------------------------------------------


def _flag(*path: str) -> str:
    """torch.backends' fp32_precision at path (e.g. ("cudnn", "conv")), inheriting "none" from its parents."""
    for depth in range(len(path), -1, -1):
        node: Any = torch.backends
        for name in path[:depth]:
            node = getattr(node, name, None)
        value = getattr(node, "fp32_precision", None) if node is not None else None
        if isinstance(value, str) and value != "none":
            return value
    return "ieee"


def _legacy(kind: str) -> str:
    """The precision torch versions without fp32_precision report through allow_tf32 and matmul precision."""
    try:
        if kind == "conv":
            return "tf32" if torch.backends.cudnn.allow_tf32 else "ieee"
        precision = torch.get_float32_matmul_precision()
    except RuntimeError:  # mixed legacy/new settings: torch refuses to answer
        return "ieee"
    return {"highest": "ieee", "high": "tf32", "medium": "bf16"}.get(precision, "ieee")


def fp32_precision(kind: str, device: str) -> str:
    """The precision a float32 op of math kind ("conv", "matmul", "none") computes in on device: "ieee",
    "tf32" or "bf16", from cuDNN/cuBLAS flags on CUDA and oneDNN's on the CPU."""
    if kind not in ("conv", "matmul"):
        return "ieee"
    dev_kind, _ = _kind(resolve(device) or device)
    has_new = hasattr(torch.backends.cudnn, "conv") and hasattr(torch.backends.cuda.matmul, "fp32_precision")
    if dev_kind == "cuda":
        if not has_new:
            return _legacy(kind)
        return _flag("cudnn", "conv") if kind == "conv" else _flag("cuda", "matmul")
    if dev_kind == "cpu" and hasattr(torch.backends, "mkldnn") and torch.backends.mkldnn.is_available():
        if not bool(torch.backends.mkldnn.enabled) or not hasattr(torch.backends.mkldnn, "conv"):
            return "ieee"
        return _flag("mkldnn", "conv" if kind == "conv" else "matmul")
    return "ieee"


def compute_precision(dtype: str, kind: str, device: str) -> str:
    """What a variant really computes in: for float32 the flags' precision of its math kind, for any other
    dtype the dtype itself."""
    return fp32_precision(kind, device) if dtype == "float32" else dtype


#: torch.set_float32_matmul_precision's name for each pinned precision: it sets cuBLAS's and oneDNN's matmul
#: flags together, the one way torch accepts (setting both fp32_precision flags by hand leaves torch refusing
#: to answer get_float32_matmul_precision).
_MATMUL_PRECISION = {"ieee": "highest", "tf32": "high"}

Flags = tuple[str, str, str]
"""cuDNN's conv flag, oneDNN's conv flag, and torch's float32 matmul precision ("highest", "high", ...)."""


def _current_flags() -> Flags:
    b: Any = torch.backends
    try:
        matmul = torch.get_float32_matmul_precision()
    except RuntimeError:  # mixed legacy/new settings: restore to torch's default
        matmul = "highest"
    return b.cudnn.conv.fp32_precision, b.mkldnn.conv.fp32_precision, matmul


def _restore_flags(flags: Flags) -> None:
    b: Any = torch.backends
    b.cudnn.conv.fp32_precision, b.mkldnn.conv.fp32_precision = flags[0], flags[1]
    torch.set_float32_matmul_precision(flags[2])


def set_fp32_precision(mode: str | None) -> None:
    """Pin float32 convolutions and matmuls to "ieee" or "tf32" on CUDA and oneDNN; "default" or None leaves
    torch's flags as they are."""
    if mode in (None, "default"):
        return
    if mode not in _MATMUL_PRECISION:
        raise ValueError(f'fp32 precision "{mode}": expected ieee, tf32 or default')
    b: Any = torch.backends
    b.cudnn.conv.fp32_precision = mode
    b.mkldnn.conv.fp32_precision = mode
    torch.set_float32_matmul_precision(_MATMUL_PRECISION[mode])


@contextlib.contextmanager
def pin_fp32_precision(mode: str | None) -> Iterator[None]:
    """set_fp32_precision(mode) for the block, the flags as they were afterwards."""
    if mode in (None, "default"):
        yield
        return
    saved = _current_flags()
    set_fp32_precision(mode)
    try:
        yield
    finally:
        _restore_flags(saved)


def precision_flags() -> dict[str, Any]:
    """Every flag that decides a float32 conv's or matmul's precision, read without tripping torch's check
    against mixed legacy and new settings."""

    def read(get: Any) -> Any:
        try:
            return get()
        except (RuntimeError, AttributeError):
            return None

    b: Any = torch.backends
    return {
        "cudnn_conv_fp32_precision": read(lambda: b.cudnn.conv.fp32_precision),
        "cuda_matmul_fp32_precision": read(lambda: b.cuda.matmul.fp32_precision),
        "mkldnn_conv_fp32_precision": read(lambda: b.mkldnn.conv.fp32_precision),
        "mkldnn_matmul_fp32_precision": read(lambda: b.mkldnn.matmul.fp32_precision),
        "cudnn_allow_tf32": read(lambda: b.cudnn.allow_tf32),
        "cuda_matmul_allow_tf32": read(lambda: b.cuda.matmul.allow_tf32),
        "float32_matmul_precision": read(torch.get_float32_matmul_precision),
        "conv_compute_precision_cuda": fp32_precision("conv", "cuda"),
        "matmul_compute_precision_cuda": fp32_precision("matmul", "cuda"),
        "conv_compute_precision_cpu": fp32_precision("conv", "cpu"),
        "matmul_compute_precision_cpu": fp32_precision("matmul", "cpu"),
    }


# ---------------------------------------------------------------------------------------------------------
# the GPU's fingerprint
# ---------------------------------------------------------------------------------------------------------


def _nvml(index: int) -> dict[str, Any]:
    """Clocks and power limit from NVML (nvidia-ml-py) when it is installed; {} otherwise."""
    try:
        import pynvml  # type: ignore[import-not-found]
    except ImportError:
        return {}
    try:
        pynvml.nvmlInit()
        handle = pynvml.nvmlDeviceGetHandleByIndex(index)
        out = {
            "sm_clock_max_mhz": pynvml.nvmlDeviceGetMaxClockInfo(handle, pynvml.NVML_CLOCK_SM),
            "mem_clock_max_mhz": pynvml.nvmlDeviceGetMaxClockInfo(handle, pynvml.NVML_CLOCK_MEM),
            "sm_clock_mhz": pynvml.nvmlDeviceGetClockInfo(handle, pynvml.NVML_CLOCK_SM),
            "power_limit_w": pynvml.nvmlDeviceGetPowerManagementLimit(handle) / 1000.0,
        }
        pynvml.nvmlShutdown()
        return out
    except Exception as exc:  # NVML present but unusable (no driver, no permission): say why
        return {"nvml_error": f"{type(exc).__name__}: {exc}"}


def _cublas_version() -> str | None:
    """cuBLAS's version from its wheel (nvidia-cublas*, what pip-installed torch loads); None without one."""
    import importlib.metadata

    for dist in importlib.metadata.distributions():
        name = (dist.metadata["Name"] or "").lower().replace("_", "-")
        if name.startswith("nvidia-cublas"):
            return str(dist.version)
    return None


def gpu_fingerprint() -> list[dict[str, Any]]:
    """One entry per CUDA device: name, capability, SM count, memory, L2 size, clocks and power limit (NVML),
    driver, cuDNN and cuBLAS versions. [] without CUDA."""
    if not torch.cuda.is_available():
        return []
    cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    out = []
    for i in range(torch.cuda.device_count()):
        props = torch.cuda.get_device_properties(i)
        entry: dict[str, Any] = {
            "device": f"cuda:{i}",
            "name": props.name,
            "capability": f"{props.major}.{props.minor}",
            "sm_count": getattr(props, "multi_processor_count", None),
            "total_memory_bytes": props.total_memory,
            "l2_cache_bytes": getattr(props, "L2_cache_size", None),
            "clock_rate_khz": getattr(props, "clock_rate", None),
            "driver_version": _driver_version(),
            "cudnn_version": cudnn,
            "cublas_version": _cublas_version(),
        }
        entry.update(_nvml(i))
        out.append(entry)
    return out


def _driver_version() -> int | None:
    get = getattr(torch.cuda, "driver_version", None) or getattr(torch._C, "_cuda_getDriverVersion", None)
    try:
        return int(get()) if get is not None else None
    except Exception:
        return None
