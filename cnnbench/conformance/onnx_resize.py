"""ONNX Resize and Upsample -> F.interpolate: modes and coordinate transforms onto torch's mode and align_corners.

| ONNX mode, coordinate_transformation_mode, nearest_mode | torch |
|---|---|
| nearest, asymmetric, floor (and Upsample's nearest) | `nearest` |
| nearest, half_pixel, round_prefer_ceil | `nearest-exact` (floor(x + 0.5)) |
| nearest, half_pixel, round_prefer_floor | `nearest-exact` when no source coordinate is a tie |
| linear, half_pixel / pytorch_half_pixel | `linear`/`bilinear`/`trilinear`, align_corners false |
| linear, align_corners | the same, align_corners true |
| cubic (a = -0.75, exclude_outside 0), half_pixel / align_corners | `bicubic` (2-d only) |

antialias maps onto interpolate's antialias (linear and cubic). Other combinations (asymmetric linear,
half_pixel_symmetric, tf_crop_and_resize, keep_aspect_ratio_policy other than stretch, other cubic
coefficients) have no torch counterpart and raise UnmappedError.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from cnnbench.conformance.onnx_nodes import Mapped, NodeTest, UnmappedError

__all__ = ["map_resize", "map_upsample"]

_LINEAR = {1: "linear", 2: "bilinear", 3: "trilinear"}


def _targets(t: NodeTest, x: np.ndarray[Any, Any]) -> tuple[list[float] | None, list[int] | None]:
    """The spatial scale factors or output sizes, from the scales or sizes input laid out over attr axes."""
    scales = t.inputs[2] if len(t.inputs) > 2 else None
    sizes = t.inputs[3] if len(t.inputs) > 3 else None
    axes = [int(a) % x.ndim for a in t.attrs.get("axes", range(x.ndim))]
    if scales is not None and scales.size:
        full = [1.0] * x.ndim
        for a, s in zip(axes, scales.tolist(), strict=True):
            full[a] = float(s)
        if full[:2] != [1.0, 1.0]:
            raise UnmappedError(
                f"scales {full} resize the batch or channel dim; F.interpolate resizes spatial dims"
            )
        return full[2:], None
    if sizes is not None and sizes.size:
        full_sizes = list(x.shape)
        for a, n in zip(axes, sizes.tolist(), strict=True):
            full_sizes[a] = int(n)
        if full_sizes[:2] != list(x.shape[:2]):
            raise UnmappedError(f"sizes {full_sizes} resize the batch or channel dim")
        return None, full_sizes[2:]
    raise UnmappedError("neither scales nor sizes given")


def _has_ties(sizes: list[int], scales: list[float] | None, out: list[int] | None) -> bool:
    """True when some half_pixel source coordinate (d + 0.5) / scale - 0.5 is exactly halfway."""
    for i, n in enumerate(sizes):
        m = out[i] if out is not None else math.floor(n * scales[i])  # type: ignore[index]
        scale = scales[i] if scales is not None else m / n
        src = (np.arange(m) + 0.5) / scale - 0.5
        if np.any(np.abs(src - np.floor(src) - 0.5) < 1e-9):
            return True
    return False


def _nearest_mode(
    t: NodeTest, ctm: str, sizes: list[int], scales: list[float] | None, out: list[int] | None
) -> str:
    rounding = t.attrs.get("nearest_mode", "round_prefer_floor")
    if ctm == "asymmetric" and rounding == "floor":
        return "nearest"
    if ctm == "half_pixel" and rounding == "round_prefer_ceil":
        return "nearest-exact"
    if ctm == "half_pixel" and rounding == "round_prefer_floor" and not _has_ties(sizes, scales, out):
        return "nearest-exact"
    raise UnmappedError(
        f"nearest with {ctm} coordinates and nearest_mode {rounding}"
        + (
            " (with ties, which it rounds down and nearest-exact up)"
            if rounding == "round_prefer_floor"
            else ""
        )
        + ": torch has nearest (asymmetric, floor) and nearest-exact (half_pixel, round half up)"
    )


def _align_corners(ctm: str, mode: str) -> bool:
    if ctm in ("half_pixel", "pytorch_half_pixel"):
        return False
    if ctm == "align_corners":
        return True
    raise UnmappedError(
        f"{mode} with {ctm} coordinates: torch's {mode} has half_pixel and align_corners only"
    )


def map_resize(t: NodeTest) -> Mapped:
    x = t.inputs[0]
    assert x is not None
    nd = x.ndim - 2
    mode = str(t.attrs.get("mode", "nearest"))
    ctm = str(t.attrs.get("coordinate_transformation_mode", "half_pixel"))
    policy = t.attrs.get("keep_aspect_ratio_policy", "stretch")
    if policy != "stretch":
        raise UnmappedError(f"keep_aspect_ratio_policy {policy}: ONNX maps every axis with one common scale")
    if ctm in ("tf_crop_and_resize", "half_pixel_symmetric"):
        raise UnmappedError(f"coordinate_transformation_mode {ctm} has no F.interpolate counterpart")
    scales, out = _targets(t, x)
    antialias = bool(t.attrs.get("antialias", 0))
    args: dict[str, Any] = {}
    if mode == "nearest":
        if antialias:
            raise UnmappedError(
                "antialias with nearest: F.interpolate antialiases linear and cubic modes only"
            )
        args["mode"] = _nearest_mode(t, ctm, list(x.shape[2:]), scales, out)
    elif mode == "linear":
        if nd not in _LINEAR:
            raise UnmappedError(f"linear resize of {nd} spatial dims")
        args |= {"mode": _LINEAR[nd], "align_corners": _align_corners(ctm, "linear")}
    elif mode == "cubic":
        if nd != 2:
            raise UnmappedError(f"cubic resize of {nd} spatial dims: torch's bicubic is 2-d")
        a, exclude = float(t.attrs.get("cubic_coeff_a", -0.75)), int(t.attrs.get("exclude_outside", 0))
        if a != -0.75 or exclude:
            raise UnmappedError(
                f"cubic_coeff_a {a}, exclude_outside {exclude}: torch's bicubic is a = -0.75, edges clamped"
            )
        args |= {"mode": "bicubic", "align_corners": _align_corners(ctm, "cubic")}
    else:
        raise UnmappedError(f"mode {mode!r}")
    if antialias:
        args["antialias"] = True
    args = {"size": out, **args} if out is not None else {"scale_factor": scales, **args}
    notes = []
    if ctm == "pytorch_half_pixel":
        notes.append("pytorch_half_pixel: ONNX maps an output of length 1 to source 0, half_pixel otherwise")
    return Mapped("resize", {"op": "interpolate"}, [("input", x)], args, outputs=[t.outputs[0]], notes=notes)


def map_upsample(t: NodeTest) -> Mapped:
    """Upsample (deprecated since opset 10): nearest is asymmetric floor, torch's nearest."""
    x, scales = t.inputs[0], t.inputs[1] if len(t.inputs) > 1 else None
    assert x is not None
    mode = str(t.attrs.get("mode", "nearest"))
    if mode != "nearest":
        raise UnmappedError(
            f"Upsample mode {mode!r} uses asymmetric coordinates, which torch's {mode} does not"
        )
    if scales is None:
        raise UnmappedError("Upsample without a scales input")
    full = [float(s) for s in scales.tolist()]
    if full[:2] != [1.0, 1.0]:
        raise UnmappedError(f"scales {full} resize the batch or channel dim")
    args = {"scale_factor": full[2:], "mode": "nearest"}
    return Mapped("resize", {"op": "interpolate"}, [("input", x)], args, outputs=[t.outputs[0]])
