"""Tests of cnnbench.bench.models: the allowlisted registry, shapes and parameter counts, torchvision optional."""

from __future__ import annotations

import importlib
import sys

import pytest
import torch

from cnnbench.bench import flops, models
from cnnbench.bench.models import MODELS, TORCHVISION_MODELS
from cnnbench.casefile.vocabulary import MODEL_NAMES

TORCHVISION_PARAMS = {
    "resnet18": 11_689_512,
    "resnet50": 25_557_032,
    "mobilenet_v3_large": 5_483_032,
    "efficientnet_b0": 5_288_548,
    "vgg11": 132_863_336,
    "googlenet": 6_624_904,  # aux_logits=False
}


def test_model_names_in_the_allowlist_are_the_models() -> None:
    assert set(MODELS) == MODEL_NAMES
    assert TORCHVISION_MODELS < MODEL_NAMES and {"lenet", "mnist_cnn"}.isdisjoint(TORCHVISION_MODELS)


def test_model_registry_names() -> None:
    assert set(models.MODELS) == {*TORCHVISION_PARAMS, "lenet", "mnist_cnn"}
    with pytest.raises(KeyError):
        models.build_model("os.system")
    with pytest.raises(KeyError):
        models.default_input_shape("nope")


@pytest.mark.parametrize("name", sorted(TORCHVISION_PARAMS))
def test_torchvision_models_build_with_right_shapes(name: str) -> None:
    pytest.importorskip("torchvision")
    assert models.default_input_shape(name) == (3, 224, 224)
    with torch.device("meta"):  # shapes and parameter counts without allocating or initialising weights
        model = models.build_model(name).eval()
        out = model(models.example_input(name, 2, device="meta"))
    assert out.shape == (2, 1000)
    assert flops.param_count(model) == TORCHVISION_PARAMS[name]


@pytest.mark.parametrize(("name", "params"), [("lenet", 61_706), ("mnist_cnn", 28_938)])
def test_small_models(name: str, params: int) -> None:
    assert models.default_input_shape(name) == (1, 28, 28)
    model = models.build_model(name).eval()
    with torch.no_grad():
        out = model(models.example_input(name, 3))
    assert out.shape == (3, 10)
    assert flops.param_count(model) == params


def test_models_module_imports_without_torchvision(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torchvision", None)  # any `import torchvision` now raises ImportError
    monkeypatch.delitem(sys.modules, "torchvision.models", raising=False)
    try:
        reloaded = importlib.reload(models)
        assert set(reloaded.MODELS) == {*TORCHVISION_PARAMS, "lenet", "mnist_cnn"}
        assert reloaded.build_model("lenet") is not None
        with pytest.raises(ImportError):
            reloaded.build_model("resnet18")
    finally:
        monkeypatch.undo()
        importlib.reload(models)
