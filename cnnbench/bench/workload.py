"""Build what a benchmark variant times: its model or call, batch of inputs, and inference or train step."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn import functional

from cnnbench.bench.models import build_model, default_input_shape
from cnnbench.casefile.bench_format import BenchmarkSpec
from cnnbench.casefile.tensors import RandnSpec, tensor_shape
from cnnbench.casefile.variants import BenchVariant
from cnnbench.errors import CnnbenchError
from cnnbench.numerics.build import build_layers, build_module, convert_args, resolve_op
from cnnbench.numerics.fill import make_tensor, torch_dtype
from cnnbench.numerics.subject import Subject, to_memory_format

__all__ = [
    "TRAIN_LR",
    "Workload",
    "build_workload",
    "first_tensor",
    "input_specs",
    "meta_workload",
    "torchvision_missing",
]

#: SGD learning rate of a train step. Small, so that thousands of timed steps on one fixed batch do not drive
#: the weights to overflow or denormals (which would change the speed measured); its value costs nothing.
TRAIN_LR = 1e-4
#: Seed of the class labels a model's train step uses with cross-entropy (offset from the input seed).
_TARGET_SEED_OFFSET = 7919


@dataclass
class Workload:
    """A built benchmark variant: the callable timed, and what it is made of."""

    step: Callable[[], object]
    """One timed call: a forward pass under torch.inference_mode, or forward + backward + SGD step."""
    forward: Callable[[], object]
    """One forward pass without autograd (the correctness check's output); not timed."""
    module: nn.Module | None
    inputs: list[torch.Tensor]
    device: str
    dtype: torch.dtype


def first_tensor(out: object) -> torch.Tensor:
    """The output tensor of a call (the first one of a tuple, e.g. max_pool2d with indices)."""
    if isinstance(out, torch.Tensor):
        return out
    if isinstance(out, tuple | list):
        for item in out:
            if isinstance(item, torch.Tensor):
                return item
    raise CnnbenchError(f"the benchmarked call returned {type(out).__name__}, not a tensor")


@functools.cache
def torchvision_missing() -> str | None:
    """Why torchvision cannot be used here (cannot be imported, or fails to), or None when it can."""
    try:
        import torchvision  # noqa: F401
    except Exception as exc:  # ImportError, or a RuntimeError from a torchvision built for another torch
        return f"torchvision is not available ({type(exc).__name__}: {exc})"
    return None


def _build_callable(spec: BenchmarkSpec) -> tuple[Callable[..., Any], nn.Module | None]:
    """The model, module, layers or op of the benchmark, in float32 on the CPU (seeded before)."""
    if spec.model is not None:
        module: nn.Module = build_model(spec.model, **spec.args)
    elif spec.layers is not None:
        module = build_layers(spec.layers)
    elif spec.module is not None:
        module = build_module(spec.module, spec.args)
    else:
        assert spec.op is not None
        return functools.partial(resolve_op(spec.op), **convert_args(spec.args)), None
    return module, module


def input_specs(spec: BenchmarkSpec, batch: int) -> list[Any]:
    """The benchmark's input tensor specs, the first one's leading dimension set to batch."""
    if spec.model is not None and not spec.inputs:
        return [RandnSpec(randn=[batch, *default_input_shape(spec.model)], seed=spec.seed)]
    specs = list(spec.inputs.values())
    first = specs[0]
    for key in ("randn", "rand", "ones", "zeros", "full"):
        shape = getattr(first, key, None)
        if shape is not None and shape[0] != batch:
            specs[0] = first.model_copy(update={key: [batch, *shape[1:]]})
    return specs


def _loss(out: object, spec: BenchmarkSpec, device: str) -> torch.Tensor:
    """Cross-entropy against fixed labels for a model's (N, classes) logits; the output's mean otherwise."""
    tensor = first_tensor(out)
    if spec.model is not None and tensor.dim() == 2:
        gen = torch.Generator().manual_seed(spec.seed + _TARGET_SEED_OFFSET)
        target = torch.randint(tensor.shape[1], (tensor.shape[0],), generator=gen).to(device)
        return functional.cross_entropy(tensor.float(), target)
    return tensor.float().mean()


def _autocast(fn: Callable[..., Any], device: str, dtype: torch.dtype) -> Callable[..., Any]:
    """fn called under torch.autocast for device's type in dtype."""
    device_type = torch.device(device).type

    def call(*args: Any) -> Any:
        with torch.autocast(device_type=device_type, dtype=dtype):
            return fn(*args)

    return call


def build_workload(
    variant: BenchVariant,
    *,
    dtype: str | None = None,
    memory_format: str | None = None,
    mode: str | None = None,
    compile: bool | None = None,
    device: str | None = None,
    autocast: bool | None = None,
) -> Workload:
    """Build the variant's workload; a keyword given overrides that axis (the float32 contiguous reference).

    The module is built in float32 on the CPU after ``torch.manual_seed(seed)`` (so every configuration has
    the same weights), then moved and cast; inputs are seeded and made on the CPU in float64, then cast. A
    train step is forward, loss, backward and ``torch.optim.SGD.step`` on the parameters (on an op's tensors
    after the first); an op, module or layers benchmark also back-propagates to its first input, as a layer
    inside a network does. A model benchmark's first input needs no gradient.

    Under autocast the module and inputs stay float32 and every call (forward, and the train step's forward
    and loss) runs in ``torch.autocast(device_type, dtype)``, as mixed-precision users run it.
    """
    spec = variant.case.spec
    device = device or variant.device
    amp = variant.autocast if autocast is None else autocast
    amp_dtype = torch_dtype(dtype or variant.dtype) if amp else None
    dtype_name = "float32" if amp else dtype or variant.dtype
    target = torch_dtype(dtype_name)
    fmt = memory_format or variant.memory_format
    train = (mode or variant.mode) == "train"
    torch.manual_seed(spec.seed)
    fn, module = _build_callable(spec)
    inputs = [make_tensor(s, dtype_name, device) for s in input_specs(spec, variant.batch)]
    if module is not None:
        module = module.to(device=device, dtype=target)
    subject = to_memory_format(Subject(fn, module, inputs), fmt)
    fn, inputs = subject.fn, subject.inputs
    if module is not None:
        module.train(train)
    compiled = torch.compile(fn) if (variant.compile if compile is None else compile) else fn
    timed = _autocast(compiled, device, amp_dtype) if amp_dtype is not None else compiled

    def forward() -> object:
        with torch.inference_mode():
            return timed(*inputs)

    if not train:
        return Workload(forward, forward, module, inputs, device, target)

    params: list[torch.Tensor]
    if module is not None:
        params = [p for p in module.parameters() if p.requires_grad]
    else:
        params = [t.requires_grad_(True) for t in inputs[1:] if t.is_floating_point()]
    if spec.model is None and inputs[0].is_floating_point():
        inputs[0].requires_grad_(True)
    if not params and not inputs[0].requires_grad:
        raise CnnbenchError("mode train needs parameters or a floating input to differentiate")
    optimizer = torch.optim.SGD(params, lr=TRAIN_LR) if params else None
    first = inputs[0]

    def step() -> object:
        if optimizer is not None:
            optimizer.zero_grad(set_to_none=True)
        first.grad = None
        out = timed(*inputs)
        _loss(out, spec, device).backward()
        if optimizer is not None:
            optimizer.step()
        return out

    def forward_eval() -> object:
        if module is not None:
            module.eval()
        try:
            return forward()
        finally:
            if module is not None:
                module.train(True)

    return Workload(step, forward_eval, module, inputs, device, target)


def meta_workload(variant: BenchVariant) -> tuple[Callable[..., Any], nn.Module | None, list[torch.Tensor]]:
    """The variant's call built on the meta device (no memory, no init cost): for counting FLOPs.

    The tensors a train step differentiates require grad, as in build_workload's train step, whatever the
    variant's mode: the forward+backward count is that of the train step.
    """
    spec = variant.case.spec
    with torch.device("meta"):
        fn, module = _build_callable(spec)
    inputs = []
    for s in input_specs(spec, variant.batch):
        pinned = getattr(s, "dtype", None)
        inputs.append(torch.empty(tensor_shape(s), dtype=torch_dtype(pinned or "float32"), device="meta"))
    if spec.model is None and inputs[0].is_floating_point():
        inputs[0].requires_grad_(True)
    if module is None:
        for t in inputs[1:]:
            if t.is_floating_point():
                t.requires_grad_(True)
    return fn, module, inputs
