"""Where the repository is, for tests that run its files (cases/, tools/, the CLI in a subprocess)."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
