"""REFERENCES and GRADIENTS: torch.nn.functional op name -> its float64 reference and its VJP."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cnnbench.numerics.reference import (
    activation,
    adaptive_pool,
    conv,
    dense,
    grid,
    loss,
    lp_pool,
    norm,
    padding,
    pool,
    rearrange,
    resample,
    reshape,
    unpool,
    upsample,
)
from cnnbench.numerics.reference._common import FloatArray

__all__ = ["GRADIENTS", "REFERENCES"]

REFERENCES: dict[str, Callable[..., Any]] = {
    "conv1d": conv.conv1d,
    "conv2d": conv.conv2d,
    "conv3d": conv.conv3d,
    "conv_transpose1d": conv.conv_transpose1d,
    "conv_transpose2d": conv.conv_transpose2d,
    "conv_transpose3d": conv.conv_transpose3d,
    "max_pool1d": pool.max_pool1d,
    "max_pool2d": pool.max_pool2d,
    "max_pool3d": pool.max_pool3d,
    "avg_pool1d": pool.avg_pool1d,
    "avg_pool2d": pool.avg_pool2d,
    "avg_pool3d": pool.avg_pool3d,
    "adaptive_avg_pool1d": adaptive_pool.adaptive_avg_pool1d,
    "adaptive_avg_pool2d": adaptive_pool.adaptive_avg_pool2d,
    "adaptive_avg_pool3d": adaptive_pool.adaptive_avg_pool3d,
    "adaptive_max_pool1d": adaptive_pool.adaptive_max_pool1d,
    "adaptive_max_pool2d": adaptive_pool.adaptive_max_pool2d,
    "adaptive_max_pool3d": adaptive_pool.adaptive_max_pool3d,
    "batch_norm": norm.batch_norm,
    "linear": dense.linear,
    "relu": activation.relu,
    "sigmoid": activation.sigmoid,
    "tanh": activation.tanh,
    "softmax": activation.softmax,
    "log_softmax": activation.log_softmax,
    "flatten": reshape.flatten,
    "reshape": reshape.reshape,
    "matmul": reshape.matmul,
    "add": reshape.add,
    "mul": reshape.mul,
    "interpolate": resample.interpolate,
    "pad": padding.pad,
    # forward only
    **{
        name: getattr(activation, name)
        for name in (
            "relu6", "hardtanh", "leaky_relu", "elu", "selu", "celu", "gelu", "silu", "mish", "hardswish",
            "hardsigmoid", "softplus", "softsign", "logsigmoid", "threshold", "prelu", "glu", "softmin",
        )
    },
    **{
        name: getattr(norm, name)
        for name in ("layer_norm", "group_norm", "instance_norm", "local_response_norm", "normalize")
    },
    **{name: getattr(loss, name) for name in loss.__all__},
    **{name: getattr(rearrange, name) for name in rearrange.__all__},
    "lp_pool1d": lp_pool.lp_pool1d,
    "lp_pool2d": lp_pool.lp_pool2d,
    "max_unpool1d": unpool.max_unpool1d,
    "max_unpool2d": unpool.max_unpool2d,
    "bilinear": dense.bilinear,
    "affine_grid": grid.affine_grid,
    "upsample": upsample.upsample,
    "upsample_nearest": upsample.upsample_nearest,
    "upsample_bilinear": upsample.upsample_bilinear,
}  # fmt: skip
"""torch.nn.functional op name -> reference; call as REFERENCES[op](*inputs, **args) with torch's args."""

GRADIENTS: dict[str, Callable[..., dict[str, FloatArray]]] = {
    "conv1d": conv.conv1d_backward,
    "conv2d": conv.conv2d_backward,
    "conv3d": conv.conv3d_backward,
    "conv_transpose1d": conv.conv_transpose1d_backward,
    "conv_transpose2d": conv.conv_transpose2d_backward,
    "conv_transpose3d": conv.conv_transpose3d_backward,
    "linear": dense.linear_backward,
    "max_pool1d": pool.max_pool1d_backward,
    "max_pool2d": pool.max_pool2d_backward,
    "max_pool3d": pool.max_pool3d_backward,
    "avg_pool1d": pool.avg_pool1d_backward,
    "avg_pool2d": pool.avg_pool2d_backward,
    "avg_pool3d": pool.avg_pool3d_backward,
    "adaptive_avg_pool1d": adaptive_pool.adaptive_avg_pool1d_backward,
    "adaptive_avg_pool2d": adaptive_pool.adaptive_avg_pool2d_backward,
    "adaptive_max_pool1d": adaptive_pool.adaptive_max_pool1d_backward,
    "adaptive_max_pool2d": adaptive_pool.adaptive_max_pool2d_backward,
    "batch_norm": norm.batch_norm_backward,
    "relu": activation.relu_backward,
    "sigmoid": activation.sigmoid_backward,
    "tanh": activation.tanh_backward,
    "softmax": activation.softmax_backward,
    "log_softmax": activation.log_softmax_backward,
}
"""op name -> vector-Jacobian product: GRADIENTS[op](grad_output, *inputs, **args) -> {"input": ..., ...}."""
