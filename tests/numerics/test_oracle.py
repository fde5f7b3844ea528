"""The oracle keys end to end: reference, exact fill, gradients, gradcheck, training, cross-checks, mistrust."""

from __future__ import annotations

import inspect
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cnnbench.casefile.load import load_text
from cnnbench.casefile.variants import Variant, expand
from cnnbench.cli import main
from cnnbench.errors import CaseFileError
from cnnbench.execution.dispatch import run_variant
from cnnbench.numerics import reference
from cnnbench.numerics.oracle import clear_cache, mistrust, skip_reason
from cnnbench.ops.catalog import MODULE_OPS
from cnnbench.ops.lowering import (
    GRADIENT_MODULES,
    GRADIENT_OPS,
    LOWERINGS,
    REFERENCE_MODULES,
    REFERENCE_OPS,
    lower_module,
)
from cnnbench.store.result import Result

ALL_FLOATS = "[float64, float32, float16, bfloat16]"


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    clear_cache()
    yield
    clear_cache()


def variants(body: str, dtypes: str = ALL_FLOATS) -> dict[str, Variant]:
    text = f"defaults:\n  devices: [cpu]\n  dtypes: {dtypes}\ncases:{body}"
    return {v.id: v for v in expand(load_text(text, "t.yaml").cases)}


def run_all(body: str, dtypes: str = ALL_FLOATS) -> dict[str, Result]:
    return {vid: run_variant(v) for vid, v in variants(body, dtypes).items()}


def statuses(results: dict[str, Result]) -> dict[str, str]:
    return {vid: r.status for vid, r in results.items()}


def load_error(body: str) -> str:
    with pytest.raises(CaseFileError) as info:
        variants(body)
    return str(info.value)


CONV = """
  - id: conv
    op: conv2d
    args: {stride: 2, padding: 1}
    inputs:
      input: {randn: [2, 6, 9, 9], seed: 1}
      weight: {randn: [4, 6, 3, 3], seed: 2}
      bias: {randn: [4], seed: 3}
    expect: {reference: numpy}
"""


# --- names known without torch ----------------------------------------------------------------------------------


def test_torch_free_name_sets_match_the_reference() -> None:
    assert set(reference.REFERENCES) == REFERENCE_OPS
    assert set(reference.GRADIENTS) == GRADIENT_OPS
    assert set(LOWERINGS) == set(MODULE_OPS) == REFERENCE_MODULES
    assert all(op in REFERENCE_OPS for op in MODULE_OPS.values())
    assert all(MODULE_OPS[m] in GRADIENT_OPS for m in GRADIENT_MODULES)


#: Each module with constructor args and an input shape: its lowering must reproduce the module in float64.
MODULE_EXAMPLES: list[tuple[str, dict[str, Any], tuple[int, ...], str]] = [
    (
        "Conv1d",
        {"in_channels": 3, "out_channels": 2, "kernel_size": 3, "padding": 2, "padding_mode": "circular"},
        (2, 3, 7),
        "eval",
    ),
    (
        "Conv2d",
        {"in_channels": 4, "out_channels": 6, "kernel_size": 3, "stride": 2, "groups": 2, "bias": False},
        (1, 4, 7, 7),
        "eval",
    ),
    (
        "Conv2d",
        {
            "in_channels": 2,
            "out_channels": 3,
            "kernel_size": [3, 2],
            "padding": "same",
            "padding_mode": "reflect",
        },
        (1, 2, 6, 5),
        "eval",
    ),
    (
        "Conv3d",
        {"in_channels": 2, "out_channels": 2, "kernel_size": 2, "dilation": 2},
        (1, 2, 5, 5, 5),
        "eval",
    ),
    (
        "ConvTranspose1d",
        {"in_channels": 2, "out_channels": 3, "kernel_size": 3, "stride": 2, "output_padding": 1},
        (1, 2, 5),
        "eval",
    ),
    (
        "ConvTranspose2d",
        {
            "in_channels": 4,
            "out_channels": 2,
            "kernel_size": 3,
            "stride": 2,
            "padding": 1,
            "groups": 2,
            "dilation": 2,
        },
        (1, 4, 4, 4),
        "eval",
    ),
    (
        "ConvTranspose3d",
        {"in_channels": 2, "out_channels": 1, "kernel_size": 2, "stride": 2},
        (1, 2, 2, 3, 2),
        "eval",
    ),
    ("MaxPool1d", {"kernel_size": 3, "stride": 2, "ceil_mode": True}, (1, 2, 8), "eval"),
    (
        "MaxPool2d",
        {"kernel_size": 3, "stride": 2, "padding": 1, "dilation": 2, "return_indices": True},
        (1, 2, 9, 9),
        "eval",
    ),
    ("MaxPool3d", {"kernel_size": 2}, (1, 1, 4, 4, 4), "eval"),
    ("AvgPool1d", {"kernel_size": 3, "padding": 1, "count_include_pad": False}, (1, 2, 8), "eval"),
    (
        "AvgPool2d",
        {"kernel_size": 3, "stride": 2, "ceil_mode": True, "divisor_override": 4},
        (1, 2, 8, 8),
        "eval",
    ),
    ("AvgPool3d", {"kernel_size": 2, "stride": 1}, (1, 1, 3, 3, 3), "eval"),
    ("AdaptiveAvgPool1d", {"output_size": 3}, (1, 2, 7), "eval"),
    ("AdaptiveAvgPool2d", {"output_size": [2, 3]}, (1, 2, 5, 7), "eval"),
    ("AdaptiveAvgPool3d", {"output_size": 2}, (1, 1, 3, 5, 4), "eval"),
    ("AdaptiveMaxPool1d", {"output_size": 3, "return_indices": True}, (1, 2, 7), "eval"),
    ("AdaptiveMaxPool2d", {"output_size": [3, 2]}, (1, 2, 7, 5), "eval"),
    ("BatchNorm1d", {"num_features": 3, "momentum": None}, (4, 3), "train"),
    ("BatchNorm2d", {"num_features": 3, "affine": False}, (2, 3, 4, 4), "eval"),
    ("BatchNorm2d", {"num_features": 3, "eps": 0.01}, (2, 3, 4, 4), "train"),
    ("BatchNorm3d", {"num_features": 2, "track_running_stats": False}, (2, 2, 2, 3, 3), "eval"),
    ("Linear", {"in_features": 5, "out_features": 3}, (2, 4, 5), "eval"),
    ("ReLU", {}, (3, 5), "eval"),
    ("Sigmoid", {}, (3, 5), "eval"),
    ("Tanh", {}, (3, 5), "eval"),
    ("Softmax", {"dim": 0}, (3, 5), "eval"),
    ("LogSoftmax", {"dim": -1}, (3, 5), "eval"),
    ("Flatten", {}, (2, 3, 2, 2), "eval"),
    ("Upsample", {"scale_factor": 2, "mode": "bilinear", "align_corners": True}, (1, 2, 3, 4), "eval"),
    ("Upsample", {"size": [5, 7], "mode": "nearest"}, (1, 2, 3, 4), "eval"),
    ("UpsamplingBilinear2d", {"size": [5, 6]}, (1, 2, 3, 4), "eval"),
    ("UpsamplingNearest2d", {"scale_factor": 2}, (1, 2, 3, 4), "eval"),
    ("LayerNorm", {"normalized_shape": [3, 4], "eps": 0.1}, (2, 3, 4), "eval"),
    ("LayerNorm", {"normalized_shape": 4, "elementwise_affine": False}, (2, 3, 4), "eval"),
    ("GroupNorm", {"num_groups": 2, "num_channels": 4}, (2, 4, 3, 3), "eval"),
    ("InstanceNorm1d", {"num_features": 3, "affine": True}, (2, 3, 6), "eval"),
    ("InstanceNorm2d", {"num_features": 2, "track_running_stats": True}, (2, 2, 3, 4), "eval"),
    (
        "InstanceNorm2d",
        {"num_features": 2, "track_running_stats": True, "momentum": 0.5},
        (2, 2, 3, 4),
        "train",
    ),
    ("LocalResponseNorm", {"size": 3, "alpha": 0.01}, (2, 5, 3, 3), "eval"),
    ("ReLU6", {}, (3, 5), "eval"),
    ("Hardtanh", {"min_val": -0.5, "max_val": 2.0}, (3, 5), "eval"),
    ("LeakyReLU", {"negative_slope": 0.3}, (3, 5), "eval"),
    ("ELU", {"alpha": 0.5}, (3, 5), "eval"),
    ("SELU", {}, (3, 5), "eval"),
    ("CELU", {"alpha": 1.5}, (3, 5), "eval"),
    ("GELU", {"approximate": "tanh"}, (3, 5), "eval"),
    ("SiLU", {}, (3, 5), "eval"),
    ("Mish", {}, (3, 5), "eval"),
    ("Hardswish", {}, (3, 5), "eval"),
    ("Hardsigmoid", {}, (3, 5), "eval"),
    ("Softplus", {"beta": 2.0, "threshold": 1.0}, (3, 5), "eval"),
    ("Softsign", {}, (3, 5), "eval"),
    ("LogSigmoid", {}, (3, 5), "eval"),
    ("Threshold", {"threshold": 0.1, "value": 20.0}, (3, 5), "eval"),
    ("PReLU", {"num_parameters": 3}, (2, 3, 4), "eval"),
    ("Softmin", {"dim": 1}, (3, 5), "eval"),
    ("Softmax2d", {}, (2, 3, 2, 2), "eval"),
    ("PixelShuffle", {"upscale_factor": 2}, (1, 8, 2, 3), "eval"),
    ("PixelUnshuffle", {"downscale_factor": 2}, (1, 2, 4, 6), "eval"),
    ("Unfold", {"kernel_size": 2, "stride": 2}, (1, 2, 4, 6), "eval"),
    ("Fold", {"output_size": [3, 4], "kernel_size": 2}, (1, 8, 6), "eval"),
    ("LPPool1d", {"norm_type": 2, "kernel_size": 3, "stride": 2}, (1, 2, 7), "eval"),
    ("LPPool2d", {"norm_type": 3, "kernel_size": 2, "ceil_mode": True}, (1, 2, 5, 5), "eval"),
    ("Dropout", {"p": 0.3}, (3, 5), "eval"),
    ("Dropout2d", {}, (1, 3, 2, 2), "eval"),
    ("Identity", {}, (3, 5), "eval"),
    ("ConstantPad2d", {"padding": [1, 0, 2, 1], "value": 3.5}, (1, 2, 3, 3), "eval"),
    ("ZeroPad2d", {"padding": 1}, (1, 2, 3, 3), "eval"),
    ("ReflectionPad2d", {"padding": 2}, (1, 2, 3, 4), "eval"),
    ("ReplicationPad2d", {"padding": [1, 2, 0, 1]}, (1, 2, 3, 3), "eval"),
    ("CircularPad2d", {"padding": 1}, (1, 2, 3, 3), "eval"),
]

#: Modules whose forward takes more than one tensor: (module, args, inputs, mode)
MULTI_INPUT_EXAMPLES: list[tuple[str, dict[str, Any], tuple[Any, ...], str]] = [
    ("MSELoss", {"reduction": "sum"}, ((3, 4), (3, 4)), "eval"),
    ("L1Loss", {}, ((3, 4), (3, 4)), "eval"),
    ("NLLLoss", {"ignore_index": 1}, ((4, 3), np.array([0, 1, 2, 2])), "eval"),
    (
        "CrossEntropyLoss",
        {"label_smoothing": 0.1, "reduction": "none"},
        ((4, 3), np.array([0, 1, 2, 2])),
        "eval",
    ),
    ("Bilinear", {"in1_features": 3, "in2_features": 2, "out_features": 4}, ((5, 3), (5, 2)), "eval"),
    ("MaxUnpool1d", {"kernel_size": 2}, ((1, 2, 3), np.array([[[0, 3, 5], [1, 2, 4]]])), "eval"),
    ("MaxUnpool2d", {"kernel_size": 2, "stride": 2}, ((1, 1, 2, 2), np.array([[[[0, 3], [9, 14]]]])), "eval"),
]


def test_every_lowered_module_has_an_example() -> None:
    assert {m for m, *_ in MODULE_EXAMPLES} | {m for m, *_ in MULTI_INPUT_EXAMPLES} == set(LOWERINGS)


@pytest.mark.parametrize(("module", "args", "shape", "mode"), MODULE_EXAMPLES)
def test_lowering_reproduces_the_module(
    module: str, args: dict[str, Any], shape: tuple[int, ...], mode: str
) -> None:
    """The functional reference call a module lowers to computes what the torch module computes."""
    torch.manual_seed(0)
    m = getattr(torch.nn, module)(**args).double().train(mode == "train")
    for buffer in m.buffers():
        if buffer.is_floating_point():
            buffer.copy_(torch.rand_like(buffer) + 0.5)
    x = torch.randn(shape, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    _check_lowering(module, args, [x], mode, m)


@pytest.mark.parametrize(("module", "args", "inputs", "mode"), MULTI_INPUT_EXAMPLES)
def test_lowering_reproduces_a_module_of_several_inputs(
    module: str, args: dict[str, Any], inputs: tuple[Any, ...], mode: str
) -> None:
    torch.manual_seed(0)
    m = getattr(torch.nn, module)(**args).double().train(mode == "train")
    gen = torch.Generator().manual_seed(1)
    tensors = [
        torch.as_tensor(a)
        if isinstance(a, np.ndarray)
        else torch.randn(a, dtype=torch.float64, generator=gen)
        for a in inputs
    ]
    if module.startswith("MaxUnpool"):  # the values to put back where max pooling found them
        tensors[0] = tensors[0].abs()
    _check_lowering(module, args, tensors, mode, m)


def _check_lowering(module: str, args: dict[str, Any], xs: list[torch.Tensor], mode: str, m: Any) -> None:
    lowered = lower_module(module, args, mode)
    tensors = [
        getattr(m, n).detach().numpy().copy() if n and getattr(m, n, None) is not None else None
        for n in lowered.tensors
    ]
    keywords = {
        n: getattr(m, n).detach().numpy().copy() if getattr(m, n, None) is not None else None
        for n in lowered.keyword_tensors
    }
    call_args = dict(lowered.args)
    if lowered.notes.get("cumulative_momentum"):
        call_args["momentum"] = 1.0
    arrays = [x.numpy().copy() for x in xs]
    expected = reference.REFERENCES[lowered.op](*arrays, *tensors, **call_args, **keywords)
    with torch.no_grad():
        got = m(*xs)
    if isinstance(got, tuple):
        for g, e in zip(got, expected, strict=True):
            np.testing.assert_allclose(g.numpy(), e, rtol=1e-12, atol=1e-12)
    else:
        np.testing.assert_allclose(got.numpy(), expected, rtol=1e-12, atol=1e-12)
    if mode == "train" and "running_mean" in lowered.tensors and m.running_mean is not None:
        np.testing.assert_allclose(m.running_var.numpy(), tensors[1], rtol=1e-12)


# --- load-time errors -----------------------------------------------------------------------------------------


def test_reference_for_an_op_without_one_is_a_load_error() -> None:
    message = load_error("""
  - id: u
    op: grid_sample
    inputs: {input: {randn: [1, 1, 4, 4]}, grid: {randn: [1, 2, 2, 2]}}
    expect: {reference: numpy}
""")
    assert "t.yaml:8" in message and 'no NumPy reference for op "grid_sample"' in message
    assert "is not modelled" in message, "the reason is shown"


def test_reference_for_a_module_without_one_names_the_reason() -> None:
    message = load_error("""
  - id: u
    module: Unflatten
    args: {dim: 1, unflattened_size: [2, 2]}
    inputs: {input: {randn: [1, 4]}}
    expect: {reference: numpy}
""")
    assert 'no NumPy reference for module "Unflatten" (a view that only reshapes' in message


def test_reference_gradient_for_a_module_without_one_is_a_load_error() -> None:
    message = load_error("""
  - id: u
    module: Upsample
    args: {scale_factor: 2}
    inputs: {input: {randn: [1, 1, 4, 4]}}
    expect: {grad: reference}
""")
    assert 'no reference gradient for module "Upsample"' in message


def test_reference_for_layers_is_a_load_error() -> None:
    message = load_error("""
  - id: u
    layers: [{module: ReLU}]
    inputs: {input: {randn: [1, 4]}}
    expect: {reference: numpy}
""")
    assert "needs an op or a module case" in message


def test_cli_exits_2_naming_file_and_line(write_case: Any, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_case("""
        cases:
          - id: u
            op: grid_sample
            inputs: {input: {randn: [1, 4, 2, 2]}, grid: {randn: [1, 2, 2, 2]}}
            expect: {reference: numpy}
    """)
    assert main(["validate", str(path)]) == 2
    assert f"{path}:5" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("body", "wanted"),
    [
        ("op: relu\n    train: {lr: 0.1, steps: 1, target: [0.0]}", "train: needs a module or layers case"),
        (
            "module: ReLU\n    train: {lr: 0.1, steps: 1, target: [0.0]}\n    memory_formats: [channels_last]",
            "train: cannot be combined with memory_formats",
        ),
        ("module: ReLU\n    train: {lr: 0, steps: 1, target: [0.0]}", "greater than 0"),
        (
            "module: ReLU\n    train: {lr: 0.1, steps: 1, target: [0.0], optimizer: Adam, momentum: 0.9}",
            "momentum applies",
        ),
        ("module: ReLU\n    train: {lr: 0.1, steps: 1, target: [0.0], optimizer: LBFGS}", "SGD"),
        ("op: relu\n    memory_formats: [contiguous, contiguous]", "memory_formats must not repeat"),
        ("op: relu\n    trust: sometimes", "always"),
    ],
)
def test_bad_oracle_keys_are_load_errors(body: str, wanted: str) -> None:
    message = load_error(f"""
  - id: bad
    {body}
    inputs: {{input: {{randn: [1, 4]}}}}
    expect: {{shape: [1, 4]}}
""")
    assert wanted in message


def test_exact_fill_with_a_written_output_for_random_inputs_is_a_load_error() -> None:
    message = load_error("""
  - id: bad
    op: relu
    fill: exact
    inputs: {input: {randn: [1, 4]}}
    expect: {output: [[0, 0, 0, 0]]}
""")
    assert "fill: exact replaces input" in message


# --- the reference check ------------------------------------------------------------------------------------------


def test_reference_passes_in_every_dtype_with_scaled_tolerances() -> None:
    results = run_all(CONV)
    assert set(statuses(results).values()) == {"passed"}, {k: r.message for k, r in results.items()}
    r64, r16 = results["conv[cpu-float64]"], results["conv[cpu-float16]"]
    assert r64.metrics["reduction_length"] == 54
    assert r64.atol is not None and r16.atol is not None and r16.atol > 1e6 * r64.atol


def test_reference_is_computed_once_per_case(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    original = reference.REFERENCES["conv2d"]

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setitem(reference.REFERENCES, "conv2d", counting)
    run_all(CONV)
    assert len(calls) == 1


def test_a_wrong_reference_fails_and_the_float64_rerun_blames_the_definitions(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    original = reference.REFERENCES["conv2d"]
    monkeypatch.setitem(reference.REFERENCES, "conv2d", lambda *a, **k: original(*a, **k) + 1e-3)
    results = run_all(CONV, "[float64, float32]")
    assert statuses(results) == {"conv[cpu-float64]": "failed", "conv[cpu-float32]": "failed"}
    r32 = results["conv[cpu-float32]"]
    assert "torch in float64 disagrees with the reference too" in r32.message
    assert r32.metrics["low_precision_genuinely_off"] is False
    assert r32.metrics["torch_float64_vs_reference_max_abs_err"] == pytest.approx(1e-3, rel=1e-6)
    assert "torch itself disagrees" in results["conv[cpu-float64]"].message


def test_module_reference_uses_constructor_args_and_state() -> None:
    results = run_all("""
  - id: bn
    module: BatchNorm2d
    args: {num_features: 2, momentum: 0.5}
    mode: train
    state: {running_mean: [1.0, -1.0], running_var: [2.0, 3.0], weight: [2.0, 0.5]}
    inputs: {input: {randn: [3, 2, 4, 4], seed: 4}}
    expect: {reference: numpy}
""")
    assert set(statuses(results).values()) == {"passed"}, {k: r.message for k, r in results.items()}


def test_running_stats_are_compared(monkeypatch: pytest.MonkeyPatch) -> None:
    original = reference.REFERENCES["batch_norm"]

    def stale(input: Any, running_mean: Any, running_var: Any, *args: Any, **kwargs: Any) -> Any:
        out = original(input, running_mean, running_var, *args, **kwargs)
        running_var += 0.01
        return out

    monkeypatch.setitem(reference.REFERENCES, "batch_norm", stale)
    results = run_all(
        """
  - id: bn
    module: BatchNorm1d
    args: {num_features: 3}
    mode: train
    inputs: {input: {randn: [8, 3], seed: 4}}
    expect: {reference: numpy}
""",
        "[float64]",
    )
    (result,) = results.values()
    assert result.status == "failed" and "reference state running_var" in result.message


def test_pooling_indices_point_at_the_values_in_low_precision(monkeypatch: pytest.MonkeyPatch) -> None:
    body = """
  - id: mp
    op: max_pool2d
    args: {kernel_size: 3, stride: 2, return_indices: true}
    inputs: {input: {randn: [2, 3, 9, 9], seed: 5}}
    expect: {reference: numpy}
"""
    assert set(statuses(run_all(body)).values()) == {"passed"}
    original = F.max_pool2d

    def shifted(*args: Any, **kwargs: Any) -> Any:
        values, indices = original(*args, **kwargs)
        return values, (indices + 1).clamp(max=80)

    monkeypatch.setattr(F, "max_pool2d", shifted)
    failed = run_all(body)
    assert set(statuses(failed).values()) == {"failed"}
    assert "the input at the indices" in failed["mp[cpu-bfloat16]"].message


def test_integer_results_compare_exactly() -> None:
    results = run_all(
        """
  - id: flat
    op: flatten
    args: {start_dim: 1}
    inputs: {input: {arange: [2, 3, 4]}}
    expect: {reference: numpy}
""",
        "[int64, float32]",
    )
    assert statuses(results) == {"flat[cpu-int64]": "passed", "flat[cpu-float32]": "passed"}
    assert results["flat[cpu-int64]"].atol == 0.0


# --- exact fill ---------------------------------------------------------------------------------------------------


EXACT = """
  - id: ex
    op: conv2d
    fill: exact
    args: {padding: 1}
    inputs:
      input: {randn: [1, 64, 6, 6], seed: 1}
      weight: {randn: [4, 64, 3, 3], seed: 2}
      bias: {randn: [4], seed: 3}
    expect: {reference: numpy}
"""


def test_exact_fill_is_checked_with_zero_tolerance_in_float32_and_float64() -> None:
    results = run_all(EXACT)
    assert set(statuses(results).values()) == {"passed"}, {k: r.message for k, r in results.items()}
    for dtype in ("float64", "float32"):
        r = results[f"ex[cpu-{dtype}]"]
        assert (r.atol, r.rtol, r.max_abs_err) == (0.0, 0.0, 0.0)
    # The half types keep a scaled tolerance, but integers that fit come out exact on the CPU too.
    assert results["ex[cpu-bfloat16]"].max_abs_err == 0.0
    assert results["ex[cpu-bfloat16]"].metrics["exact_nonzeros"] == 255


def test_exact_fill_catches_a_tiny_float32_error(monkeypatch: pytest.MonkeyPatch) -> None:
    original = F.conv2d
    monkeypatch.setattr(F, "conv2d", lambda *a, **k: original(*a, **k) * (1 + 2**-22))
    results = run_all(EXACT, "[float32]")
    assert statuses(results) == {"ex[cpu-float32]": "failed"}


def test_exact_fill_replaces_module_parameters_but_not_state() -> None:
    results = run_all("""
  - id: lin
    module: Linear
    fill: exact
    args: {in_features: 300, out_features: 5}
    state: {bias: [1, 2, 3, 4, 5]}
    inputs: {input: {randn: [4, 300], seed: 1}}
    expect: {reference: numpy}
""")
    assert set(statuses(results).values()) == {"passed"}, {k: r.message for k, r in results.items()}
    assert results["lin[cpu-float32]"].max_abs_err == 0.0


def test_exact_fill_that_cannot_be_exact_is_a_load_error() -> None:
    message = load_error("""
  - id: big
    op: linear
    fill: exact
    inputs:
      input: {randn: [2, 300]}
      weight: {ones: [3, 300]}
    expect: {reference: numpy}
""")
    assert "cannot be exact in bfloat16" in message and "2^8 = 256" in message


# --- mistrust -------------------------------------------------------------------------------------------------


def test_mistrust_rules() -> None:
    assert mistrust(np.array([0.0, 0.0, 1.0, 2.0])) == "50% of the expected values are zero"
    assert mistrust(np.array([0.0, 1.0, 2.0, 3.0])) == ""
    assert mistrust(torch.full((3,), 2.5, dtype=torch.bfloat16)) == "every expected value equals 2.5"
    assert mistrust(np.array([7.0])) == ""


def test_a_check_that_cannot_discriminate_is_mistrusted_unless_trusted() -> None:
    body = """
  - id: relu
    op: relu
    inputs: {input: {randn: [4, 50], seed: 1}}
    expect: {reference: numpy}
"""
    (result,) = run_all(body, "[float32]").values()
    assert result.status == "mistrusted"
    assert "reference output: 5" in result.message and "trust: always" in result.message
    (trusted,) = run_all(body.replace("op: relu", "op: relu\n    trust: always"), "[float32]").values()
    assert trusted.status == "passed"


def test_all_equal_outputs_are_mistrusted() -> None:
    (result,) = run_all(
        """
  - id: avg
    op: avg_pool2d
    args: {kernel_size: 2}
    inputs: {input: {full: [1, 1, 4, 4], value: 3}}
    expect: {reference: numpy}
""",
        "[float64]",
    ).values()
    assert result.status == "mistrusted" and "every expected value equals 3" in result.message


# --- gradients ------------------------------------------------------------------------------------------------


def test_reference_gradients_pass_for_op_and_module() -> None:
    results = run_all("""
  - id: g-op
    op: conv_transpose2d
    args: {stride: 2, padding: 1}
    inputs:
      input: {randn: [1, 3, 4, 4], seed: 1}
      weight: {randn: [3, 2, 3, 3], seed: 2}
      bias: {randn: [2], seed: 3}
    expect: {grad: reference}
  - id: g-mod
    module: BatchNorm2d
    args: {num_features: 3}
    mode: train
    inputs: {input: {randn: [4, 3, 3, 3], seed: 1}}
    expect: {grad: reference}
""")
    assert set(statuses(results).values()) == {"passed"}, {k: r.message for k, r in results.items()}
    assert results["g-op[cpu-float32]"].metrics["gradient_lengths"] == {"input": 18, "weight": 16, "bias": 49}


def test_a_wrong_weight_gradient_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    original = reference.GRADIENTS["linear"]

    def wrong(*args: Any, **kwargs: Any) -> Any:
        grads = original(*args, **kwargs)
        grads["weight"] = grads["weight"] * 1.01
        return grads

    monkeypatch.setitem(reference.GRADIENTS, "linear", wrong)
    (result,) = run_all(
        """
  - id: lin
    module: Linear
    args: {in_features: 6, out_features: 3}
    inputs: {input: {randn: [5, 6], seed: 1}}
    expect: {grad: reference}
""",
        "[float64]",
    ).values()
    assert result.status == "failed" and "gradient weight" in result.message


class _WrongBackward(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        return x * 2

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        return grad * 3


def test_gradcheck_runs_in_float64_and_catches_a_wrong_backward(monkeypatch: pytest.MonkeyPatch) -> None:
    body = """
  - id: gc
    op: tanh
    inputs: {input: {randn: [3, 4], seed: 1}}
    expect: {grad: gradcheck}
"""
    results = run_all(body)
    assert statuses(results) == {
        "gc[cpu-float64]": "passed",
        "gc[cpu-float32]": "skipped",
        "gc[cpu-float16]": "skipped",
        "gc[cpu-bfloat16]": "skipped",
    }
    assert results["gc[cpu-float32]"].reason == "grad: gradcheck runs in float64 only"
    monkeypatch.setattr(F, "tanh", _WrongBackward.apply)
    (result,) = run_all(body, "[float64]").values()
    assert result.status == "failed" and "gradcheck" in result.message


# --- training -------------------------------------------------------------------------------------------------


def test_seed_002_learns_the_edge_kernel() -> None:
    from repo import REPO

    from cnnbench.casefile.load import load_file

    cases = load_file(REPO / "cases" / "seeds" / "002_d2l_cnn.yaml").cases
    (case,) = [c for c in cases if c.id == "seed002-learn-edge-kernel"]
    for variant in expand([case]):
        if variant.device != "cpu":
            continue
        result = run_variant(variant)
        assert result.status == "passed", result.message
        assert result.metrics["loss_last"] < 0.05 < 19 < result.metrics["loss_first"]


@pytest.mark.parametrize("optimizer", ["SGD", "Adam", "RMSprop", "Adagrad"])
def test_every_optimizer_learns_a_linear_map(optimizer: str) -> None:
    momentum = ", momentum: 0.5" if optimizer in ("SGD", "RMSprop") else ""
    lr = 0.5 if optimizer == "Adagrad" else 0.1  # Adagrad's steps shrink as its squared gradients add up
    (result,) = run_all(
        f"""
  - id: fit
    module: Linear
    args: {{in_features: 2, out_features: 1, bias: false}}
    inputs: {{input: [[1, 0], [0, 1], [1, 1]]}}
    train: {{optimizer: {optimizer}, lr: {lr}, steps: 300, loss: mse, target: [[2], [-1], [1]]{momentum}}}
    expect:
      state: {{weight: [[2, -1]]}}
      output: [[2], [-1], [1]]
    tolerance: {{atol: 0.05, rtol: 0}}
""",
        "[float32]",
    ).values()
    assert result.status == "passed", result.message


def test_cross_entropy_training_with_class_targets() -> None:
    (result,) = run_all(
        """
  - id: ce
    module: Linear
    args: {in_features: 2, out_features: 2}
    inputs: {input: [[1, 0], [0, 1]]}
    train: {lr: 0.5, steps: 50, loss: cross_entropy, target: {data: [1, 0], dtype: int64}}
    expect: {shape: [2, 2]}
""",
        "[float32]",
    ).values()
    assert result.status == "passed", result.message
    assert result.metrics["loss_last"] < result.metrics["loss_first"]


# --- cross-checks ---------------------------------------------------------------------------------------------


FORMATS = """
  - id: fmt
    module: Conv2d
    args: {in_channels: 4, out_channels: 3, kernel_size: 3}
    memory_formats: [contiguous, channels_last]
    inputs: {input: {randn: [2, 4, 6, 6], seed: 1}}
    expect: {shape: [2, 3, 4, 4], deterministic: true}
"""


def test_memory_formats_become_variants_that_must_agree() -> None:
    results = run_all(FORMATS, "[float32]")
    assert statuses(results) == {"fmt[cpu-float32]": "passed", "fmt[cpu-float32-channels_last]": "passed"}
    assert results["fmt[cpu-float32-channels_last]"].metrics["memory_format"] == "channels_last"


def test_a_channels_last_only_bug_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    original = F.conv2d

    def wrong(input: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        out = original(input, *args, **kwargs)
        return out + 1e-3 if input.is_contiguous(memory_format=torch.channels_last) else out

    monkeypatch.setattr(F, "conv2d", wrong)
    results = run_all(FORMATS, "[float32]")
    assert statuses(results) == {"fmt[cpu-float32]": "passed", "fmt[cpu-float32-channels_last]": "failed"}
    assert "channels_last vs contiguous" in results["fmt[cpu-float32-channels_last]"].message


def test_nondeterminism_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    original = F.conv2d
    calls = []

    def drifting(*args: Any, **kwargs: Any) -> torch.Tensor:
        calls.append(1)
        return original(*args, **kwargs) + 1e-6 * len(calls)

    monkeypatch.setattr(F, "conv2d", drifting)
    results = run_all(FORMATS, "[float32]")
    assert "not bitwise equal" in results["fmt[cpu-float32]"].message


def test_match_cpu_skips_the_cpu_baseline() -> None:
    text = """
cases:
  - id: m
    op: relu
    devices: [cpu, cuda]
    inputs: {input: {randn: [2, 3]}}
    expect: {match: cpu}
"""
    found = {v.id: v for v in expand(load_text(text, "t.yaml").cases)}
    assert skip_reason(found["m[cpu-float32]"]) is not None
    assert skip_reason(found["m[cuda-float32]"]) is None
    result = run_variant(found["m[cpu-float32]"])
    assert result.status == "skipped" and "baseline" in result.reason


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs an accelerator")
def test_match_cpu_on_an_accelerator() -> None:
    text = """
cases:
  - id: m
    module: Conv2d
    args: {in_channels: 3, out_channels: 2, kernel_size: 3}
    devices: [cuda]
    dtypes: [float32, float16]
    inputs: {input: {randn: [2, 3, 8, 8]}}
    expect: {match: cpu}
"""
    for variant in expand(load_text(text, "t.yaml").cases):
        assert run_variant(variant).status == "passed"


def test_reference_positional_names_are_torch_keyword_names() -> None:
    first = {"affine_grid": "theta", "bilinear": "input1"}
    for op, fn in reference.REFERENCES.items():
        assert next(iter(inspect.signature(fn).parameters)) == first.get(op, "input"), op


def test_verbose_console_says_why_a_variant_is_mistrusted() -> None:
    from io import StringIO

    from rich.console import Console

    from cnnbench.report.console import print_console
    from cnnbench.store.run import Run

    results = list(
        run_all(
            """
  - id: relu
    op: relu
    inputs: {input: {randn: [4, 50], seed: 1}}
    expect: {reference: numpy}
""",
            "[float32]",
        ).values()
    )
    buffer = StringIO()
    print_console(
        Run(path=Path("."), meta={}, results=results), Console(file=buffer, width=200), verbose=True
    )
    assert "mistrusted relu[cpu-float32]: cannot discriminate: reference output: 55%" in buffer.getvalue()


def test_an_infinite_input_does_not_make_the_tolerance_infinite(monkeypatch: pytest.MonkeyPatch) -> None:
    """A -inf logit used to enter the input scale, so atol was inf and a log_softmax returning -inf everywhere
    (no max subtraction) passed; infinities are matched exactly and kept out of the scales."""
    body = """
  - id: ls
    op: log_softmax
    args: {dim: -1}
    trust: always
    inputs: {input: [[1000, 0], [-.inf, 0]]}
    expect: {reference: numpy}
"""
    assert set(statuses(run_all(body, "[float32]")).values()) == {"passed"}

    def careless(x: torch.Tensor, dim: int, *args: Any, **kwargs: Any) -> torch.Tensor:
        del args, kwargs
        return x - torch.log(torch.exp(x).sum(dim, keepdim=True))

    monkeypatch.setattr(F, "log_softmax", careless)
    clear_cache()
    (result,) = run_all(body, "[float32]").values()
    assert result.status == "failed" and result.atol is not None and math.isfinite(result.atol)


def test_finite_scale_ignores_infinities_and_nan() -> None:
    from cnnbench.numerics.oracle import finite_scale

    assert finite_scale(np.array([-np.inf, 3.0, np.nan, -5.0])) == 5.0
    assert finite_scale(np.array([np.inf, np.nan])) == 0.0
    assert finite_scale(np.zeros(0)) == 0.0
