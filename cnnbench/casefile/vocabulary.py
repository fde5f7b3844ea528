"""The names a case file may use: functional ops, torch.nn modules, dtypes, devices and exception types.

Case files are data: a name resolves only if it is listed here, so nothing a case file says can reach
`os.system`, `importlib` or an arbitrary attribute chain. This module imports nothing heavy, so validation
runs without torch.
"""

from __future__ import annotations

from difflib import get_close_matches

from cnnbench.ops.catalog import ops_where

__all__ = [
    "DEVICE_TYPES",
    "DTYPES",
    "EXCEPTION_TYPES",
    "FLOAT_DTYPES",
    "FUNCTIONAL_OPS",
    "KINDS",
    "MODEL_NAMES",
    "MODULES",
    "TORCH_OPS",
    "suggest",
]

#: Ops resolved on ``torch.nn.functional``: the catalog's (cnnbench.ops.catalog) functional ops.
FUNCTIONAL_OPS: frozenset[str] = ops_where(lambda t: t.namespace == "functional")

#: Ops resolved on ``torch`` itself (no functional form exists).
TORCH_OPS: frozenset[str] = ops_where(lambda t: t.namespace == "torch")

#: Layer classes resolved on ``torch.nn``.
MODULES: frozenset[str] = frozenset(
    {
        "Conv1d",
        "Conv2d",
        "Conv3d",
        "ConvTranspose1d",
        "ConvTranspose2d",
        "ConvTranspose3d",
        "Unfold",
        "Fold",
        "MaxPool1d",
        "MaxPool2d",
        "MaxPool3d",
        "MaxUnpool1d",
        "MaxUnpool2d",
        "AvgPool1d",
        "AvgPool2d",
        "AvgPool3d",
        "LPPool1d",
        "LPPool2d",
        "AdaptiveAvgPool1d",
        "AdaptiveAvgPool2d",
        "AdaptiveAvgPool3d",
        "AdaptiveMaxPool1d",
        "AdaptiveMaxPool2d",
        "BatchNorm1d",
        "BatchNorm2d",
        "BatchNorm3d",
        "InstanceNorm1d",
        "InstanceNorm2d",
        "LayerNorm",
        "GroupNorm",
        "LocalResponseNorm",
        "Linear",
        "Bilinear",
        "Identity",
        "Flatten",
        "Unflatten",
        "ReLU",
        "ReLU6",
        "LeakyReLU",
        "PReLU",
        "ELU",
        "SELU",
        "CELU",
        "GELU",
        "SiLU",
        "Mish",
        "Hardswish",
        "Hardsigmoid",
        "Hardtanh",
        "Sigmoid",
        "Tanh",
        "Softmax",
        "Softmax2d",
        "LogSoftmax",
        "Softmin",
        "Softplus",
        "Softsign",
        "LogSigmoid",
        "Threshold",
        "Dropout",
        "Dropout2d",
        "Upsample",
        "UpsamplingBilinear2d",
        "UpsamplingNearest2d",
        "ZeroPad2d",
        "ConstantPad2d",
        "ReflectionPad2d",
        "ReplicationPad2d",
        "CircularPad2d",
        "PixelShuffle",
        "PixelUnshuffle",
        "ChannelShuffle",
        "CrossEntropyLoss",
        "NLLLoss",
        "MSELoss",
        "L1Loss",
    }
)

#: Dtype names a case may ask for, mapped to the ``torch`` attribute they resolve to.
#: What --kind selects: numerics checks, benchmarks, or both.
KINDS = ("all", "check", "bench")

DTYPES: dict[str, str] = {
    "float64": "float64",
    "float32": "float32",
    "float16": "float16",
    "bfloat16": "bfloat16",
    "int64": "int64",
    "int32": "int32",
    "int16": "int16",
    "int8": "int8",
    "uint8": "uint8",
    "bool": "bool",
}

FLOAT_DTYPES: frozenset[str] = frozenset({"float64", "float32", "float16", "bfloat16"})

#: Model names a benchmark's ``model:`` may give: the keys of cnnbench.bench.models.MODELS (which imports torch, so
#: the names are repeated here for validation without it; tests/bench/test_models.py keeps the two equal).
MODEL_NAMES: frozenset[str] = frozenset(
    {
        "resnet18",
        "resnet50",
        "mobilenet_v3_large",
        "efficientnet_b0",
        "vgg11",
        "googlenet",
        "lenet",
        "mnist_cnn",
    }
)

#: Device types; any of them may be unavailable at run time, which makes its variants "skipped".
#: Device types a case may name; "accelerator" is whichever accelerator the machine has (torch.accelerator).
DEVICE_TYPES: frozenset[str] = frozenset(
    {"cpu", "cuda", "mps", "xpu", "hpu", "mtia", "meta", "privateuseone", "accelerator"}
)

#: Exception names an ``expect.error`` may name; resolved on builtins or torch, never imported by string.
EXCEPTION_TYPES: frozenset[str] = frozenset(
    {
        "Exception",
        "RuntimeError",
        "ValueError",
        "TypeError",
        "IndexError",
        "KeyError",
        "NotImplementedError",
        "AssertionError",
        "ZeroDivisionError",
        "OverflowError",
        "AttributeError",
        "OutOfMemoryError",
    }
)


def suggest(word: str, choices: object) -> str:
    """Return ' (did you mean "x"?)' for the closest of choices to word, or ''."""
    names = sorted(str(c) for c in choices)  # type: ignore[attr-defined]
    close = get_close_matches(word, names, n=1, cutoff=0.6)
    if not close:
        close = [n for n in names if n.lower() == word.lower()]
    return f' (did you mean "{close[0]}"?)' if close else ""
