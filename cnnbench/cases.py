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
from typing import Any

import yaml
from pydantic import ValidationError

from cnnbench.errors import CaseError, CaseFileError, Location, UsageError
from cnnbench.spec import SPEC_MODELS, CaseFileSpec, CaseSpec, DefaultsSpec, RuleSpec, suggest

__all__ = [
    "Case",
    "CaseFile",
    "Variant",
    "case_files_hash",
    "discover",
    "expand",
    "load_file",
    "load_paths",
    "select",
]

#: A YAML document with more nodes than this is refused (alias bombs expand exponentially).
_MAX_NODES = 2_000_000
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

    @property
    def id(self) -> str:
        """``case_id[device-dtype]``, pytest's parametrisation style; the key everywhere."""
        return f"{self.case.id}[{self.device}-{self.dtype}]"

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
class CaseFile:
    """The cases of one file."""

    path: str
    cases: tuple[Case, ...]


class _Marks:
    """Line and column of every node of a YAML document, keyed by its key path."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.marks: dict[_Path, tuple[int, int]] = {}
        self.errors: list[CaseError] = []
        self.nodes = 0

    def index(self, node: yaml.Node, path: _Path) -> None:
        self.nodes += 1
        if self.nodes > _MAX_NODES:
            raise CaseError(
                f"document has more than {_MAX_NODES:,} nodes (alias expansion?); refusing to load it",
                Location(self.file, 1, 1),
            )
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
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            raise CaseError("the file is empty; expected a mapping with a cases: list", Location(file, 1, 1))
        marks.index(node, ())
        data = loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or str(exc)
        tag_match = re.search(r"constructor for the tag '([^']*)'", problem)
        if tag_match:
            tag = tag_match.group(1).replace("tag:yaml.org,2002:", "!!")
            problem = f"the tag {tag} is not allowed: case files are plain data (safe YAML only)"
        else:
            problem = f"invalid YAML: {problem}"
            if exc.context:
                problem += f" ({exc.context})"
        line = mark.line + 1 if mark else None
        col = mark.column + 1 if mark else None
        raise CaseError(problem, Location(file, line, col)) from None
    except yaml.YAMLError as exc:
        raise CaseError(f"invalid YAML: {exc}", Location(file, 1, 1)) from None
    except RecursionError:
        raise CaseError("YAML nesting is too deep", Location(file, 1, 1)) from None
    finally:
        loader.dispose()
    return data, marks


def _pydantic_errors(
    exc: ValidationError, raw: Any, base: _Path, marks: _Marks
) -> list[CaseError]:
    errors = []
    for err in exc.errors(include_url=False):
        kind = err["type"]
        loc = _data_path(raw, err["loc"], keep_last=kind == "missing")
        path = (*base, *loc)
        if kind == "extra_forbidden":
            key = str(loc[-1])
            allowed = _fields_for(_lookup(raw, loc[:-1]))
            message = f'unknown key "{key}"{suggest(key, allowed)}; expected one of: {", ".join(sorted(allowed))}'
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
        if isinstance(cur, dict) and part in cur and not (nxt is not None and nxt in cur):
            out.append(part)
            cur = cur[part]
        elif isinstance(cur, list) and isinstance(part, int) and 0 <= part < len(cur):
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
        if key in ("skip", "xfail"):
            merged[key] = list(case.get(key) or []) + list(value or [])
        elif key not in case:
            merged[key] = value
            from_defaults.add(key)
    return merged, from_defaults


def load_file(path: str | os.PathLike[str], display: str | None = None) -> CaseFile:
    """Load and validate one case file; raise CaseFileError listing every problem found."""
    file = display or str(path)
    p = Path(path)
    try:
        if p.stat().st_size > _MAX_FILE_BYTES:
            raise CaseFileError([CaseError(f"file is over {_MAX_FILE_BYTES} bytes", Location(file))])
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise CaseFileError([CaseError(f"not UTF-8 text: {exc.reason}", Location(file))]) from None
    except OSError as exc:
        raise CaseFileError([CaseError(f"cannot read: {exc.strerror}", Location(file))]) from None
    return load_text(text, file)


def load_text(text: str, file: str = "<string>") -> CaseFile:
    """Load and validate case-file text; file names it in errors."""
    try:
        data, marks = _parse_yaml(text, file)
    except CaseError as err:
        raise CaseFileError([err]) from None
    errors = list(marks.errors)
    if not isinstance(data, dict):
        found = type(data).__name__
        errors.append(CaseError(f"expected a mapping with a cases: list, found {found}", Location(file, 1, 1)))
        raise CaseFileError(errors)
    unknown = [k for k in data if k not in CaseFileSpec.model_fields]
    for key in unknown:
        errors.append(
            CaseError(
                f'unknown top-level key "{key}"{suggest(str(key), CaseFileSpec.model_fields)}; '
                "expected defaults and cases",
                marks.location((key,)),
            )
        )
    defaults: dict[str, Any] = {}
    if data.get("defaults") is not None:
        try:
            DefaultsSpec.model_validate(data["defaults"])
            defaults = dict(data["defaults"]) if isinstance(data["defaults"], dict) else {}
        except ValidationError as exc:
            errors.extend(_pydantic_errors(exc, data["defaults"], ("defaults",), marks))
    raw_cases = data.get("cases")
    if raw_cases is None:
        errors.append(CaseError('missing required key "cases" (a list of cases)', Location(file, 1, 1)))
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
        try:
            spec = CaseSpec.model_validate(merged)
        except ValidationError as exc:
            for err in _pydantic_errors(exc, merged, path, marks):
                errors.append(_relocate_default(err, from_defaults, marks))
            continue
        line = marks.location(path).line or 1
        if spec.id in seen:
            errors.append(
                CaseError(f'duplicate case id "{spec.id}" (first at line {seen[spec.id]})', marks.location(path))
            )
            continue
        seen[spec.id] = line
        cases.append(Case(spec, file, line))
    if errors:
        raise CaseFileError(errors)
    return CaseFile(file, tuple(cases))


def _relocate_default(err: CaseError, from_defaults: set[str], marks: _Marks) -> CaseError:
    """An error in a key the case took from defaults: point at defaults, not at the case."""
    parts = err.location.path.split(".")
    if len(parts) > 1 and parts[1].split("[")[0] in from_defaults:
        rest = ".".join(parts[1:])
        key = parts[1].split("[")[0]
        loc = marks.location(("defaults", key))
        return CaseError(err.message, Location(loc.file, loc.line, loc.column, f"defaults.{rest}"))
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


def load_paths(paths: Iterable[str | os.PathLike[str]]) -> list[Case]:
    """Load every case file under paths; every error of every file is raised at once. Ids are unique."""
    errors: list[CaseError] = []
    cases: list[Case] = []
    first: dict[str, Case] = {}
    for f in discover(paths):
        try:
            loaded = load_file(f)
        except CaseFileError as exc:
            errors.extend(exc.errors)
            continue
        for case in loaded.cases:
            if case.id in first:
                errors.append(
                    CaseError(
                        f'duplicate case id "{case.id}" (first at {first[case.id].location})',
                        Location(case.file, case.line, None, "id"),
                    )
                )
                continue
            first[case.id] = case
            cases.append(case)
    if errors:
        raise CaseFileError(errors)
    return cases


def case_files_hash(paths: Iterable[str | os.PathLike[str]]) -> str:
    """A short sha256 over the names and contents of the case files under paths."""
    h = hashlib.sha256()
    for f in discover(paths):
        h.update(str(f).encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


def expand(cases: Iterable[Case]) -> Iterator[Variant]:
    """Every (case, device, dtype) combination, in file order, devices outermost."""
    for case in cases:
        for device in case.spec.devices:
            for dtype in case.spec.dtypes:
                yield Variant(case, device, dtype)


def select(
    variants: Iterable[Variant],
    *,
    keyword: str | None = None,
    devices: Sequence[str] | None = None,
    dtypes: Sequence[str] | None = None,
) -> list[Variant]:
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


_TOKEN_RE = re.compile(r"\s*(\(|\)|[\w:+\-.\[\]\\/]+)")


def _compile_keyword(expr: str) -> Callable[[Variant], bool]:
    """A pytest-style -k expression (and, or, not, parentheses; words match substrings, case-insensitively)."""
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
            left = (lambda a, b: lambda h: a(h) or b(h))(left, right)
        return left, i

    def parse_and(i: int) -> tuple[Callable[[str], bool], int]:
        left, i = parse_not(i)
        while i < len(tokens) and tokens[i] == "and":
            right, i = parse_not(i + 1)
            left = (lambda a, b: lambda h: a(h) and b(h))(left, right)
        return left, i

    def parse_not(i: int) -> tuple[Callable[[str], bool], int]:
        if i >= len(tokens):
            raise UsageError(f"-k {expr!r}: expression ends too early")
        tok = tokens[i]
        if tok == "not":
            inner, i = parse_not(i + 1)
            return (lambda a: lambda h: not a(h))(inner), i
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

    def match(variant: Variant) -> bool:
        haystack = " ".join((variant.id, variant.case.spec.target, Path(variant.case.file).name)).lower()
        return matcher(haystack)

    return match
