"""Load case files into validated cases and benchmarks: defaults merged, sweeps expanded, every problem of every
file reported at once as file:line. No torch import: loading, validating and listing work without it."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from cnnbench.casefile.bench_format import BenchmarkDefaultsSpec, BenchmarkSpec
from cnnbench.casefile.budget import resolve_budget
from cnnbench.casefile.format import CaseSpec, DefaultsSpec, SweepSpec
from cnnbench.casefile.locate import KeyPath, Marks, data_path, parse_yaml, validation_errors
from cnnbench.casefile.schema import CaseFileSpec
from cnnbench.casefile.sweep import SWEEP_KEYS, Sweep, SweepError
from cnnbench.casefile.variants import Benchmark, Case, CaseFile, Suite
from cnnbench.casefile.vocabulary import suggest
from cnnbench.errors import CaseError, CaseFileError, Location

__all__ = ["case_files_hash", "discover", "load_file", "load_paths", "load_suite", "load_text"]

#: Files bigger than this are refused before parsing.
_MAX_FILE_BYTES = 64 * 1024 * 1024
_CASE_SUFFIXES = (".yaml", ".yml")


def _merge_defaults(defaults: dict[str, Any], case: dict[str, Any]) -> tuple[dict[str, Any], set[str]]:
    merged = dict(case)
    from_defaults: set[str] = set()
    for key, value in defaults.items():
        if key in ("skip", "xfail") and isinstance(case.get(key) or [], list) and isinstance(value, list):
            merged[key] = list(case.get(key) or []) + list(value or [])
        elif key not in case:
            merged[key] = value
            from_defaults.add(key)
    return merged, from_defaults


def load_file(
    path: str | os.PathLike[str], display: str | None = None, *, max_case_bytes: int | None = None
) -> CaseFile:
    """Load and validate one case file; raise CaseFileError listing every problem found.

    Tensor files it names resolve against its folder; max_case_bytes is the memory budget of one case
    (None: $CNNBENCH_MAX_CASE_BYTES or the default).
    """
    file = display or str(path)
    p = Path(path)
    try:
        if p.stat().st_size > _MAX_FILE_BYTES:
            raise CaseFileError([CaseError(f"file is over {_MAX_FILE_BYTES} bytes", Location(file, 1))])
        raw = p.read_bytes()
    except OSError as exc:
        raise CaseFileError([CaseError(f"cannot read: {exc.strerror}", Location(file))]) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        col = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        bad = raw[exc.start : exc.end].hex(" ")
        where = Location(file, line, col)
        raise CaseFileError([CaseError(f"not UTF-8 text: {exc.reason} (byte {bad})", where)]) from None
    return load_text(text, file, base_dir=p.parent, max_case_bytes=max_case_bytes)


def load_text(
    text: str,
    file: str = "<string>",
    *,
    base_dir: str | os.PathLike[str] | None = None,
    max_case_bytes: int | None = None,
) -> CaseFile:
    """Load and validate case-file text; file names it in errors.

    base_dir is the folder tensor files resolve against (None: a {file: ...} tensor is an error);
    max_case_bytes as for load_file.
    """
    context = {"base_dir": base_dir, "max_case_bytes": resolve_budget(max_case_bytes)}
    try:
        data, marks = parse_yaml(text, file)
    except CaseError as err:
        raise CaseFileError([err]) from None
    errors = list(marks.errors)
    if not isinstance(data, dict):
        found = type(data).__name__
        errors.append(
            CaseError(f"expected a mapping with a cases: list, found {found}", Location(file, 1, 1))
        )
        raise CaseFileError(errors)
    errors.extend(_unknown_top_level(data, marks))
    defaults: dict[str, Any] = {}
    if data.get("defaults") is not None:
        try:
            DefaultsSpec.model_validate(data["defaults"], context=context)
            defaults = dict(data["defaults"]) if isinstance(data["defaults"], dict) else {}
        except ValidationError as exc:
            errors.extend(validation_errors(exc, data["defaults"], ("defaults",), marks, DefaultsSpec))
    seen: dict[str, int] = {}
    cases = _load_cases(data, defaults, marks, context, seen, errors)
    benchmarks = _load_benchmarks(data, marks, context, seen, errors)
    if errors:
        raise CaseFileError(_sorted(errors))
    return CaseFile(file, tuple(cases), tuple(benchmarks))


def _unknown_top_level(data: dict[str, Any], marks: Marks) -> list[CaseError]:
    known = CaseFileSpec.model_fields
    return [
        CaseError(
            f'unknown top-level key "{key}"{suggest(str(key), known)}; expected {", ".join(known)}',
            marks.location((key,)),
        )
        for key in data
        if key not in known
    ]


def _load_cases(
    data: dict[str, Any],
    defaults: dict[str, Any],
    marks: Marks,
    context: dict[str, Any],
    seen: dict[str, int],
    errors: list[CaseError],
) -> list[Case]:
    """The file's cases: list, validated with defaults merged in and sweeps expanded; problems go to errors,
    ids go to seen (id -> line)."""
    raw_cases = data.get("cases")
    if raw_cases is None:
        if data.get("benchmarks") is None:
            errors.append(
                CaseError(
                    'missing required key "cases" (a list of cases) or "benchmarks"',
                    Location(marks.file, 1, 1),
                )
            )
        return []
    if not isinstance(raw_cases, list):
        errors.append(CaseError("cases must be a list of cases", marks.location(("cases",))))
        return []
    cases: list[Case] = []
    for i, raw in enumerate(raw_cases):
        path: KeyPath = ("cases", i)
        if not isinstance(raw, dict):
            errors.append(CaseError(f"a case is a mapping, found {type(raw).__name__}", marks.location(path)))
            continue
        merged, from_defaults = _merge_defaults(defaults, raw)
        if "sweep" in merged:
            specs, problems = _sweep_specs(merged, from_defaults, path, marks, context)
            errors.extend(problems)
        else:
            try:
                specs = [CaseSpec.model_validate(merged, context=context)]
            except ValidationError as exc:
                errors.extend(
                    _relocate_default(e, from_defaults, marks)
                    for e in validation_errors(exc, merged, path, marks, CaseSpec)
                )
                _claim_id(merged, path, marks, seen, errors)
                continue
        line = marks.location(path).line or 1
        for spec in specs:
            if spec.id in seen:
                message = f'duplicate case id "{spec.id}" (first at line {seen[spec.id]})'
                errors.append(CaseError(message, marks.location(path)))
                continue
            seen[spec.id] = line
            cases.append(Case(spec, marks.file, line))
    return cases


def _claim_id(
    raw: dict[str, Any], path: KeyPath, marks: Marks, seen: dict[str, int], errors: list[CaseError]
) -> None:
    """An entry that did not validate still claims its id, so a duplicate is reported with every other error."""
    raw_id = raw.get("id")
    if not isinstance(raw_id, str) or "sweep" in raw:
        return
    if raw_id in seen:
        what = "case id" if path[0] == "cases" else "id"
        message = f'duplicate {what} "{raw_id}" (first at line {seen[raw_id]})'
        errors.append(CaseError(message, marks.location((*path, "id"))))
    else:
        seen[raw_id] = marks.location(path).line or 1


def _sorted(errors: list[CaseError]) -> list[CaseError]:
    """Errors by file, then line and column (an error without a line first in its file)."""
    return sorted(errors, key=lambda e: (e.location.file, e.location.line or 0, e.location.column or 0))


def _written_ids(path: Path) -> list[tuple[str, int, str]]:
    """The ids written in a case file (with their lines), read even when the file does not validate."""
    try:
        data, marks = parse_yaml(path.read_text(encoding="utf-8"), str(path))
    except (CaseError, OSError, UnicodeDecodeError):
        return []
    found = []
    for key in ("cases", "benchmarks"):
        entries = data.get(key) if isinstance(data, dict) else None
        for i, raw in enumerate(entries if isinstance(entries, list) else []):
            if isinstance(raw, dict) and isinstance(raw.get("id"), str) and "sweep" not in raw:
                found.append((raw["id"], marks.location((key, i)).line or 1, key.removesuffix("s")))
    return found


def _load_benchmarks(
    data: dict[str, Any],
    marks: Marks,
    context: dict[str, Any],
    seen: dict[str, int],
    errors: list[CaseError],
) -> list[Benchmark]:
    """The file's benchmarks: list, validated with benchmark_defaults merged in; problems go to errors."""
    defaults: dict[str, Any] = {}
    raw_defaults = data.get("benchmark_defaults")
    if raw_defaults is not None:
        try:
            BenchmarkDefaultsSpec.model_validate(raw_defaults, context=context)
            defaults = dict(raw_defaults)
        except ValidationError as exc:
            errors.extend(
                validation_errors(exc, raw_defaults, ("benchmark_defaults",), marks, BenchmarkDefaultsSpec)
            )
    raw_list = data.get("benchmarks")
    if raw_list is None:
        return []
    if not isinstance(raw_list, list):
        errors.append(CaseError("benchmarks must be a list of benchmarks", marks.location(("benchmarks",))))
        return []
    out: list[Benchmark] = []
    for i, raw in enumerate(raw_list):
        path: KeyPath = ("benchmarks", i)
        if not isinstance(raw, dict):
            errors.append(
                CaseError(f"a benchmark is a mapping, found {type(raw).__name__}", marks.location(path))
            )
            continue
        merged, from_defaults = _merge_defaults(defaults, raw)
        try:
            spec = BenchmarkSpec.model_validate(merged, context=context)
        except ValidationError as exc:
            errors.extend(
                _relocate_default(e, from_defaults, marks, "benchmark_defaults")
                for e in validation_errors(exc, merged, path, marks, BenchmarkSpec)
            )
            _claim_id(merged, path, marks, seen, errors)
            continue
        line = marks.location(path).line or 1
        if spec.id in seen:
            message = f'duplicate id "{spec.id}" (first at line {seen[spec.id]})'
            errors.append(CaseError(message, marks.location((*path, "id"))))
            continue
        seen[spec.id] = line
        out.append(Benchmark(spec, marks.file, line))
    return out


def _sweep_specs(
    merged: dict[str, Any], from_defaults: set[str], path: KeyPath, marks: Marks, context: dict[str, Any]
) -> tuple[list[CaseSpec], list[CaseError]]:
    """The cases a swept case expands to, and every problem found (each error reported once).

    An error in a swept value points at that value under sweep:; an error elsewhere names the first
    combination that showed it.
    """
    try:
        sweep = Sweep(merged, SweepSpec.model_validate({k: merged[k] for k in SWEEP_KEYS if k in merged}))
    except ValidationError as exc:
        return [], validation_errors(exc, merged, path, marks, SweepSpec)
    except SweepError as exc:
        return [], [CaseError(exc.message, marks.location((*path, *exc.path)))]
    specs: list[CaseSpec] = []
    # Each distinct error once: the error, whether it is in a swept value, the first combination, how many.
    found: dict[str, tuple[CaseError, bool, str, int]] = {}
    for point in sweep.points():
        try:
            spec = CaseSpec.model_validate(point.case, context=context)
        except ValidationError as exc:
            # _pydantic_errors gives one CaseError per pydantic error, in order.
            located = validation_errors(exc, point.case, path, marks, CaseSpec)
            for detail, raw_error in zip(exc.errors(include_url=False), located, strict=True):
                data = data_path(point.case, detail["loc"], keep_last=detail["type"] == "missing")
                axis = sweep.axis_of(data, point)
                if axis is not None:
                    at = marks.location((*path, "sweep", axis[0].key, axis[1]))
                    case_error = CaseError(f"{axis[0].key}: {raw_error.message}", at)
                else:
                    case_error = _relocate_default(raw_error, from_defaults, marks)
                seen = found.get(str(case_error))
                count = 1 if seen is None else seen[3] + 1
                found[str(case_error)] = (case_error, axis is not None, seen[2] if seen else point.id, count)
            continue
        finished = sweep.finish(point, spec)
        if finished is not None:
            specs.append(share_values(finished, specs[-1] if specs else None))
    errors: list[CaseError] = []
    for case_error, in_axis, first, count in found.values():
        more = f" and {count - 1} more" if count > 1 else ""
        where = "" if in_axis else f" (in the combination {first}{more})"
        errors.append(CaseError(case_error.message + where, case_error.location))
    if not errors:
        errors = [CaseError(p.message, marks.location((*path, *p.path))) for p in sweep.problems()]
    return specs, errors


def share_values(spec: CaseSpec, like: CaseSpec | None) -> CaseSpec:
    """spec holding like's own objects wherever their values are equal: a sweep's combinations differ in a key or
    two, so its cases share the rest (inputs, expectation, devices, ...) instead of each holding a copy, about
    two thirds of a case's memory (a sweep of a million variants must fit in memory). Where a value differs,
    its parts are shared the same way (a swept input's shape, the other inputs), two levels down. Safe because
    cases are frozen: nothing is ever changed in place, so an equal value is the same value."""
    if like is not None:
        _share_model(spec, like, depth=3)
    return spec


def _share_model(model: BaseModel, like: BaseModel, depth: int) -> None:
    _share_fields(model.__dict__, like.__dict__, depth)
    if model.model_fields_set == like.model_fields_set:
        object.__setattr__(model, "__pydantic_fields_set__", like.model_fields_set)


def _share_fields(mine: dict[str, Any], theirs: dict[str, Any], depth: int) -> None:
    for name, value in mine.items():
        other = theirs.get(name)
        if other is value or type(other) is not type(value):
            continue
        if other == value:
            mine[name] = other
        elif depth > 1 and isinstance(value, dict) and isinstance(other, dict):
            _share_fields(value, other, depth - 1)
        elif depth > 1 and isinstance(value, BaseModel) and isinstance(other, BaseModel):
            _share_model(value, other, depth - 1)


def _relocate_default(
    err: CaseError, from_defaults: set[str], marks: Marks, section: str = "defaults"
) -> CaseError:
    """An error in a key the case took from defaults (section): point at defaults, not at the case."""
    parts = err.location.path.split(".")
    if len(parts) > 1 and parts[1].split("[")[0] in from_defaults:
        rest = ".".join(parts[1:])
        key = parts[1].split("[")[0]
        loc = marks.location((section, key))
        return CaseError(err.message, Location(loc.file, loc.line, loc.column, f"{section}.{rest}"))
    return err


def discover(paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Case files under paths (files as given, directories searched recursively), sorted, without repeats."""
    found: dict[Path, None] = {}
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            for f in sorted(p.rglob("*")):
                if f.suffix in _CASE_SUFFIXES and f.is_file() and not any(x.startswith(".") for x in f.parts):
                    found[f] = None
        elif p.exists():
            found[p] = None
        else:
            raise CaseFileError([CaseError("no such file or directory", Location(str(p)))])
    return list(found)


def load_paths(paths: Iterable[str | os.PathLike[str]], *, max_case_bytes: int | None = None) -> list[Case]:
    """Load every case file under paths; every error of every file is raised at once. Ids are unique.

    Only the cases are returned; load_suite also returns the benchmarks (both are validated either way).
    """
    return load_suite(paths, max_case_bytes=max_case_bytes).cases


def load_suite(paths: Iterable[str | os.PathLike[str]], *, max_case_bytes: int | None = None) -> Suite:
    """Every case and benchmark of every file under paths; every error of every file is raised at once.

    Ids are unique across files, and across cases and benchmarks.
    """
    errors: list[CaseError] = []
    cases: list[Case] = []
    benchmarks: list[Benchmark] = []
    first: dict[str, str] = {}  # id -> file:line where it is first written
    for f in discover(paths):
        try:
            loaded = load_file(f, max_case_bytes=max_case_bytes)
        except CaseFileError as exc:
            errors.extend(exc.errors)
            # A file with errors still claims its ids: a duplicate across files is reported now, not later.
            for raw_id, line, what in _written_ids(f):
                # (a duplicate within the file is among the file's own errors already)
                if raw_id in first and not first[raw_id].startswith(f"{f}:"):
                    message = f'duplicate {what} id "{raw_id}" (first at {first[raw_id]})'
                    errors.append(CaseError(message, Location(str(f), line, None, "id")))
                first.setdefault(raw_id, f"{f}:{line}")
            continue
        items: list[Case | Benchmark] = [*loaded.cases, *loaded.benchmarks]
        for item in items:
            if item.id in first:
                what = "case" if isinstance(item, Case) else "benchmark"
                errors.append(
                    CaseError(
                        f'duplicate {what} id "{item.id}" (first at {first[item.id]})',
                        Location(item.file, item.line, None, "id"),
                    )
                )
                continue
            first[item.id] = item.location
            if isinstance(item, Case):
                cases.append(item)
            else:
                benchmarks.append(item)
    if errors:
        raise CaseFileError(_sorted(errors))
    return Suite(cases, benchmarks)


def case_files_hash(paths: Iterable[str | os.PathLike[str]]) -> str:
    """A short sha256 over the names and contents of the case files under paths."""
    h = hashlib.sha256()
    for f in discover(paths):
        h.update(str(f).encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:16]
