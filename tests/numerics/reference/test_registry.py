"""Tests of cnnbench.numerics.reference as a whole: its registries, torch-like signatures, no torch import."""

from __future__ import annotations

import inspect
import math
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from repo import REPO

from cnnbench.numerics import reference as R

# ---------------------------------------------------------------------------------------------------------
# registry, signatures, independence from torch
# ---------------------------------------------------------------------------------------------------------


def test_registries_cover_the_required_ops() -> None:
    required = {
        "conv1d", "conv2d", "conv_transpose1d", "conv_transpose2d", "max_pool1d", "max_pool2d", "avg_pool1d",
        "avg_pool2d", "adaptive_avg_pool2d", "adaptive_max_pool2d", "batch_norm", "linear", "relu", "sigmoid",
        "tanh", "softmax", "log_softmax", "flatten", "interpolate", "pad",
    }  # fmt: skip
    assert required <= set(R.REFERENCES)
    assert {
        "conv1d",
        "conv2d",
        "conv_transpose2d",
        "linear",
        "max_pool2d",
        "avg_pool2d",
        "batch_norm",
    } <= set(R.GRADIENTS)
    assert set(R.__all__) >= {f.__name__ for f in R.REFERENCES.values()} | {
        f.__name__ for f in R.GRADIENTS.values()
    }


def test_every_op_carries_its_torch_name_and_docstring() -> None:
    # the 1d/2d/3d ops are NdOp instances: their name and docstring are filled in per dim
    ops = {name: getattr(R, name) for name in R.__all__ if name[0].islower()}
    assert {"conv2d", "max_pool3d_backward", "adaptive_max_pool1d", "pad"} <= set(ops)
    for name, op in ops.items():
        assert op.__name__ == name
        doc = inspect.getdoc(op)
        assert doc and "{nd}" not in doc and "{op}" not in doc, name
    assert inspect.getdoc(R.conv3d).startswith("F.conv3d (cross-correlation)")
    assert inspect.getdoc(R.avg_pool1d_backward).startswith("Gradient of avg_pool1d:")
    assert repr(R.max_pool2d) == "<reference max_pool2d>"


def _torch_signature(name: str) -> inspect.Signature | None:
    # max pools are boolean_dispatch wrappers (*args, **kwargs): their _with_indices twin has the signature
    fn = getattr(F, f"{name}_with_indices", None) or getattr(F, name, None) or getattr(torch, name)
    try:
        return inspect.signature(fn)
    except (TypeError, ValueError):
        return None


# Parameters of torch's functionals that the reference does not model (torch internals, dtype casts).
IGNORED_TORCH_PARAMS = {"_stacklevel", "dtype", "antialias", "inplace", "out"}


# Documented defaults of the functionals that are C++ builtins (inspect.signature cannot read them).
_CONV_T_DEFAULTS = {"bias": None, "stride": 1, "padding": 0, "output_padding": 0, "groups": 1, "dilation": 1}


TORCH_DOC_DEFAULTS = {
    "conv1d": {"bias": None, "stride": 1, "padding": 0, "dilation": 1, "groups": 1},
    "conv2d": {"bias": None, "stride": 1, "padding": 0, "dilation": 1, "groups": 1},
    "conv3d": {"bias": None, "stride": 1, "padding": 0, "dilation": 1, "groups": 1},
    "linear": {"bias": None},
    "flatten": {"start_dim": 0, "end_dim": -1},
    "conv_transpose1d": _CONV_T_DEFAULTS,
    "conv_transpose2d": _CONV_T_DEFAULTS,
    "avg_pool1d": {"stride": None, "padding": 0, "ceil_mode": False, "count_include_pad": True},
    "avg_pool2d": {
        "stride": None, "padding": 0, "ceil_mode": False, "count_include_pad": True, "divisor_override": None,
    },
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(R.REFERENCES))
def test_reference_signature_mirrors_torch(name: str) -> None:
    ours = inspect.signature(R.REFERENCES[name])
    sig = _torch_signature(name)
    if sig is not None:
        params = [
            p
            for p in sig.parameters.values()
            if p.name not in IGNORED_TORCH_PARAMS and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        ]
        positional = [p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        assert list(ours.parameters)[: len(positional)] == positional
        for p in params:
            assert p.name in ours.parameters, p.name
            if p.default is not inspect.Parameter.empty and p.name != "value":
                assert ours.parameters[p.name].default == p.default, p.name
    for pname, default in TORCH_DOC_DEFAULTS.get(name, {}).items():
        assert ours.parameters[pname].default == default, pname
    if name.startswith("conv_transpose"):  # groups before dilation, as in torch
        order = list(ours.parameters)
        assert order.index("groups") < order.index("dilation")


def test_reference_and_arithmetic_do_not_import_torch() -> None:
    package = REPO / "cnnbench" / "numerics" / "reference"
    sources = sorted(package.rglob("*.py"))
    modules = [
        ".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__") for path in sources
    ]
    assert "cnnbench.numerics.reference.conv" in modules  # the glob found the package's modules
    imports = "; ".join(f"import {m}" for m in [*modules, "cnnbench.ops.arithmetic"])
    code = f"import sys; {imports}; assert 'torch' not in sys.modules, 'torch'"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    for path in [*sources, REPO / "cnnbench" / "ops" / "arithmetic.py"]:
        source = path.read_text()
        assert "import torch" not in source and "from torch" not in source, path


# ---------------------------------------------------------------------------------------------------------
# what every reference does: reject what torch rejects, compute in float64, leave inputs alone
# ---------------------------------------------------------------------------------------------------------


def test_reference_rejects_what_torch_rejects() -> None:
    x = np.zeros((1, 2, 5, 5))
    w = np.zeros((2, 2, 3, 3))
    with pytest.raises(ValueError, match="strided"):
        R.conv2d(x, w, padding="same", stride=2)
    with pytest.raises(ValueError):
        R.conv2d(x, np.zeros((2, 2, 6, 3)))  # kernel larger than input
    with pytest.raises(ValueError):
        R.conv2d(x, w, groups=2)  # channel mismatch
    with pytest.raises(ValueError, match="half"):
        R.max_pool2d(x, 3, padding=2)
    with pytest.raises(ValueError):
        R.avg_pool2d(x, 2, divisor_override=0)
    with pytest.raises(ValueError):
        R.conv_transpose2d(x, w, stride=2, output_padding=2)


def test_outputs_are_float64_and_inputs_untouched() -> None:
    x = np.arange(32, dtype=np.float32).reshape(1, 2, 4, 4)
    before = x.copy()
    for out in [
        R.conv2d(x, np.ones((1, 2, 2, 2))),
        R.avg_pool2d(x, 2),
        R.max_pool2d(x, 2),
        R.interpolate(x, 3),
    ]:
        assert out.dtype == np.float64
    np.testing.assert_array_equal(x, before)
    assert math.isclose(float(R.max_pool2d(x, 4)[0, 0, 0, 0]), 15.0)
