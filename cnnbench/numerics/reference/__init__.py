"""Independent float64 NumPy reference implementations (and VJPs) of PyTorch CNN layer ops; no torch import.

One module per op family: conv (and transposed), pool (max, avg), lp_pool, unpool (max_unpool), adaptive_pool,
norm (batch, layer, group, instance, local response norm; normalize), dense (F.linear and F.bilinear: a module
named `linear` would be shadowed here by the function), activation, loss, padding (F.pad), resample (interpolate),
upsample (F.upsample*: interpolate under older names), rearrange (pixel shuffle, unfold/fold, dropout), grid
(affine_grid), reshape (flatten, reshape, matmul, add, mul). `REFERENCES` and `GRADIENTS` (registry) map
torch.nn.functional op names to them; every op is also here under torch's name, so `reference.conv2d(...)` calls
F.conv2d's reference.
"""

from __future__ import annotations

import sys

# Each module's __all__ is its public names: re-exported as they are, so no list here restates them.
from cnnbench.numerics.reference._common import *  # noqa: F403
from cnnbench.numerics.reference.activation import *  # noqa: F403
from cnnbench.numerics.reference.adaptive_pool import *  # noqa: F403
from cnnbench.numerics.reference.conv import *  # noqa: F403
from cnnbench.numerics.reference.dense import *  # noqa: F403
from cnnbench.numerics.reference.grid import *  # noqa: F403
from cnnbench.numerics.reference.loss import *  # noqa: F403
from cnnbench.numerics.reference.lp_pool import *  # noqa: F403
from cnnbench.numerics.reference.norm import *  # noqa: F403
from cnnbench.numerics.reference.padding import *  # noqa: F403
from cnnbench.numerics.reference.pool import *  # noqa: F403
from cnnbench.numerics.reference.rearrange import *  # noqa: F403
from cnnbench.numerics.reference.registry import *  # noqa: F403
from cnnbench.numerics.reference.resample import *  # noqa: F403
from cnnbench.numerics.reference.reshape import *  # noqa: F403
from cnnbench.numerics.reference.unpool import *  # noqa: F403
from cnnbench.numerics.reference.upsample import *  # noqa: F403

# A module's name may be shadowed by an op of its own (reshape.reshape), so each is looked up in sys.modules.
_FAMILIES = (
    "_common", "activation", "adaptive_pool", "conv", "dense", "grid", "loss", "lp_pool", "norm", "padding",
    "pool", "rearrange", "registry", "resample", "reshape", "unpool", "upsample",
)  # fmt: skip
__all__: list[str] = [name for family in _FAMILIES for name in sys.modules[f"{__name__}.{family}"].__all__]
