"""Shared pieces of the case format's models: the base model, names checked against the vocabulary, devices,
shapes within the memory budget, and skip/xfail rules.

Validation context (``model_validate(data, context={...})``), set by cnnbench.casefile.load:
  base_dir: the case file's folder, against which {file: ...} tensors resolve (absent: files are refused);
  max_case_bytes: the memory budget of one case's tensors (absent: DEFAULT_MAX_CASE_BYTES).
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
)

from cnnbench.casefile.budget import BUDGET_ENV, BYTES_PER_ELEMENT, DEFAULT_MAX_CASE_BYTES, format_bytes
from cnnbench.casefile.vocabulary import DEVICE_TYPES, DTYPES, FUNCTIONAL_OPS, TORCH_OPS, suggest

__all__ = [
    "CALLABLE_OPS",
    "RAISE_BUDGET",
    "BudgetShape",
    "DType",
    "Device",
    "MemoryFormat",
    "RuleSpec",
    "Rules",
    "Shape",
    "SpecModel",
    "base_dir",
    "case_budget",
    "check_id",
    "check_regex",
    "check_tensor_bytes",
    "name_in",
]

# "=" and "," let a sweep name its generated cases "<id>.kernel_size=3,stride=2".
_ID_RE = re.compile(r"^[A-Za-z0-9_.+=,-]+$")
#: The hint every over-budget message ends with.
RAISE_BUDGET = f"; raise it with --max-case-bytes or {BUDGET_ENV}"
#: Every op name a case's op: may give (functional ops and the few on torch itself).
CALLABLE_OPS = FUNCTIONAL_OPS | TORCH_OPS


def name_in(kind: str, allowed: object) -> Any:
    def check(value: str) -> str:
        if value not in allowed:  # type: ignore[operator]
            raise ValueError(f'unknown {kind} "{value}"{suggest(value, allowed)}')
        return value

    return AfterValidator(check)


def _check_device(value: str) -> str:
    kind, _, index = value.partition(":")
    if kind not in DEVICE_TYPES or (index and not index.isdigit()):
        raise ValueError(
            f'unknown device "{value}"{suggest(kind, DEVICE_TYPES)}; expected e.g. cpu, cuda, cuda:1'
        )
    return value


def check_id(value: str) -> str:
    if not _ID_RE.match(value):
        raise ValueError(f'id "{value}" may only contain letters, digits and _ . + - = ,')
    return value


def check_regex(value: str) -> str:
    try:
        re.compile(value)
    except re.error as exc:
        raise ValueError(f"invalid regular expression: {exc}") from None
    return value


def _strip_torch_prefix(value: Any) -> Any:
    # "torch.float32" is how torch prints a dtype; accept it as "float32".
    return value.removeprefix("torch.") if isinstance(value, str) else value


def _one_or_list(value: Any) -> Any:
    # A single rule mapping where a list of rules is expected is read as a list of one.
    return [value] if isinstance(value, dict) else value


DType = Annotated[str, BeforeValidator(_strip_torch_prefix), name_in("dtype", DTYPES)]
Device = Annotated[str, AfterValidator(_check_device)]
Shape = list[Annotated[int, Field(ge=0)]]
MemoryFormat = Literal["contiguous", "channels_last"]


def case_budget(info: ValidationInfo) -> int:
    value = (info.context or {}).get("max_case_bytes")
    return value if isinstance(value, int) else DEFAULT_MAX_CASE_BYTES


def base_dir(info: ValidationInfo) -> Path | None:
    value = (info.context or {}).get("base_dir")
    return Path(value) if value is not None else None


def check_tensor_bytes(shape: tuple[int, ...] | list[int], budget: int) -> None:
    """One tensor alone over the case budget: refused where it is written, before anything is allocated."""
    numel = math.prod(shape)
    if numel * BYTES_PER_ELEMENT > budget:
        raise ValueError(
            f"a tensor of shape {list(shape)} has {numel:,} elements ({format_bytes(numel * BYTES_PER_ELEMENT)} "
            f"at {BYTES_PER_ELEMENT} bytes each), over the memory budget of {format_bytes(budget)} per case"
            + RAISE_BUDGET
        )


def _check_shape_budget(shape: list[int], info: ValidationInfo) -> list[int]:
    check_tensor_bytes(shape, case_budget(info))
    return shape


BudgetShape = Annotated[Shape, AfterValidator(_check_shape_budget)]


class SpecModel(BaseModel):
    """Base of every model of the format: unknown keys refused, values frozen, no silent coercion."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class RuleSpec(SpecModel):
    """Match variants by device and/or dtype (either may be a list); reason is required."""

    device: Device | list[Device] | None = None
    dtype: DType | list[DType] | None = None
    reason: Annotated[str, Field(min_length=1)]

    def matches(self, device: str, dtype: str) -> bool:
        """True when this rule applies to a variant on device (e.g. cuda:0 matches cuda) and dtype."""
        devices = [self.device] if isinstance(self.device, str) else self.device
        dtypes = [self.dtype] if isinstance(self.dtype, str) else self.dtype
        kind = device.split(":", maxsplit=1)[0]
        device_ok = devices is None or any(d in (device, kind) for d in devices)
        return device_ok and (dtypes is None or dtype in dtypes)


Rules = Annotated[list[RuleSpec], BeforeValidator(_one_or_list)]
