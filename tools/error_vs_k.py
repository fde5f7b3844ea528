"""Measure torch's error against the float64 NumPy reference as the reduction length K grows (docs/tolerances.md).

Run: ``.venv/bin/python tools/error_vs_k.py`` (CPU, a few seconds). For each op, dtype and K it prints the
normwise error ``max|got - ref| / max|ref|`` in units of the dtype's unit roundoff u, the worst element's error in
units of cnnbench's error model (its tolerance divided by SAFETY: below SAFETY passes), and whether
torch.testing.assert_close's defaults would pass.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from cnnbench.numerics import reference
from cnnbench.numerics.tolerance import DEFAULT_TOLERANCES, SAFETY, reference_tolerance
from cnnbench.ops.precision import UNIT_ROUNDOFF

#: Low-precision dtypes measured; float64 is the reference's own precision.
DTYPES = ("float32", "float16", "bfloat16")
#: Input channels swept for conv2d (K = C_in * 9) and fan-ins for linear.
CONV_CHANNELS = (1, 4, 16, 64, 256, 512)
FAN_INS = (8, 64, 512, 4096)


def _randn(*shape: int, seed: int, positive: bool) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    if positive:
        return torch.rand(*shape, generator=gen, dtype=torch.float64)
    return torch.randn(*shape, generator=gen, dtype=torch.float64)


def _row(
    op: str,
    k: int,
    inputs: list[torch.Tensor],
    torch_fn: Callable[..., torch.Tensor],
    ref_fn: Callable[..., np.ndarray],
    data: str,
) -> str:
    ref = ref_fn(*[t.numpy() for t in inputs])
    scale = float(np.abs(ref).max())
    cells = [f"| {op} | {data} | {k} |"]
    for name in DTYPES:
        dtype = getattr(torch, name)
        got = torch_fn(*[t.to(dtype) for t in inputs]).double().numpy()
        err = np.abs(got - ref)
        u = UNIT_ROUNDOFF[name]
        default = DEFAULT_TOLERANCES[name]
        ac_ok = bool((err <= default.atol + default.rtol * np.abs(ref)).all())
        tol = reference_tolerance(op, name, k, scale, float(max(t.abs().max() for t in inputs)))
        allowed = tol.atol + tol.rtol * np.abs(ref)
        # How much of the tolerance the worst element uses, times SAFETY: the error in units of the model.
        used = float((err / allowed).max()) * SAFETY
        cells.append(f" {err.max() / scale / u:.2f} | {used:.2f} | {'pass' if ac_ok else 'FAIL'} |")
    return "".join(cells)


def main() -> None:
    """Print the error-vs-K table as markdown."""
    torch.set_num_threads(2)
    head = "| op | data | K |" + "".join(f" {d} err/u | {d} err/model | assert_close |" for d in DTYPES)
    print(head)
    print("|" + "---|" * (3 + 3 * len(DTYPES)))
    for positive in (False, True):
        data = "rand" if positive else "randn"
        for cin in CONV_CHANNELS:
            x = _randn(2, cin, 10, 10, seed=0, positive=positive)
            w = _randn(8, cin, 3, 3, seed=1, positive=positive)
            print(_row("conv2d", cin * 9, [x, w], F.conv2d, reference.conv2d, data))
        for fan_in in FAN_INS:
            x = _randn(16, fan_in, seed=0, positive=positive)
            w = _randn(32, fan_in, seed=1, positive=positive)
            print(_row("linear", fan_in, [x, w], F.linear, reference.linear, data))
    for hw in (5, 10, 20, 40):
        # The weight gradient of conv2d sums N x H_out x W_out products: K grows with the image.
        x = _randn(2, 4, hw + 2, hw + 2, seed=0, positive=False)
        go = _randn(2, 8, hw, hw, seed=1, positive=False)
        w = _randn(8, 4, 3, 3, seed=2, positive=False)

        def grad_w(a: torch.Tensor, g: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
            return torch.nn.grad.conv2d_weight(a, weight.shape, g)

        def ref_grad_w(a: np.ndarray, g: np.ndarray, weight: np.ndarray) -> np.ndarray:
            return reference.conv2d_backward(g, a, weight)["weight"]

        print(_row("conv2d", 2 * hw * hw, [x, go, w], grad_w, ref_grad_w, "randn (grad weight)"))
    for kernel in (2, 3, 7):
        x = _randn(2, 8, 14, 14, seed=0, positive=False)
        print(
            _row(
                "avg_pool2d",
                kernel * kernel,
                [x],
                lambda t, k=kernel: F.avg_pool2d(t, k),  # type: ignore[misc]
                lambda a, k=kernel: reference.avg_pool2d(a, k),  # type: ignore[misc]
                "randn",
            )
        )
    for n in (10, 100, 1000):
        x = _randn(4, n, seed=0, positive=False) * 3
        print(
            _row("softmax", n, [x], lambda t: F.softmax(t, 1), lambda a: reference.softmax(a, 1), "3*randn")
        )
        print(
            _row(
                "log_softmax",
                n,
                [x],
                lambda t: F.log_softmax(t, 1),
                lambda a: reference.log_softmax(a, 1),
                "3*randn",
            )
        )
    x = _randn(64, 64, seed=0, positive=False) * 3
    print(_row("sigmoid", 1, [x], torch.sigmoid, reference.sigmoid, "3*randn"))
    print(_row("tanh", 1, [x], torch.tanh, reference.tanh, "3*randn"))
    for hw in (4, 16, 64):
        x = _randn(4, 8, hw, hw, seed=0, positive=False) * 2 + 1
        k = 4 * hw * hw
        print(
            _row(
                "batch_norm",
                k,
                [x],
                lambda t: F.batch_norm(t, None, None, training=True),
                lambda a: reference.batch_norm(a, None, None, training=True),
                "2*randn+1",
            )
        )


if __name__ == "__main__":
    main()
