"""Resolve vocabulary names to torch callables, turn case-file arguments into torch values, and build the modules a
case describes."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from cnnbench.casefile.format import ChainStep, LayerSpec
from cnnbench.casefile.tensors import is_tensor_spec, tensor_args
from cnnbench.casefile.vocabulary import DTYPES, EXCEPTION_TYPES, FUNCTIONAL_OPS, MODULES, TORCH_OPS
from cnnbench.errors import CnnbenchError
from cnnbench.numerics.fill import make_tensor, torch_dtype

__all__ = [
    "Chain",
    "as_called",
    "build_layers",
    "build_module",
    "convert_args",
    "exception_type",
    "load_state",
    "resolve_op",
    "tensor_kwargs",
    "to_dtype",
]


def as_called(value: Any) -> Any:
    """A case-file value as a Python user passes it: a list (YAML has no tuples) becomes a tuple, nested lists
    too, so ``kernel_size: [2, 3]`` is ``kernel_size=(2, 3)`` and a module's repr reads as PyTorch's docs do."""
    if isinstance(value, list | tuple):
        return tuple(as_called(v) for v in value)
    return value


def convert_args(args: Mapping[str, Any]) -> dict[str, Any]:
    """Case-file values as torch takes them: a dtype name given as the dtype argument (softmax's) becomes the
    torch dtype, lists become tuples (as_called); tensors given by keyword are left to tensor_kwargs."""
    return {
        key: getattr(torch, value)
        if key == "dtype" and isinstance(value, str) and value in DTYPES
        else as_called(value)
        for key, value in args.items()
        if not is_tensor_spec(value)
    }


def tensor_kwargs(args: Mapping[str, Any], dtype: str, device: str) -> dict[str, torch.Tensor]:
    """The tensors an op's args (a module's call_args) pass by keyword, built in dtype (unless pinned) on device."""
    return {name: make_tensor(spec, dtype, device) for name, spec in tensor_args(args).items()}


def resolve_op(name: str) -> Callable[..., Any]:
    """The torch callable for an allowlisted op name."""
    if name in FUNCTIONAL_OPS:
        fn = getattr(F, name)
    elif name in TORCH_OPS:
        fn = getattr(torch, name)
    else:
        raise CnnbenchError(f'op "{name}" is not in the allowlist')
    assert callable(fn)
    return fn  # type: ignore[no-any-return]


def _module_class(name: str) -> type[nn.Module]:
    if name not in MODULES:
        raise CnnbenchError(f'module "{name}" is not in the allowlist')
    cls = getattr(nn, name)
    assert isinstance(cls, type) and issubclass(cls, nn.Module)
    return cls


def exception_type(name: str) -> type[BaseException]:
    """The exception class for an allowlisted name (builtins first, then torch)."""
    if name not in EXCEPTION_TYPES:
        raise CnnbenchError(f'exception type "{name}" is not in the allowlist')
    import builtins

    cls = getattr(builtins, name, None) or getattr(torch, name)
    assert isinstance(cls, type) and issubclass(cls, BaseException)
    return cls


def to_dtype(module: nn.Module, dtype: str, device: str) -> nn.Module:
    """Move module to device and cast its floating parameters and buffers to dtype.

    Integer dtypes are applied too (nn.Module.to refuses them): parameters stop requiring grad first, since
    only floating tensors can.
    """
    target = torch_dtype(dtype)
    if target.is_floating_point:
        return module.to(device=device, dtype=target)
    for p in module.parameters():
        p.requires_grad_(False)
    return module._apply(  # type: ignore[no-any-return]
        lambda t: t.to(device=device, dtype=target) if t.is_floating_point() else t.to(device)
    )


def load_state(module: nn.Module, state: Mapping[str, Any], device: str) -> None:
    """Set parameters/buffers by (dotted) name; shapes must match exactly (no broadcasting)."""
    named = dict(module.named_parameters()) | dict(module.named_buffers())
    for name, spec in state.items():
        if name not in named:
            choices = ", ".join(sorted(named)) or "none"
            raise CnnbenchError(
                f'state "{name}" is not a parameter or buffer of the module (it has: {choices})'
            )
        target = named[name]
        pinned = getattr(spec, "dtype", None)
        value = make_tensor(spec, pinned or str(target.dtype).removeprefix("torch."), device)
        if value.shape != target.shape:
            raise CnnbenchError(
                f'state "{name}" has shape {list(value.shape)}, the module\'s is {list(target.shape)}'
            )
        with torch.no_grad():
            target.copy_(value)


def build_module(name: str, args: Mapping[str, Any]) -> nn.Module:
    """Construct torch.nn.<name>(**args), lists passed as tuples (convert_args)."""
    return _module_class(name)(**convert_args(args))


def build_layers(layers: list[LayerSpec]) -> nn.Sequential:
    """An nn.Sequential of the layers, constructed in float32 on the CPU."""
    return nn.Sequential(*(build_module(layer.module, layer.args) for layer in layers))


class Chain:
    """A ``chain:`` as one callable: each step's op called with the previous step's outputs (a tuple spread as
    positional arguments), the first with the case's inputs; returns the last step's result."""

    def __init__(self, steps: list[ChainStep], dtype: str, device: str) -> None:
        self.steps: list[Callable[..., Any]] = [
            functools.partial(
                resolve_op(step.op), **convert_args(step.args), **tensor_kwargs(step.args, dtype, device)
            )
            for step in steps
        ]
        self.names = [step.op for step in steps]

    def trace(self, *inputs: Any) -> list[Any]:
        """Every step's result, in order."""
        results: list[Any] = []
        operands: tuple[Any, ...] = inputs
        for step in self.steps:
            out = step(*operands)
            results.append(out)
            operands = tuple(out) if isinstance(out, tuple | list) else (out,)
        return results

    def __call__(self, *inputs: Any) -> Any:
        return self.trace(*inputs)[-1]
