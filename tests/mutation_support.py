"""Kernel mutations modelled on real PyTorch bugs, patched in with monkeypatch, and the cases that must catch each
(shared by tests/suite/test_mutations.py and tests/suite/test_suite_mutations.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch
import torch.nn.functional as F

__all__ = ["MUTATIONS", "patch_conv2d_float32_relative_error"]


def _patch_max_pool2d_ignores_ceil_mode(mp: pytest.MonkeyPatch) -> None:
    original = F.max_pool2d

    def wrong(
        input: torch.Tensor,
        kernel_size: Any,
        stride: Any = None,
        padding: Any = 0,
        dilation: Any = 1,
        ceil_mode: bool = False,
        return_indices: bool = False,
    ) -> Any:
        del ceil_mode
        return original(input, kernel_size, stride, padding, dilation, False, return_indices)

    mp.setattr(F, "max_pool2d", wrong)


def _patch_conv2d_padding_off_by_one(mp: pytest.MonkeyPatch) -> None:
    """Zero padding shifted by one pixel: one more row/column before, one fewer after (same output shape)."""
    original = F.conv2d

    def wrong(
        input: torch.Tensor,
        weight: torch.Tensor,
        bias: torch.Tensor | None = None,
        stride: Any = 1,
        padding: Any = 0,
        dilation: Any = 1,
        groups: int = 1,
    ) -> torch.Tensor:
        if isinstance(padding, str):
            return original(input, weight, bias, stride, padding, dilation, groups)
        ph, pw = (padding, padding) if isinstance(padding, int) else tuple(padding)
        if ph == 0 and pw == 0:
            return original(input, weight, bias, stride, 0, dilation, groups)
        shift = (pw + (pw > 0), pw - (pw > 0), ph + (ph > 0), ph - (ph > 0))
        return original(F.pad(input, shift), weight, bias, stride, 0, dilation, groups)

    mp.setattr(F, "conv2d", wrong)


def _patch_avg_pool2d_divisor(mp: pytest.MonkeyPatch) -> None:
    """Divide by the kernel area plus one."""
    original = F.avg_pool2d

    def wrong(
        input: torch.Tensor,
        kernel_size: Any,
        stride: Any = None,
        padding: Any = 0,
        ceil_mode: bool = False,
        count_include_pad: bool = True,
        divisor_override: int | None = None,
    ) -> torch.Tensor:
        kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, int) else tuple(kernel_size)
        divisor = (divisor_override or kh * kw) + 1
        return original(input, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor)

    mp.setattr(F, "avg_pool2d", wrong)


def patch_conv2d_float32_relative_error(mp: pytest.MonkeyPatch) -> None:
    """A 1e-4 relative error in every float32 conv2d result."""
    original = F.conv2d

    def wrong(*args: Any, **kwargs: Any) -> torch.Tensor:
        out = original(*args, **kwargs)
        return out * (1 + 1e-4) if out.dtype == torch.float32 else out

    mp.setattr(F, "conv2d", wrong)


def _patch_batch_norm_biased_running_var(mp: pytest.MonkeyPatch) -> None:
    """Training updates running_var with the biased batch variance instead of the unbiased one."""
    original = F.batch_norm

    def wrong(
        input: torch.Tensor,
        running_mean: torch.Tensor | None,
        running_var: torch.Tensor | None,
        weight: torch.Tensor | None = None,
        bias: torch.Tensor | None = None,
        training: bool = False,
        momentum: float = 0.1,
        eps: float = 1e-5,
    ) -> torch.Tensor:
        old = running_var.clone() if running_var is not None else None
        out = original(input, running_mean, running_var, weight, bias, training, momentum, eps)
        if training and running_var is not None and old is not None:
            dims = [0, *range(2, input.dim())]
            biased = input.detach().var(dim=dims, unbiased=False).to(running_var.dtype)
            # .data: the update bypasses autograd's version counter, as the native kernel's own update does.
            running_var.data.copy_((1 - momentum) * old + momentum * biased)
        return out

    mp.setattr(F, "batch_norm", wrong)


#: name -> (patch, bundled cases that must catch it: some of their variants fail or error)
MUTATIONS: dict[str, tuple[Callable[[pytest.MonkeyPatch], None], set[str]]] = {
    "max_pool2d ignores ceil_mode": (
        _patch_max_pool2d_ignores_ceil_mode,
        {
            "seed000-max-pool-3x3-ceil-true",
            "seed003-maxpool2d-ceil-mode-indices",
            "ref-max-pool2d-exact-ceil-indices",
            "ref-module-maxpool2d-ceil",
            "ref-grad-max-pool2d",
        },
    ),
    "conv2d padding off by one": (
        _patch_conv2d_padding_off_by_one,
        {
            "seed001-conv2d-5x5-k1to9-padding1",
            "seed004-conv-padding-2-keeps-28",
            "ref-conv2d-exact-k576",
            "ref-conv2d-exact-dilation2-stride2",
            "ref-grad-conv2d",
        },
    ),
    "avg_pool2d divisor + 1": (
        _patch_avg_pool2d_divisor,
        {
            "seed003-avgpool2d-ceil-mode",
            "ref-avg-pool2d-ceil-include-pad",
            "ref-avg-pool2d-exact-divisor-override",
            "ref-module-avgpool2d",
        },
    ),
    "float32 conv2d 1e-4 relative error": (
        patch_conv2d_float32_relative_error,
        {
            "seed000-conv2d-4x4-k3",
            "seed002-edge-detect-6x8",
            "ref-conv2d-exact-k576",
            "ref-conv2d-same-groups2",
            "ref-module-conv2d-reflect-exact",
        },
    ),
    "batch norm biased running_var": (
        _patch_batch_norm_biased_running_var,
        {
            "seed003-batchnorm2d-train",
            "ref-batch-norm-train-running-stats",
            "ref-module-batchnorm2d-train",
            "ref-module-batchnorm1d-train-cumulative",
            "ref-cross-batchnorm-formats",
        },
    ),
}
