"""hypothesis strategies of layer configurations, one per op family.

Each draws a ``Call``: the op, its args, its input tensors (as case-file tensor specs), dtype, memory format and
whether ``fill: exact`` is used. Sizes are small (a few elements per dim, a few channels) so that thousands are
checked a minute on a CPU, and every choice shrinks toward the simplest configuration: batch 1, one channel,
stride and dilation 1, no padding, no ceil_mode, contiguous, exact fill. A few draws deliberately produce a
geometry PyTorch must reject (channels not divisible by groups, padding over half the kernel, output_padding
not below the stride or dilation); the convolution arithmetic recognises those and the check expects an error.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

from cnnbench.fuzz.targets import NORM_OPS
from cnnbench.ops.arithmetic import pool_output_size
from cnnbench.ops.catalog import traits

__all__ = ["KNOWN_ISSUES", "Call", "strategy_for"]

#: PyTorch behaviours this fuzzer found that the strategies steer around, so that a fuzz reports what is new.
#: tests/fuzz/test_strategies.py checks the steering against torch itself.
KNOWN_ISSUES = {
    "max-pool-empty-window-indices": (
        "max pooling whose window has no tap inside the input (dilation and padding) returns -inf with an index "
        "out of range (torch 2.14 CPU); such draws do not ask for return_indices"
    ),
    "conv-transpose-zero-output": (
        "a transposed convolution whose output length is 0 raises for batch 1 and groups 1 but returns an empty "
        "tensor otherwise (torch 2.14 CPU); such draws get one more input element"
    ),
}

Draw = Callable[[st.SearchStrategy[Any]], Any]

#: One in this many draws asks for a geometry PyTorch must reject (shrinks toward a valid one).
_REJECT_ONE_IN = 16
#: Seeds of the random tensors: hypothesis explores values through them (shrinks toward 0).
_MAX_SEED = 2**16


@dataclass(frozen=True)
class Call:
    """One generated configuration: what the case calls, on what, in which dtype and memory format."""

    op: str
    args: dict[str, Any]
    inputs: dict[str, dict[str, Any]]
    dtype: str
    seed: int
    exact: bool = False
    memory_format: str = "contiguous"
    reject: str | None = None
    """The exception PyTorch must raise, when the strategy knows (the arithmetic knows the rest)."""
    notes: dict[str, Any] = field(default_factory=dict)


def _compact(values: Sequence[int]) -> int | list[int]:
    """One int when every dim has the same value (the case file reads better), else the list."""
    return values[0] if len(set(values)) == 1 else list(values)


def _randn(shape: Sequence[int], seed: int) -> dict[str, Any]:
    return {"randn": list(shape), "seed": seed}


def _rare(draw: Draw) -> bool:
    """True one draw in _REJECT_ONE_IN; shrinks to False."""
    return bool(draw(st.integers(0, _REJECT_ONE_IN - 1)) == _REJECT_ONE_IN - 1)


def _common(draw: Draw, dtypes: Sequence[str]) -> tuple[str, int, int]:
    """dtype, batch and seed."""
    return draw(st.sampled_from(list(dtypes))), draw(st.integers(1, 3)), draw(st.integers(0, _MAX_SEED))


def _memory_format(draw: Draw, rank: int) -> str:
    """channels_last for a 4-D or 5-D input one draw in four (shrinks to contiguous)."""
    if rank < 4:
        return "contiguous"
    return "channels_last" if draw(st.integers(0, 3)) == 3 else "contiguous"


def _exact(draw: Draw) -> bool:
    """fill: exact three draws in four (shrinks to exact: integers, zero tolerance)."""
    return bool(draw(st.integers(0, 3)) != 3)


def _size(draw: Draw, window: int, padding: int) -> int:
    """An input length around the window: mostly at least one output, sometimes too short (rejected)."""
    return max(1, window - 2 * padding + int(draw(st.integers(-2, 6))))


@st.composite
def _conv(draw: Draw, op: str, nd: int, dtypes: Sequence[str]) -> Call:
    dtype, batch, seed = _common(draw, dtypes)
    groups = draw(st.integers(1, 3))
    cin_g, cout_g = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    kernel = [draw(st.integers(1, 4)) for _ in range(nd)]
    stride = [draw(st.integers(1, 3)) for _ in range(nd)]
    dilation = [draw(st.integers(1, 3)) for _ in range(nd)]
    mode = draw(st.integers(0, 9))  # 0-7: explicit padding; 8: 'valid'; 9: 'same'
    padding = [draw(st.integers(0, 3)) for _ in range(nd)] if mode < 8 else [0] * nd
    windows = [d * (k - 1) + 1 for k, d in zip(kernel, dilation, strict=True)]
    sizes = [_size(draw, w, p) for w, p in zip(windows, padding, strict=True)]
    channels = groups * cin_g + (1 if _rare(draw) else 0)  # not divisible by groups: rejected
    args: dict[str, Any] = {
        "stride": _compact(stride),
        "padding": "valid" if mode == 8 else "same" if mode == 9 else _compact(padding),
        "dilation": _compact(dilation),
    }
    if groups > 1:
        args["groups"] = groups
    inputs = {
        "input": _randn([batch, channels, *sizes], seed),
        "weight": _randn([groups * cout_g, cin_g, *kernel], seed + 1),
    }
    if draw(st.booleans()):
        inputs["bias"] = _randn([groups * cout_g], seed + 2)
    fmt = _memory_format(draw, nd + 2)
    return Call(op, args, inputs, dtype, seed, _exact(draw), fmt)


@st.composite
def _conv_transpose(draw: Draw, op: str, nd: int, dtypes: Sequence[str]) -> Call:
    dtype, batch, seed = _common(draw, dtypes)
    groups = draw(st.integers(1, 3))
    cin_g, cout_g = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    kernel = [draw(st.integers(1, 4)) for _ in range(nd)]
    stride = [draw(st.integers(1, 3)) for _ in range(nd)]
    dilation = [draw(st.integers(1, 3)) for _ in range(nd)]
    padding = [draw(st.integers(0, 2)) for _ in range(nd)]
    bad = _rare(draw)
    # output_padding must stay below max(stride, dilation); `bad` lets it reach that bound (rejected).
    output_padding = [
        min(draw(st.integers(0, 2)), max(s, d) - (0 if bad else 1))
        for s, d in zip(stride, dilation, strict=True)
    ]
    sizes = [draw(st.integers(1, 5)) for _ in range(nd)]
    for i in range(nd):  # KNOWN_ISSUES["conv-transpose-zero-output"]
        if (sizes[i] - 1) * stride[i] - 2 * padding[i] + dilation[i] * (kernel[i] - 1) + output_padding[
            i
        ] + 1 == 0:
            sizes[i] += 1
    args: dict[str, Any] = {
        "stride": _compact(stride),
        "padding": _compact(padding),
        "output_padding": _compact(output_padding),
        "dilation": _compact(dilation),
    }
    if groups > 1:
        args["groups"] = groups
    inputs = {
        "input": _randn([batch, groups * cin_g, *sizes], seed),
        "weight": _randn([groups * cin_g, cout_g, *kernel], seed + 1),
    }
    if draw(st.booleans()):
        inputs["bias"] = _randn([groups * cout_g], seed + 2)
    return Call(op, args, inputs, dtype, seed, _exact(draw), _memory_format(draw, nd + 2))


def _pool_window(
    draw: Draw, nd: int, dilated: bool
) -> tuple[list[int], list[int] | None, list[int], list[int]]:
    """kernel, stride (None: the kernel, torch's default), padding (at most half the kernel unless rejected)
    and dilation of a pooling window."""
    kernel = [draw(st.integers(1, 4)) for _ in range(nd)]
    stride = None if draw(st.integers(0, 3)) == 0 else [draw(st.integers(1, 3)) for _ in range(nd)]
    dilation = [draw(st.integers(1, 3)) for _ in range(nd)] if dilated else [1] * nd
    bad = _rare(draw)
    padding = [min(draw(st.integers(0, 2)), k // 2 + (1 if bad else 0)) for k in kernel]
    return kernel, stride, padding, dilation


@st.composite
def _max_pool(draw: Draw, op: str, nd: int, dtypes: Sequence[str]) -> Call:
    dtype, batch, seed = _common(draw, dtypes)
    channels = draw(st.integers(1, 3))
    kernel, stride, padding, dilation = _pool_window(draw, nd, dilated=True)
    windows = [d * (k - 1) + 1 for k, d in zip(kernel, dilation, strict=True)]
    sizes = [_size(draw, w, p) for w, p in zip(windows, padding, strict=True)]
    args: dict[str, Any] = {"kernel_size": _compact(kernel)}
    if stride is not None:
        args["stride"] = _compact(stride)
    args.update(padding=_compact(padding), dilation=_compact(dilation), ceil_mode=draw(st.booleans()))
    if draw(st.booleans()) and not _empty_window(
        sizes, kernel, stride or kernel, padding, dilation, args["ceil_mode"]
    ):
        args["return_indices"] = True  # KNOWN_ISSUES["max-pool-empty-window-indices"]
    inputs = {"input": _randn([batch, channels, *sizes], seed)}
    return Call(op, args, inputs, dtype, seed, _exact(draw), _memory_format(draw, nd + 2))


def _empty_window(
    sizes: Sequence[int],
    kernel: Sequence[int],
    stride: Sequence[int],
    padding: Sequence[int],
    dilation: Sequence[int],
    ceil_mode: bool,
) -> bool:
    """Whether some pooling window has no tap inside the input (all its taps in padding or past the end)."""
    for n, k, s, p, d in zip(sizes, kernel, stride, padding, dilation, strict=True):
        try:
            out = pool_output_size(n, k, s, p, d, ceil_mode)
        except ValueError:
            return False  # a rejected geometry: no window at all
        for o in range(out):
            if not any(0 <= o * s - p + j * d < n for j in range(k)):
                return True
    return False


@st.composite
def _avg_pool(draw: Draw, op: str, nd: int, dtypes: Sequence[str]) -> Call:
    dtype, batch, seed = _common(draw, dtypes)
    channels = draw(st.integers(1, 3))
    kernel, stride, padding, _ = _pool_window(draw, nd, dilated=False)
    sizes = [_size(draw, k, p) for k, p in zip(kernel, padding, strict=True)]
    if nd == 3 and not _rare(draw):  # avg_pool3d alone refuses an input smaller than the kernel
        sizes = [max(n, k) for n, k in zip(sizes, kernel, strict=True)]
    args: dict[str, Any] = {"kernel_size": _compact(kernel)}
    if stride is not None:
        args["stride"] = _compact(stride)
    args.update(padding=_compact(padding), ceil_mode=draw(st.booleans()))
    args["count_include_pad"] = not draw(st.booleans())  # torch's default (True) first
    if nd > 1 and draw(st.integers(0, 3)) == 3:  # avg_pool1d has no divisor_override
        args["divisor_override"] = draw(st.integers(1, 5))
    inputs = {"input": _randn([batch, channels, *sizes], seed)}
    return Call(op, args, inputs, dtype, seed, _exact(draw), _memory_format(draw, nd + 2))


@st.composite
def _adaptive_pool(draw: Draw, op: str, nd: int, dtypes: Sequence[str]) -> Call:
    dtype, batch, seed = _common(draw, dtypes)
    channels = draw(st.integers(1, 3))
    sizes = [draw(st.integers(1, 8)) for _ in range(nd)]
    output = [draw(st.integers(1, 5)) for _ in range(nd)]
    args: dict[str, Any] = {"output_size": _compact(output)}
    if op.startswith("adaptive_max") and draw(st.booleans()):
        args["return_indices"] = True
    inputs = {"input": _randn([batch, channels, *sizes], seed)}
    return Call(op, args, inputs, dtype, seed, _exact(draw), _memory_format(draw, nd + 2))


@st.composite
def _batch_norm(draw: Draw, op: str, nd: int, dtypes: Sequence[str]) -> Call:
    dtype, batch, seed = _common(draw, dtypes)
    channels = draw(st.integers(1, 4))
    spatial = [draw(st.integers(1, 4)) for _ in range(draw(st.integers(0, 2)))]
    training = draw(st.booleans())
    inputs: dict[str, dict[str, Any]] = {
        "input": _randn([batch, channels, *spatial], seed),
        "running_mean": _randn([channels], seed + 1),
        "running_var": {"rand": [channels], "seed": seed + 2},
    }
    if draw(st.booleans()):
        inputs["weight"] = _randn([channels], seed + 3)
        inputs["bias"] = _randn([channels], seed + 4)
    args = {
        "training": training,
        "momentum": draw(st.sampled_from([0.1, 0.5, 1.0])),
        "eps": draw(st.sampled_from([1e-5, 1e-3])),
    }
    values_per_channel = batch * _prod(spatial)
    reject = "ValueError" if training and values_per_channel == 1 else None  # "more than 1 value per channel"
    return Call(op, args, inputs, dtype, seed, False, _memory_format(draw, len(spatial) + 2), reject)


def _prod(values: Sequence[int]) -> int:
    out = 1
    for v in values:
        out *= v
    return out


@st.composite
def _layer_norm(draw: Draw, op: str, nd: int, dtypes: Sequence[str]) -> Call:
    dtype, batch, seed = _common(draw, dtypes)
    shape = [batch, *(draw(st.integers(1, 5)) for _ in range(draw(st.integers(1, 3))))]
    k = draw(st.integers(1, len(shape) - 1))
    args = {"normalized_shape": shape[-k:], "eps": draw(st.sampled_from([1e-5, 1e-3]))}
    return Call(op, args, {"input": _randn(shape, seed)}, dtype, seed)


@st.composite
def _group_norm(draw: Draw, op: str, nd: int, dtypes: Sequence[str]) -> Call:
    dtype, batch, seed = _common(draw, dtypes)
    groups = draw(st.integers(1, 3))
    channels = groups * draw(st.integers(1, 3))
    spatial = [draw(st.integers(1, 4)) for _ in range(draw(st.integers(0, 2)))]
    args = {"num_groups": groups, "eps": draw(st.sampled_from([1e-5, 1e-3]))}
    inputs = {"input": _randn([batch, channels, *spatial], seed)}
    return Call(op, args, inputs, dtype, seed, False, _memory_format(draw, len(spatial) + 2))


@st.composite
def _instance_norm(draw: Draw, op: str, nd: int, dtypes: Sequence[str]) -> Call:
    dtype, batch, seed = _common(draw, dtypes)
    channels = draw(st.integers(1, 3))
    spatial = [draw(st.integers(2, 5)) for _ in range(draw(st.integers(1, 3)))]
    args = {"eps": draw(st.sampled_from([1e-5, 1e-3]))}
    inputs = {"input": _randn([batch, channels, *spatial], seed)}
    return Call(op, args, inputs, dtype, seed, False, _memory_format(draw, len(spatial) + 2))


@st.composite
def _activation(draw: Draw, op: str, nd: int, dtypes: Sequence[str]) -> Call:
    dtype, batch, seed = _common(draw, dtypes)
    shape = [batch, *(draw(st.integers(1, 6)) for _ in range(draw(st.integers(0, 3))))]
    args: dict[str, Any] = {}
    if traits(op).family == "softmax":
        args["dim"] = draw(st.integers(-len(shape), len(shape) - 1))
    exact = traits(op).exactness is not None and _exact(draw)
    return Call(
        op, args, {"input": _randn(shape, seed)}, dtype, seed, exact, _memory_format(draw, len(shape))
    )


_LINEAR = {1: "linear", 2: "bilinear", 3: "trilinear"}


@st.composite
def _interpolate(draw: Draw, op: str, nd: int, dtypes: Sequence[str]) -> Call:
    dtype, batch, seed = _common(draw, dtypes)
    dims = draw(st.integers(1, 3))
    channels = draw(st.integers(1, 3))
    sizes = [draw(st.integers(1, 6)) for _ in range(dims)]
    mode = draw(st.sampled_from(["nearest", _LINEAR[dims], "nearest-exact"]))
    args: dict[str, Any] = {"mode": mode}
    if draw(st.booleans()):
        args["scale_factor"] = draw(st.sampled_from([2.0, 0.5, 1.5, 3.0, 0.75, 2.5]))
        recompute = draw(st.sampled_from([None, True, False]))
        if recompute is not None:
            args["recompute_scale_factor"] = recompute
        if any(int(s * args["scale_factor"]) < 1 for s in sizes):
            args["scale_factor"] = 2.0
    else:
        args["size"] = _compact([draw(st.integers(1, 8)) for _ in range(dims)])
    if mode in _LINEAR.values():
        corners = draw(st.sampled_from([None, False, True]))
        if corners is not None:
            args["align_corners"] = corners
    inputs = {"input": _randn([batch, channels, *sizes], seed)}
    return Call(op, args, inputs, dtype, seed, False, _memory_format(draw, dims + 2))


_FAMILY_STRATEGIES: dict[str, Callable[..., st.SearchStrategy[Call]]] = {
    "conv": _conv,
    "conv_transpose": _conv_transpose,
    "max_pool": _max_pool,
    "avg_pool": _avg_pool,
    "adaptive_max_pool": _adaptive_pool,
    "adaptive_avg_pool": _adaptive_pool,
    "activation": _activation,
    "softmax": _activation,
    "resample": _interpolate,
}
_NORM_STRATEGIES: dict[str, Callable[..., st.SearchStrategy[Call]]] = {
    "batch_norm": _batch_norm,
    "layer_norm": _layer_norm,
    "group_norm": _group_norm,
    "instance_norm": _instance_norm,
}
assert set(_NORM_STRATEGIES) == NORM_OPS


def strategy_for(op: str, dtypes: Sequence[str]) -> st.SearchStrategy[Call]:
    """The strategy of configurations of op (a target of fuzz_targets()) in the given dtypes."""
    t = traits(op)
    make = _NORM_STRATEGIES.get(op) or _FAMILY_STRATEGIES[t.family]
    return make(op, t.nd, list(dtypes))
