"""Whether cnnbench's float64 NumPy reference covers a call: the op has one and it accepts these arguments."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from cnnbench.errors import first_line

__all__ = ["reference_gap"]


def reference_gap(call: dict[str, str], inputs: Sequence[Any], args: dict[str, Any]) -> str | None:
    """None when `expect: {reference: numpy}` can check the call, else why not (for SKIPPED.md)."""
    from cnnbench.numerics.reference import REFERENCES

    if "module" in call:
        return f"no NumPy reference for nn.{call['module']}"
    op = call["op"]
    if op not in REFERENCES:
        return f"no NumPy reference for {op}"
    arrays = [np.asarray(a, dtype=np.float64) for a in inputs]
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            REFERENCES[op](*arrays, **args)
    except (ValueError, TypeError, NotImplementedError, KeyError, IndexError) as exc:
        return f"the NumPy reference of {op} does not cover it: {first_line(exc) or type(exc).__name__}"
    return None
