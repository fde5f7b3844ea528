"""Tests of cnnbench.bench.flops: FLOP counts (by hand and of known models) and parameter counts."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from cnnbench.bench import flops, models

RESNET18_FORWARD_FLOPS = 3_628_146_688  # FlopCounterMode, 1x3x224x224: 2 FLOPs per multiply-add

RESNET18_PARAMS = 11_689_512


@pytest.fixture(scope="module")
def resnet18() -> nn.Module:
    return models.build_model("resnet18").eval()


def test_count_flops_matmul() -> None:
    a, b = torch.randn(4, 5), torch.randn(5, 6)
    assert flops.count_flops(torch.mm, a, b) == 2 * 4 * 5 * 6
    assert flops.count_flops(lambda: torch.mm(a, b)) == 2 * 4 * 5 * 6


def test_resnet18_forward_flops_and_params(resnet18: nn.Module) -> None:
    x = models.example_input("resnet18")
    assert flops.model_flops(resnet18, x, backward=False) == RESNET18_FORWARD_FLOPS
    assert flops.param_count(resnet18) == RESNET18_PARAMS
    with torch.no_grad():
        assert resnet18(x).shape == (1, 1000)


def test_model_flops_backward_exact_and_side_effect_free() -> None:
    model = models.mnist_cnn()
    x = models.example_input("mnist_cnn")
    conv1 = 2 * 1 * 16 * 5 * 5 * 28 * 28
    conv2 = 2 * 16 * 32 * 5 * 5 * 14 * 14
    fc = 2 * 32 * 7 * 7 * 10
    forward = conv1 + conv2 + fc
    # backward: weight grads everywhere, input grads except for the first conv (x does not require grad)
    backward = conv1 + 2 * conv2 + 2 * fc
    assert flops.model_flops(model, x, backward=False) == forward
    assert flops.model_flops(model, x, backward=True) == forward + backward
    assert all(p.grad is None for p in model.parameters())


def test_model_flops_backward_of_depthwise_conv_counts_per_group() -> None:
    conv = nn.Conv2d(4, 4, kernel_size=3, padding=1, groups=4, bias=False)
    x = torch.randn(1, 4, 8, 8)
    forward = 2 * 4 * 1 * 3 * 3 * 8 * 8  # each output channel sees one input channel
    assert flops.model_flops(conv, x, backward=False) == forward
    # weight grad costs as much as the forward; no input grad since x does not require grad
    assert flops.model_flops(conv, x, backward=True) == 2 * forward
    marker = torch.ones_like(conv.weight)
    conv.weight.grad = marker
    assert flops.model_flops(conv, x.requires_grad_(), backward=True) == 3 * forward
    assert x.grad is None
    assert conv.weight.grad is marker  # .grad attributes are restored


def test_model_flops_backward_needs_something_to_differentiate() -> None:
    model = models.lenet()
    model.requires_grad_(False)
    with pytest.raises(ValueError):
        flops.model_flops(model, models.example_input("lenet"), backward=True)


def test_param_count_trainable_only() -> None:
    model = models.lenet()
    assert flops.param_count(model) == 61_706
    model[0].requires_grad_(False)
    assert flops.param_count(model, trainable_only=True) == 61_706 - (6 * 1 * 5 * 5 + 6)
    assert flops.param_count(model) == 61_706
