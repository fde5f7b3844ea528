"""The device module (cnnbench.device) against fake backends: no accelerator is needed to exercise the CUDA,
torch.accelerator and NVML branches."""

from __future__ import annotations

import sys
import types
from typing import Any

import pytest
import torch

from cnnbench import device as dm


class FakeEvent:
    def __init__(self, enable_timing: bool = False) -> None:
        self.enable_timing = enable_timing


class FakeBackend:
    """What cnnbench.device asks of torch.cuda / torch.xpu / torch.accelerator."""

    Event = FakeEvent

    def __init__(self, available: bool = True, count: int = 2) -> None:
        self.available, self.count = available, count
        self.calls: list[tuple[str, Any]] = []
        self.peak = 0

    def is_available(self) -> bool:
        return self.available

    def device_count(self) -> int:
        return self.count

    def synchronize(self, device: Any = None) -> None:
        self.calls.append(("synchronize", device))

    def reset_peak_memory_stats(self, device: Any = None) -> None:
        self.calls.append(("reset", device))
        self.peak = 0

    def max_memory_allocated(self, device: Any = None) -> int:
        return self.peak

    def manual_seed_all(self, seed: int) -> None:
        self.calls.append(("seed", seed))


class FakeAccelerator(FakeBackend):
    def __init__(self, kind: str | None) -> None:
        super().__init__(available=kind is not None)
        self.kind = kind

    def current_accelerator(self) -> torch.device | None:
        return None if self.kind is None else torch.device(self.kind)


@pytest.fixture
def fake_cuda(monkeypatch: pytest.MonkeyPatch) -> FakeBackend:
    fake = FakeBackend()
    real = dm.backend
    monkeypatch.setattr(dm, "backend", lambda kind: fake if kind == "cuda" else real(kind))
    monkeypatch.setattr(dm, "_current_accelerator", lambda: "cuda")
    return fake


def test_cpu_needs_no_backend() -> None:
    assert dm.backend("cpu") is None
    assert dm.is_available("cpu") and dm.available()[0] == "cpu"
    dm.synchronize("cpu")  # nothing to wait for
    assert dm.event_pair("cpu") is None
    assert dm.reset_peak_memory("cpu") is False and dm.max_memory_allocated("cpu") is None


def test_fake_cuda_availability_sync_events_memory(fake_cuda: FakeBackend) -> None:
    assert dm.is_available("cuda") and dm.is_available("cuda:1") and not dm.is_available("cuda:2")
    assert "cuda" in dm.available()
    dm.synchronize("cuda:1")
    assert fake_cuda.calls == [("synchronize", torch.device("cuda:1"))]
    pair = dm.event_pair("cuda")
    assert pair is not None and all(isinstance(e, FakeEvent) and e.enable_timing for e in pair)
    fake_cuda.peak = 123
    assert dm.reset_peak_memory("cuda") is True and fake_cuda.peak == 0
    fake_cuda.peak = 4096
    assert dm.max_memory_allocated("cuda") == 4096


def test_unavailable_backend_refuses_with_the_reason(fake_cuda: FakeBackend) -> None:
    fake_cuda.available = False
    assert not dm.is_available("cuda")
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        dm.synchronize("cuda")


def test_accelerator_resolves_to_the_machines_accelerator(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dm, "_current_accelerator", lambda: "xpu")
    assert dm.resolve("accelerator") == "xpu" and dm.resolve("accelerator:1") == "xpu:1"
    assert dm.resolve("cuda:0") == "cuda:0"
    monkeypatch.setattr(dm, "_current_accelerator", lambda: None)
    assert dm.resolve("accelerator") is None and not dm.is_available("accelerator")


def test_current_accelerator_through_torch_accelerator(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch, "accelerator", FakeAccelerator("privateuseone"), raising=False)
    assert dm._current_accelerator() == "privateuseone"
    # A PrivateUse1 backend without a torch.<name> module is reached through torch.accelerator.
    assert isinstance(dm.backend("privateuseone"), FakeAccelerator)
    assert dm.is_available("privateuseone") and "privateuseone" in dm.available()
    monkeypatch.setattr(torch, "accelerator", FakeAccelerator(None), raising=False)
    assert dm._current_accelerator() is None


def test_synchronize_without_device_argument(monkeypatch: pytest.MonkeyPatch) -> None:
    class NoArg(FakeBackend):
        def synchronize(self) -> None:  # type: ignore[override]  # torch.mps.synchronize()
            self.calls.append(("synchronize", None))

    fake = NoArg()
    monkeypatch.setattr(dm, "backend", lambda kind: fake)
    dm.synchronize("mps")
    assert fake.calls == [("synchronize", None)]


def test_seed_all_seeds_available_backends(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeBackend()
    monkeypatch.setattr(torch, "fakedev", fake, raising=False)
    monkeypatch.setattr(dm, "DEVICE_KINDS", ("fakedev",))
    dm.seed_all(7)
    assert ("seed", 7) in fake.calls
    assert torch.initial_seed() == 7


def test_flush_cache_reuses_its_buffer() -> None:
    buf = dm.flush_cache("cpu")
    assert buf.numel() * 4 >= 2**20 and int(buf.abs().sum()) == 0
    buf.fill_(3)
    assert dm.flush_cache("cpu", buf) is buf and int(buf.sum()) == 0


@pytest.mark.parametrize(
    ("message", "poisoned"),
    [
        ("CUDA error: an illegal memory access was encountered", True),
        ("CUDA error: device-side assert triggered", True),
        ("CUDA error: unspecified launch failure", True),
        ("CUDA out of memory. Tried to allocate 2.00 GiB", False),
        ("Given groups=2, expected weight to be divisible by 2", False),
    ],
)
def test_context_poisoned(message: str, poisoned: bool) -> None:
    assert dm.context_poisoned(RuntimeError(message)) is poisoned


# --- precision flags ---------------------------------------------------------------------------------------------


@pytest.fixture
def restore_flags() -> Any:
    saved = dm._current_flags()
    yield
    dm._restore_flags(saved)


def test_fp32_precision_follows_the_flags(restore_flags: None) -> None:
    b: Any = torch.backends
    b.cudnn.conv.fp32_precision = "tf32"
    b.cuda.matmul.fp32_precision = "ieee"
    assert dm.fp32_precision("conv", "cuda") == "tf32" and dm.fp32_precision("matmul", "cuda:0") == "ieee"
    assert dm.fp32_precision("none", "cuda") == "ieee"
    b.cuda.matmul.fp32_precision = "tf32"
    assert dm.fp32_precision("matmul", "cuda") == "tf32"
    b.mkldnn.conv.fp32_precision = "bf16"
    assert dm.fp32_precision("conv", "cpu") == "bf16"
    b.mkldnn.conv.fp32_precision = "none"  # inherits mkldnn's, then torch.backends', then IEEE
    assert dm.fp32_precision("conv", "cpu") == "ieee"
    assert dm.compute_precision("float16", "conv", "cuda") == "float16"
    assert dm.compute_precision("float32", "conv", "cpu") == "ieee"


def test_pin_sets_and_restores(restore_flags: None) -> None:
    before = dm._current_flags()
    with dm.pin_fp32_precision("ieee"):
        assert dm.fp32_precision("conv", "cuda") == "ieee" and dm.fp32_precision("conv", "cpu") == "ieee"
    assert dm._current_flags() == before
    with dm.pin_fp32_precision("tf32"):
        assert dm.fp32_precision("matmul", "cuda") == "tf32" and dm.fp32_precision("matmul", "cpu") == "tf32"
    with dm.pin_fp32_precision("default"):
        assert dm._current_flags() == before
    with pytest.raises(ValueError, match="expected ieee, tf32 or default"):
        dm.set_fp32_precision("fp64")


def test_legacy_flags_when_torch_has_no_fp32_precision(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch, "get_float32_matmul_precision", lambda: "high")
    assert dm._legacy("matmul") == "tf32"
    monkeypatch.setattr(torch, "get_float32_matmul_precision", lambda: "medium")
    assert dm._legacy("matmul") == "bf16"

    def refuse() -> str:
        raise RuntimeError("mix of the legacy and new APIs")

    monkeypatch.setattr(torch, "get_float32_matmul_precision", refuse)
    assert dm._legacy("matmul") == "ieee"


def test_precision_flags_survive_mixed_legacy_and_new_settings(restore_flags: None) -> None:
    b: Any = torch.backends
    b.cudnn.conv.fp32_precision = "ieee"  # conv and rnn now differ: reading cudnn.allow_tf32 raises
    flags = dm.precision_flags()
    assert flags["cudnn_conv_fp32_precision"] == "ieee"
    assert flags["cudnn_allow_tf32"] is None
    assert flags["conv_compute_precision_cuda"] == "ieee"


# --- the GPU fingerprint ---------------------------------------------------------------------------------------


def test_gpu_fingerprint_with_fake_cuda_and_nvml(monkeypatch: pytest.MonkeyPatch) -> None:
    props = types.SimpleNamespace(
        name="NVIDIA H200", major=9, minor=0, multi_processor_count=132, total_memory=141 * 2**30,
        L2_cache_size=60 * 2**20, clock_rate=1980000,
    )  # fmt: skip
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda i: props)
    nvml = types.ModuleType("pynvml")
    nvml.NVML_CLOCK_SM, nvml.NVML_CLOCK_MEM = 0, 1  # type: ignore[attr-defined]
    nvml.nvmlInit = nvml.nvmlShutdown = lambda: None  # type: ignore[attr-defined]
    nvml.nvmlDeviceGetHandleByIndex = lambda i: i  # type: ignore[attr-defined]
    nvml.nvmlDeviceGetMaxClockInfo = lambda h, k: (1980, 3201)[k]  # type: ignore[attr-defined]
    nvml.nvmlDeviceGetClockInfo = lambda h, k: 1755  # type: ignore[attr-defined]
    nvml.nvmlDeviceGetPowerManagementLimit = lambda h: 700000  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "pynvml", nvml)
    (entry,) = dm.gpu_fingerprint()
    assert entry["name"] == "NVIDIA H200" and entry["sm_count"] == 132 and entry["capability"] == "9.0"
    assert entry["sm_clock_max_mhz"] == 1980 and entry["power_limit_w"] == 700.0
    assert entry["l2_cache_bytes"] == 60 * 2**20
    assert dm.flush_cache("cpu").numel() > 0

    def broken(i: int) -> None:
        raise OSError("NVML Shared Library Not Found")

    nvml.nvmlDeviceGetHandleByIndex = broken  # type: ignore[attr-defined]
    (entry,) = dm.gpu_fingerprint()
    assert "NVML Shared Library Not Found" in entry["nvml_error"]


def test_gpu_fingerprint_is_empty_without_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert dm.gpu_fingerprint() == []


def test_pin_keeps_torch_answering_its_matmul_precision(restore_flags: None) -> None:
    # Setting cuBLAS's and oneDNN's fp32_precision flags by hand makes torch refuse get_float32_matmul_precision
    # (which the GEMM peak probe reads): every benchmark row of a --fp32-precision tf32 run errored.
    before = torch.get_float32_matmul_precision()
    with dm.pin_fp32_precision("tf32"):
        assert torch.get_float32_matmul_precision() == "high"
        assert dm.fp32_precision("matmul", "cuda") == "tf32" and dm.fp32_precision("matmul", "cpu") == "tf32"
    assert torch.get_float32_matmul_precision() == before
    with dm.pin_fp32_precision("ieee"):
        assert torch.get_float32_matmul_precision() == "highest"
