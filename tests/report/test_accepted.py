"""The accepted-differences file: its format, malformed files refused, and the old name (allowlist.yaml,
--allowlist) still read for one release with a deprecation message."""

from __future__ import annotations

from pathlib import Path

import pytest
from synthetic_runs import check_row, make_run

from cnnbench.cli import main
from cnnbench.errors import UsageError
from cnnbench.report.accepted import load_accepted, resolve_path
from cnnbench.report.change import CHANGE_KINDS
from cnnbench.store.run import Run

#: Accepts the bitwise change of conv that the runs of the `runs` fixture differ by.
ACCEPT_CONV = "allow:\n  'conv[cpu-*]': {reason: oneDNN changed its conv algorithm, changes: [bitwise]}\n"


@pytest.mark.parametrize(
    "text",
    [
        "allow: [a, b]",
        "other: {}",
        "allow:\n  x: ''",
        "allow:\n  x: {reason: r, changes: [speed]}",
        "a: [",
        "",
    ],
)
def test_malformed_accepted_file_is_a_usage_error(tmp_path: Path, text: str) -> None:
    path = tmp_path / "allow.yaml"
    path.write_text(text)
    if not text:
        assert load_accepted(path).entries == []
        return
    with pytest.raises(UsageError, match="--accepted"):
        load_accepted(path)


def test_an_entry_with_a_reason_and_no_changes_accepts_every_kind(tmp_path: Path) -> None:
    # It used to be refused ("keys are reason and changes"), though docs/ci-gate.md says changes is optional.
    path = tmp_path / "accepted.yaml"
    path.write_text("allow:\n  x: {reason: r}\n  y: {reason: s, changes: [perf]}\n")
    x, y = load_accepted(path).entries
    assert (x.pattern, x.reason, x.kinds) == ("x", "r", CHANGE_KINDS)
    assert y.kinds == ("perf",)


def test_a_pattern_matches_brackets_literally_and_marks_its_entry_used(tmp_path: Path) -> None:
    path = tmp_path / "accepted.yaml"
    path.write_text("allow:\n  'conv[cpu-*]': r\n  'c[cpu-float32]': s\n")
    accepted = load_accepted(path)
    entry = accepted.match("conv[cpu-float16]", "bitwise")
    assert entry is not None and entry.reason == "r"
    assert accepted.match("c[cpu-float16]", "bitwise") is None
    assert [e.pattern for e in accepted.unused] == ["c[cpu-float32]"]


def test_the_old_name_is_read_with_a_deprecation_message(tmp_path: Path) -> None:
    new, old = tmp_path / "accepted.yaml", tmp_path / "allowlist.yaml"
    assert resolve_path(new) == (new, "")
    assert resolve_path(old) == (old, f"allowlist.yaml is deprecated; rename {old} to {new}")
    new.write_text("allow: {}\n")
    # Only the new file exists: a command still naming the old one reads the new one.
    path, message = resolve_path(old)
    assert path == new and message.startswith("allowlist.yaml is deprecated; reading")
    old.write_text("allow: {}\n")
    assert resolve_path(old)[0] == old


@pytest.fixture
def runs(tmp_path: Path) -> tuple[Run, Run]:
    base = make_run(tmp_path / "a", [check_row("conv")])
    new = make_run(tmp_path / "b", [check_row("conv", output_digest="ffffffffffffffff")])
    return base, new


def _compare(runs: tuple[Run, Run], *flags: str) -> list[str]:
    base, new = runs
    return ["compare", str(base.path), str(new.path), *flags]


@pytest.mark.parametrize(
    ("flag", "message"),
    [("--accepted", ""), ("--allowlist", "warning: --allowlist is deprecated; use --accepted\n")],
)
def test_compare_reads_the_file_under_either_flag(
    runs: tuple[Run, Run], tmp_path: Path, capsys: pytest.CaptureFixture[str], flag: str, message: str
) -> None:
    path = tmp_path / "accepted.yaml"
    assert main(_compare(runs)) == 1
    path.write_text(ACCEPT_CONV)
    capsys.readouterr()
    assert main(_compare(runs, flag, str(path))) == 0
    out, err = capsys.readouterr()
    assert "1 allowed differences" in out and "oneDNN changed its conv algorithm" in out
    assert err == message


def test_compare_reads_a_file_named_allowlist_yaml_and_says_to_rename_it(
    runs: tuple[Run, Run], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old = tmp_path / "allowlist.yaml"
    old.write_text(ACCEPT_CONV)
    assert main(_compare(runs, "--accepted", str(old))) == 0
    err = capsys.readouterr().err
    assert err == f"warning: allowlist.yaml is deprecated; rename {old} to {tmp_path / 'accepted.yaml'}\n"
    # The command of a CI workflow written before the rename, after the file was renamed:
    old.rename(tmp_path / "accepted.yaml")
    assert main(_compare(runs, "--allowlist", str(old))) == 0
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == "warning: --allowlist is deprecated; use --accepted"
    assert lines[1].startswith("warning: allowlist.yaml is deprecated; reading") and len(lines) == 2


def test_compare_refuses_both_names_at_once(
    runs: tuple[Run, Run], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "accepted.yaml"
    path.write_text(ACCEPT_CONV)
    assert main(_compare(runs, "--accepted", str(path), "--allowlist", str(path))) == 2
    assert "give only --accepted" in capsys.readouterr().err
