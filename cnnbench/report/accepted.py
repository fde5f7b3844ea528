"""The accepted differences between runs (the gate's ``gate/accepted.yaml``): each a variant id or pattern, the
reason it is accepted, and the kinds of change it covers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cnnbench.errors import UsageError
from cnnbench.report.change import CHANGE_KINDS
from cnnbench.report.pattern import variant_pattern

__all__ = ["NAME", "OLD_NAME", "Accepted", "AcceptedEntry", "load_accepted", "resolve_path"]

#: What the file is called (the gate's is gate/accepted.yaml).
NAME = "accepted.yaml"
#: The file's name before it was renamed (it read like the case files' allowlist of names, a different thing);
#: still read for one release, with a deprecation message.
OLD_NAME = "allowlist.yaml"


@dataclass(frozen=True)
class AcceptedEntry:
    """One accepted difference: a variant id (or * pattern), why, and which kinds of change it covers."""

    pattern: str
    reason: str
    kinds: tuple[str, ...] = CHANGE_KINDS


@dataclass
class Accepted:
    """Known, explained differences between runs; a regression they match is reported as allowed."""

    entries: list[AcceptedEntry] = field(default_factory=list)
    used: set[str] = field(default_factory=set)

    def match(self, variant_id: str, kind: str) -> AcceptedEntry | None:
        """The first entry covering this variant and kind of change (marked used)."""
        for entry in self.entries:
            if kind in entry.kinds and variant_pattern(entry.pattern).fullmatch(variant_id):
                self.used.add(entry.pattern)
                return entry
        return None

    @property
    def unused(self) -> list[AcceptedEntry]:
        """Entries that matched nothing: stale, and worth deleting."""
        return [e for e in self.entries if e.pattern not in self.used]


def resolve_path(path: str | Path) -> tuple[Path, str]:
    """The file to read for path, and a deprecation message when path has the old name ("" otherwise).

    A path named allowlist.yaml is read if it exists; if not, accepted.yaml beside it is (a command written
    before the rename, such as ``--allowlist gate/allowlist.yaml``, keeps working for one release).
    """
    p = Path(path)
    if p.name != OLD_NAME:
        return p, ""
    new = p.with_name(NAME)
    if p.exists() or not new.exists():
        return p, f"{OLD_NAME} is deprecated; rename {p} to {new}"
    return new, f"{OLD_NAME} is deprecated; reading {new} (name it instead of {p})"


def load_accepted(path: str | Path) -> Accepted:
    """Read an accepted-differences file: ``allow:`` maps a variant id (or * pattern) to a reason, or to
    ``{reason: ..., changes: [bitwise, ...]}`` to accept only those kinds of change."""
    import yaml

    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"--accepted {p}: cannot read ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        raise UsageError(f"--accepted {p}: invalid YAML ({exc})") from None
    if data is None:
        return Accepted()
    if not isinstance(data, dict) or set(data) - {"allow"}:
        raise UsageError(f"--accepted {p}: expected a mapping with one key, allow:")
    allow = data.get("allow") or {}
    if not isinstance(allow, dict):
        raise UsageError(f"--accepted {p}: allow: must map variant ids to reasons")
    return Accepted([_entry(p, str(pattern), value) for pattern, value in allow.items()])


def _entry(path: Path, pattern: str, value: object) -> AcceptedEntry:
    """One ``allow:`` item: a reason, or a mapping of a reason and the kinds of change it accepts."""
    kinds: Sequence[str] = CHANGE_KINDS
    if isinstance(value, dict):
        reason = value.get("reason")
        kinds = value.get("changes", CHANGE_KINDS)
        extra = set(value) - {"reason", "changes"}
        # The default is a tuple; the file's own list is a list: both are lists of kinds, nothing else is.
        bad = [k for k in kinds if k not in CHANGE_KINDS] if isinstance(kinds, list | tuple) else [kinds]
        if extra or bad:
            raise UsageError(
                f"--accepted {path}: {pattern}: keys are reason and changes (a list of "
                f"{', '.join(CHANGE_KINDS)})"
            )
    else:
        reason = value
    if not isinstance(reason, str) or not reason.strip():
        raise UsageError(f"--accepted {path}: {pattern}: every entry needs a reason")
    return AcceptedEntry(pattern, reason.strip(), tuple(kinds))
