"""Independent float64 NumPy reference implementations (and VJPs) of PyTorch CNN layer ops; no torch import.

One module per op family: conv (and transposed), pool (max, avg), adaptive_pool, norm (batch norm),
dense (F.linear: a module named `linear` would be shadowed here by the function), activation, padding (F.pad),
resample (interpolate), reshape (flatten). `REFERENCES` and `GRADIENTS`
(registry) map torch.nn.functional op names to them; every op is also here under torch's name, so
`reference.conv2d(...)` calls F.conv2d's reference.
"""

from __future__ import annotations

from cnnbench.numerics.reference import (
    _common,
    activation,
    adaptive_pool,
    conv,
    dense,
    norm,
    padding,
    pool,
    registry,
    resample,
    reshape,
)

# Each module's __all__ is its public names: re-exported as they are, so no list here restates them.
from cnnbench.numerics.reference._common import *  # noqa: F403
from cnnbench.numerics.reference.activation import *  # noqa: F403
from cnnbench.numerics.reference.adaptive_pool import *  # noqa: F403
from cnnbench.numerics.reference.conv import *  # noqa: F403
from cnnbench.numerics.reference.dense import *  # noqa: F403
from cnnbench.numerics.reference.norm import *  # noqa: F403
from cnnbench.numerics.reference.padding import *  # noqa: F403
from cnnbench.numerics.reference.pool import *  # noqa: F403
from cnnbench.numerics.reference.registry import *  # noqa: F403
from cnnbench.numerics.reference.resample import *  # noqa: F403
from cnnbench.numerics.reference.reshape import *  # noqa: F403

__all__: list[str] = []
__all__ += _common.__all__
__all__ += activation.__all__
__all__ += adaptive_pool.__all__
__all__ += conv.__all__
__all__ += dense.__all__
__all__ += norm.__all__
__all__ += padding.__all__
__all__ += pool.__all__
__all__ += registry.__all__
__all__ += resample.__all__
__all__ += reshape.__all__
