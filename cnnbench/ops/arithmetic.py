"""Convolution-arithmetic output-size formulas, matching PyTorch's shape rules, with no torch import."""

from __future__ import annotations

import math
import operator
from collections.abc import Mapping, Sequence
from typing import Any

from cnnbench.ops.catalog import traits

__all__ = [
    "conv_output_size",
    "conv_transpose_output_size",
    "expected_output_shape",
    "pool_output_size",
    "requested_transpose_sizes",
    "same_padding",
]


def _check_positive(name: str, value: int) -> None:
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")


def conv_output_size(size: int, kernel: int, stride: int = 1, padding: int = 0, dilation: int = 1) -> int:
    """Output length of a convolution: floor((size + 2*padding - dilation*(kernel-1) - 1) / stride) + 1.

    This is (W - F + 2P)/S + 1 generalised to dilation (effective kernel dilation*(F-1)+1) and floored.
    """
    _check_positive("kernel", kernel)
    _check_positive("stride", stride)
    _check_positive("dilation", dilation)
    if padding < 0:
        raise ValueError(f"padding must be non-negative, got {padding}")
    effective = dilation * (kernel - 1) + 1
    out = (size + 2 * padding - effective) // stride + 1
    if out < 1:
        raise ValueError(
            f"convolution output size is {out} (< 1): input size {size} with padding {padding} on each side "
            f"is smaller than the effective kernel size {effective} (kernel {kernel}, dilation {dilation})"
        )
    return out


def pool_output_size(
    size: int, kernel: int, stride: int, padding: int = 0, dilation: int = 1, ceil_mode: bool = False
) -> int:
    """Output length of a max/avg pooling window, with PyTorch's ceil-mode rule.

    out = floor_or_ceil((size + 2*padding - dilation*(kernel-1) - 1) / stride) + 1; in ceil mode, when the
    last window would start at or beyond size + padding (inside the right padding), it is dropped.
    PyTorch also rejects padding > kernel // 2.
    """
    _check_positive("kernel", kernel)
    _check_positive("stride", stride)
    _check_positive("dilation", dilation)
    if padding < 0:
        raise ValueError(f"padding must be non-negative, got {padding}")
    if padding > kernel // 2:
        raise ValueError(
            f"pooling padding must be at most half of the kernel size, "
            f"got padding={padding} and kernel={kernel}"
        )
    numerator = size + 2 * padding - dilation * (kernel - 1) - 1
    if ceil_mode:
        numerator += stride - 1
    out = numerator // stride + 1
    if ceil_mode and (out - 1) * stride >= size + padding:
        out -= 1
    if out < 1:
        raise ValueError(
            f"pooling output size is {out} (< 1): input size {size} with padding {padding} is too small for "
            f"kernel {kernel} with dilation {dilation}"
        )
    return out


def conv_transpose_output_size(
    size: int, kernel: int, stride: int = 1, padding: int = 0, output_padding: int = 0, dilation: int = 1
) -> int:
    """Output length of a transposed convolution.

    out = (size - 1)*stride - 2*padding + dilation*(kernel-1) + output_padding + 1, with PyTorch's
    requirement output_padding < max(stride, dilation).
    """
    _check_positive("kernel", kernel)
    _check_positive("stride", stride)
    _check_positive("dilation", dilation)
    if padding < 0:
        raise ValueError(f"padding must be non-negative, got {padding}")
    if output_padding < 0:
        raise ValueError(f"output_padding must be non-negative, got {output_padding}")
    if output_padding >= max(stride, dilation):
        raise ValueError(
            f"output_padding must be smaller than either stride or dilation, "
            f"got output_padding={output_padding}, stride={stride}, dilation={dilation}"
        )
    out = (size - 1) * stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1
    if out < 1:
        raise ValueError(f"transposed convolution output size is {out} (< 1) for input size {size}")
    return out


def requested_transpose_sizes(
    requested: Sequence[int], min_sizes: Sequence[int], strides: Sequence[int], non_spatial: int
) -> tuple[int, ...]:
    """The spatial output sizes of ``ConvTranspose*d.forward(x, output_size=requested)``, as PyTorch checks them.

    min_sizes are the sizes with no output padding; requested may also lead with the non-spatial dims (N, C),
    which are dropped. Each size must lie in [min, min + stride - 1] (the output padding it implies is
    below the stride); PyTorch raises ValueError otherwise.
    """
    nd = len(min_sizes)
    sizes = [operator.index(v) for v in requested]
    if len(sizes) == nd + non_spatial:
        sizes = sizes[non_spatial:]
    if len(sizes) != nd:
        raise ValueError(
            f"output_size must have {nd} or {nd + non_spatial} elements for a {nd + non_spatial}-D input "
            f"(got {len(sizes)})"
        )
    max_sizes = [m + s - 1 for m, s in zip(min_sizes, strides, strict=True)]
    if any(not lo <= size <= hi for size, lo, hi in zip(sizes, min_sizes, max_sizes, strict=True)):
        raise ValueError(
            f"requested an output size of {sizes}, but valid sizes range from {list(min_sizes)} to {max_sizes}"
        )
    return tuple(sizes)


def same_padding(kernel: int, dilation: int = 1) -> tuple[int, int]:
    """PyTorch's padding='same' split: total dilation*(kernel-1), left total//2, any extra on the right."""
    total = dilation * (kernel - 1)
    return total // 2, total - total // 2


def _tuple(value: Any, n: int, name: str) -> tuple[int, ...]:
    if not isinstance(value, (Sequence, str)):
        try:
            return (operator.index(value),) * n
        except TypeError:
            pass
    if isinstance(value, Sequence) and not isinstance(value, str):
        items = tuple(int(v) for v in value)
        if len(items) == 1:
            return items * n
        if len(items) == n:
            return items
    raise ValueError(f"{name} must be an int or a sequence of {n} ints, got {value!r}")


def _split_batch(input_shape: tuple[int, ...], nd: int, op: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Split (N, C, *spatial) or unbatched (C, *spatial) into (leading dims, spatial dims)."""
    if len(input_shape) not in (nd + 1, nd + 2):
        raise ValueError(
            f"{op} expects a {nd + 1}-D (unbatched) or {nd + 2}-D (batched) input, got shape {input_shape}"
        )
    return input_shape[:-nd], input_shape[-nd:]


def _conv_shape(op: str, nd: int, input_shape: tuple[int, ...], args: Mapping[str, Any]) -> tuple[int, ...]:
    lead, spatial = _split_batch(input_shape, nd, op)
    weight_shape = args.get("weight_shape")
    if weight_shape is None:
        raise ValueError(f"{op} needs args['weight_shape'] to compute the output shape")
    weight_shape = tuple(int(v) for v in weight_shape)
    if len(weight_shape) != nd + 2:
        raise ValueError(f"{op} weight_shape must have {nd + 2} dims, got {weight_shape}")
    groups = int(args.get("groups", 1))
    _check_positive("groups", groups)
    kernel = weight_shape[2:]
    stride = _tuple(args.get("stride", 1), nd, "stride")
    dilation = _tuple(args.get("dilation", 1), nd, "dilation")
    in_channels = lead[-1]
    if traits(op).family == "conv":
        out_channels = weight_shape[0]
        if in_channels != weight_shape[1] * groups:
            raise ValueError(
                f"{op}: input has {in_channels} channels but weight {weight_shape} with groups={groups} "
                f"expects {weight_shape[1] * groups}"
            )
        if out_channels % groups:
            raise ValueError(f"{op}: out_channels {out_channels} is not divisible by groups={groups}")
        padding = args.get("padding", 0)
        if isinstance(padding, str):
            if padding == "valid":
                pads: tuple[int, ...] = (0,) * nd
            elif padding == "same":
                if any(s != 1 for s in stride):
                    raise ValueError("padding='same' is not supported for strided convolutions")
                return (*lead[:-1], out_channels, *spatial)
            else:
                raise ValueError(f"invalid padding string {padding!r}; expected 'same' or 'valid'")
        else:
            pads = _tuple(padding, nd, "padding")
        out = tuple(
            conv_output_size(s, k, st, p, d)
            for s, k, st, p, d in zip(spatial, kernel, stride, pads, dilation, strict=True)
        )
        return (*lead[:-1], out_channels, *out)
    # transposed convolution: weight (C_in, C_out/groups, *K)
    if in_channels != weight_shape[0]:
        raise ValueError(
            f"{op}: input has {in_channels} channels but weight {weight_shape} expects {weight_shape[0]}"
        )
    if in_channels % groups:
        raise ValueError(f"{op}: in_channels {in_channels} is not divisible by groups={groups}")
    pads = _tuple(args.get("padding", 0), nd, "padding")
    output_padding = _tuple(args.get("output_padding", 0), nd, "output_padding")
    out = tuple(
        conv_transpose_output_size(s, k, st, p, op_, d)
        for s, k, st, p, op_, d in zip(spatial, kernel, stride, pads, output_padding, dilation, strict=True)
    )
    return (*lead[:-1], weight_shape[1] * groups, *out)


def _pool_shape(op: str, nd: int, input_shape: tuple[int, ...], args: Mapping[str, Any]) -> tuple[int, ...]:
    lead, spatial = _split_batch(input_shape, nd, op)
    if "kernel_size" not in args:
        raise ValueError(f"{op} needs args['kernel_size']")
    kernel = _tuple(args["kernel_size"], nd, "kernel_size")
    stride_arg = args.get("stride")
    stride = kernel if stride_arg is None or stride_arg in ([], ()) else _tuple(stride_arg, nd, "stride")
    pads = _tuple(args.get("padding", 0), nd, "padding")
    dilation = (
        _tuple(args.get("dilation", 1), nd, "dilation") if traits(op).family == "max_pool" else (1,) * nd
    )
    ceil_mode = bool(args.get("ceil_mode", False))
    out = tuple(
        pool_output_size(s, k, st, p, d, ceil_mode)
        for s, k, st, p, d in zip(spatial, kernel, stride, pads, dilation, strict=True)
    )
    return (*lead, *out)


def _adaptive_shape(
    op: str, nd: int, input_shape: tuple[int, ...], args: Mapping[str, Any]
) -> tuple[int, ...]:
    lead, spatial = _split_batch(input_shape, nd, op)
    if "output_size" not in args:
        raise ValueError(f"{op} needs args['output_size']")
    size = args["output_size"]
    sizes = [size] * nd if size is None or isinstance(size, int) else list(size)
    if len(sizes) == 1:
        sizes *= nd
    if len(sizes) != nd:
        raise ValueError(f"{op}: output_size must have {nd} entries, got {size!r}")
    out = tuple(s if o is None else int(o) for s, o in zip(spatial, sizes, strict=True))
    if any(o < 1 for o in out):
        raise ValueError(f"{op}: output_size must be >= 1, got {size!r}")
    return (*lead, *out)


def _interpolate_shape(input_shape: tuple[int, ...], args: Mapping[str, Any]) -> tuple[int, ...]:
    nd = len(input_shape) - 2
    if nd < 1:
        raise ValueError(f"interpolate expects an input of at least 3 dims, got shape {input_shape}")
    size = args.get("size")
    scale = args.get("scale_factor")
    if (size is None) == (scale is None):
        raise ValueError("interpolate needs exactly one of size and scale_factor")
    if size is not None:
        out = _tuple(size, nd, "size")
    else:
        scales = [float(scale)] * nd if isinstance(scale, (int, float)) else [float(s) for s in scale or ()]
        if len(scales) != nd:
            raise ValueError(f"scale_factor must have {nd} entries, got {scale!r}")
        out = tuple(math.floor(float(s) * f) for s, f in zip(input_shape[2:], scales, strict=True))
    if any(o < 1 for o in out):
        raise ValueError(f"interpolate output size {out} has an entry < 1")
    return (*input_shape[:2], *out)


def _flatten_shape(input_shape: tuple[int, ...], args: Mapping[str, Any]) -> tuple[int, ...]:
    if not input_shape:
        return (1,)
    ndim = len(input_shape)
    start = int(args.get("start_dim", 0))
    end = int(args.get("end_dim", -1))
    start = start + ndim if start < 0 else start
    end = end + ndim if end < 0 else end
    if not 0 <= start <= end < ndim:
        raise ValueError(f"flatten: invalid start_dim/end_dim for a {ndim}-D input: {args!r}")
    return (*input_shape[:start], math.prod(input_shape[start : end + 1]), *input_shape[end + 1 :])


def expected_output_shape(
    op: str, input_shape: tuple[int, ...], args: Mapping[str, Any]
) -> tuple[int, ...] | None:
    """The output shape PyTorch's ``torch.nn.functional.<op>`` gives, or None for an op not modelled here.

    ``args`` holds the functional's keyword arguments; convolutions also need ``weight_shape`` (and linear
    too). Raises ValueError for geometrically impossible configurations, as PyTorch would reject them.
    """
    input_shape = tuple(int(s) for s in input_shape)
    t = traits(op)
    if t.family in ("conv", "conv_transpose"):
        return _conv_shape(op, t.nd, input_shape, args)
    if t.family in ("max_pool", "avg_pool"):
        return _pool_shape(op, t.nd, input_shape, args)
    if t.family in ("adaptive_max_pool", "adaptive_avg_pool"):
        return _adaptive_shape(op, t.nd, input_shape, args)
    if t.same_shape:
        return input_shape
    if op == "linear":
        weight_shape = args.get("weight_shape")
        if weight_shape is None:
            raise ValueError("linear needs args['weight_shape'] to compute the output shape")
        if not input_shape or input_shape[-1] != int(weight_shape[-1]):
            raise ValueError(
                f"linear: input shape {input_shape} does not match weight shape {tuple(weight_shape)}"
            )
        return (*input_shape[:-1], int(weight_shape[0])) if len(weight_shape) == 2 else input_shape[:-1]
    if op == "interpolate":
        return _interpolate_shape(input_shape, args)
    if op == "flatten":
        return _flatten_shape(input_shape, args)
    return None
