"""A found failure as a ready-to-commit case file, and the checks on where such files may be written."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from cnnbench.errors import UsageError

__all__ = ["DEFAULT_OUT", "case_line", "check_out_dir", "project_root", "write_case"]

#: Where found cases are written unless -o says otherwise.
DEFAULT_OUT = "cases/found"
#: Longest failure message kept in a case's note.
_NOTE_CHARS = 1200
#: The order a case file's keys are written in (the rest follow).
_KEY_ORDER = (
    "id",
    "source",
    "note",
    "op",
    "args",
    "inputs",
    "seed",
    "fill",
    "devices",
    "dtypes",
    "memory_formats",
)


def project_root(start: Path | None = None) -> Path:
    """The project: the nearest folder at or above start (the working directory) holding pyproject.toml or
    .git, else start itself."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "pyproject.toml").exists() or (folder / ".git").exists():
            return folder
    return here


def check_out_dir(out: str | os.PathLike[str]) -> Path:
    """The -o folder, resolved; UsageError when it lies outside the project, is not a folder, or cannot be
    written (checked before fuzzing, so a failure found later can always be written)."""
    root = project_root()
    path = Path(out)
    resolved = (path if path.is_absolute() else Path.cwd() / path).resolve()
    if resolved != root and root not in resolved.parents:
        raise UsageError(
            f"-o {out}: {resolved} is outside the project ({root}); found cases go into the project"
        )
    existing = resolved
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise UsageError(f"-o {out}: {existing} is not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UsageError(f"-o {out}: {existing} is not writable")
    return resolved


def _ordered(case: dict[str, Any]) -> dict[str, Any]:
    first = {k: case[k] for k in _KEY_ORDER if k in case}
    return {**first, **{k: v for k, v in case.items() if k not in first}}


def write_case(
    case: dict[str, Any], out_dir: Path, *, command: str, message: str, checks: int, minimal: bool
) -> Path:
    """Write case (source: fuzz) to out_dir/<id>.yaml with the command that found it and the failure in
    note:; returns the path. The file loads and runs as it is: ``cnnbench run <path>`` fails the same way."""
    failure = message.strip()
    if len(failure) > _NOTE_CHARS:
        failure = failure[:_NOTE_CHARS] + " ..."
    how = "shrunk to the smallest configuration that still fails" if minimal else "not shrunk"
    note = f"found by `{command}` after {checks} checks ({how}). Failure: {failure}"
    written = _ordered({**case, "source": "fuzz", "note": note})
    header = f"# Found by `{command}`.\n# Commit it to keep the failure pinned: `cnnbench run {out_dir.name}/` reruns it.\n"
    text = header + yaml.safe_dump(
        {"cases": [written]}, sort_keys=False, default_flow_style=None, width=110, allow_unicode=True
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{case['id']}.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def case_line(path: Path) -> int:
    """The line of the (first) case in a file write_case wrote."""
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.lstrip().startswith("- id:"):
            return i
    return 1
