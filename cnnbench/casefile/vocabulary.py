"""The names a case file may use: functional ops, torch.nn modules, dtypes, devices and exception types.

Case files are data: a name resolves only if it is listed here, so nothing a case file says can reach
`os.system`, `importlib` or an arbitrary attribute chain. This module imports nothing heavy, so validation
runs without torch.
"""

from __future__ import annotations

__all__ = [
    "DEVICE_TYPES",
    "DTYPES",
    "EXCEPTION_TYPES",
    "FLOAT_DTYPES",
    "FUNCTIONAL_OPS",
    "MODEL_NAMES",
    "MODULES",
    "TORCH_OPS",
]

#: Ops resolved on ``torch.nn.functional``.
FUNCTIONAL_OPS: frozenset[str] = frozenset(
    {
        # convolution
        "conv1d",
        "conv2d",
        "conv3d",
        "conv_transpose1d",
        "conv_transpose2d",
        "conv_transpose3d",
        "unfold",
        "fold",
        # pooling
        "max_pool1d",
        "max_pool2d",
        "max_pool3d",
        "max_unpool1d",
        "max_unpool2d",
        "avg_pool1d",
        "avg_pool2d",
        "avg_pool3d",
        "lp_pool1d",
        "lp_pool2d",
        "adaptive_avg_pool1d",
        "adaptive_avg_pool2d",
        "adaptive_avg_pool3d",
        "adaptive_max_pool1d",
        "adaptive_max_pool2d",
        "adaptive_max_pool3d",
        # normalisation
        "batch_norm",
        "instance_norm",
        "layer_norm",
        "group_norm",
        "local_response_norm",
        "normalize",
        # linear
        "linear",
        "bilinear",
        # activations
        "relu",
        "relu6",
        "leaky_relu",
        "elu",
        "selu",
        "celu",
        "gelu",
        "silu",
        "mish",
        "hardswish",
        "hardsigmoid",
        "hardtanh",
        "sigmoid",
        "tanh",
        "softmax",
        "log_softmax",
        "softmin",
        "softplus",
        "softsign",
        "logsigmoid",
        "prelu",
        "glu",
        "threshold",
        # resampling and reshaping
        "interpolate",
        "upsample",
        "upsample_bilinear",
        "upsample_nearest",
        "pad",
        "pixel_shuffle",
        "pixel_unshuffle",
        "grid_sample",
        "affine_grid",
        "dropout",
        # losses used to train CNNs
        "cross_entropy",
        "nll_loss",
        "mse_loss",
        "l1_loss",
        "binary_cross_entropy",
        "binary_cross_entropy_with_logits",
    }
)

#: Ops resolved on ``torch`` itself (no functional form exists).
TORCH_OPS: frozenset[str] = frozenset({"flatten", "matmul", "add", "mul", "cat", "reshape"})

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
#: the names are repeated here for validation without it; tests/test_bench_cases.py keeps the two equal).
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
DEVICE_TYPES: frozenset[str] = frozenset({"cpu", "cuda", "mps", "xpu", "hpu", "mtia", "meta"})

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
