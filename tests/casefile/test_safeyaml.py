"""The YAML dialect of case files (cnnbench.casefile.safeyaml via cases.load_text): plain data, bounded, located errors."""

from __future__ import annotations

import time

import pytest

from cnnbench.casefile import safeyaml
from cnnbench.casefile.load import load_text
from cnnbench.errors import CaseFileError

CASE = "cases:\n  - id: a\n    op: relu\n    inputs: {input: [1.0]}\n    expect: {shape: [1]}\n"


def error_of(text: str) -> str:
    with pytest.raises(CaseFileError) as info:
        load_text(text, "y.yaml")
    return str(info.value.errors[0])


def test_alias_bomb_is_refused_at_once() -> None:
    bomb = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]\n" for i in range(1, 10)
    )
    start = time.perf_counter()
    message = error_of(bomb + "cases: *a9\n")
    assert time.perf_counter() - start < 2  # a billion nodes are never visited
    assert message.startswith(
        "y.yaml:6:5: refused: the document has more than 500,000 nodes once its aliases"
    )


def test_aliases_within_limits_still_work() -> None:
    text = "x: &inp {input: [1.0]}\ncases:\n  - id: a\n    op: relu\n    inputs: *inp\n    expect: {shape: [1]}\n"
    with pytest.raises(CaseFileError, match='unknown top-level key "x"'):
        load_text(text)
    merged = "defaults: &d {devices: [cpu]}\ncases:\n  - {<<: *d, id: a, op: relu, inputs: {input: [1.0]}, expect: {shape: [1]}}\n"
    (case,) = load_text(merged).cases
    assert case.spec.devices == ["cpu"]


def test_recursive_alias() -> None:
    assert error_of("cases: &c [*c]\n").startswith(
        "y.yaml:1:8: refused: an alias refers to a list or mapping"
    )


def test_depth_limit_is_located() -> None:
    message = error_of("cases:\n  - " + "[" * 100 + "]" * 100 + "\n")
    assert message.startswith("y.yaml:2:67: refused: lists and mappings nest deeper than 64 levels")


def test_node_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(safeyaml, "MAX_NODES", 50)
    message = error_of("cases: [" + ", ".join(["1"] * 60) + "]\n")
    assert message.startswith("y.yaml:1:") and "more than 50 nodes" in message


@pytest.mark.parametrize(
    "tag",
    [
        "!!binary AAAA",
        "!!set {a}",
        "!!timestamp 2024-01-01",
        "!!omap [a: 1]",
        "!!python/tuple [1]",
        "!local x",
    ],
)
def test_tags_outside_plain_data_are_refused(tag: str) -> None:
    message = error_of(f"cases: []\ndefaults: {{source: {tag}}}\n")
    assert (
        message.startswith("y.yaml:2:20: the tag ") and "is not allowed: case files are plain data" in message
    )


def test_dates_and_times_are_strings() -> None:
    (case,) = load_text(CASE.replace("op: relu", "op: relu\n    source: 2024-01-01 12:00:00")).cases
    assert case.spec.source == "2024-01-01 12:00:00"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("cases:\n\t- id: a\n", "y.yaml:2:1: invalid YAML: a tab character; YAML indents with spaces only"),
        ('cases:\n  - id: "a\n    op: relu\n', "y.yaml:2:9: invalid YAML: found unexpected end of stream"),
        ("cases: [1,\n  2\n", "y.yaml:1:8: invalid YAML: expected ',' or ']', but got '<stream end>'"),
        ("cases:\n  - id: a\x07\n", "y.yaml:2:10: invalid YAML: the control character U+0007 is not allowed"),
        (
            "cases: [" + "9" * 5000 + "]\n",
            "y.yaml:1:9: invalid YAML: the integer 99999999999999999999... has too many",
        ),
    ],
)
def test_yaml_errors_are_located(text: str, expected: str) -> None:
    message = error_of(text)
    assert message.startswith(expected), message


def test_exponent_without_dot_is_a_float() -> None:
    # tolerances are naturally written 1e-3; YAML 1.1 would make that the string "1e-3"
    from cnnbench.casefile.load import load_text

    text = (
        "cases:\n  - id: a\n    op: relu\n    tolerance: {atol: 1e-3, rtol: 2E+0}\n    inputs: {input: [1e2]}\n"
        "    expect: {shape: [1]}\n"
    )
    (case,) = load_text(text).cases
    assert case.spec.tolerance is not None
    assert case.spec.tolerance.atol == 1e-3 and case.spec.tolerance.rtol == 2.0  # type: ignore[union-attr]
    assert case.spec.inputs["input"] == [100.0]


def _nodes_and_data(
    loader_class: type[safeyaml.CaseLoader], text: str
) -> tuple[list[tuple[int, int]], object]:
    import yaml

    loader = loader_class(text)
    try:
        root = loader.get_single_node()
        marks: list[tuple[int, int]] = []
        todo = [root]
        while todo:
            node = todo.pop()
            marks.append((node.start_mark.line, node.start_mark.column))
            if isinstance(node, yaml.MappingNode):
                todo += [n for pair in node.value for n in pair]
            elif isinstance(node, yaml.SequenceNode):
                todo += node.value
        return marks, loader.construct_document(root)
    finally:
        loader.dispose()


@pytest.mark.skipif(safeyaml.FastCaseLoader is safeyaml.CaseLoader, reason="PyYAML without libyaml")
def test_the_libyaml_loader_reads_every_bundled_file_as_the_python_one() -> None:
    from repo import REPO

    files = sorted((REPO / "cases").rglob("*.yaml"))
    assert len(files) > 40
    for path in files:
        text = path.read_text(encoding="utf-8")
        assert _nodes_and_data(safeyaml.FastCaseLoader, text) == _nodes_and_data(safeyaml.CaseLoader, text), (
            path
        )


@pytest.mark.skipif(safeyaml.FastCaseLoader is safeyaml.CaseLoader, reason="PyYAML without libyaml")
def test_the_libyaml_loader_keeps_the_limits() -> None:
    with pytest.raises(safeyaml.LimitError, match="nest deeper"):
        _nodes_and_data(safeyaml.FastCaseLoader, "x: " + "[" * 70 + "]" * 70 + "\n")
