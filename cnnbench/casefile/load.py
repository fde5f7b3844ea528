"""Load case files (safe YAML, with line numbers) into validated cases, and expand cases into variants.

No torch import: loading, validating and listing work without it.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import yaml
from pydantic import ValidationError

from cnnbench.casefile.bench_format import BenchmarkDefaultsSpec, BenchmarkSpec
from cnnbench.casefile.budget import resolve_budget
from cnnbench.casefile.fields import RuleSpec
from cnnbench.casefile.format import CaseSpec, DefaultsSpec, SweepSpec
from cnnbench.casefile.safeyaml import CaseLoader, LimitError
from cnnbench.casefile.schema import SPEC_MODELS, CaseFileSpec
from cnnbench.casefile.sweep import SWEEP_KEYS, Sweep, SweepError
from cnnbench.casefile.tensors import tensor_shape
from cnnbench.casefile.vocabulary import suggest
from cnnbench.errors import CaseError, CaseFileError, Location, UsageError

__all__ = [
    "BenchVariant",
    "Benchmark",
    "Case",
    "CaseFile",
    "Suite",
    "Variant",
    "case_files_hash",
    "discover",
    "estimated_seconds",
    "expand",
    "expand_benchmarks",
    "load_file",
    "load_paths",
    "load_suite",
    "select",
]

#: Files bigger than this are refused before parsing.
_MAX_FILE_BYTES = 64 * 1024 * 1024
_CASE_SUFFIXES = (".yaml", ".yml")

_Path = tuple[str | int, ...]


@dataclass(frozen=True)
class Case:
    """A validated case and where it was written."""

    spec: CaseSpec
    file: str
    line: int

    @property
    def id(self) -> str:
        """The case id, unique in a run."""
        return self.spec.id

    @property
    def location(self) -> str:
        """file:line of the case."""
        return f"{self.file}:{self.line}"


@dataclass(frozen=True)
class Variant:
    """One case on one device in one dtype: the unit that runs and gets a result row."""

    case: Case
    device: str
    dtype: str
    memory_format: str = "contiguous"
    """The layout inputs and module are put in (the case's memory_formats axis); contiguous by default."""

    @property
    def id(self) -> str:
        """``case_id[device-dtype]``, pytest's parametrisation style; the key everywhere.

        A non-default memory format is appended: ``case_id[device-dtype-channels_last]``.
        """
        fmt = "" if self.memory_format == "contiguous" else f"-{self.memory_format}"
        return f"{self.case.id}[{self.device}-{self.dtype}{fmt}]"

    def matching_rule(self, rules: Sequence[RuleSpec]) -> RuleSpec | None:
        """The first rule that applies to this variant."""
        return next((r for r in rules if r.matches(self.device, self.dtype)), None)

    @property
    def skip_rule(self) -> RuleSpec | None:
        """The case's skip rule for this variant, if any."""
        return self.matching_rule(self.case.spec.skip)

    @property
    def xfail_rule(self) -> RuleSpec | None:
        """The case's xfail rule for this variant, if any."""
        return self.matching_rule(self.case.spec.xfail)


@dataclass(frozen=True)
class Benchmark:
    """A validated benchmark (an entry of a file's ``benchmarks:`` list) and where it was written."""

    spec: BenchmarkSpec
    file: str
    line: int

    @property
    def id(self) -> str:
        """The benchmark id, unique in a run (among cases too)."""
        return self.spec.id

    @property
    def location(self) -> str:
        """file:line of the benchmark."""
        return f"{self.file}:{self.line}"

    @property
    def batches(self) -> list[int]:
        """The batch sizes: the batch: axis, else 1 for a model and the first input's leading dimension."""
        if self.spec.batch is not None:
            return list(self.spec.batch)
        if not self.spec.inputs:
            return [1]
        return [tensor_shape(next(iter(self.spec.inputs.values())))[0]]


@dataclass(frozen=True)
class BenchVariant:
    """One benchmark at one point of its axes: the unit that is timed and gets a ``bench`` result row."""

    case: Benchmark
    device: str
    dtype: str
    batch: int
    mode: str
    """inference or train."""
    memory_format: str = "contiguous"
    compile: bool = False
    max_time_s: float | None = None
    """The time budget (``--max-time-per-case``) overriding the benchmark's max_time_s; None: the file's."""

    kind: ClassVar[str] = "bench"

    @property
    def id(self) -> str:
        """``id[device-dtype-b<batch>-<mode>-<memory_format>]``, with ``-compiled`` under torch.compile."""
        compiled = "-compiled" if self.compile else ""
        axes = f"{self.device}-{self.dtype}-b{self.batch}-{self.mode}-{self.memory_format}{compiled}"
        return f"{self.case.id}[{axes}]"

    @property
    def time_budget_s(self) -> float:
        """Seconds of warm-up plus replicates this variant may take (the override, else the file's)."""
        return self.max_time_s if self.max_time_s is not None else self.case.spec.max_time_s

    @property
    def skip_rule(self) -> RuleSpec | None:
        """The benchmark's skip rule for this variant, if any."""
        return next((r for r in self.case.spec.skip if r.matches(self.device, self.dtype)), None)

    @property
    def xfail_rule(self) -> RuleSpec | None:
        """None: a benchmark declares no expected failures."""
        return None


@dataclass(frozen=True)
class CaseFile:
    """The cases and benchmarks of one file."""

    path: str
    cases: tuple[Case, ...]
    benchmarks: tuple[Benchmark, ...] = ()


@dataclass(frozen=True)
class Suite:
    """Every case and benchmark under some paths, ids unique across both."""

    cases: list[Case]
    benchmarks: list[Benchmark]


class _Marks:
    """Line and column of every node of a YAML document, keyed by its key path."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.marks: dict[_Path, tuple[int, int]] = {}
        self.errors: list[CaseError] = []

    def index(self, node: yaml.Node, path: _Path) -> None:
        # CaseLoader has bounded the depth and the expanded node count, so this recursion is bounded too.
        if isinstance(node, yaml.MappingNode):
            seen: dict[str, int] = {}
            for key_node, value_node in node.value:
                key_line = key_node.start_mark.line + 1
                if not isinstance(key_node, yaml.ScalarNode):
                    self.errors.append(
                        CaseError("a key must be a plain string", self.location(path, key_node.start_mark))
                    )
                    continue
                key = key_node.value
                child = (*path, key)
                if key in seen:
                    self.errors.append(
                        CaseError(
                            f'duplicate key "{key}" (first at line {seen[key]})',
                            self.location(child, key_node.start_mark),
                        )
                    )
                seen.setdefault(key, key_line)
                self.marks[child] = (key_line, key_node.start_mark.column + 1)
                self.index(value_node, child)
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                child = (*path, i)
                self.marks[child] = (item.start_mark.line + 1, item.start_mark.column + 1)
                self.index(item, child)

    def location(self, path: _Path, mark: yaml.Mark | None = None) -> Location:
        if mark is not None:
            return Location(self.file, mark.line + 1, mark.column + 1, _format_path(path))
        for n in range(len(path), -1, -1):
            if path[:n] in self.marks:
                line, col = self.marks[path[:n]]
                return Location(self.file, line, col, _format_path(path))
        return Location(self.file, 1, 1, _format_path(path))


def _format_path(path: _Path) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def _parse_yaml(text: str, file: str) -> tuple[Any, _Marks]:
    marks = _Marks(file)
    try:
        loader = CaseLoader(text)
    except yaml.reader.ReaderError as exc:
        # Raised for a non-printable character before any token is read; position indexes text.
        line = text.count("\n", 0, exc.position) + 1
        col = exc.position - (text.rfind("\n", 0, exc.position) + 1) + 1
        char = f"U+{exc.character:04X}" if isinstance(exc.character, int) else repr(exc.character)
        raise CaseError(
            f"invalid YAML: the control character {char} is not allowed (write it escaped in a quoted string)",
            Location(file, line, col),
        ) from None
    try:
        node = loader.get_single_node()
        if node is None:
            raise CaseError("the file is empty; expected a mapping with a cases: list", Location(file, 1, 1))
        marks.index(node, ())
        data = loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or str(exc)
        if ("end of stream" in problem or "<stream end>" in problem) and exc.context_mark is not None:
            # Something never closed (a quote, a bracket): point at where it opened, not at the file's end.
            mark = exc.context_mark
        tag_match = re.search(r"constructor for the tag '([^']*)'", problem)
        if isinstance(exc, LimitError):
            problem = f"refused: {problem}"
        elif "found character '\\t' that cannot start any token" in problem:
            problem = "invalid YAML: a tab character; YAML indents with spaces only"
        elif tag_match:
            tag = tag_match.group(1).replace("tag:yaml.org,2002:", "!!")
            problem = f"the tag {tag} is not allowed: case files are plain data (safe YAML only)"
        else:
            problem = f"invalid YAML: {problem}"
            if exc.context:
                problem += f" ({exc.context})"
        mark = mark or loader.get_mark()
        raise CaseError(problem, Location(file, mark.line + 1, mark.column + 1)) from None
    except yaml.YAMLError as exc:
        mark = loader.get_mark()
        raise CaseError(f"invalid YAML: {exc}", Location(file, mark.line + 1, mark.column + 1)) from None
    except (RecursionError, ValueError, TypeError, OverflowError) as exc:
        # Backstop: CaseLoader bounds depth and converts its own value errors, so this is not expected.
        mark = loader.get_mark()
        raise CaseError(
            f"cannot read this YAML: {exc}", Location(file, mark.line + 1, mark.column + 1)
        ) from None
    finally:
        loader.dispose()
    return data, marks


def _pydantic_errors(exc: ValidationError, raw: Any, base: _Path, marks: _Marks) -> list[CaseError]:
    errors = []
    for err in exc.errors(include_url=False):
        kind = err["type"]
        loc = _data_path(raw, err["loc"], keep_last=kind == "missing")
        path = (*base, *loc)
        if kind == "extra_forbidden":
            key = str(loc[-1])
            allowed = _fields_for(_lookup(raw, loc[:-1]))
            message = (
                f'unknown key "{key}"{suggest(key, allowed)}; expected one of: {", ".join(sorted(allowed))}'
            )
        elif kind == "missing":
            message = f'missing required key "{loc[-1]}"'
        elif kind in ("value_error", "assertion_error"):
            message = str(err["msg"]).removeprefix("Value error, ")
        else:
            found = err.get("input")
            shown = repr(found) if not isinstance(found, dict | list) else type(found).__name__
            if len(shown) > 60:
                shown = shown[:57] + "..."
            message = f"{err['msg']}; found {shown}"
        errors.append(CaseError(message, marks.location(path)))
    return errors


def _lookup(raw: Any, path: _Path) -> Any:
    for part in path:
        raw = raw[part]
    return raw


def _data_path(raw: Any, loc: tuple[Any, ...], *, keep_last: bool) -> _Path:
    """The part of a pydantic error location that indexes the data (pydantic adds union tags in between)."""
    out: list[str | int] = []
    cur = raw
    for i, part in enumerate(loc):
        nxt = loc[i + 1] if i + 1 < len(loc) else None
        in_dict = isinstance(cur, dict) and part in cur and not (nxt is not None and nxt in cur)
        in_list = isinstance(cur, list) and isinstance(part, int) and 0 <= part < len(cur)
        if in_dict or in_list:
            out.append(part)
            cur = cur[part]
        elif keep_last and i == len(loc) - 1:
            out.append(part)
    return tuple(out)


def _fields_for(parent: Any) -> set[str]:
    """The keys allowed in the mapping parent: those of the spec model that shares most of its keys."""
    keys = set(parent) if isinstance(parent, dict) else set()
    best = max(SPEC_MODELS, key=lambda m: len(keys & set(m.model_fields)))
    return set(best.model_fields)


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
        data, marks = _parse_yaml(text, file)
    except CaseError as err:
        raise CaseFileError([err]) from None
    errors = list(marks.errors)
    if not isinstance(data, dict):
        found = type(data).__name__
        errors.append(
            CaseError(f"expected a mapping with a cases: list, found {found}", Location(file, 1, 1))
        )
        raise CaseFileError(errors)
    unknown = [k for k in data if k not in CaseFileSpec.model_fields]
    for key in unknown:
        errors.append(
            CaseError(
                f'unknown top-level key "{key}"{suggest(str(key), CaseFileSpec.model_fields)}; '
                f"expected {', '.join(CaseFileSpec.model_fields)}",
                marks.location((key,)),
            )
        )
    defaults: dict[str, Any] = {}
    if data.get("defaults") is not None:
        try:
            DefaultsSpec.model_validate(data["defaults"], context=context)
            defaults = dict(data["defaults"]) if isinstance(data["defaults"], dict) else {}
        except ValidationError as exc:
            errors.extend(_pydantic_errors(exc, data["defaults"], ("defaults",), marks))
    raw_cases = data.get("cases")
    if raw_cases is None:
        if data.get("benchmarks") is None:
            errors.append(
                CaseError(
                    'missing required key "cases" (a list of cases) or "benchmarks"', Location(file, 1, 1)
                )
            )
        raw_cases = []
    elif not isinstance(raw_cases, list):
        errors.append(CaseError("cases must be a list of cases", marks.location(("cases",))))
        raw_cases = []
    cases: list[Case] = []
    seen: dict[str, int] = {}
    for i, raw in enumerate(raw_cases):
        path: _Path = ("cases", i)
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
                    for e in _pydantic_errors(exc, merged, path, marks)
                )
                continue
        line = marks.location(path).line or 1
        for spec in specs:
            if spec.id in seen:
                errors.append(
                    CaseError(
                        f'duplicate case id "{spec.id}" (first at line {seen[spec.id]})', marks.location(path)
                    )
                )
                continue
            seen[spec.id] = line
            cases.append(Case(spec, file, line))
    benchmarks = _load_benchmarks(data, marks, context, seen, errors)
    if errors:
        raise CaseFileError(errors)
    return CaseFile(file, tuple(cases), tuple(benchmarks))


def _load_benchmarks(
    data: dict[str, Any],
    marks: _Marks,
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
            errors.extend(_pydantic_errors(exc, raw_defaults, ("benchmark_defaults",), marks))
    raw_list = data.get("benchmarks")
    if raw_list is None:
        return []
    if not isinstance(raw_list, list):
        errors.append(CaseError("benchmarks must be a list of benchmarks", marks.location(("benchmarks",))))
        return []
    out: list[Benchmark] = []
    for i, raw in enumerate(raw_list):
        path: _Path = ("benchmarks", i)
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
                for e in _pydantic_errors(exc, merged, path, marks)
            )
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
    merged: dict[str, Any], from_defaults: set[str], path: _Path, marks: _Marks, context: dict[str, Any]
) -> tuple[list[CaseSpec], list[CaseError]]:
    """The cases a swept case expands to, and every problem found (each error reported once).

    An error in a swept value points at that value under sweep:; an error elsewhere names the first
    combination that showed it.
    """
    try:
        sweep = Sweep(merged, SweepSpec.model_validate({k: merged[k] for k in SWEEP_KEYS if k in merged}))
    except ValidationError as exc:
        return [], _pydantic_errors(exc, merged, path, marks)
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
            located = _pydantic_errors(exc, point.case, path, marks)
            for detail, raw_error in zip(exc.errors(include_url=False), located, strict=True):
                data = _data_path(point.case, detail["loc"], keep_last=detail["type"] == "missing")
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
            specs.append(finished)
    errors: list[CaseError] = []
    for case_error, in_axis, first, count in found.values():
        more = f" and {count - 1} more" if count > 1 else ""
        where = "" if in_axis else f" (in the combination {first}{more})"
        errors.append(CaseError(case_error.message + where, case_error.location))
    if not errors:
        errors = [CaseError(p.message, marks.location((*path, *p.path))) for p in sweep.problems()]
    return specs, errors


def _relocate_default(
    err: CaseError, from_defaults: set[str], marks: _Marks, section: str = "defaults"
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
    first: dict[str, Case | Benchmark] = {}
    for f in discover(paths):
        try:
            loaded = load_file(f, max_case_bytes=max_case_bytes)
        except CaseFileError as exc:
            errors.extend(exc.errors)
            continue
        items: list[Case | Benchmark] = [*loaded.cases, *loaded.benchmarks]
        for item in items:
            if item.id in first:
                what = "case" if isinstance(item, Case) else "benchmark"
                errors.append(
                    CaseError(
                        f'duplicate {what} id "{item.id}" (first at {first[item.id].location})',
                        Location(item.file, item.line, None, "id"),
                    )
                )
                continue
            first[item.id] = item
            if isinstance(item, Case):
                cases.append(item)
            else:
                benchmarks.append(item)
    if errors:
        raise CaseFileError(errors)
    return Suite(cases, benchmarks)


def case_files_hash(paths: Iterable[str | os.PathLike[str]]) -> str:
    """A short sha256 over the names and contents of the case files under paths."""
    h = hashlib.sha256()
    for f in discover(paths):
        h.update(str(f).encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


def expand(cases: Iterable[Case]) -> Iterator[Variant]:
    """Every (case, device, dtype, memory format) combination, in file order, devices outermost."""
    for case in cases:
        formats = case.spec.memory_formats or ["contiguous"]
        for device in case.spec.devices:
            for dtype in case.spec.dtypes:
                for fmt in formats:
                    yield Variant(case, device, dtype, fmt)


#: Rough seconds a numerics variant takes, to weigh it against benchmarks in the progress bar's ETA.
_CHECK_ESTIMATE_S = 0.05
#: Seconds a benchmark row spends besides its timing budget: building, FLOP counting, the correctness check
#: and the first call (resnet-sized models on a 2-core CPU); only a weight for the ETA, which self-corrects.
_BENCH_OVERHEAD_S = 2.0
#: torch.compile's first call (tracing and inductor's C++ build) on a CPU, on top of the rest.
_COMPILE_ESTIMATE_S = 30.0


def expand_benchmarks(
    benchmarks: Iterable[Benchmark], max_time_s: float | None = None
) -> Iterator[BenchVariant]:
    """Every point of each benchmark's axes in file order: device, dtype, batch, mode, memory format, compile.

    max_time_s (``--max-time-per-case``) overrides every benchmark's own time budget.
    """
    for bench in benchmarks:
        spec = bench.spec
        for device in spec.devices:
            for dtype in spec.dtypes:
                for batch in bench.batches:
                    for mode in spec.modes:
                        for fmt in spec.memory_formats:
                            for compiled in spec.compile:
                                yield BenchVariant(
                                    bench, device, dtype, batch, mode, fmt, compiled, max_time_s
                                )


def estimated_seconds(variant: Variant | BenchVariant) -> float:
    """A rough guess of how long a variant takes: the progress bar's weight for its ETA."""
    if isinstance(variant, BenchVariant):
        return variant.time_budget_s + _BENCH_OVERHEAD_S + (_COMPILE_ESTIMATE_S if variant.compile else 0.0)
    return _CHECK_ESTIMATE_S


_AnyVariant = TypeVar("_AnyVariant", bound="Variant | BenchVariant")


def select(
    variants: Iterable[_AnyVariant],
    *,
    keyword: str | None = None,
    devices: Sequence[str] | None = None,
    dtypes: Sequence[str] | None = None,
) -> list[_AnyVariant]:
    """Variants matching a pytest-style -k expression and the device/dtype filters."""
    matcher = _compile_keyword(keyword) if keyword else None
    out = []
    for v in variants:
        if devices and not any(v.device == d or v.device.split(":")[0] == d for d in devices):
            continue
        if dtypes and v.dtype not in dtypes:
            continue
        if matcher is not None and not matcher(v):
            continue
        out.append(v)
    return out


_TOKEN_RE = re.compile(r"\s*(\(|\)|[\w:+\-.\[\]\\/=,]+)")


def _either(a: Callable[[str], bool], b: Callable[[str], bool]) -> Callable[[str], bool]:
    return lambda h: a(h) or b(h)


def _both(a: Callable[[str], bool], b: Callable[[str], bool]) -> Callable[[str], bool]:
    return lambda h: a(h) and b(h)


def _negate(a: Callable[[str], bool]) -> Callable[[str], bool]:
    return lambda h: not a(h)


def _compile_keyword(expr: str) -> Callable[[Variant | BenchVariant], bool]:
    """A pytest-style -k expression: and, or, not, parentheses; words match substrings, ignoring case."""
    tokens: list[str] = []
    pos = 0
    while pos < len(expr):
        if expr[pos:].strip() == "":
            break
        m = _TOKEN_RE.match(expr, pos)
        if m is None:
            raise UsageError(f"-k {expr!r}: unexpected character {expr[pos:].strip()[0]!r}")
        tokens.append(m.group(1))
        pos = m.end()
    if not tokens:
        raise UsageError("-k: empty expression")

    def parse(i: int) -> tuple[Callable[[str], bool], int]:
        left, i = parse_and(i)
        while i < len(tokens) and tokens[i] == "or":
            right, i = parse_and(i + 1)
            left = _either(left, right)
        return left, i

    def parse_and(i: int) -> tuple[Callable[[str], bool], int]:
        left, i = parse_not(i)
        while i < len(tokens) and tokens[i] == "and":
            right, i = parse_not(i + 1)
            left = _both(left, right)
        return left, i

    def parse_not(i: int) -> tuple[Callable[[str], bool], int]:
        if i >= len(tokens):
            raise UsageError(f"-k {expr!r}: expression ends too early")
        tok = tokens[i]
        if tok == "not":
            inner, i = parse_not(i + 1)
            return _negate(inner), i
        if tok == "(":
            inner, i = parse(i + 1)
            if i >= len(tokens) or tokens[i] != ")":
                raise UsageError(f"-k {expr!r}: missing closing parenthesis")
            return inner, i + 1
        if tok in (")", "and", "or"):
            raise UsageError(f"-k {expr!r}: unexpected {tok!r}")
        word = tok.lower()
        return (lambda h: word in h), i + 1

    matcher, end = parse(0)
    if end != len(tokens):
        raise UsageError(f"-k {expr!r}: unexpected {tokens[end]!r}")

    def match(variant: Variant | BenchVariant) -> bool:
        haystack = " ".join((variant.id, variant.case.spec.target, Path(variant.case.file).name)).lower()
        return matcher(haystack)

    return match
