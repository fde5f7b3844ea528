"""Tests of cnnbench.bench.measure and cnnbench.bench.models: structure and invariants, never relative speed."""

from __future__ import annotations

import importlib
import json
import math
import sys
import time
from pathlib import Path

import pytest
import torch
from torch import nn

from cnnbench.bench import measure as bench
from cnnbench.bench import models
from cnnbench.bench.measure import Measurement

CUDA = torch.cuda.is_available()
needs_cuda = pytest.mark.skipif(not CUDA, reason="CUDA is not available")
needs_no_cuda = pytest.mark.skipif(CUDA, reason="checks the error raised when CUDA is missing")

RESNET18_FORWARD_FLOPS = 3_628_146_688  # FlopCounterMode, 1x3x224x224: 2 FLOPs per multiply-add
RESNET18_PARAMS = 11_689_512
TORCHVISION_PARAMS = {
    "resnet18": 11_689_512,
    "resnet50": 25_557_032,
    "mobilenet_v3_large": 5_483_032,
    "efficientnet_b0": 5_288_548,
    "vgg11": 132_863_336,
    "googlenet": 6_624_904,  # aux_logits=False
}


@pytest.fixture(scope="module")
def resnet18() -> nn.Module:
    return models.build_model("resnet18").eval()


# --------------------------------------------------------------------------------------------- Measurement


def test_measurement_statistics_by_hand() -> None:
    m = Measurement(
        times_s=(5.0, 1.0, 3.0, 2.0, 4.0), number_per_run=7, warmup_s=0.1, first_call_s=9.0, num_threads=1
    )
    assert m.n == 5
    assert m.median_s == 3.0
    assert m.mean_s == 3.0
    assert m.min_s == 1.0
    assert m.max_s == 5.0
    assert m.iqr_s == pytest.approx(2.0)  # quartiles 2 and 4 (linear interpolation, like numpy)
    assert m.rel_iqr == pytest.approx(2.0 / 3.0)
    assert m.noisy
    tight = Measurement(
        times_s=(1.0, 1.01, 0.99, 1.0), number_per_run=1, warmup_s=0.0, first_call_s=1.0, num_threads=1
    )
    assert not tight.noisy
    json.dumps(m.as_dict())


def test_measurement_rejects_empty() -> None:
    with pytest.raises(ValueError):
        Measurement(times_s=(), number_per_run=1, warmup_s=0.0, first_call_s=0.0, num_threads=1)


def test_measure_structure_and_invariants() -> None:
    calls = 0
    x = torch.randn(64, 64)

    def fn() -> torch.Tensor:
        nonlocal calls
        calls += 1
        return x @ x

    threads_before = torch.get_num_threads()
    m = bench.measure(fn, min_replicates=5, max_time_s=0.3, min_block_s=0.002)
    assert torch.get_num_threads() == threads_before
    assert m.num_threads == threads_before
    assert m.device == "cpu"
    assert m.n >= 5
    assert len(m.times_s) == m.n
    assert m.number_per_run >= 1
    assert m.min_s <= m.median_s <= m.max_s
    assert all(t > 0 and math.isfinite(t) for t in m.times_s)
    assert m.first_call_s > 0
    assert m.warmup_s > 0
    # the first call and the warm-up blocks are not among the samples
    assert calls >= 1 + m.n * m.number_per_run + 1


def test_measure_stops_at_min_replicates_when_budget_is_spent() -> None:
    m = bench.measure(lambda: time.sleep(0.001), min_replicates=4, max_time_s=0.001, min_block_s=0.0005)
    assert m.n == 4
    assert m.number_per_run == 1


def test_measure_never_takes_a_single_sample() -> None:
    with pytest.raises(ValueError):
        bench.measure(lambda: None, min_replicates=1)
    with pytest.raises(ValueError):
        bench.measure(lambda: None, max_time_s=0)


def test_set_threads() -> None:
    before = torch.get_num_threads()
    try:
        assert bench.set_threads(None) == before
        assert bench.set_threads(1) == 1
        assert torch.get_num_threads() == 1
        with pytest.raises(ValueError):
            bench.set_threads(0)
    finally:
        torch.set_num_threads(before)


def test_sync_cpu_is_a_no_op() -> None:
    bench.sync("cpu")
    bench.sync(torch.device("cpu"))


@needs_no_cuda
def test_cuda_paths_fail_cleanly_without_cuda() -> None:
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        bench.sync("cuda")
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        bench.peak_memory_bytes(lambda: None, "cuda")
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        bench.peak_gemm_flops("cuda", torch.float32, n=64)


@needs_cuda
def test_measure_on_cuda() -> None:
    x = torch.randn(512, 512, device="cuda")
    m = bench.measure(lambda: x @ x, device="cuda", max_time_s=0.3)
    assert m.device.startswith("cuda")
    assert m.n >= 5
    assert m.min_s <= m.median_s <= m.max_s


@needs_cuda
def test_peak_memory_on_cuda() -> None:
    nbytes = 64 * 2**20

    def fn() -> None:
        t = torch.empty(nbytes, dtype=torch.uint8, device="cuda")
        t.fill_(1)

    peak = bench.peak_memory_bytes(fn, "cuda")
    assert peak is not None
    assert peak >= nbytes


@needs_cuda
def test_peak_gemm_on_cuda() -> None:
    flops = bench.peak_gemm_flops("cuda", torch.float16, n=1024, max_time_s=0.3)
    assert flops > 0
    assert math.isfinite(flops)


# --------------------------------------------------------------------------------------------- FLOPs, params


def test_count_flops_matmul() -> None:
    a, b = torch.randn(4, 5), torch.randn(5, 6)
    assert bench.count_flops(torch.mm, a, b) == 2 * 4 * 5 * 6
    assert bench.count_flops(lambda: torch.mm(a, b)) == 2 * 4 * 5 * 6


def test_resnet18_forward_flops_and_params(resnet18: nn.Module) -> None:
    x = models.example_input("resnet18")
    assert bench.model_flops(resnet18, x, backward=False) == RESNET18_FORWARD_FLOPS
    assert bench.param_count(resnet18) == RESNET18_PARAMS
    with torch.no_grad():
        assert resnet18(x).shape == (1, 1000)


def test_model_flops_backward_exact_and_side_effect_free() -> None:
    model = models.mnist_cnn()
    x = models.example_input("mnist_cnn")
    conv1 = 2 * 1 * 16 * 5 * 5 * 28 * 28
    conv2 = 2 * 16 * 32 * 5 * 5 * 14 * 14
    fc = 2 * 32 * 7 * 7 * 10
    forward = conv1 + conv2 + fc
    # backward: weight grads everywhere, input grads except for the first conv (x does not require grad)
    backward = conv1 + 2 * conv2 + 2 * fc
    assert bench.model_flops(model, x, backward=False) == forward
    assert bench.model_flops(model, x, backward=True) == forward + backward
    assert all(p.grad is None for p in model.parameters())


def test_model_flops_backward_of_depthwise_conv_counts_per_group() -> None:
    conv = nn.Conv2d(4, 4, kernel_size=3, padding=1, groups=4, bias=False)
    x = torch.randn(1, 4, 8, 8)
    forward = 2 * 4 * 1 * 3 * 3 * 8 * 8  # each output channel sees one input channel
    assert bench.model_flops(conv, x, backward=False) == forward
    # weight grad costs as much as the forward; no input grad since x does not require grad
    assert bench.model_flops(conv, x, backward=True) == 2 * forward
    marker = torch.ones_like(conv.weight)
    conv.weight.grad = marker
    assert bench.model_flops(conv, x.requires_grad_(), backward=True) == 3 * forward
    assert x.grad is None
    assert conv.weight.grad is marker  # .grad attributes are restored


def test_model_flops_backward_needs_something_to_differentiate() -> None:
    model = models.lenet()
    model.requires_grad_(False)
    with pytest.raises(ValueError):
        bench.model_flops(model, models.example_input("lenet"), backward=True)


def test_param_count_trainable_only() -> None:
    model = models.lenet()
    assert bench.param_count(model) == 61_706
    model[0].requires_grad_(False)
    assert bench.param_count(model, trainable_only=True) == 61_706 - (6 * 1 * 5 * 5 + 6)
    assert bench.param_count(model) == 61_706


# --------------------------------------------------------------------------------------------- GEMM peak


def test_peak_gemm_positive_finite_and_cached(monkeypatch: pytest.MonkeyPatch) -> None:
    bench.clear_peak_cache()
    flops = bench.peak_gemm_flops("cpu", torch.float32, n=128, max_time_s=0.2)
    assert flops > 0
    assert math.isfinite(flops)
    key = ("cpu", torch.float32, torch.get_num_threads(), 128, torch.get_float32_matmul_precision())
    assert bench._PEAK_CACHE[key] == flops

    def no_measuring(*args: object, **kwargs: object) -> Measurement:
        raise AssertionError("a cache hit must not measure again")

    monkeypatch.setattr(bench, "measure", no_measuring)
    assert bench.peak_gemm_flops("cpu", torch.float32, n=128, max_time_s=0.2) == flops
    bench.clear_peak_cache()
    assert not bench._PEAK_CACHE


def test_peak_gemm_low_precision_cpu_probe() -> None:
    flops = bench.peak_gemm_flops("cpu", torch.bfloat16, n=64, max_time_s=0.2)
    assert flops > 0
    assert math.isfinite(flops)


def test_peak_gemm_rejects_integer_dtype() -> None:
    with pytest.raises(ValueError):
        bench.peak_gemm_flops("cpu", torch.int32)


def test_default_gemm_sizes() -> None:
    assert bench.default_gemm_size("cpu", torch.float32) == 1024
    assert bench.default_gemm_size("cpu", torch.bfloat16) == 256
    assert bench.default_gemm_size("cpu", torch.float16) == 256
    assert bench.default_gemm_size("cuda", torch.bfloat16) == 4096


def test_is_slow_path() -> None:
    assert bench.is_slow_path(1e9, 150e9)
    assert not bench.is_slow_path(100e9, 150e9)
    assert not bench.is_slow_path(300e9, 150e9)
    assert bench.is_slow_path(60e9, 150e9, factor=2.0)
    with pytest.raises(ValueError):
        bench.is_slow_path(0.0, 1.0)


# --------------------------------------------------------------------------------------------- memory


def test_peak_memory_is_none_on_cpu() -> None:
    assert bench.peak_memory_bytes(lambda: None, "cpu") is None


_CHILD_MODULE = """
def allocate(mb):
    buf = bytearray(b"\\x01") * (mb * 1024 * 1024)  # written, so every page is resident
    return len(buf)

def fail():
    raise ValueError("boom")
"""


@pytest.fixture
def child_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    (tmp_path / "cnnbench_rss_child.py").write_text(_CHILD_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))  # the child inherits sys.path
    return "cnnbench_rss_child"


@pytest.mark.skipif(sys.platform == "win32", reason="resource is Unix-only")
def test_cpu_peak_rss_of_child(child_module: str) -> None:
    rss = bench.cpu_peak_rss_bytes(f"{child_module}:allocate", {"mb": 200})
    assert rss.baseline_bytes > 0
    assert rss.peak_bytes >= rss.baseline_bytes
    assert rss.increment_bytes >= 200_000_000  # 200 MB (the child allocates 200 MiB)
    # the child's figures must not include this (much bigger, torch-importing) process
    assert rss.baseline_bytes < 200_000_000


@pytest.mark.skipif(sys.platform == "win32", reason="resource is Unix-only")
def test_cpu_peak_rss_errors(child_module: str) -> None:
    with pytest.raises(RuntimeError, match="boom"):
        bench.cpu_peak_rss_bytes(f"{child_module}:fail")
    for bad in ("os.system", "os:system;rm", "__import__('os'):x", ":f"):
        with pytest.raises(ValueError):
            bench.cpu_peak_rss_bytes(bad)
    with pytest.raises(ValueError):
        bench.cpu_peak_rss_bytes(f"{child_module}:allocate", {"mb": object()})


# --------------------------------------------------------------------------------------------- models


def test_model_registry_names() -> None:
    assert set(models.MODELS) == {*TORCHVISION_PARAMS, "lenet", "mnist_cnn"}
    with pytest.raises(KeyError):
        models.build_model("os.system")
    with pytest.raises(KeyError):
        models.default_input_shape("nope")


@pytest.mark.parametrize("name", sorted(TORCHVISION_PARAMS))
def test_torchvision_models_build_with_right_shapes(name: str) -> None:
    pytest.importorskip("torchvision")
    assert models.default_input_shape(name) == (3, 224, 224)
    with torch.device("meta"):  # shapes and parameter counts without allocating or initialising weights
        model = models.build_model(name).eval()
        out = model(models.example_input(name, 2, device="meta"))
    assert out.shape == (2, 1000)
    assert bench.param_count(model) == TORCHVISION_PARAMS[name]


@pytest.mark.parametrize(("name", "params"), [("lenet", 61_706), ("mnist_cnn", 28_938)])
def test_small_models(name: str, params: int) -> None:
    assert models.default_input_shape(name) == (1, 28, 28)
    model = models.build_model(name).eval()
    with torch.no_grad():
        out = model(models.example_input(name, 3))
    assert out.shape == (3, 10)
    assert bench.param_count(model) == params


def test_models_module_imports_without_torchvision(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torchvision", None)  # any `import torchvision` now raises ImportError
    monkeypatch.delitem(sys.modules, "torchvision.models", raising=False)
    try:
        reloaded = importlib.reload(models)
        assert set(reloaded.MODELS) == {*TORCHVISION_PARAMS, "lenet", "mnist_cnn"}
        assert reloaded.build_model("lenet") is not None
        with pytest.raises(ImportError):
            reloaded.build_model("resnet18")
    finally:
        monkeypatch.undo()
        importlib.reload(models)
