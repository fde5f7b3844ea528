"""Allowlisted registry of buildable CNN models: lazily imported torchvision ones and small torch.nn ones."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

__all__ = [
    "MODELS",
    "TORCHVISION_MODELS",
    "build_model",
    "default_input_shape",
    "example_input",
    "lenet",
    "mnist_cnn",
]

_IMAGENET_INPUT_SHAPE = (3, 224, 224)  # the resolution torchvision's ImageNet classifiers are defined at.
_MNIST_INPUT_SHAPE = (1, 28, 28)  # LeNet / MNIST-style nets: one grey channel, 28x28 pixels.
_NUM_CLASSES_MNIST = 10  # ten digit classes.


def lenet(num_classes: int = _NUM_CLASSES_MNIST) -> nn.Module:
    """d2l's LeNet-5 for 1x28x28 inputs (sigmoid activations, average pooling)."""
    return nn.Sequential(
        nn.Conv2d(1, 6, kernel_size=5, padding=2),
        nn.Sigmoid(),
        nn.AvgPool2d(kernel_size=2, stride=2),
        nn.Conv2d(6, 16, kernel_size=5),
        nn.Sigmoid(),
        nn.AvgPool2d(kernel_size=2, stride=2),
        nn.Flatten(),
        nn.Linear(16 * 5 * 5, 120),
        nn.Sigmoid(),
        nn.Linear(120, 84),
        nn.Sigmoid(),
        nn.Linear(84, num_classes),
    )


def mnist_cnn(num_classes: int = _NUM_CLASSES_MNIST) -> nn.Module:
    """A small two-conv MNIST classifier for 1x28x28 inputs (ReLU, max pooling)."""
    return nn.Sequential(
        nn.Conv2d(1, 16, kernel_size=5, stride=1, padding=2),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(16, 32, kernel_size=5, stride=1, padding=2),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(32 * 7 * 7, num_classes),
    )


def _torchvision(name: str, doc: str, **defaults: Any) -> Callable[..., nn.Module]:
    """A builder of torchvision's ``models.<name>`` with random weights (``defaults`` before the caller's).

    torchvision is imported when the builder runs, not here: it is an optional dependency.
    """

    def build(**kwargs: Any) -> nn.Module:
        from torchvision import models

        model: nn.Module = getattr(models, name)(weights=None, **{**defaults, **kwargs})
        return model

    build.__name__ = build.__qualname__ = f"_{name}"
    build.__doc__ = doc
    return build


#: The torchvision models, by name (their builders import torchvision; the others are plain torch.nn).
_TORCHVISION_BUILDERS: dict[str, Callable[..., nn.Module]] = {
    "resnet18": _torchvision("resnet18", "torchvision ResNet-18, randomly initialised."),
    "resnet50": _torchvision("resnet50", "torchvision ResNet-50, randomly initialised."),
    "mobilenet_v3_large": _torchvision(
        "mobilenet_v3_large", "torchvision MobileNetV3-Large, randomly initialised."
    ),
    "efficientnet_b0": _torchvision("efficientnet_b0", "torchvision EfficientNet-B0, randomly initialised."),
    "vgg11": _torchvision("vgg11", "torchvision VGG-11 (no batch norm), randomly initialised."),
    "googlenet": _torchvision(
        "googlenet",
        "torchvision GoogLeNet without auxiliary heads; default init (skips the slow truncnorm init).",
        aux_logits=False,
        init_weights=False,
    ),
}

#: Name -> builder. The only models cnnbench builds: a name is looked up here, never imported.
MODELS: dict[str, Callable[..., nn.Module]] = {
    **_TORCHVISION_BUILDERS,
    "lenet": lenet,
    "mnist_cnn": mnist_cnn,
}

#: The models whose builder imports torchvision (the others are plain torch.nn, always available).
TORCHVISION_MODELS: frozenset[str] = frozenset(_TORCHVISION_BUILDERS)

#: Per-sample input shape (C, H, W) of each model: the resolution it is defined at.
_INPUT_SHAPES: dict[str, tuple[int, ...]] = {
    **dict.fromkeys(_TORCHVISION_BUILDERS, _IMAGENET_INPUT_SHAPE),
    "lenet": _MNIST_INPUT_SHAPE,
    "mnist_cnn": _MNIST_INPUT_SHAPE,
}


def _check_name(name: str) -> None:
    if name not in MODELS:
        raise KeyError(f"unknown model {name!r}; known models: {', '.join(sorted(MODELS))}")


def build_model(name: str, **kwargs: Any) -> nn.Module:
    """Build the registered model ``name`` (random weights) with builder keyword arguments ``kwargs``."""
    _check_name(name)
    return MODELS[name](**kwargs)


def default_input_shape(name: str) -> tuple[int, ...]:
    """Per-sample input shape (C, H, W) of model ``name``, without the batch dimension."""
    _check_name(name)
    return _INPUT_SHAPES[name]


def example_input(
    name: str, batch_size: int = 1, *, device: str = "cpu", dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """A random normal batch of shape (batch_size, *default_input_shape(name))."""
    return torch.randn(batch_size, *default_input_shape(name), device=device, dtype=dtype)
