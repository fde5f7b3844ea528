"""F.max_unpool1d/2d: the inverse of max pooling, each value written at its flat index into a zero plane."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from cnnbench.numerics.reference._common import FloatArray, Size, _batched, _f64, _ntuple, _unbatch
from cnnbench.numerics.reference._nd import NdOp

__all__ = ["max_unpool1d", "max_unpool2d"]


class _MaxUnpool(NdOp):
    """F.{op}: out[n, c].flat[indices[n, c, i]] = input[n, c, i] into planes of output_size (default
    (in - 1) * stride - 2 * padding + kernel per dim); positions no index names stay 0. Indices outside the plane
    are an error, as in torch."""

    pattern = "max_unpool{nd}d"

    def __call__(
        self, input: npt.ArrayLike, indices: npt.ArrayLike, kernel_size: Size, stride: Size | None = None,
        padding: Size = 0, output_size: Size | None = None,
    ) -> FloatArray:  # fmt: skip
        x, unbatched = _batched(_f64(input), self.nd, self.op)
        idx = np.asarray(indices, dtype=np.int64).reshape(x.shape)
        k = _ntuple(kernel_size, self.nd, "kernel_size")
        s = (
            k
            if stride is None or (not isinstance(stride, int) and len(stride) == 0)
            else _ntuple(stride, self.nd, "stride")
        )
        p = _ntuple(padding, self.nd, "padding")
        if output_size is None:
            size = tuple(
                (n - 1) * si - 2 * pi + ki for n, ki, si, pi in zip(x.shape[2:], k, s, p, strict=True)
            )
        else:
            size = tuple(int(v) for v in list(output_size)[-self.nd :])  # type: ignore[arg-type]
        plane = int(np.prod(size))
        if idx.size and (idx.min() < 0 or idx.max() >= plane):
            raise ValueError(f"{self.op}: an index is outside the output plane of size {list(size)}")
        out = np.zeros((x.shape[0], x.shape[1], plane))
        flat_x, flat_i = x.reshape(x.shape[0], x.shape[1], -1), idx.reshape(x.shape[0], x.shape[1], -1)
        np.put_along_axis(out, flat_i, flat_x, axis=-1)
        return np.asarray(_unbatch(out.reshape(x.shape[0], x.shape[1], *size), unbatched), dtype=np.float64)


max_unpool1d = _MaxUnpool(1)
max_unpool2d = _MaxUnpool(2)
