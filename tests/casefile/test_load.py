"""Loading, validating and expanding case files (cnnbench.casefile.load and cnnbench.casefile.format)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from cnnbench.casefile.load import load_paths, load_text
from cnnbench.casefile.select import select
from cnnbench.casefile.variants import expand
from cnnbench.errors import CaseFileError, UsageError

GOOD = """\
defaults:
  devices: [cpu]
  dtypes: [float64, float32]
  xfail: [{dtype: int64, reason: file-wide}]
cases:
  - id: conv
    source: "seed 000"
    op: conv2d
    args: {stride: 1}
    inputs:
      input: [[[[1, 2], [3, 4]]]]
      weight: [[[[1]]]]
    expect:
      output: [[[[1, 2], [3, 4]]]]
  - id: relu
    op: relu
    dtypes: [float16]
    xfail: [{dtype: bfloat16, reason: own}]
    inputs: {input: {randn: [2, 3], seed: 1}}
    expect: {shape: [2, 3]}
"""


def errors_of(text: str) -> list[str]:
    with pytest.raises(CaseFileError) as info:
        load_text(text, "f.yaml")
    return [str(e) for e in info.value.errors]


def test_load_good_file_and_expand() -> None:
    loaded = load_text(GOOD, "f.yaml")
    assert [c.id for c in loaded.cases] == ["conv", "relu"]
    assert loaded.cases[0].line == 6
    assert loaded.cases[1].line == 15
    ids = [v.id for v in expand(loaded.cases)]
    assert ids == ["conv[cpu-float64]", "conv[cpu-float32]", "relu[cpu-float16]"]


def test_defaults_merge_and_rule_lists_concatenate() -> None:
    relu = load_text(GOOD, "f.yaml").cases[1].spec
    assert relu.dtypes == ["float16"]  # the case's own key wins
    assert relu.devices == ["cpu"]  # taken from defaults
    assert [r.reason for r in relu.xfail] == ["own", "file-wide"]


def test_default_devices_and_dtypes() -> None:
    text = "cases:\n  - id: a\n    op: relu\n    inputs: {input: [1.0]}\n    expect: {shape: [1]}\n"
    (case,) = load_text(text).cases
    assert case.spec.devices == ["cpu", "cuda"]
    assert case.spec.dtypes == ["float32"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("cases: [\n", "f.yaml:2:1: invalid YAML"),
        ("", "f.yaml:1:1: the file is empty"),
        ("- 1\n- 2\n", "f.yaml:1:1: expected a mapping with a cases: list, found list"),
        ("casses: []\n", 'f.yaml:1:1: casses: unknown top-level key "casses" (did you mean "cases"?)'),
        (
            "cases:\n  - id: a\n    op: conv2\n    inputs: {input: [1]}\n    expect: {shape: [1]}\n",
            'f.yaml:3:5: cases[0].op: unknown op "conv2" (did you mean "conv2d"?)',
        ),
        (
            "cases:\n  - id: a\n    op: relu\n    inputs: {input: [[1, 2], [3]]}\n    expect: {shape: [1]}\n",
            "f.yaml:4:14: cases[0].inputs.input: ragged tensor literal",
        ),
        (
            "cases:\n  - id: a\n    op: relu\n    dtypes: [float23]\n    inputs: {input: [1]}\n"
            "    expect: {shape: [1]}\n",
            'f.yaml:4:14: cases[0].dtypes[0]: unknown dtype "float23" (did you mean "float32"?)',
        ),
        (
            "cases:\n  - id: a\n    op: relu\n    inputs: {input: [1]}\n    expct: {shape: [1]}\n",
            'f.yaml:5:5: cases[0].expct: unknown key "expct" (did you mean "expect"?)',
        ),
        (
            "cases:\n  - id: a\n    op: relu\n    inputs: {input: {randn: [2], sed: 3}}\n    expect: {shape: [2]}\n",
            'f.yaml:4:34: cases[0].inputs.input.sed: unknown key "sed" (did you mean "seed"?)',
        ),
        (
            "cases:\n  - id: a\n    op: relu\n    op: tanh\n    inputs: {input: [1]}\n    expect: {shape: [1]}\n",
            'f.yaml:4:5: cases[0].op: duplicate key "op" (first at line 3)',
        ),
        (
            "cases:\n  - id: a\n    inputs: {input: [1]}\n    expect: {shape: [1]}\n",
            "f.yaml:2:5: cases[0]: a case needs exactly one of op, module, layers",
        ),
        (
            "cases:\n  - id: a\n    module: os.system\n    inputs: {input: [1]}\n    expect: {shape: [1]}\n",
            'f.yaml:3:5: cases[0].module: unknown module "os.system"',
        ),
        (
            "cases:\n  - id: a\n    op: !!python/object/apply:os.system [ls]\n",
            "f.yaml:3:9: the tag !!python/object/apply:os.system is not allowed",
        ),
        (
            "cases:\n  - id: a\n    op: relu\n    inputs: {input: [1]}\n    expect: {shape: [1]}\n"
            "  - id: a\n    op: relu\n    inputs: {input: [1]}\n    expect: {shape: [1]}\n",
            'f.yaml:6:5: cases[1]: duplicate case id "a" (first at line 2)',
        ),
        (
            "cases:\n  - id: a\n    op: relu\n    inputs: {input: [1]}\n    expect: {}\n",
            "f.yaml:5:5: cases[0].expect: expect is empty",
        ),
        (
            "cases:\n  - id: a b\n    op: relu\n    inputs: {input: [1]}\n    expect: {shape: [1]}\n",
            'f.yaml:2:5: cases[0].id: id "a b" may only contain',
        ),
        (
            "cases:\n  - id: a\n    op: relu\n    inputs: {input: [1]}\n    expect: {error: {type: Os}}\n",
            'f.yaml:5:22: cases[0].expect.error.type: unknown exception type "Os"',
        ),
        (
            "cases:\n  - id: a\n    op: relu\n    inputs: {input: {zeros: [100000, 100000]}}\n    expect: {shape: [1]}\n",
            "f.yaml:4:22: cases[0].inputs.input.zeros: a tensor of shape [100000, 100000] has 10,000,000,000",
        ),
    ],
)
def test_malformed_files_name_line_and_problem(text: str, expected: str) -> None:
    messages = errors_of(text)
    assert any(m.startswith(expected) or expected in m for m in messages), messages


def test_all_errors_of_a_file_reported_at_once() -> None:
    text = (
        "cases:\n"
        "  - id: a\n    op: conv2\n    inputs: {input: [1]}\n    expect: {shape: [1]}\n"
        "  - id: b\n    op: relu\n    dtypes: [flot]\n    inputs: {input: [1]}\n    expect: {shape: [1]}\n"
    )
    messages = errors_of(text)
    assert len(messages) == 2
    assert messages[0].startswith("f.yaml:3:") and messages[1].startswith("f.yaml:8:")


def test_error_in_defaults_points_at_defaults() -> None:
    text = "defaults:\n  dtypes: [float32, flaot16]\ncases: []\n"
    (message,) = errors_of(text)
    assert message.startswith("f.yaml:2:21: defaults.dtypes[1]: unknown dtype")


def test_duplicate_ids_across_files(write_case) -> None:  # type: ignore[no-untyped-def]
    body = "cases:\n  - id: same\n    op: relu\n    inputs: {input: [1.0]}\n    expect: {shape: [1]}\n"
    a = write_case(body, "a.yaml")
    write_case(body, "sub/b.yaml")
    with pytest.raises(CaseFileError) as info:
        load_paths([a.parent])
    (err,) = info.value.errors
    assert "b.yaml:2" in str(err) and 'duplicate case id "same"' in str(err) and "a.yaml:2" in str(err)


def test_select_keyword_device_dtype() -> None:
    variants = list(expand(load_text(GOOD, "f.yaml").cases))
    assert [v.id for v in select(variants, keyword="conv and float32")] == ["conv[cpu-float32]"]
    assert [v.id for v in select(variants, keyword="not conv")] == ["relu[cpu-float16]"]
    assert [v.id for v in select(variants, dtypes=["float16"])] == ["relu[cpu-float16]"]
    assert select(variants, devices=["cuda"]) == []
    with pytest.raises(UsageError):
        select(variants, keyword="conv and (")


def test_rules_match_device_index_and_lists() -> None:
    text = (
        "cases:\n  - id: a\n    op: relu\n    devices: [cpu, cuda:0]\n    dtypes: [float32, int64]\n"
        "    skip: [{device: cuda, reason: r1}]\n    xfail: [{dtype: [int64], device: cpu, reason: r2}]\n"
        "    inputs: {input: [1.0]}\n    expect: {shape: [1]}\n"
    )
    variants = {v.id: v for v in expand(load_text(text).cases)}
    assert variants["a[cuda:0-float32]"].skip_rule is not None
    assert variants["a[cpu-float32]"].skip_rule is None
    assert variants["a[cpu-int64]"].xfail_rule is not None
    assert variants["a[cpu-float32]"].xfail_rule is None


def test_loading_does_not_import_torch() -> None:
    code = (
        "import sys; from cnnbench.casefile.load import load_paths; from cnnbench.casefile.variants import expand; "
        "cases = load_paths(['cases']); list(expand(cases)); assert 'torch' not in sys.modules"
    )
    from repo import REPO

    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


def test_lenient_spellings_other_authors_use() -> None:
    text = (
        "cases:\n  - id: a\n    module: Sequential\n    layers: [{module: ReLU}]\n    description: d\n"
        "    dtypes: [torch.float32]\n    xfail: {dtype: float32, reason: r}\n    inputs: {input: [1.0]}\n"
        "    expect: {layer_shapes: [[1]]}\n"
    )
    (case,) = load_text(text).cases
    assert case.spec.dtypes == ["float32"]
    assert [r.reason for r in case.spec.xfail] == ["r"]
    assert case.spec.target == "Sequential"
    bad = "cases:\n  - id: a\n    module: Sequential\n    inputs: {input: [1.0]}\n    expect: {shape: [1]}\n"
    assert "module: Sequential needs its layers: list" in errors_of(bad)[0]
