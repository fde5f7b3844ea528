"""Compute precision and TF32 (cnnbench.numerics.precision, with the tolerance model and the runner): TF32 is
emulated on the CPU by rounding float32 inputs and weights to a 10-bit mantissa before a float32 conv."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import torch
import torch.nn.functional as F

from cnnbench import device as device_module
from cnnbench.casefile.load import load_text
from cnnbench.casefile.variants import Variant, expand
from cnnbench.numerics import oracle
from cnnbench.numerics.checks import check_close
from cnnbench.numerics.precision import (
    FP32_PRECISION_ENV,
    case_math_kind,
    pin_for,
    run_pin,
    variant_compute_precision,
)
from cnnbench.numerics.runner import run_check
from cnnbench.numerics.tolerance import reference_tolerance


def tf32_round(x: torch.Tensor) -> torch.Tensor:
    """x (float32) rounded to nearest-even at a 10-bit mantissa: TF32's values, still stored as float32."""
    bits = x.contiguous().view(torch.int32)
    bits = (bits + 0xFFF + ((bits >> 13) & 1)) & ~0x1FFF
    return bits.view(torch.float32)


def test_tf32_round_keeps_11_significand_bits() -> None:
    x = torch.tensor([1.0, 1 + 2**-10, 1 + 2**-11, 1 + 3 * 2**-11, 2049.0, 2047.0], dtype=torch.float32)
    # 1 + 2^-11 is a tie: even (1.0); 1 + 3 * 2^-11 rounds up to 1 + 2^-9; 2049 = 2^11 + 1 is not representable.
    assert tf32_round(x).tolist() == [1.0, 1 + 2**-10, 1.0, 1 + 2**-9, 2048.0, 2047.0]


def _conv(cin: int, dist: Callable[..., torch.Tensor], seed: int) -> tuple[torch.Tensor, ...]:
    gen = torch.Generator().manual_seed(seed)
    x = dist(2, cin, 10, 10, generator=gen, dtype=torch.float64)
    w = dist(8, cin, 3, 3, generator=gen, dtype=torch.float64)
    ref = F.conv2d(x, w)
    got = F.conv2d(tf32_round(x.float()), tf32_round(w.float())).double()
    term_norm = float(F.conv2d(x**2, w**2).max().sqrt())
    return ref, got, torch.tensor(term_norm)


@pytest.mark.parametrize("cin", [16, 64, 512])
@pytest.mark.parametrize("dist", [torch.randn, torch.rand], ids=["randn", "rand"])
def test_tf32_tolerance_accepts_emulated_tf32_and_rejects_ten_times_its_error(
    cin: int, dist: Callable[..., torch.Tensor]
) -> None:
    ref, got, term_norm = _conv(cin, dist, seed=cin)
    k, scale = cin * 9, float(ref.abs().max())
    tf32 = reference_tolerance(
        "conv2d", "float32", k, scale, compute_precision="tf32", term_norm=float(term_norm)
    )
    assert check_close("tf32", got, ref, tf32).passed
    ten_times = ref + 10 * (got - ref)
    assert not check_close("tf32 x10", ten_times, ref, tf32).passed


@pytest.mark.parametrize("cin", [16, 64, 512])
def test_ieee_tolerance_rejects_emulated_tf32(cin: int) -> None:
    ref, got, _ = _conv(cin, torch.randn, seed=cin)
    ieee = reference_tolerance("conv2d", "float32", cin * 9, float(ref.abs().max()))
    assert not check_close("ieee", got, ref, ieee).passed
    # ... while an IEEE float32 conv passes it, and the TF32 widening changes nothing for IEEE or float64.
    x_ieee = F.conv2d(*(t.float() for t in _inputs(cin, cin))).double()
    assert check_close("ieee", x_ieee, F.conv2d(*_inputs(cin, cin)), ieee).passed
    assert reference_tolerance("conv2d", "float64", 9, 1.0, compute_precision="tf32", term_norm=5.0) == (
        reference_tolerance("conv2d", "float64", 9, 1.0)
    )


def _inputs(cin: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(2, cin, 10, 10, generator=gen, dtype=torch.float64), torch.randn(
        8, cin, 3, 3, generator=gen, dtype=torch.float64
    )


def test_unknown_term_norm_falls_back_to_a_wider_tolerance() -> None:
    known = reference_tolerance("conv2d", "float32", 576, 10.0, compute_precision="tf32", term_norm=3.0)
    unknown = reference_tolerance("conv2d", "float32", 576, 10.0, compute_precision="tf32")
    assert unknown.atol > known.atol > reference_tolerance("conv2d", "float32", 576, 10.0).atol
    assert unknown.rtol == known.rtol


# --- the runner under emulated TF32 ----------------------------------------------------------------------------

CASE = """
defaults: {devices: [cpu], dtypes: [float32]}
cases:
  - id: tf32-conv
    op: conv2d
    args: {padding: 1}
    inputs:
      input: {randn: [2, 64, 10, 10], seed: 1}
      weight: {randn: [16, 64, 3, 3], seed: 2}
      bias: {randn: [16], seed: 3}
    expect: {reference: numpy}
"""


def _variant(text: str = CASE) -> Variant:
    (variant,) = expand(load_text(text, "t.yaml").cases)
    return variant


@pytest.fixture
def emulated_tf32(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """F.conv2d rounding float32 operands to TF32 first, as cuDNN does with TF32 on."""
    real = F.conv2d

    def conv2d(input: torch.Tensor, weight: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        if input.dtype == torch.float32:
            input, weight = tf32_round(input), tf32_round(weight)
        return real(input, weight, *args, **kwargs)

    monkeypatch.setattr(F, "conv2d", conv2d)
    oracle.clear_cache()
    yield
    oracle.clear_cache()


def test_reference_case_passes_under_emulated_tf32_with_the_tf32_tolerance(
    emulated_tf32: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(FP32_PRECISION_ENV, "tf32")  # the run's pin: oneDNN's conv flag reads tf32 on the CPU
    result = run_check(_variant())
    assert result.status == "passed", result.message
    assert result.compute_precision == "tf32"
    assert result.metrics["term_norm"] > 0
    assert torch.backends.mkldnn.conv.fp32_precision != "tf32"  # type: ignore[attr-defined]  # restored


def test_reference_case_fails_under_emulated_tf32_with_the_ieee_tolerance(emulated_tf32: None) -> None:
    result = run_check(_variant(CASE.replace("expect:", "fp32_precision: ieee\n    expect:")))
    assert result.status == "failed"
    assert result.compute_precision == "ieee"
    assert "reference output" in result.message


def test_the_same_case_passes_in_ieee_without_emulation() -> None:
    oracle.clear_cache()
    result = run_check(_variant())
    assert result.status == "passed", result.message
    assert result.compute_precision == "ieee"


def test_literal_expectations_widen_under_tf32(emulated_tf32: None, monkeypatch: pytest.MonkeyPatch) -> None:
    # A result 2^-11 relative from the expected value (one TF32 rounding of an input): outside float32's default
    # tolerance, inside the float16 defaults a TF32 result gets.
    case = """
defaults: {devices: [cpu], dtypes: [float32]}
cases:
  - id: lit
    op: conv2d
    inputs: {input: [[[[1.001953125]]]], weight: [[[[1.0]]]]}
    expect: {output: [[[[1.001953125]]]]}
"""
    assert run_check(_variant(case)).status == "passed"  # 1 + 2^-9 is a TF32 value: exact
    off = case.replace("1.001953125]]]], weight", "1.0009765625]]]], weight").replace(
        "output: [[[[1.001953125", "output: [[[[1.00146484375"
    )
    assert run_check(_variant(off)).status == "failed"  # IEEE default tolerance: 2^-11 relative is too much
    monkeypatch.setenv(FP32_PRECISION_ENV, "tf32")
    assert run_check(_variant(off)).status == "passed"  # float16's defaults for a TF32 result


# --- math kind, pins, compute precision ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        ("op: conv2d", "conv"),
        ("op: linear", "matmul"),
        ("op: relu", "none"),
        ("module: Conv2d\n    args: {in_channels: 1, out_channels: 1, kernel_size: 1}", "conv"),
        ("module: Linear\n    args: {in_features: 1, out_features: 1}", "matmul"),
        (
            "layers:\n      - {module: Linear, args: {in_features: 1, out_features: 1}}\n"
            "      - {module: Conv2d, args: {in_channels: 1, out_channels: 1, kernel_size: 1}}",
            "conv",
        ),
    ],
)
def test_case_math_kind(body: str, kind: str) -> None:
    text = f"cases:\n  - id: a\n    {body}\n    inputs: {{x: [1.0]}}\n    expect: {{shape: [1]}}\n"
    (case,) = load_text(text, "t.yaml").cases
    assert case_math_kind(case.spec) == kind


def test_pins_case_over_run(monkeypatch: pytest.MonkeyPatch) -> None:
    variant = _variant()
    monkeypatch.delenv(FP32_PRECISION_ENV, raising=False)
    assert run_pin() is None and pin_for(variant.case.spec) is None
    monkeypatch.setenv(FP32_PRECISION_ENV, "default")
    assert run_pin() is None
    monkeypatch.setenv(FP32_PRECISION_ENV, "tf32")
    assert pin_for(variant.case.spec) == "tf32"
    pinned = _variant(CASE.replace("expect:", "fp32_precision: ieee\n    expect:"))
    assert pin_for(pinned.case.spec) == "ieee"


def test_compute_precision_per_dtype_and_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    text = CASE.replace("dtypes: [float32]", "dtypes: [float32, float16, int64]").replace(
        "expect: {reference: numpy}", "expect: {shape: [2, 16, 10, 10]}"
    )
    by_dtype = {v.dtype: v for v in expand(load_text(text, "t.yaml").cases)}
    assert variant_compute_precision(by_dtype["float16"]) == "float16"
    assert variant_compute_precision(by_dtype["int64"]) is None
    assert variant_compute_precision(by_dtype["float32"]) == "ieee"
    with device_module.pin_fp32_precision("tf32"):
        assert variant_compute_precision(by_dtype["float32"]) == "tf32"
    cuda = by_dtype["float32"].__class__(by_dtype["float32"].case, "cuda", "float32")
    with device_module.pin_fp32_precision("ieee"):
        assert variant_compute_precision(cuda) == "ieee"
    with device_module.pin_fp32_precision("tf32"):
        assert variant_compute_precision(cuda) == "tf32"


LITERAL = """
defaults: {devices: [cpu], dtypes: [float32]}
cases:
  - id: lit
    op: conv2d
    inputs: {input: [[[[2.0]]]], weight: [[[[3.0]]]]}
    expect: {output: [[[[6.0]]]]}
"""


def test_repro_script_pins_the_compute_precision() -> None:
    from cnnbench.numerics.repro import repro_snippet

    variant = _variant(LITERAL)
    assert "fp32_precision" not in repro_snippet(variant)
    script = repro_snippet(variant, {"status": "failed", "message": "m", "compute_precision": "tf32"})
    assert "torch.backends.cudnn.conv.fp32_precision = 'tf32'" in script
    assert "torch.set_float32_matmul_precision('high')" in script
    pinned = _variant(LITERAL.replace("expect:", "fp32_precision: ieee\n    expect:"))
    assert "torch.set_float32_matmul_precision('highest')" in repro_snippet(pinned)
    import subprocess
    import sys

    ran = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=False)
    assert ran.returncode == 0 and "reproduces as expected" in ran.stdout, ran.stderr


def test_term_norm_ignores_non_finite_products() -> None:
    import numpy as np

    x = np.ones((1, 1, 2, 2))
    x[0, 0, 0, 0] = np.inf
    norm = oracle._term_norm("conv2d", {}, [x, np.full((1, 1, 1, 1), 2.0)])
    assert norm == 2.0  # the three finite products |1 * 2|
    assert oracle._term_norm("relu", {}, [x]) is None
