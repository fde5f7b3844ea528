"""The import-layer contract (pyproject.toml, [tool.importlinter]) holds, and fails when an import points back up
the flow, even inside a function, or closes a cycle between sibling modules."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from repo import REPO


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    """lint-imports over the cnnbench package found first on the path under root, with the repo's contracts."""
    env = {**os.environ, "PYTHONPATH": str(root)}
    code = "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"
    return subprocess.run(
        [sys.executable, "-c", code, "--config", str(REPO / "pyproject.toml"), "--no-cache"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    """A copy of the package to break (the checkout itself is never touched)."""
    shutil.copytree(REPO / "cnnbench", tmp_path / "cnnbench", ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


def test_the_package_keeps_every_contract() -> None:
    result = lint_imports(REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "BROKEN" not in result.stdout and result.stdout.count("KEPT") >= 3


def test_an_upward_import_inside_a_function_breaks_the_layers(copy: Path) -> None:
    module = copy / "cnnbench" / "store" / "result.py"
    module.write_text(
        module.read_text()
        + "\n\ndef _peek() -> None:\n    from cnnbench.report import tables  # noqa: F401\n"
    )
    result = lint_imports(copy)
    assert result.returncode == 1
    assert "cnnbench.store is not allowed to import cnnbench.report" in result.stdout
    assert "cnnbench.store.result -> cnnbench.report.tables" in result.stdout


def test_a_cycle_between_sibling_modules_breaks_the_acyclic_contract(copy: Path) -> None:
    module = copy / "cnnbench" / "casefile" / "keyword.py"
    module.write_text(module.read_text() + "\nfrom cnnbench.casefile import select  # noqa: E402,F401\n")
    result = lint_imports(copy)
    assert result.returncode == 1
    assert "No cycles are allowed in cnnbench.casefile" in result.stdout


def test_torch_in_the_reference_breaks_the_forbidden_contract(copy: Path) -> None:
    module = copy / "cnnbench" / "numerics" / "reference" / "activation.py"
    module.write_text(module.read_text() + "\nimport torch  # noqa: E402,F401\n")
    result = lint_imports(copy)
    assert result.returncode == 1
    assert "cnnbench.numerics.reference.activation -> torch" in result.stdout
