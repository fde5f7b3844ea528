"""YAML with line numbers: parse a case file safely, index the line and column of every node by its key path,
and turn YAML and pydantic validation errors into ``file:line:col: key.path: message``."""

from __future__ import annotations

import re
import types
from collections.abc import Sequence
from typing import Annotated, Any, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, Tag, ValidationError

from cnnbench.casefile.safeyaml import CaseLoader, FastCaseLoader, LimitError
from cnnbench.casefile.schema import SPEC_MODELS
from cnnbench.casefile.vocabulary import suggest
from cnnbench.errors import CaseError, Location

__all__ = ["KeyPath", "Marks", "data_path", "parse_yaml", "validation_errors"]

KeyPath = tuple[str | int, ...]
"""Where a value sits in a document: mapping keys and list indexes from the top."""


class Marks:
    """Line and column of every node of a YAML document, keyed by its key path."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.marks: dict[KeyPath, tuple[int, int]] = {}
        self.errors: list[CaseError] = []

    def index(self, node: yaml.Node, path: KeyPath) -> None:
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

    def location(self, path: KeyPath, mark: yaml.Mark | None = None) -> Location:
        if mark is not None:
            return Location(self.file, mark.line + 1, mark.column + 1, _format_path(path))
        for n in range(len(path), -1, -1):
            if path[:n] in self.marks:
                line, col = self.marks[path[:n]]
                return Location(self.file, line, col, _format_path(path))
        return Location(self.file, 1, 1, _format_path(path))


def _format_path(path: KeyPath) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def parse_yaml(text: str, file: str) -> tuple[Any, Marks]:
    """The file's data and the line and column of every key and item. libyaml parses it (FastCaseLoader); a
    file it refuses, or anything else it raises, is parsed again by the pure-Python CaseLoader, whose errors this
    turns into located messages."""
    try:
        return _parse(text, file, FastCaseLoader)
    except Exception:
        return _parse(text, file, CaseLoader)


def _parse(text: str, file: str, loader_class: type[CaseLoader]) -> tuple[Any, Marks]:
    marks = Marks(file)
    try:
        loader = loader_class(text)
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


def validation_errors(
    exc: ValidationError, raw: Any, base: KeyPath, marks: Marks, model: type[BaseModel] | None = None
) -> list[CaseError]:
    """One located CaseError per pydantic error. model is the model raw was validated as: an unknown key's
    hint then names the keys of the model at that level (expect.outptu -> output)."""
    errors = []
    for err in exc.errors(include_url=False):
        kind = err["type"]
        loc = data_path(raw, err["loc"], keep_last=kind == "missing")
        path = (*base, *loc)
        if kind == "extra_forbidden":
            key = str(loc[-1])
            parent = _lookup(raw, loc[:-1])
            candidates = _models_at(model, err["loc"][:-1]) if model is not None else []
            allowed = _fields_for(parent, candidates)
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


def _lookup(raw: Any, path: KeyPath) -> Any:
    for part in path:
        raw = raw[part]
    return raw


def data_path(raw: Any, loc: tuple[Any, ...], *, keep_last: bool) -> KeyPath:
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


def _fields_for(parent: Any, candidates: Sequence[type[BaseModel]] = ()) -> set[str]:
    """The keys allowed in the mapping parent: those of the candidate model (else of any spec model) that
    shares most of its keys."""
    keys = set(parent) if isinstance(parent, dict) else set()
    best = max(candidates or SPEC_MODELS, key=lambda m: len(keys & set(m.model_fields)))
    return set(best.model_fields)


def _options(annotation: Any, tag: str | None = None) -> list[tuple[str | None, Any]]:
    """An annotation as the (union tag, type) options it allows: Optional, unions and Annotated unwrapped."""
    origin = get_origin(annotation)
    if origin is Annotated:
        base, *meta = get_args(annotation)
        own = next((m.tag for m in meta if isinstance(m, Tag)), None)
        return _options(base, own or tag)
    if origin is Union or origin is types.UnionType:
        return [o for arg in get_args(annotation) for o in _options(arg, tag)]
    return [(tag, annotation)]


def _descend(typ: Any, part: str | int) -> Any:
    """The annotation one level below typ at part (a model's field, a list item, a mapping value), or None."""
    if isinstance(typ, type) and issubclass(typ, BaseModel):
        field = typ.model_fields.get(str(part))
        if field is None:
            return None
        return Annotated[(field.annotation, *field.metadata)] if field.metadata else field.annotation
    origin, args = get_origin(typ), get_args(typ)
    if origin is list and isinstance(part, int) and args:
        return args[0]
    if origin is dict and len(args) == 2:
        return args[1]
    return None


def _models_at(model: type[BaseModel], loc: Sequence[str | int]) -> list[type[BaseModel]]:
    """The models a pydantic error location (union tags included) can point into, from the root model."""
    current = _options(model)
    for part in loc:
        tagged = [typ for tag, typ in current if tag == part]
        if tagged:  # a discriminated union's tag: the option it names
            current = [o for typ in tagged for o in _options(typ)]
            continue
        below = [o for _, typ in current for o in _options(_descend(typ, part)) if o[1] is not None]
        if below:
            current = below
    return [typ for _, typ in current if isinstance(typ, type) and issubclass(typ, BaseModel)]
