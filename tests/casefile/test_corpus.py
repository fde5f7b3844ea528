"""The malformed-file corpus: every file in tests/corpus/malformed gives exit 2 with file:line:col, no traceback.

Each file states its expectation on its first line: ``# expect: LINE[:COL] message fragment``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from repo import REPO

CORPUS = Path("tests/corpus/malformed")
_EXPECT_RE = re.compile(rb"^# expect: (\d+)(?::(\d+))? (.+)$")


def _files() -> list[Path]:
    return sorted((REPO / CORPUS).glob("*.yaml"))


def _expectation(path: Path) -> tuple[int, int | None, str]:
    first = path.read_bytes().split(b"\n", 1)[0]
    m = _EXPECT_RE.match(first)
    assert m, f"{path.name}: the first line must be '# expect: LINE[:COL] fragment'"
    line, col, fragment = m.groups()
    return int(line), int(col) if col else None, fragment.decode()


def test_corpus_is_big_enough() -> None:
    assert len(_files()) >= 30


def _invoke(command: str, rel: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """Exit status and stderr of ``cnnbench COMMAND FILE``: in a subprocess when CNNBENCH_CORPUS_SUBPROCESS=1,
    else through cli.main in this process (the same code; about 30 times faster than starting Python 114 times).
    """
    args = [command, rel, "--max-case-bytes", "1GiB"]
    if os.environ.get("CNNBENCH_CORPUS_SUBPROCESS") == "1":
        proc = subprocess.run(
            [sys.executable, "-m", "cnnbench", *args],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        return proc.returncode, proc.stdout + proc.stderr
    from cnnbench.cli import main

    cwd = os.getcwd()
    os.chdir(REPO)
    try:
        status = main(args)
    finally:
        os.chdir(cwd)
    captured = capsys.readouterr()
    return status, captured.out + captured.err


@pytest.mark.parametrize("path", _files(), ids=lambda p: p.stem)
def test_malformed_file_exits_2_with_location(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    line, col, fragment = _expectation(path)
    rel = str(CORPUS / path.name)
    where = f"{rel}:{line}" + (f":{col}" if col is not None else "")
    for command in ("validate", "run"):
        status, output = _invoke(command, rel, capsys)
        assert status == 2, (command, status, output)
        assert "Traceback" not in output, output
        assert any(where + ":" in ln for ln in output.splitlines()), (
            f"{command}: no error at {where} in:\n{output}"
        )
        assert fragment in output, f"{command}: {fragment!r} not in:\n{output}"


@pytest.mark.parametrize("command", ["validate", "run"])
def test_corpus_through_python_m_cnnbench(command: str) -> None:
    """The real entry point, given every corpus file at once: exit 2, every file's error at its line, no
    traceback (all errors of all files are reported together)."""
    files = _files()
    proc = subprocess.run(
        [sys.executable, "-m", "cnnbench", command, *(str(CORPUS / f.name) for f in files)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    for f in files:
        line, col, fragment = _expectation(f)
        where = f"{CORPUS / f.name}:{line}" + (f":{col}" if col is not None else "") + ":"
        assert any(where in ln and fragment in ln for ln in proc.stderr.splitlines()), (where, fragment)


def test_corpus_files_are_not_collected_by_the_plugin() -> None:
    """tests/conftest.py keeps the cnnbench plugin from collecting the corpus as (failing) case files."""
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", str(CORPUS)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == pytest.ExitCode.NO_TESTS_COLLECTED, proc.stdout + proc.stderr
    assert "error" not in proc.stdout.lower(), proc.stdout
