"""Variant-id patterns, as thresholds and accepted differences name rows: shell-style ``*`` and ``?`` only."""

from __future__ import annotations

import re

__all__ = ["variant_pattern"]


def variant_pattern(pattern: str) -> re.Pattern[str]:
    """The pattern as a regex to fullmatch: ``*`` any run, ``?`` one character, all else literal.

    Not fnmatch: variant ids contain brackets (``conv[cpu-float32]``), which fnmatch would read as a class.
    """
    return re.compile(
        ".*".join(".".join(re.escape(p) for p in part.split("?")) for part in pattern.split("*"))
    )
