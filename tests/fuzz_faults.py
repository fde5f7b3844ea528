"""Run the cnnbench command line with a deliberately broken ATen kernel (tests/fuzz/test_gate_power.py).

    python tests/fuzz_faults.py FAULT[,FAULT...] cnnbench-args...

The fault is registered below the Python API, as a CPU kernel of the ATen operator itself (torch.library), so
every route to it (F.conv2d, nn.Conv2d, torch.conv2d) computes the wrong values; the fuzz's forked children
inherit it. Each fault is wrong only in one corner of the geometry, the kind fixed cases miss:

- conv-dilation2-stride3: a convolution adds 1 to its first output element when a spatial dim has dilation 2
  and stride 3;
- max-pool-ceil-padding: max_pool2d adds 1 to its last output element when ceil_mode is on and padding is not 0;
- avg-pool-partial-window: avg_pool2d divides its last column (row) by one more than it should when the last
  window along that dim is partial (it overhangs the padded input under ceil_mode);
- conv-segfault-groups2: a convolution with groups=2 crashes the process (SIGSEGV).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import torch

_LIB = torch.library.Library("aten", "IMPL")  # kept alive for the life of the process


def _conv(
    input: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    stride: Sequence[int],
    padding: Sequence[int],
    dilation: Sequence[int],
    transposed: bool,
    output_padding: Sequence[int],
    groups: int,
) -> torch.Tensor:
    out = torch.ops.aten._convolution.default(
        input, weight, bias, stride, padding, dilation, transposed, output_padding, groups,
        False, False, True, True,
    )  # fmt: skip
    if (
        not transposed
        and any(s == 3 and d == 2 for s, d in zip(stride, dilation, strict=False))
        and out.numel()
    ):
        out = out.clone()
        out.view(-1)[0] += 1
    return out


def _max_pool2d(
    input: torch.Tensor,
    kernel_size: Sequence[int],
    stride: Sequence[int] = (),
    padding: Sequence[int] = (0,),
    dilation: Sequence[int] = (1,),
    ceil_mode: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    out = input.new_empty(0)
    indices = torch.empty(0, dtype=torch.long, device=input.device)
    torch.ops.aten.max_pool2d_with_indices.out(
        input, kernel_size, stride, padding, dilation, ceil_mode, out=out, indices=indices
    )
    if ceil_mode and any(p > 0 for p in padding) and out.numel():
        out.reshape(-1)[-1] += 1
    return out, indices


def _partial_last(size: int, out: int, kernel: int, stride: int, padding: int) -> int:
    """The extent of the last window clipped to the padded input when it overhangs it, else 0."""
    start = (out - 1) * stride - padding
    end = start + kernel
    return min(end, size + padding) - start if end > size + padding else 0


def _avg_pool2d(
    input: torch.Tensor,
    kernel_size: Sequence[int],
    stride: Sequence[int] = (),
    padding: Sequence[int] = (0,),
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
) -> torch.Tensor:
    out = input.new_empty(0)
    torch.ops.aten.avg_pool2d.out(
        input, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override, out=out
    )
    kernel = list(kernel_size) * (2 // len(kernel_size))
    strides = list(stride or kernel) * (2 // len(stride or kernel))
    pads = list(padding) * (2 // len(padding))
    if divisor_override is None and out.numel():
        for axis in (-2, -1):
            n = _partial_last(input.shape[axis], out.shape[axis], kernel[axis], strides[axis], pads[axis])
            if n:
                out.narrow(axis, out.shape[axis] - 1, 1).mul_(n / (n + 1))
    return out


def _conv_crash(
    input: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    stride: Sequence[int],
    padding: Sequence[int],
    dilation: Sequence[int],
    transposed: bool,
    output_padding: Sequence[int],
    groups: int,
) -> torch.Tensor:
    if groups == 2:
        import ctypes

        ctypes.string_at(0)  # a real invalid read: the process dies of SIGSEGV, as with a kernel bug
    return torch.ops.aten._convolution.default(
        input, weight, bias, stride, padding, dilation, transposed, output_padding, groups,
        False, False, True, True,
    )  # fmt: skip


_FAULTS: dict[str, tuple[str, Any]] = {
    "conv-dilation2-stride3": ("convolution", _conv),
    "max-pool-ceil-padding": ("max_pool2d_with_indices", _max_pool2d),
    "avg-pool-partial-window": ("avg_pool2d", _avg_pool2d),
    "conv-segfault-groups2": ("convolution", _conv_crash),
}


def install(faults: str) -> None:
    """Register the kernels of the faults (comma-separated names) for the CPU."""
    for fault in faults.split(","):
        op, kernel = _FAULTS[fault]
        _LIB.impl(op, kernel, "CPU")


if __name__ == "__main__":
    import warnings

    warnings.simplefilter("ignore")  # "overriding a previously registered kernel"
    install(sys.argv[1])
    from cnnbench.cli import main

    raise SystemExit(main(sys.argv[2:]))
