"""FLOP and parameter counts: torch's FlopCounterMode, with the grouped-convolution backward counted per group."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, ParamSpec

import torch
from torch.utils.flop_counter import FlopCounterMode

__all__ = ["count_flops", "model_flops", "param_count"]

_P = ParamSpec("_P")


def _conv_backward_flop(
    grad_out_shape: Sequence[int],
    x_shape: Sequence[int],
    w_shape: Sequence[int],
    _bias: object,
    _stride: object,
    _padding: object,
    _dilation: object,
    transposed: bool,
    _output_padding: object,
    groups: int,
    output_mask: Sequence[bool],
    out_shape: Sequence[Sequence[int] | None] = (),
    **_kwargs: object,
) -> int:
    """torch's convolution_backward FLOP formula with the weight-gradient term divided by ``groups``.

    torch (2.14) counts that term as if the convolution were dense, so a depthwise convolution's backward is
    overcounted by its channel count (pytorch/pytorch#183405 divides by groups too); the grad-input term is
    right.
    """
    from torch.utils.flop_counter import conv_flop_count

    def t(shape: Sequence[int]) -> list[int]:
        return [shape[1], shape[0], *shape[2:]]

    flops = 0
    if output_mask[0] and out_shape[0] is not None:
        flops += conv_flop_count(list(grad_out_shape), list(w_shape), list(out_shape[0]), not transposed)
    if output_mask[1] and out_shape[1] is not None:
        grad_w = t(out_shape[1])
        if transposed:
            flops += conv_flop_count(t(grad_out_shape), t(x_shape), grad_w, transposed=False) // groups
        else:
            flops += conv_flop_count(t(x_shape), t(grad_out_shape), grad_w, transposed=False) // groups
    return flops


#: Formulas that replace torch's in every FlopCounterMode here (see _conv_backward_flop for why).
_FLOP_FIXES: dict[Any, Callable[..., int]] = {torch.ops.aten.convolution_backward: _conv_backward_flop}


def count_flops(fn: Callable[_P, object], *args: _P.args, **kwargs: _P.kwargs) -> int:
    """FLOPs of one call ``fn(*args, **kwargs)`` per ``torch.utils.flop_counter`` (2 per multiply-add).

    A grouped convolution's backward is counted per group (torch overcounts it; see _conv_backward_flop).
    """
    with FlopCounterMode(display=False, custom_mapping=_FLOP_FIXES) as counter:
        fn(*args, **kwargs)
    return int(counter.get_total_flops())


def _scalar_of(output: object) -> torch.Tensor:
    """Reduce a model output (tensor or nested tuple/list/dict of tensors) to one scalar for backward."""
    if isinstance(output, torch.Tensor):
        return output.sum()
    if isinstance(output, Mapping):
        output = list(output.values())
    if isinstance(output, (tuple, list)):
        parts = [_scalar_of(o) for o in output if isinstance(o, (torch.Tensor, tuple, list, Mapping))]
        if parts:
            return torch.stack([p.to(parts[0].dtype) for p in parts]).sum()
    raise TypeError(f"cannot backpropagate through a model output of type {type(output).__name__}")


def model_flops(
    model: torch.nn.Module,
    example_input: torch.Tensor | tuple[torch.Tensor, ...],
    *,
    backward: bool,
) -> int:
    """FLOPs of ``model(*example_input)`` forward, or forward+backward when ``backward`` is True.

    The forward pass runs under ``torch.no_grad``. The backward pass differentiates the sum of the outputs
    with respect to every parameter that requires grad (and every input that does); their ``.grad``
    attributes are restored afterwards. It runs with inference mode off, so the inputs must not be inference
    tensors. The model's train/eval mode is left as it is (it does not change the count of the counted ops).
    """
    inputs = example_input if isinstance(example_input, tuple) else (example_input,)
    if not backward:
        with torch.no_grad():
            return count_flops(model, *inputs)
    targets: list[torch.Tensor] = [p for p in model.parameters() if p.requires_grad]
    targets += [t for t in inputs if t.requires_grad]
    if not targets:
        raise ValueError("backward FLOPs need a parameter or an input that requires grad")

    def _step() -> None:
        # inference_mode(False): a caller's inference mode would otherwise block autograd.
        with torch.inference_mode(False), torch.enable_grad():
            loss = _scalar_of(model(*inputs))
            # backward(inputs=...), not autograd.grad: FlopCounterMode's module hooks reject autograd.grad
            # when an input requires grad. The .grad attributes it fills are restored below.
            torch.autograd.backward(loss, inputs=targets)

    saved_grads = [t.grad for t in targets]
    for t in targets:
        t.grad = None
    try:
        return count_flops(_step)
    finally:
        for t, grad in zip(targets, saved_grads, strict=True):
            t.grad = grad


def param_count(model: torch.nn.Module, *, trainable_only: bool = False) -> int:
    """Number of parameter elements of ``model`` (only those requiring grad if ``trainable_only``)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
