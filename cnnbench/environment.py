"""The environment fingerprint stored with every run: versions, devices, threads and numerics flags."""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import platform
import socket
import sys
from typing import Any

__all__ = [
    "FP32_PRECISION_ENV",
    "NUMERICS_ENV_VARS",
    "available_devices",
    "capture_environment",
    "cpu_model",
    "device_available",
]

#: Set by ``cnnbench run --fp32-precision``, so isolated and pool workers pin the same flags as the parent.
FP32_PRECISION_ENV = "CNNBENCH_FP32_PRECISION"
#: Environment variables that change threads, kernels or numerics; recorded when set.
NUMERICS_ENV_VARS = (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "ATEN_CPU_CAPABILITY",
    "ONEDNN_DEFAULT_FPMATH_MODE",
    "DNNL_DEFAULT_FPMATH_MODE",
    "CUBLAS_WORKSPACE_CONFIG",
    "CUDA_VISIBLE_DEVICES",
    "NVIDIA_TF32_OVERRIDE",
    "TORCH_ALLOW_TF32_CUBLAS_OVERRIDE",
)


def cpu_model() -> str:
    """The CPU's model name, from /proc/cpuinfo where there is one."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_available(device: str) -> bool:
    """Whether torch can run on device ("cpu", "cuda", "cuda:1", "mps", "accelerator", ...)."""
    from cnnbench import device as device_module

    return device_module.is_available(device)


def available_devices() -> list[str]:
    """Every device type torch can run on here, CPU first."""
    from cnnbench import device as device_module

    return device_module.available()


def capture_environment() -> dict[str, Any]:
    """Everything that can change layer numerics or speed, as plain JSON values."""
    import torch

    from cnnbench import __version__
    from cnnbench import device as device_module

    _matmul = torch.backends.cuda.matmul
    env: dict[str, Any] = {
        "cnnbench_version": __version__,
        "torch_version": torch.__version__,
        "torch_git_version": getattr(torch.version, "git_version", None),
        "torch_debug": bool(getattr(torch.version, "debug", False)),
        "cuda_version": torch.version.cuda,
        "hip_version": getattr(torch.version, "hip", None),
        "cudnn_version": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "python_version": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "hostname": socket.gethostname(),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "num_threads": torch.get_num_threads(),
        "num_interop_threads": torch.get_num_interop_threads(),
        "mkldnn_available": torch.backends.mkldnn.is_available(),
        "mkldnn_enabled": bool(torch.backends.mkldnn.enabled),
        "mkl_available": torch.backends.mkl.is_available(),
        "openmp_available": torch.backends.openmp.is_available(),
        # The build's compiler, flags and library versions, hashed: equal hashes mean builds made alike.
        "torch_config_hash": hashlib.sha256(torch.__config__.show().encode()).hexdigest()[:16],
        "cpu_capability": _cpu_capability(),
        "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
        "deterministic_algorithms_warn_only": torch.is_deterministic_algorithms_warn_only_enabled(),
        "cudnn_enabled": bool(torch.backends.cudnn.enabled),
        "cudnn_deterministic": torch.backends.cudnn.deterministic,
        "cudnn_benchmark": torch.backends.cudnn.benchmark,
        # The fp32 precision flags (new and legacy API) and the compute precision they give per op kind.
        **device_module.precision_flags(),
        "cuda_matmul_allow_fp16_reduced_precision": _matmul.allow_fp16_reduced_precision_reduction,
        "cuda_matmul_allow_bf16_reduced_precision": _matmul.allow_bf16_reduced_precision_reduction,
        "devices": available_devices(),
        "accelerators": device_module.gpu_fingerprint(),
        "env_vars": {name: os.environ[name] for name in NUMERICS_ENV_VARS if name in os.environ},
        "argv": sys.argv,
    }
    # Read from the package metadata: importing torchvision is slow, and fails beside some torch builds.
    try:
        env["torchvision_version"] = importlib.metadata.version("torchvision")
    except importlib.metadata.PackageNotFoundError:
        env["torchvision_version"] = None
    return env


def _cpu_capability() -> str | None:
    import torch

    get = getattr(torch.backends.cpu, "get_cpu_capability", None)
    return str(get()) if get is not None else None
