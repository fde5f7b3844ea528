"""The writer of an imported suite: case files per op family, tensors beside them, SKIPPED.md, atomically.

Everything is written in a fixed order with fixed formatting, so importing unchanged inputs again gives
byte-identical files: cases in the order added, tensors as .npy (numpy.save writes no timestamp) or as YAML
literals when small, floats as Python's shortest round-trip repr. The suite is built in a temporary folder
beside the destination and moved into place only when complete, so a failed import leaves nothing half-written.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from cnnbench.errors import CnnbenchError

__all__ = ["LITERAL_MAX", "ImportLayoutError", "Skipped", "Suite", "flow"]

#: Tensors with at most this many (finite) elements are written into the YAML; larger ones go to data/*.npy.
LITERAL_MAX = 64


class ImportLayoutError(CnnbenchError):
    """The installed onnx or torch does not lay out its tests the way the importer expects (exit 2)."""


class _Flow(list[Any]):
    """A list written in flow style: ``[1, 2, 3]``."""


class _FlowMap(dict[str, Any]):
    """A mapping written in flow style: ``{stride: 2, padding: 1}``."""


def flow(value: Any) -> Any:
    """value with every list and dict inside it marked for flow style (tensor literals, args, rules)."""
    if isinstance(value, dict):
        return _FlowMap({k: flow(v) for k, v in value.items()})
    if isinstance(value, list | tuple):
        return _Flow(flow(v) for v in value)
    return value


class _Dumper(yaml.SafeDumper):
    """Safe YAML without anchors and aliases: every case reads on its own."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


_Dumper.add_representer(_Flow, lambda d, v: d.represent_sequence("tag:yaml.org,2002:seq", v, flow_style=True))
_Dumper.add_representer(
    _FlowMap, lambda d, v: d.represent_mapping("tag:yaml.org,2002:map", v.items(), flow_style=True)
)


@dataclass(frozen=True)
class Skipped:
    """A test or sample that did not become a case (or lost an expectation), and why."""

    family: str
    name: str
    reason: str


@dataclass
class Suite:
    """An imported suite being built: call add/skip/gap, then write(out_dir)."""

    title: str
    """First line of every generated file: what it was generated from (tool and version)."""
    command: str
    """The command that regenerates it."""
    files: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    tensors: dict[str, np.ndarray[Any, Any]] = field(default_factory=dict)
    skipped: list[Skipped] = field(default_factory=list)
    gaps: list[Skipped] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def tensor(self, array: Any, stem: str) -> Any:
        """The case-file form of array: a literal when small, non-empty and finite, else data/<stem>.npy.

        bfloat16 (ml_dtypes) is stored as float32, which holds every bfloat16 value exactly. The values are cast
        to the variant's dtype when the case runs (tensor_pinned keeps a dtype).
        """
        arr = _storable(array)
        # an empty literal loses its shape ([[], []] reads as 2 x 0), so empty tensors go to files
        if 0 < arr.size <= LITERAL_MAX and (arr.dtype.kind != "f" or bool(np.isfinite(arr).all())):
            return flow(arr.tolist()) if arr.ndim else flow([arr.tolist()])[0]
        name = f"data/{stem}.npy"
        if name in self.tensors:
            raise ValueError(f"two tensors of the suite are both named {name}")
        self.tensors[name] = arr
        return flow({"file": name})

    def tensor_pinned(self, array: Any, stem: str, dtype: str) -> Any:
        """The case-file form of array with its dtype pinned (not cast to the variant's dtype)."""
        form = self.tensor(array, stem)
        if isinstance(form, dict):
            return flow({**form, "dtype": dtype})
        return flow({"data": form, "dtype": dtype})

    def drop_tensors(self, case: dict[str, Any]) -> None:
        """Forget the tensor files of a case that is not added after all."""
        for spec in (*case.get("inputs", {}).values(), *case.get("state", {}).values()):
            if isinstance(spec, dict) and "file" in spec:
                self.tensors.pop(spec["file"], None)

    def add(self, family: str, case: dict[str, Any]) -> None:
        self.files.setdefault(family, []).append(case)

    def skip(self, family: str, name: str, reason: str) -> None:
        self.skipped.append(Skipped(family, name, reason))

    def gap(self, family: str, name: str, reason: str) -> None:
        """A case imported with its source's expected values only: the reference does not cover it."""
        self.gaps.append(Skipped(family, name, reason))

    @property
    def case_count(self) -> int:
        return sum(len(c) for c in self.files.values())

    def write(self, out_dir: str | Path) -> Path:
        """Write the suite into out_dir (replacing what an earlier import put there) via a temporary folder."""
        out = Path(out_dir)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
        try:
            self._write_into(tmp)
            old = None
            if out.exists():
                old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old.", dir=out.parent))
                os.replace(out, old / "suite")
            os.replace(tmp, out)
            if old is not None:
                shutil.rmtree(old)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return out

    def _write_into(self, folder: Path) -> None:
        folder.chmod(0o755)
        header = f"# {self.title}\n# Generated by `{self.command}`: do not edit by hand, regenerate.\n"
        for family in sorted(self.files):
            doc = {"cases": self.files[family]}
            text = yaml.dump(doc, Dumper=_Dumper, sort_keys=False, width=120, allow_unicode=False)
            (folder / f"{family}.yaml").write_text(header + text, encoding="utf-8")
        for name in sorted(self.tensors):
            path = folder / name
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "wb") as f:
                np.save(f, self.tensors[name], allow_pickle=False)
        (folder / "SKIPPED.md").write_text(self._skipped_md(), encoding="utf-8")

    def _skipped_md(self) -> str:
        lines = [
            f"# Not imported: {self.title}",
            "",
            f"Generated by `{self.command}`. {self.case_count} cases were written; "
            f"{len(self.skipped)} tests/samples could not be expressed as cases, and {len(self.gaps)} cases carry "
            "their source's expected values only (no `reference: numpy`). Each is listed with its reason.",
            "",
        ]
        lines += [f"{note}" for note in self.notes]
        if self.notes:
            lines.append("")
        for heading, rows in (("Not imported", self.skipped), ("Reference gaps", self.gaps)):
            lines += [f"## {heading} ({len(rows)})", ""]
            if not rows:
                lines += ["None.", ""]
                continue
            lines += ["| family | test | reason |", "|---|---|---|"]
            for row in sorted(rows, key=lambda r: (r.family, r.name)):
                lines.append(f"| {row.family} | `{row.name}` | {row.reason.replace('|', '/')} |")
            lines.append("")
        return "\n".join(lines)


def _storable(array: Any) -> np.ndarray[Any, Any]:
    """array as a numpy array .npy can hold without pickle: bfloat16 and other extension floats as float32."""
    arr = np.asarray(array)
    if (
        arr.dtype.kind == "V"
        or arr.dtype.name == "bfloat16"
        or (arr.dtype.kind == "f" and arr.dtype.name not in ("float16", "float32", "float64"))
    ):
        arr = arr.astype(np.float32)
    if arr.dtype.kind not in "biuf":
        raise ValueError(f"a {arr.dtype} tensor cannot be written into a case")
    return np.ascontiguousarray(arr)
