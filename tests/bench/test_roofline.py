"""Tests of cnnbench.bench.roofline: FLOPs, bytes moved and intensity of known shapes (a GEMM, a 3x3 convolution,
a max pool) against hand-computed figures; the bound, % of bound and ceiling raise arithmetic."""

from __future__ import annotations

import pytest

from cnnbench.bench.roofline import Roofline, gemm_shapes, roofline, variant_traffic
from cnnbench.bench.runner import count_variant_flops
from cnnbench.casefile.load import load_text
from cnnbench.casefile.variants import BenchVariant, expand_benchmarks

SHAPES = """\
benchmarks:
  - id: gemm
    op: linear
    devices: [cpu]
    dtypes: [float32, float16]
    modes: [inference, train]
    inputs: {input: {randn: [32, 64]}, weight: {randn: [16, 64]}}
  - id: conv3x3
    op: conv2d
    devices: [cpu]
    dtypes: [float32, float16]
    args: {padding: 1}
    inputs: {input: {randn: [2, 8, 16, 16]}, weight: {randn: [16, 8, 3, 3]}}
  - id: pool
    op: max_pool2d
    devices: [cpu]
    args: {kernel_size: 2, stride: 2}
    inputs: {input: {randn: [1, 4, 8, 8]}}
"""


@pytest.fixture(scope="module")
def variants() -> dict[str, BenchVariant]:
    return {v.id: v for v in expand_benchmarks(load_text(SHAPES, "shapes.yaml").benchmarks)}


def _v(
    variants: dict[str, BenchVariant], name: str, dtype: str = "float32", mode: str = "inference"
) -> BenchVariant:
    batch = {"gemm": 32, "conv3x3": 2, "pool": 1}[name]
    return variants[f"{name}[cpu-{dtype}-b{batch}-{mode}-contiguous]"]


def test_a_gemm(variants: dict[str, BenchVariant]) -> None:
    v = _v(variants, "gemm")
    forward, both = count_variant_flops(v)
    assert forward == 2 * 32 * 16 * 64 == 65_536
    assert both == 3 * forward  # grad input and grad weight are a GEMM each
    traffic = variant_traffic(v)
    # 4 bytes x (input 32x64 + weight 16x64 + output 32x16)
    assert (traffic.inputs, traffic.outputs, traffic.gradients) == (4 * (2048 + 1024), 4 * 512, 0)
    assert traffic.total == 14_336
    assert forward / traffic.total == pytest.approx(4.5714, rel=1e-4)
    train = variant_traffic(_v(variants, "gemm", mode="train"))
    # + the output's gradient read, the input's and the weight's written: the forward bytes once more.
    assert train.gradients == 4 * (512 + 2048 + 1024) and train.total == 28_672
    assert variant_traffic(_v(variants, "gemm", "float16")).total == 14_336 // 2
    assert gemm_shapes(v) == {(32, 16, 64): 1}


def test_a_3x3_convolution(variants: dict[str, BenchVariant]) -> None:
    v = _v(variants, "conv3x3")
    forward, _ = count_variant_flops(v)
    # 2 FLOP x output elements (2 x 16 x 16 x 16) x reduction (8 channels x 3 x 3)
    assert forward == 2 * 8192 * 72 == 1_179_648
    traffic = variant_traffic(v)
    assert traffic.total == 4 * (2 * 8 * 16 * 16 + 16 * 8 * 9 + 2 * 16 * 16 * 16) == 53_760
    assert forward / traffic.total == pytest.approx(21.943, rel=1e-4)
    assert variant_traffic(_v(variants, "conv3x3", "float16")).total == 26_880
    assert gemm_shapes(v) == {
        (2 * 16 * 16, 16, 8 * 9): 1
    }  # the im2col GEMM: m = N*Ho*Wo, n = Cout, k = Cin*kh*kw


def test_a_max_pool(variants: dict[str, BenchVariant]) -> None:
    v = _v(variants, "pool")
    forward, _ = count_variant_flops(v)
    assert forward == 0  # FlopCounterMode counts no comparisons: a pooling row is judged by bandwidth
    traffic = variant_traffic(v)
    assert traffic.total == 4 * (4 * 8 * 8 + 4 * 4 * 4) == 1280
    line = Roofline(0, traffic.total, 1e-6, 100.0, 10.0)
    assert line.intensity == 0 and line.bound == "memory" and line.gflops is None
    assert line.gbs == pytest.approx(1.28) and line.pct_of_bound == pytest.approx(12.8)
    assert gemm_shapes(v) == {}


def test_the_bound_is_the_lower_roof() -> None:
    # The GEMM above at 100 GFLOP/s compute, 10 GB/s: 4.57 FLOP/byte x 10 GB/s = 45.7 < 100, memory bound.
    gemm = Roofline(65_536, 14_336, 65_536 / 22.857e9, 100.0, 10.0)
    assert gemm.bound == "memory" and gemm.bound_gflops == pytest.approx(45.714, rel=1e-4)
    assert gemm.pct_of_bound == pytest.approx(50.0, rel=1e-3) and gemm.gbs == pytest.approx(5.0, rel=1e-3)
    # The convolution: 21.9 x 10 = 219 > 100, compute bound.
    conv = Roofline(1_179_648, 53_760, 1_179_648 / 25e9, 100.0, 10.0)
    assert conv.bound == "compute" and conv.bound_gflops == 100.0 and conv.pct_of_bound == pytest.approx(25.0)


def test_a_row_beating_its_ceiling_raises_it_and_stays_at_100_percent() -> None:
    told: list[tuple[str, float]] = []
    line = roofline(1e9, 1e6, 1e-2, 50.0, 10.0, on_raise=lambda kind, rate: told.append((kind, rate)))
    # 100 GFLOP/s achieved against a 50 GFLOP/s ceiling: the ceiling becomes 100, the row 100 %.
    assert line.raised == ("compute",) and told == [("compute", pytest.approx(100.0))]
    assert line.pct_of_bound == pytest.approx(100.0)
    memory = roofline(0, 1e9, 1e-2, 50.0, 10.0)  # 100 GB/s against 10: bandwidth raised
    assert memory.raised == ("memory",) and memory.bandwidth_gbs == pytest.approx(100.0)
    assert memory.pct_of_bound == pytest.approx(100.0)
    below = roofline(1e9, 1e6, 1.0, 50.0, 10.0)
    assert below.raised == () and below.pct_of_bound == pytest.approx(2.0)


def test_a_missing_ceiling_leaves_no_percentage() -> None:
    assert Roofline(1e9, 1e6, 1e-2, None, 10.0).pct_of_bound is None
    assert Roofline(1e9, 1e6, 1e-2, 50.0, None).bound is None
    assert Roofline(0, 1e6, 1e-2, 50.0, None).pct_of_bound is None
    assert Roofline(0, 0, 1e-2, 50.0, 10.0).bound is None
