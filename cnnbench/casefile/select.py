"""Selection of variants, in one place: ``-k`` expressions, ``--device``, ``--dtype`` and ``--kind``."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TypeVar

from cnnbench.casefile.keyword import Keyword
from cnnbench.casefile.variants import BenchVariant, Variant
from cnnbench.casefile.vocabulary import DEVICE_TYPES, DTYPES, KINDS, suggest
from cnnbench.errors import UsageError

__all__ = ["KINDS", "check_filters", "select"]


_AnyVariant = TypeVar("_AnyVariant", bound=Variant | BenchVariant)


def check_filters(
    devices: Sequence[str] | None = None, dtypes: Sequence[str] | None = None, kind: str = "all"
) -> None:
    """UsageError for a --device, --dtype or --kind value that names nothing cnnbench knows."""
    for d in devices or ():
        if d.split(":")[0] not in DEVICE_TYPES:
            raise UsageError(f"--device {d}: unknown device{suggest(d, DEVICE_TYPES)}")
    for t in dtypes or ():
        if t not in DTYPES:
            raise UsageError(f"--dtype {t}: unknown dtype{suggest(t, DTYPES)}")
    if kind not in KINDS:
        raise UsageError(f"--kind {kind}: expected one of {', '.join(KINDS)}")


def select(
    variants: Iterable[_AnyVariant],
    *,
    keyword: str | None = None,
    devices: Sequence[str] | None = None,
    dtypes: Sequence[str] | None = None,
    kind: str = "all",
) -> list[_AnyVariant]:
    """Variants matching a pytest-style -k expression (on the id, the target and the file name), the
    device/dtype filters (a device type such as cuda matches cuda:1) and the kind (check, bench or all)."""
    check_filters(devices, dtypes, kind)
    matcher = Keyword.compile(keyword) if keyword else None
    wanted_devices = set(devices or ())
    wanted_dtypes = set(dtypes or ())
    out = []
    for v in variants:
        if wanted_devices and v.device not in wanted_devices and v.device.split(":")[0] not in wanted_devices:
            continue
        if wanted_dtypes and v.dtype not in wanted_dtypes:
            continue
        if kind not in ("all", v.kind):
            continue
        if matcher is not None and not matcher.matches(v.id, v.case.spec.target, Path(v.case.file).name):
            continue
        out.append(v)
    return out
