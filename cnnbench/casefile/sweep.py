"""Expand a case's sweep: block into one case per combination when the file is loaded (no torch)."""

from __future__ import annotations

import copy
import itertools
import json
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cnnbench.casefile.case_shape import case_output_shape
from cnnbench.casefile.format import CaseSpec, ErrorSpec, ExpectSpec, SweepSpec
from cnnbench.ops.geometry import GeometryError

__all__ = ["SWEEP_KEYS", "Axis", "Sweep", "SweepError", "SweepPoint"]

#: The case keys that describe a sweep; none of them is left in a generated case.
SWEEP_KEYS = ("sweep", "max_cases", "exclude")
#: What a sweep may vary: the call and its tensors. Not the id, the expectation or the variant axes
#: (devices, dtypes), which have their own keys.
_ROOTS = ("args", "call_args", "inputs", "state", "layers", "chain", "seed", "mode")
#: The key of a tensor generator is not a useful name: inputs.input.randn is named "input".
_GENERATOR_KEYS = frozenset({"data", "arange", "ones", "zeros", "full", "rand", "randn", "file"})
_NAME_RE = re.compile(r"^[A-Za-z0-9_.+-]+$")

_Path = tuple[str | int, ...]


class SweepError(Exception):
    """A problem with a case's sweep, at a key path relative to the case (e.g. ``("sweep", "args.stride")``)."""

    def __init__(self, message: str, path: _Path = ("sweep",)) -> None:
        super().__init__(message)
        self.message = message
        self.path = path


@dataclass(frozen=True)
class Axis:
    """One swept key path, its values, and how generated ids name them."""

    key: str
    """The key path as written under sweep:, e.g. ``args.kernel_size``."""
    parts: tuple[str, ...]
    values: tuple[Any, ...]
    label: str
    """The axis's name in ids: the last key that is not a tensor generator's (``kernel_size``, ``input``)."""
    names: tuple[str, ...]
    """Each value's name in ids: ``3``, ``true``, ``1x2x5x5``, or ``v0, v1, ...`` where values have no name."""


@dataclass(frozen=True)
class SweepPoint:
    """One combination: the case it generates (raw, not yet validated) and the value index taken on each axis."""

    case: dict[str, Any]
    choice: tuple[int, ...]
    id: str
    paths: tuple[_Path, ...]
    """Where each axis's value was set in ``case`` (``("inputs", "input", "randn")``)."""


def _strict_equal(a: Any, b: Any) -> bool:
    """Equality that tells true from 1 and 1 from 1.0, as a case file writes them."""
    if isinstance(a, list) or isinstance(b, list):
        return (
            isinstance(a, list)
            and isinstance(b, list)
            and len(a) == len(b)
            and all(_strict_equal(x, y) for x, y in zip(a, b, strict=True))
        )
    if isinstance(a, dict) or isinstance(b, dict):
        return (
            isinstance(a, dict)
            and isinstance(b, dict)
            and a.keys() == b.keys()
            and all(_strict_equal(a[k], b[k]) for k in a)
        )
    return type(a) is type(b) and bool(a == b)


def _strict_key(value: Any) -> Any:
    """A hashable stand-in for value such that equal keys mean _strict_equal values (NaN equals nothing)."""
    if isinstance(value, list):
        return ("list", tuple(_strict_key(v) for v in value))
    if isinstance(value, dict):
        return ("dict", frozenset((k, _strict_key(v)) for k, v in value.items()))
    if isinstance(value, float) and math.isnan(value):
        return ("nan", object())
    try:
        hash(value)
    except TypeError:
        return ("unhashable", object())
    return (type(value), value)


def _shown(value: Any) -> str:
    """A value as the case file writes it (true, not True)."""
    return json.dumps(value, default=str)


def _name(value: Any) -> str | None:
    """A value's name in an id, or None when it has none (a mapping, a nested list, an odd string)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "none"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return value if _NAME_RE.match(value) else None
    if (
        isinstance(value, list)
        and value
        and all(isinstance(v, bool | int | float) or v is None for v in value)
    ):
        names = [_name(v) for v in value]
        return "x".join(n for n in names if n is not None)
    return None


def _value_names(values: Sequence[Any]) -> tuple[str, ...]:
    names = [_name(v) for v in values]
    if any(n is None for n in names) or len(set(names)) != len(names):
        return tuple(f"v{i}" for i in range(len(values)))
    return tuple(n for n in names if n is not None)


def _label(parts: Sequence[str]) -> str:
    named = [p for p in parts if p not in _GENERATOR_KEYS]
    return named[-1] if named else parts[-1]


_SCALARS = (str, int, float, bool, type(None))


def _plain_copy(value: Any) -> Any:
    """A deep copy of parsed YAML (mappings, lists and scalars), several times faster than copy.deepcopy, which
    was the largest cost of expanding a sweep of many combinations; anything else is copied by copy.deepcopy."""
    kind = type(value)
    if kind is dict:
        return {k: _plain_copy(v) for k, v in value.items()}
    if kind is list:
        return [_plain_copy(v) for v in value]
    if kind in _SCALARS:
        return value
    return copy.deepcopy(value)


def _assign(root: dict[str, Any], parts: Sequence[str], value: Any, key: str) -> _Path:
    """Set value at the dotted path in root (creating mappings on the way); return the path taken.

    In a mapping, the longest run of parts naming an existing key wins, so ``state.0.weight`` finds a
    ``state: {0.weight: ...}`` entry; in a list, a part is an index (``layers.1.args.stride``).
    """
    node: Any = root
    path: list[str | int] = []
    i = 0
    while True:
        where = ".".join(parts[:i]) or "the case"
        if isinstance(node, dict):
            j = next((j for j in range(len(parts), i, -1) if ".".join(parts[i:j]) in node), i + 1)
            name = ".".join(parts[i:j])
            path.append(name)
            if j == len(parts):
                node[name] = value
                return tuple(path)
            if node.get(name) is None:
                node[name] = {}
            node, i = node[name], j
        elif isinstance(node, list):
            part = parts[i]
            if not part.isdigit() or int(part) >= len(node):
                raise SweepError(
                    f'sweep key "{key}": "{part}" is not an index of {where} (a list of {len(node)})',
                    ("sweep", key),
                )
            index = int(part)
            path.append(index)
            if i + 1 == len(parts):
                node[index] = value
                return tuple(path)
            node, i = node[index], i + 1
        else:
            raise SweepError(
                f'sweep key "{key}": {where} is a {type(node).__name__}, not a mapping to set "{parts[i]}" in',
                ("sweep", key),
            )


class Sweep:
    """A case's sweep: its axes, its exclude rules, and the combinations they leave.

    Usage, as the loader does it: ``points()`` yields the combinations left by the where-rules; each is
    validated into a CaseSpec and passed to ``finish()``, which turns a geometry PyTorch rejects into an error
    expectation (or drops it by an ``invalid: true`` rule); ``problems()`` then reports rules that matched
    nothing, or a sweep left with no case.
    """

    def __init__(self, case: Mapping[str, Any], spec: SweepSpec) -> None:
        """case is the raw case (defaults merged); spec its validated sweep keys. Raises SweepError."""
        base_id = case.get("id")
        if not isinstance(base_id, str) or not base_id:
            raise SweepError(
                "a case with a sweep needs an id: its cases are named <id>.<axis>=<value>,...", ()
            )
        self.base_id = base_id
        self.base = {k: v for k, v in case.items() if k not in SWEEP_KEYS}
        self.rules = spec.exclude
        self.max_cases = spec.max_cases
        if not spec.sweep:
            raise SweepError("sweep: is empty; give at least one key path and its values")
        self.axes = self._axes(spec.sweep)
        total = math.prod(len(a.values) for a in self.axes)
        if total > spec.max_cases:
            sizes = " x ".join(str(len(a.values)) for a in self.axes)
            where: _Path = ("max_cases",) if "max_cases" in case else ("sweep",)
            raise SweepError(
                f"the sweep expands to {total:,} combinations ({sizes}), over max_cases {spec.max_cases:,}; "
                "declare a larger max_cases: if that many is meant",
                where,
            )
        for axis in self.axes:  # a key path that cannot be set fails here, once, not per combination
            _assign(copy.deepcopy(self.base), axis.parts, axis.values[0], axis.key)
        self._check_rules()
        self.hits = [0] * len(self.rules)
        self.kept = 0
        self.excluded = 0

    def _axes(self, sweep: Mapping[str, list[Any]]) -> list[Axis]:
        axes: list[Axis] = []
        for key, values in sweep.items():
            parts = tuple(key.split("."))
            if any(not p for p in parts):
                raise SweepError(
                    f'sweep key "{key}" is not a dotted key path like args.kernel_size', ("sweep", key)
                )
            if parts[0] not in _ROOTS:
                raise SweepError(
                    f'sweep key "{key}": a sweep varies {", ".join(_ROOTS)}, not "{parts[0]}"', ("sweep", key)
                )
            if parts[0] in ("seed", "mode") and len(parts) > 1:
                raise SweepError(f'sweep key "{key}": {parts[0]} has no keys inside', ("sweep", key))
            if not values:
                raise SweepError(
                    f'sweep key "{key}" has no values: the sweep expands to zero cases', ("sweep", key)
                )
            seen: set[Any] = set()  # a set, not a scan of the earlier values: O(n) for an axis of n values
            for i, value in enumerate(values):
                key_of = _strict_key(value)
                if key_of in seen:
                    raise SweepError(
                        f'sweep key "{key}" repeats the value {_shown(value)}', ("sweep", key, i)
                    )
                seen.add(key_of)
            for other in axes:
                short, long_ = sorted((other.parts, parts), key=len)
                if long_[: len(short)] == short:
                    raise SweepError(
                        f'sweep keys "{other.key}" and "{key}" overlap: one sets a value inside the other',
                        ("sweep", key),
                    )
            axes.append(Axis(key, parts, tuple(values), _label(parts), _value_names(values)))
        labels = [a.label for a in axes]
        return [
            Axis(a.key, a.parts, a.values, a.key, a.names) if labels.count(a.label) > 1 else a for a in axes
        ]

    def _check_rules(self) -> None:
        by_key = {a.key: a for a in self.axes}
        for i, rule in enumerate(self.rules):
            for key, value in rule.where.items():
                axis = by_key.get(key)
                if axis is None:
                    raise SweepError(
                        f'exclude[{i}].where: "{key}" is not a key of the sweep (its keys: {", ".join(by_key)})',
                        ("exclude", i, "where", key),
                    )
                if not any(_strict_equal(value, v) for v in axis.values):
                    raise SweepError(
                        f"exclude[{i}].where: {_shown(value)} is not one of the values of {key}: "
                        f"{_shown(list(axis.values))}",
                        ("exclude", i, "where", key),
                    )

    def _matches(self, rule_where: Mapping[str, Any], choice: Sequence[int]) -> bool:
        for axis, c in zip(self.axes, choice, strict=True):
            if axis.key in rule_where and not _strict_equal(rule_where[axis.key], axis.values[c]):
                return False
        return True

    def points(self) -> Iterator[SweepPoint]:
        """The combinations, first axis outermost, without those a where-only rule excludes."""
        for choice in itertools.product(*(range(len(a.values)) for a in self.axes)):
            hit = next(
                (i for i, r in enumerate(self.rules) if not r.invalid and self._matches(r.where, choice)),
                None,
            )
            if hit is not None:
                self.hits[hit] += 1
                self.excluded += 1
                continue
            case = _plain_copy(self.base)
            paths = tuple(
                _assign(case, axis.parts, _plain_copy(axis.values[c]), axis.key)
                for axis, c in zip(self.axes, choice, strict=True)
            )
            label = ",".join(f"{a.label}={a.names[c]}" for a, c in zip(self.axes, choice, strict=True))
            case["id"] = point_id = f"{self.base_id}.{label}"
            yield SweepPoint(case, choice, point_id, paths)

    def finish(self, point: SweepPoint, spec: CaseSpec) -> CaseSpec | None:
        """The case a validated combination becomes: itself, an error expectation, or None (excluded)."""
        try:
            case_output_shape(spec)
        except GeometryError as exc:
            rule = next(
                (i for i, r in enumerate(self.rules) if r.invalid and self._matches(r.where, point.choice)),
                None,
            )
            if rule is not None:
                self.hits[rule] += 1
                self.excluded += 1
                return None
            self.kept += 1
            if spec.expect.error is not None:
                return spec
            note = f"generated by the sweep: PyTorch must reject this geometry ({exc})"
            expect = ExpectSpec(error=ErrorSpec(type=exc.error_type))
            return spec.model_copy(
                update={"expect": expect, "note": note + (f"\n{spec.note}" if spec.note else "")}
            )
        self.kept += 1
        return spec

    def problems(self) -> list[SweepError]:
        """Rules that excluded nothing, and a sweep whose every combination was excluded."""
        found = [
            SweepError(
                f"exclude[{i}] ({rule.reason}) matches no combination of the sweep; remove it or correct it",
                ("exclude", i),
            )
            for i, rule in enumerate(self.rules)
            if self.hits[i] == 0
        ]
        if self.kept == 0:
            found.append(SweepError(f"exclude leaves none of the {self.excluded} combinations: zero cases"))
        return found

    def axis_of(self, data_path: _Path, point: SweepPoint) -> tuple[Axis, int] | None:
        """The axis (and value index) whose value sits at or above data_path in the point's case, if any."""
        for axis, path, c in zip(self.axes, point.paths, point.choice, strict=True):
            if data_path[: len(path)] == path:
                return axis, c
        return None
