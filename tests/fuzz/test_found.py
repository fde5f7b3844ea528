"""Found cases are written as loadable case files, only inside the project (cnnbench.fuzz.found)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cnnbench.casefile.load import load_file
from cnnbench.errors import UsageError
from cnnbench.fuzz.found import case_line, check_out_dir, project_root, write_case


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")
    return tmp_path


def test_the_project_is_the_folder_with_pyproject(project: Path) -> None:
    assert project_root() == project.resolve()
    assert check_out_dir("../cases/found") == (project / "cases" / "found").resolve()


def test_out_dir_outside_the_project_is_refused(
    project: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    with pytest.raises(UsageError, match="outside the project"):
        check_out_dir(str(elsewhere))
    with pytest.raises(UsageError, match="outside the project"):
        check_out_dir("../../x")


def test_out_dir_under_a_file_or_unwritable_is_refused(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (project / "afile").write_text("x")
    with pytest.raises(UsageError, match="is not a folder"):
        check_out_dir("../afile/found")
    monkeypatch.setattr(os, "access", lambda *_: False)
    with pytest.raises(UsageError, match="is not writable"):
        check_out_dir("../cases/found")


def test_a_written_case_loads_and_says_where_it_came_from(project: Path) -> None:
    case = {
        "id": "fuzz-relu-0123456789ab",
        "op": "relu",
        "inputs": {"input": {"randn": [2, 3], "seed": 4}},
        "seed": 4,
        "devices": ["cpu"],
        "dtypes": ["float32"],
        "expect": {"reference": "numpy"},
    }
    path = write_case(
        case,
        project / "cases" / "found",
        command="cnnbench fuzz relu --seed 7",
        message="boom: 3 of 6 differ",
        checks=42,
        minimal=True,
    )
    loaded = load_file(path)
    (spec,) = [c.spec for c in loaded.cases]
    assert spec.source == "fuzz" and spec.id == case["id"]
    assert (
        spec.note is not None
        and "cnnbench fuzz relu --seed 7" in spec.note
        and "boom: 3 of 6 differ" in spec.note
    )
    assert "after 42 checks" in spec.note and "shrunk" in spec.note
    assert loaded.cases[0].line == case_line(path) and path.read_text().startswith("# Found by")
