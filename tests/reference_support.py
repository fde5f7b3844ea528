"""Shared support of tests/numerics/reference: torch conversion, float64 comparisons, seeded generators, autograd."""

from __future__ import annotations

import warnings
import zlib
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch

__all__ = [
    "NOTES_X",
    "TOL",
    "T",
    "assert_close",
    "assert_grads",
    "autograd",
    "check_random_geometries",
    "pick",
    "rng_for",
    "tie_heavy",
    "torch_raises_iff_reference_raises",
]

TOL: dict[str, float] = {"rtol": 1e-12, "atol": 1e-12}


def T(a: Any) -> torch.Tensor:
    return torch.as_tensor(np.asarray(a, dtype=np.float64))


def assert_close(actual: Any, expected: Any, **kw: Any) -> None:
    if isinstance(expected, torch.Tensor):
        expected = expected.detach().numpy()
    actual = np.asarray(actual)
    assert actual.shape == np.shape(expected), (actual.shape, np.shape(expected))
    np.testing.assert_allclose(actual, expected, **{**TOL, **kw})


def rng_for(*key: Any) -> np.random.Generator:
    """A generator seeded from the test's parameters: reproducible across runs (unlike hash())."""
    return np.random.default_rng(zlib.crc32(repr(key).encode()))


def torch_raises_iff_reference_raises(
    ref: Callable[[], Any], tor: Callable[[], Any]
) -> tuple[Any, Any] | None:
    """Run both; if torch rejects the config the reference must raise ValueError too (and vice versa)."""
    try:
        expected = tor()
    except (RuntimeError, ValueError):
        with pytest.raises(ValueError):
            ref()
        return None
    return ref(), expected


def tie_heavy(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Small integers so that windows are full of ties (exercises torch's first-maximum rule)."""
    return rng.integers(-2, 3, size=shape).astype(np.float64)


NOTES_X = np.array([[1, 2, 1, 0], [2, 0, 1, 3], [0, 5, 4, 2], [4, 1, 2, 5]], dtype=float)


def autograd(
    fn: Callable[..., torch.Tensor], grad_out_rng: np.random.Generator, inputs: dict[str, Any], **args: Any
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Run fn on float64 leaf tensors (None stays None); return the upstream gradient and the leaf grads."""
    leaves = {k: None if v is None else T(v).requires_grad_(True) for k, v in inputs.items()}
    out = fn(*leaves.values(), **args)
    out = out[0] if isinstance(out, tuple) else out
    go = grad_out_rng.standard_normal(tuple(out.shape))
    out.backward(T(go))
    return go, {k: v.grad.numpy() for k, v in leaves.items() if v is not None}


def assert_grads(ours: dict[str, np.ndarray], theirs: dict[str, np.ndarray]) -> None:
    assert set(ours) == set(theirs), (set(ours), set(theirs))
    for key, value in theirs.items():
        assert_close(ours[key], value, err_msg=key)


def pick(rng: np.random.Generator, options: list[Any]) -> Any:
    return options[int(rng.integers(len(options)))]


def check_random_geometries(
    op: str, random_case: Callable[[str, np.random.Generator], tuple[Callable[[], Any], Callable[[], Any]]]
) -> None:
    """250 seeded random configurations of op: each valid one matches torch, and a fair share are valid."""
    rng = rng_for("fuzz", op)
    compared = 0
    for _ in range(250):
        ours, theirs = random_case(op, rng)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = torch_raises_iff_reference_raises(ours, theirs)
        if result is None:
            continue
        compared += 1
        out, expected = result
        if isinstance(expected, tuple):
            assert_close(out[0], expected[0])
            np.testing.assert_array_equal(out[1], expected[1].numpy())
        else:
            assert_close(out, expected)
    assert compared >= 60, compared  # a fair share of random configurations are valid
