"""Ctrl-C and SIGTERM as one interruption: raised once as KeyboardInterrupt, then ignored while a run saves.

A CI job that is cancelled gets SIGTERM; a person gets Ctrl-C. Both must leave a stored run with every
finished row and ``complete: false``, and exit with the shell's convention, 128 + the signal (130, 143).
"""

from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import Any

__all__ = ["Interrupted", "SignalCatcher", "exit_status"]

_CAUGHT = (signal.SIGINT, signal.SIGTERM)


class Interrupted(KeyboardInterrupt):
    """The run was stopped by a signal (SIGINT or SIGTERM); a KeyboardInterrupt, so every handler of Ctrl-C
    (and run_variant's re-raise) treats it alike."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def exit_status(exc: KeyboardInterrupt) -> int:
    """128 + the signal that stopped the run: 130 for Ctrl-C (or a plain KeyboardInterrupt), 143 for SIGTERM."""
    return 128 + (exc.signum if isinstance(exc, Interrupted) else signal.SIGINT)


class SignalCatcher:
    """While installed, the first SIGINT or SIGTERM raises Interrupted; later ones are ignored until restore(),
    so the code that stores what was finished is not itself interrupted.

    Does nothing outside the main thread (where Python cannot install signal handlers).
    """

    def __init__(self) -> None:
        self._previous: dict[int, Any] = {}
        if threading.current_thread() is threading.main_thread():
            for signum in _CAUGHT:
                self._previous[signum] = signal.signal(signum, self._handle)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        for s in self._previous:
            signal.signal(s, signal.SIG_IGN)
        raise Interrupted(signum)

    def restore(self) -> None:
        """Put the previous handlers back."""
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()
