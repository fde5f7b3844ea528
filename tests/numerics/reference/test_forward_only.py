"""The forward-only references (activations beyond relu/sigmoid/tanh, layer/group/instance/local response norm,
normalize, losses, pixel shuffle, unfold/fold, lp and unpooling, bilinear, affine_grid, dropout, the torch ops and
the upsample aliases) pinned to PyTorch in float64, each at edge values of its documented arguments."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from reference_support import T, assert_close, rng_for

from cnnbench.numerics import reference as R
from cnnbench.ops.catalog import MODULE_GAPS, MODULE_OPS, OPS

EDGES = np.array([-1e4, -30.0, -7.0, -6.0, -3.0, -1.5, -1.0, -0.5, -1e-8, -0.0, 0.0, 1e-8, 0.5, 1.0, 1.5, 3.0,
                  5.9, 6.0, 6.5, 7.0, 25.0, 30.0, 1e4, np.inf, -np.inf])  # fmt: skip


def _x(*shape: int, seed: int = 0, scale: float = 3.0) -> np.ndarray:
    return rng_for(shape, seed).standard_normal(shape) * scale


def _torch_fn(name: str) -> Callable[..., Any]:
    return getattr(F, name, None) or getattr(torch, name)


def _torch(a: Any) -> Any:
    if isinstance(a, np.ndarray):
        return torch.as_tensor(a) if a.dtype.kind in "iub" else T(a)
    return a


#: (op, inputs, keyword args): every activation at and beyond its bounds, and each documented argument
CASES: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = [
    ("relu6", (EDGES,), {}),
    ("hardtanh", (EDGES,), {}),
    ("hardtanh", (EDGES,), {"min_val": -2.5, "max_val": 6.5}),
    ("leaky_relu", (EDGES,), {}),
    ("leaky_relu", (EDGES,), {"negative_slope": 0.2}),
    ("elu", (EDGES,), {"alpha": 0.7}),
    ("selu", (EDGES,), {}),
    ("celu", (EDGES,), {"alpha": 2.0}),
    ("gelu", (EDGES,), {}),
    ("gelu", (EDGES,), {"approximate": "tanh"}),
    ("silu", (EDGES,), {}),
    ("mish", (EDGES,), {}),
    ("hardswish", (EDGES,), {}),
    ("hardsigmoid", (EDGES,), {}),
    ("softplus", (EDGES,), {}),
    ("softplus", (EDGES,), {"beta": 2.0, "threshold": 5.0}),
    ("softsign", (EDGES,), {}),
    ("logsigmoid", (EDGES,), {}),
    ("threshold", (EDGES, 0.5, -2.0), {}),
    ("prelu", (_x(2, 3, 4), np.array([0.25, -0.5, 2.0])), {}),
    ("prelu", (_x(2, 3, 4), np.array([0.1])), {}),
    ("glu", (_x(2, 6, 3),), {"dim": 1}),
    ("glu", (_x(2, 4),), {}),
    ("softmin", (np.array([[1000.0, 0.0, -5.0], [1.0, 2.0, 3.0]]),), {"dim": 1}),
    # normalisation: default and large eps, near-constant rows
    ("layer_norm", (_x(2, 3, 5), [5]), {}),
    ("layer_norm", (_x(2, 3, 5), [3, 5], _x(3, 5, seed=1), _x(3, 5, seed=2)), {"eps": 1.0}),
    ("layer_norm", (np.full((2, 4), 3.0) + np.array([0, 1e-6, 0, -1e-6]), [4]), {}),
    ("group_norm", (_x(2, 6, 4, 3), 3), {}),
    ("group_norm", (_x(2, 6, 5), 2, _x(6, seed=1), _x(6, seed=2)), {"eps": 0.5}),
    ("group_norm", (_x(1, 4, 3), 4), {}),
    ("instance_norm", (_x(2, 3, 4, 5),), {}),
    ("instance_norm", (_x(2, 3, 6), None, None, _x(3, seed=1), _x(3, seed=2)), {"eps": 0.1}),
    (
        "instance_norm",
        (_x(2, 3, 6), np.array([0.5, -1.0, 2.0]), np.array([1.0, 4.0, 0.25])),
        {"use_input_stats": False},
    ),
    ("local_response_norm", (_x(2, 7, 4, 3),), {"size": 3}),
    ("local_response_norm", (_x(2, 6, 5),), {"size": 4, "alpha": 0.1, "beta": 0.5, "k": 2.0}),
    ("normalize", (_x(3, 4, 2),), {}),
    ("normalize", (_x(3, 4),), {"p": 1.0, "dim": 0}),
    ("normalize", (np.zeros((2, 3)),), {"eps": 1e-3}),
    # losses: each reduction, weights, ignore_index, label smoothing, probability targets
    ("mse_loss", (_x(3, 4), _x(3, 4, seed=1)), {}),
    ("mse_loss", (_x(3, 4), _x(3, 4, seed=1)), {"reduction": "none"}),
    ("l1_loss", (_x(3, 4), _x(3, 4, seed=1)), {"reduction": "sum"}),
    ("nll_loss", (np.log(np.full((4, 3), 1 / 3)) + _x(4, 3, scale=0.1), np.array([0, 2, 1, 2])), {}),
    ("nll_loss", (_x(4, 3), np.array([0, 2, -100, 1])), {"weight": np.array([1.0, 2.0, 0.5])}),
    ("nll_loss", (_x(4, 3), np.array([0, 2, 1, 1])), {"reduction": "none", "ignore_index": 1}),
    ("cross_entropy", (_x(5, 4), np.array([0, 3, 1, 2, 3])), {}),
    ("cross_entropy", (_x(5, 4), np.array([0, 3, 1, 2, 3])), {"label_smoothing": 0.2}),
    (
        "cross_entropy",
        (_x(2, 4, 3), np.array([[0, 3, 1], [2, 2, 0]])),
        {"weight": np.array([1.0, 0.5, 2.0, 1.5]), "reduction": "sum", "label_smoothing": 0.1},
    ),
    ("cross_entropy", (_x(3, 4), np.array([0, -100, 2])), {"label_smoothing": 0.3}),
    ("cross_entropy", (_x(3, 4), np.full((3, 4), 0.25)), {"label_smoothing": 0.1}),
    ("cross_entropy", (np.array([[1000.0, 0.0]]), np.array([1])), {}),
    ("binary_cross_entropy", (np.array([0.0, 0.1, 0.5, 0.9, 1.0]), np.array([0.0, 1.0, 0.5, 0.0, 1.0])), {}),
    (
        "binary_cross_entropy",
        (np.array([0.2, 0.7]), np.array([1.0, 0.0])),
        {"weight": np.array([2.0, 0.5]), "reduction": "none"},
    ),
    (
        "binary_cross_entropy_with_logits",
        (np.array([-100.0, -2.0, 0.0, 3.0, 100.0]), np.array([1.0, 0, 1, 0, 1])),
        {"pos_weight": np.array([3.0])},
    ),
    # moving values around
    ("pixel_shuffle", (_x(2, 8, 3, 2),), {"upscale_factor": 2}),
    ("pixel_unshuffle", (_x(1, 2, 6, 3),), {"downscale_factor": 3}),
    (
        "unfold",
        (_x(2, 3, 5, 6),),
        {"kernel_size": [2, 3], "dilation": [1, 2], "padding": 1, "stride": [2, 1]},
    ),
    ("fold", (_x(2, 12, 12),), {"output_size": [4, 5], "kernel_size": 2, "stride": 1}),
    ("fold", (_x(1, 6, 9),), {"output_size": [5, 5], "kernel_size": [3, 2], "padding": 1, "stride": 2}),
    ("dropout", (_x(3, 4),), {"training": False}),
    ("dropout", (_x(3, 4),), {"p": 0.0}),
    ("dropout", (_x(3, 4),), {"p": 1.0}),
    # pooling relatives
    ("lp_pool2d", (np.abs(_x(2, 3, 7, 6)), 2.0, 3), {"stride": 2}),
    ("lp_pool2d", (np.abs(_x(1, 2, 7, 7)), 1.5, [3, 2]), {"stride": [2, 3], "ceil_mode": True}),
    ("lp_pool1d", (np.abs(_x(2, 3, 9)), 3.0, 4), {"stride": 3, "ceil_mode": True}),
    ("affine_grid", (_x(2, 2, 3), [2, 1, 3, 4]), {"align_corners": False}),
    ("affine_grid", (_x(1, 2, 3), [1, 3, 1, 5]), {"align_corners": True}),
    ("affine_grid", (_x(2, 3, 4), [2, 1, 2, 3, 4]), {"align_corners": False}),
    ("bilinear", (_x(4, 3), _x(4, 5, seed=1), _x(2, 3, 5, seed=2), _x(2, seed=3)), {}),
    ("reshape", (_x(2, 6),), {"shape": [3, -1]}),
    ("matmul", (_x(2, 3, 4), _x(4, 5, seed=1)), {}),
    ("add", (_x(2, 3), _x(3, seed=1)), {"alpha": -2.5}),
    ("mul", (_x(2, 3), _x(2, 1, seed=1)), {}),
    ("upsample", (_x(1, 2, 3, 4),), {"scale_factor": 2, "mode": "bilinear", "align_corners": False}),
    ("upsample_nearest", (_x(1, 2, 3, 4),), {"size": [5, 7]}),
    ("upsample_bilinear", (_x(1, 2, 3, 4),), {"scale_factor": 1.5}),
]


@pytest.mark.parametrize(
    ("name", "inputs", "kwargs"), CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)]
)
def test_reference_matches_torch(name: str, inputs: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = _torch_fn(name)(*(_torch(a) for a in inputs), **{k: _torch(v) for k, v in kwargs.items()})
    got = R.REFERENCES[name](*inputs, **kwargs)
    assert_close(got, want, equal_nan=True)


def test_max_unpool_inverts_max_pool_with_ties() -> None:
    x = np.array([[[[1.0, 1.0, 2.0, 2.0], [1.0, 0.0, 2.0, 1.0], [3.0, 3.0, 0.0, 0.0], [3.0, 3.0, 0.0, 0.0]]]])
    values, indices = F.max_pool2d(T(x), 2, return_indices=True)
    want = F.max_unpool2d(values, indices, 2)
    assert_close(R.max_unpool2d(values.numpy(), indices.numpy(), 2), want)
    v1, i1 = F.max_pool1d(T(x[0, :, 0]), 2, stride=1, return_indices=True)
    assert_close(
        R.max_unpool1d(v1.numpy(), i1.numpy(), 2, 1, output_size=[4]),
        F.max_unpool1d(v1, i1, 2, 1, output_size=[4]),
    )


def test_instance_norm_updates_running_stats_as_torch() -> None:
    x = _x(3, 2, 5)
    rm, rv = np.array([0.5, -0.5]), np.array([2.0, 0.5])
    trm, trv = T(rm.copy()), T(rv.copy())
    F.instance_norm(T(x), trm, trv, use_input_stats=True, momentum=0.3)
    R.instance_norm(x, rm, rv, use_input_stats=True, momentum=0.3)
    assert_close(rm, trm)
    assert_close(rv, trv)


@pytest.mark.parametrize(
    ("name", "call"),
    [
        ("dropout", lambda: R.dropout(np.ones(3), p=0.5, training=True)),
        ("glu", lambda: R.glu(np.ones((2, 3)), dim=1)),
        ("group_norm", lambda: R.group_norm(np.ones((1, 6, 2)), 4)),
        ("gelu", lambda: R.gelu(np.ones(2), approximate="erf")),
        ("layer_norm", lambda: R.layer_norm(np.ones((2, 3)), [2])),
        ("fold", lambda: R.fold(np.ones((1, 5, 4)), [3, 3], 2)),
        ("max_unpool2d", lambda: R.max_unpool2d(np.ones((1, 1, 2, 2)), np.full((1, 1, 2, 2), 99), 2)),
    ],
)
def test_invalid_arguments_raise_value_error(name: str, call: Callable[[], Any]) -> None:
    with pytest.raises(ValueError):
        call()


def test_every_op_and_module_has_a_reference_or_a_reason() -> None:
    """The rule of docs/case-format.md: an op of the vocabulary either has a reference or says why not."""
    for name, t in OPS.items():
        assert t.reference == (name in R.REFERENCES), name
        assert t.reference != bool(t.no_reference), f"{name}: a reference or a reason, not both or neither"
    from cnnbench.casefile.vocabulary import MODULES

    for module in MODULES:
        assert (module in MODULE_OPS) != (module in MODULE_GAPS), module
