"""The numerics gate across PyTorch versions: one nox session per torch version (see docs/ci-gate.md).

``nox -s gate-2.14.1 gate-2.13.0`` stores one run per version under reports/gate-<version>/; then
``cnnbench compare reports/gate-2.14.1 reports/gate-2.13.0 --accepted gate/accepted.yaml`` fails on any
difference the accepted ones do not explain. A version equal to the torch already installed where nox runs (the
project's .venv in CI) reuses that environment instead of installing torch again (5.6 GB, ~1.5 min); every other
version gets its own virtualenv with only torch, cnnbench (--no-deps) and cnnbench's light dependencies:
never torchvision, which the numerics gate must not need.
"""

from __future__ import annotations

import importlib.metadata
import os
import sys

import nox

__all__ = ["GATE_ARGS", "LIGHT_DEPS", "TORCH_VERSIONS"]

#: The torch versions the gate runs under; the first is the reference the others are compared with.
TORCH_VERSIONS = ("2.14.1", "2.13.0")
#: cnnbench's runtime dependencies except torch (and the pytest ones, which the gate does not use);
#: safetensors reads {file: x.safetensors} tensors in case files.
LIGHT_DEPS = ("numpy>=1.24", "pandas>=2.0", "rich>=13", "PyYAML>=6", "pydantic>=2.5", "safetensors>=0.4")
#: Numerics checks only: benchmark cases need torchvision and a quiet machine, neither of which the gate has.
GATE_ARGS = ("run", "cases/", "--kind", "check")

nox.options.error_on_missing_interpreters = True
nox.options.reuse_existing_virtualenvs = True


def _installed_torch() -> str | None:
    """The torch version (without a local tag such as +cu130) installed beside nox, if any."""
    try:
        return importlib.metadata.version("torch").split("+")[0]
    except importlib.metadata.PackageNotFoundError:
        return None


def _run_gate(session: nox.Session, version: str, python: str = "python") -> None:
    """Check the session's torch is the version asked for, then run the numerics gate with it."""
    session.run(
        python,
        "-c",
        "import sys, torch; v = torch.__version__.split('+')[0]; "
        f"sys.exit(0 if v == {version!r} else f'expected torch {version}, found {{v}}')",
    )
    reports = f"reports/gate-{version}"
    session.run(python, "-m", "cnnbench", *GATE_ARGS, "--reports", reports, *session.posargs)


def _gate_session(version: str) -> None:
    reuse = _installed_torch() == version and not os.environ.get("CNNBENCH_GATE_FRESH_VENV")

    if reuse:

        @nox.session(name=f"gate-{version}", venv_backend="none")
        def gate_here(session: nox.Session) -> None:
            """Run the gate in the environment nox itself runs in, which already has this torch."""
            _run_gate(session, version, python=sys.executable)

    else:

        @nox.session(name=f"gate-{version}", venv_backend="venv")
        def gate_venv(session: nox.Session) -> None:
            """Run the gate in a fresh virtualenv: torch, cnnbench without its dependencies, the light ones."""
            session.install(f"torch=={version}")
            session.install(*LIGHT_DEPS)
            session.install("--no-deps", "-e", ".")
            _run_gate(session, version)


for _version in TORCH_VERSIONS:
    _gate_session(_version)
