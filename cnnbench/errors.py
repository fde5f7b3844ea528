"""The exception hierarchy: every error a user can cause, each printed without a traceback."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "EXIT_NOTHING_RAN",
    "CaseError",
    "CaseFileError",
    "CnnbenchError",
    "Location",
    "NothingSelectedError",
    "UsageError",
    "first_line",
]

#: The exit status of a run in which nothing ran (no variant selected, or every selected one skipped), told apart
#: from success the way pytest's "no tests ran" is.
EXIT_NOTHING_RAN = 5


class CnnbenchError(Exception):
    """Base of every error cnnbench reports to a user as a message rather than a traceback."""

    exit_code = 2


class UsageError(CnnbenchError):
    """The command line asks for something impossible (bad flag value, missing run, ...)."""


class NothingSelectedError(CnnbenchError):
    """The paths and filters select no variant at all: nothing would run (exit 5, not a usage error)."""

    exit_code = EXIT_NOTHING_RAN


@dataclass(frozen=True)
class Location:
    """Where in a case file something is: file, 1-based line and column, and the key path."""

    file: str
    line: int | None = None
    column: int | None = None
    path: str = ""

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        return where


@dataclass
class CaseError(CnnbenchError):
    """One problem in a case file, located at file:line:column and a key path such as cases[3].args."""

    message: str
    location: Location = field(default_factory=lambda: Location("<unknown>"))

    def __post_init__(self) -> None:
        super().__init__(str(self))

    def __str__(self) -> str:
        path = f" {self.location.path}:" if self.location.path else ""
        return f"{self.location}:{path} {self.message}"


class CaseFileError(CnnbenchError):
    """All problems found in one or more case files, reported at once."""

    def __init__(self, errors: list[CaseError]) -> None:
        self.errors = errors
        super().__init__("\n".join(str(e) for e in errors))


def first_line(text: str | BaseException) -> str:
    """The first non-blank line of a message (an exception's text), stripped: torch errors can run to pages."""
    stripped = str(text).strip()
    return stripped.splitlines()[0] if stripped else ""
