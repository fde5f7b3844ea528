"""Option parsing of ``cnnbench fuzz`` (cnnbench.fuzz.command)."""

from __future__ import annotations

import pytest

from cnnbench.errors import UsageError
from cnnbench.fuzz.command import _dtypes, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"), [("60", 60), ("60s", 60), ("1.5m", 90), ("500ms", 0.5), ("1h", 3600)]
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["0", "0s", "-1s", "soon", "", "5 days", "1e3"])
def test_not_positive_durations(text: str) -> None:
    with pytest.raises(ValueError, match="positive duration"):
        parse_duration(text)


def test_dtypes_default_to_float32_and_must_be_floating() -> None:
    assert _dtypes(None) == ("float32",)
    assert _dtypes(["float16", "float16", "bfloat16"]) == ("float16", "bfloat16")
    with pytest.raises(UsageError, match="unknown dtype"):
        _dtypes(["float33"])
    with pytest.raises(UsageError, match="float reference"):
        _dtypes(["int32"])
