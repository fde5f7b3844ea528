"""The console cnnbench prints on (``make_console``): apart from the reports so that a command can print, an error
above all, without importing what rendering a report needs (pandas, a third of a second)."""

from __future__ import annotations

from typing import IO

from rich.console import Console

__all__ = ["make_console"]

#: The width a console that is not a terminal lays out at: wide enough that no line of cnnbench's is ever wrapped
#: (tables take their natural width; they never stretch to the console's).
_UNWRAPPED_WIDTH = 10_000


def make_console(*, stderr: bool = False, file: IO[str] | None = None) -> Console:
    """The console cnnbench prints on: a terminal's own width there; anywhere else (a pipe, a CI log, a file)
    no wrapping at all, so that each message, id and repro command stays whole on its line. Emoji codes are off:
    rich would print `file.yaml:100:` as `file.yaml💯` (cnnbench writes its marks as characters)."""
    console = Console(stderr=stderr, file=file, highlight=False, emoji=False)
    if console.is_terminal:
        return console
    return Console(
        stderr=stderr, file=file, highlight=False, emoji=False, width=_UNWRAPPED_WIDTH, soft_wrap=True
    )
