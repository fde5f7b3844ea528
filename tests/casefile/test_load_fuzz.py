"""Property tests of the loader: random and mutated YAML gives a CaseFile or a CaseFileError, every error located.

Never another exception, never a hang (hypothesis' deadline), whatever the text: random characters, random
token soup, random YAML structures shaped like case files, and mutations of the real case files under cases/.
"""

from __future__ import annotations

import copy
import os
from datetime import timedelta
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from repo import REPO

from cnnbench.casefile.load import load_text
from cnnbench.casefile.schema import SPEC_MODELS
from cnnbench.casefile.variants import CaseFile
from cnnbench.errors import CaseFileError

#: Generous: an example takes milliseconds, a noisy shared CI machine can stall one for a second, and a hang is
#: what this catches.
#: Examples per test: 100 keeps the file under ~20 s; hunt longer with CNNBENCH_FUZZ_EXAMPLES=5000.
FUZZ = settings(
    max_examples=int(os.environ.get("CNNBENCH_FUZZ_EXAMPLES", "100")),
    deadline=timedelta(seconds=5),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    database=None,
)

_SEED_FILES = sorted((REPO / "cases").rglob("*.yaml"))
_FALLBACK = """\
defaults: {devices: [cpu], dtypes: [float32]}
cases:
  - id: conv
    op: conv2d
    args: {stride: 1}
    inputs: {input: [[[[1, 2], [3, 4]]]], weight: {randn: [1, 1, 1, 1], seed: 3}}
    expect: {output: [[[[1, 2], [3, 4]]]], dtype: float32}
    xfail: [{device: cuda, reason: r}]
  - id: lin
    module: Linear
    args: {in_features: 2, out_features: 1}
    state: {weight: {ones: [1, 2]}, bias: {zeros: [1]}}
    inputs: {input: {arange: [3, 2], start: 1}}
    expect: {shape: [3, 1], state_shapes: {weight: [1, 2]}}
"""
#: Cases per seed file kept for mutation: the pure-Python YAML parser makes whole files slow to fuzz, and the
#: first cases of every file already use its keys, flow and block styles, comments and anchors.
_CASES_KEPT = 4


def _head(text: str) -> str:
    """The text up to the start of its (_CASES_KEPT + 1)-th case."""
    lines = text.splitlines(keepends=True)
    starts = [i for i, line in enumerate(lines) if line.startswith("  - id:")]
    return "".join(lines[: starts[_CASES_KEPT]]) if len(starts) > _CASES_KEPT else text


SEEDS = [_head(p.read_text(encoding="utf-8")) for p in _SEED_FILES] or [_FALLBACK]
SEED_DOCS = [yaml.safe_load(s) for s in SEEDS]
_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
KEYS = sorted({k for m in SPEC_MODELS for k in m.model_fields} | {"file", "<<"})


def check_outcome(text: str) -> None:
    """The property: a CaseFile, or a CaseFileError whose every error names fuzz.yaml at a line of the text."""
    try:
        loaded = load_text(text, "fuzz.yaml")
    except CaseFileError as exc:
        assert exc.errors
        n_lines = text.count("\n") + 1
        for err in exc.errors:
            loc = err.location
            assert loc.file == "fuzz.yaml"
            assert loc.line is not None and 1 <= loc.line <= n_lines + 1, (str(err), n_lines)
            assert loc.column is None or loc.column >= 1, str(err)
            assert str(err).startswith(f"fuzz.yaml:{loc.line}")
    else:
        assert isinstance(loaded, CaseFile)


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(KEYS),
    st.sampled_from(
        ["relu", "conv2d", "Conv2d", "float32", "cpu", "cuda:0", "os.system", "data/x.npy", "../x"]
    ),
)
structures = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=5),
        st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=6)), children, max_size=5),
    ),
    max_leaves=40,
)
tokens = st.sampled_from(
    [
        "cases:",
        "defaults:",
        "- ",
        "id: a",
        "op: relu",
        "inputs:",
        "expect:",
        "{",
        "}",
        "[",
        "]",
        ": ",
        ", ",
        "\n",
        "\n  ",
        "\n    ",
        "  ",
        "\t",
        "&a ",
        "*a",
        "<<: *a",
        "!!python/name:os.system",
        "!!binary",
        "!!set",
        "'",
        '"',
        "#",
        "?",
        "|",
        ">",
        "1",
        "-1.5",
        "1e999",
        "null",
        "~",
        "randn: [2]",
        "file: x.npy",
        "%YAML 1.1",
        "---",
        "...",
        "\x00",
        "\x07",
        "\ufeff",
        "é",
        "2024-01-01",
    ]
)


@FUZZ
@given(st.text(max_size=300))
def test_random_text(text: str) -> None:
    check_outcome(text)


@FUZZ
@given(st.lists(tokens, max_size=60).map("".join))
def test_token_soup(text: str) -> None:
    check_outcome(text)


@FUZZ
@given(st.one_of(structures, st.fixed_dictionaries({"cases": st.lists(structures, max_size=4)})))
def test_random_structures(data: Any) -> None:
    check_outcome(yaml.dump(data, Dumper=_DUMPER, allow_unicode=True))


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*prefix, i))
    return out


def _parent(root: Any, path: tuple[Any, ...]) -> Any:
    for part in path[:-1]:
        root = root[part]
    return root


@FUZZ
@given(st.data())
def test_mutated_seed_structures(data: st.DataObject) -> None:
    """Delete, replace, retype, rename or copy one value somewhere in a real case file."""
    doc = copy.deepcopy(data.draw(st.sampled_from(SEED_DOCS), label="seed"))
    for _ in range(data.draw(st.integers(1, 3), label="mutations")):
        paths = [p for p in _paths(doc) if p]
        if not paths:
            break
        path = data.draw(st.sampled_from(paths), label="path")
        parent, key = _parent(doc, path), path[-1]
        action = data.draw(st.sampled_from(["delete", "replace", "retype", "rename", "copy"]), label="action")
        if action == "delete":
            del parent[key]
        elif action == "replace":
            parent[key] = data.draw(structures, label="value")
        elif action == "retype":
            value = parent[key]
            parent[key] = [value] if not isinstance(value, list) else {"k": value}
        elif action == "rename" and isinstance(parent, dict):
            parent[data.draw(st.sampled_from([*KEYS, str(key)[:-1] or "x", str(key) + "s"]))] = parent.pop(
                key
            )
        elif isinstance(parent, list):
            parent.append(copy.deepcopy(parent[key]))
    check_outcome(yaml.dump(doc, Dumper=_DUMPER, allow_unicode=True, sort_keys=False))


@FUZZ
@given(st.data())
def test_mutated_seed_text(data: st.DataObject) -> None:
    """Line and character edits of a real case file: deletions, duplicates (duplicate keys and ids), swaps,
    inserted characters, a cut-off end."""
    lines = data.draw(st.sampled_from(SEEDS), label="seed").splitlines(keepends=True)
    for _ in range(data.draw(st.integers(1, 4), label="edits")):
        if not lines:
            break
        i = data.draw(st.integers(0, len(lines) - 1), label="line")
        action = data.draw(
            st.sampled_from(["delete", "duplicate", "swap", "insert", "truncate"]), label="action"
        )
        if action == "delete":
            del lines[i]
        elif action == "duplicate":
            lines.insert(i, lines[i])
        elif action == "swap":
            j = data.draw(st.integers(0, len(lines) - 1), label="other")
            lines[i], lines[j] = lines[j], lines[i]
        elif action == "insert":
            pos = data.draw(st.integers(0, len(lines[i])), label="pos")
            text = data.draw(st.one_of(tokens, st.text(max_size=3)), label="text")
            lines[i] = lines[i][:pos] + text + lines[i][pos:]
        else:
            pos = data.draw(st.integers(0, len(lines[i])), label="pos")
            lines = [*lines[:i], lines[i][:pos]]
    check_outcome("".join(lines))
