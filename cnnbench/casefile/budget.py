"""The memory budget of a case: how big its tensors may be, where that limit comes from, and how to print it."""

from __future__ import annotations

import math
import os
import re

from pydantic import ByteSize, TypeAdapter, ValidationError

from cnnbench.errors import UsageError

__all__ = [
    "BUDGET_ENV",
    "BYTES_PER_ELEMENT",
    "DEFAULT_MAX_CASE_BYTES",
    "format_bytes",
    "parse_bytes",
    "resolve_budget",
]

#: The default budget: the tensors a case file describes may take at most 1 GiB, so a typo in a shape is
#: refused at load time instead of exhausting a shared CI machine.
DEFAULT_MAX_CASE_BYTES = 2**30
#: A variant may cast any tensor to any dtype, so the estimate charges the widest one (float64, int64).
BYTES_PER_ELEMENT = 8
#: The environment variable that sets the budget when --max-case-bytes is not given.
BUDGET_ENV = "CNNBENCH_MAX_CASE_BYTES"

_BYTE_SIZE: TypeAdapter[ByteSize] = TypeAdapter(ByteSize)
#: A number and a unit, nothing else: ByteSize alone reads only a prefix ("1.5.2G" would be 1 byte).
_SIZE_RE = re.compile(r"^\d+(\.\d+)?\s*[a-z]*$", re.IGNORECASE)


def parse_bytes(text: str) -> int:
    """A byte count from ``1073741824``, ``1e9``, ``512MiB``, ``2GB`` or ``1.5g`` (k, M, G, T: powers of 1000;
    KiB, MiB, GiB, TiB: powers of 1024, as pydantic.ByteSize reads them); ValueError if it is not one."""
    try:
        value = float(text)  # a plain number of bytes, scientific notation included (1e9)
    except ValueError:
        try:
            if not _SIZE_RE.match(text.strip()):
                raise ValueError(text)
            value = float(_BYTE_SIZE.validate_python(text.strip()))
        except (ValueError, ValidationError):
            raise ValueError(f"{text!r} is not a size (e.g. 1073741824, 512MiB, 2GB)") from None
    if not math.isfinite(value) or value < 1:
        raise ValueError(f"{text!r} is not a positive size")
    return int(value)


def resolve_budget(value: str | int | None = None) -> int:
    """The budget in force: value (a flag) if given, else $CNNBENCH_MAX_CASE_BYTES, else the default."""
    source = "--max-case-bytes"
    if value is None:
        value = os.environ.get(BUDGET_ENV) or None
        source = BUDGET_ENV
    if value is None:
        return DEFAULT_MAX_CASE_BYTES
    if isinstance(value, int):
        return value
    try:
        return parse_bytes(value)
    except ValueError as exc:
        raise UsageError(f"{source}: {exc}") from None


def format_bytes(n: float) -> str:
    """``1.5 GiB``, ``512 MiB``, ``12 B``: binary units, at most one decimal."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(n) < 1024 or unit == "PiB":
            text = f"{n:.1f}".removesuffix(".0") if unit != "B" else f"{int(n)}"
            return f"{text} {unit}"
        n /= 1024
    raise AssertionError("unreachable")
