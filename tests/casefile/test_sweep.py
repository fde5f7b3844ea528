"""Sweeps: expansion at load time, generated ids, max_cases, exclude rules, invalid geometry (cnnbench.casefile.sweep)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from cnnbench.casefile.format import DEFAULT_MAX_CASES
from cnnbench.casefile.load import load_text
from cnnbench.casefile.select import select
from cnnbench.casefile.variants import expand
from cnnbench.errors import CaseFileError
from cnnbench.execution.dispatch import run_variant

POOL = """\
defaults:
  devices: [cpu]
  dtypes: [float32]
cases:
  - id: mp
    op: max_pool2d
    args: {stride: 2}
    inputs: {input: {randn: [1, 2, 5, 5], seed: 1}}
    sweep:
      args.kernel_size: [2, 3]
      args.padding: [0, 1]
      args.ceil_mode: [true, false]
      inputs.input.randn: [[1, 2, 5, 5], [1, 2, 6, 6]]
    expect: {shape: [1]}
"""


def load(text: str) -> list[tuple[str, object]]:
    return [(c.id, c.spec) for c in load_text(textwrap.dedent(text), "s.yaml").cases]


def errors_of(text: str) -> list[str]:
    with pytest.raises(CaseFileError) as info:
        load_text(textwrap.dedent(text), "s.yaml")
    return [str(e) for e in info.value.errors]


def sweep_case(sweep: str, extra: str = "", op: str = "max_pool2d", args: str = "{stride: 2}") -> str:
    """A one-case file; sweep and extra are YAML lines at the case's indentation (4 spaces)."""
    return (
        "cases:\n"
        "  - id: s\n"
        f"    op: {op}\n"
        f"    args: {args}\n"
        "    inputs: {input: {randn: [1, 1, 6, 6]}}\n"
        "    expect: {shape: [1]}\n"
        "    sweep:\n" + textwrap.indent(textwrap.dedent(sweep).strip("\n"), "      ") + "\n" + extra
    )


def test_cartesian_product_first_axis_outermost_with_readable_ids() -> None:
    ids = [case_id for case_id, _ in load(POOL)]
    assert len(ids) == 16
    assert ids[:3] == [
        "mp.kernel_size=2,padding=0,ceil_mode=true,input=1x2x5x5",
        "mp.kernel_size=2,padding=0,ceil_mode=true,input=1x2x6x6",
        "mp.kernel_size=2,padding=0,ceil_mode=false,input=1x2x5x5",
    ]
    assert ids[-1] == "mp.kernel_size=3,padding=1,ceil_mode=false,input=1x2x6x6"
    assert len(set(ids)) == len(ids)


def test_values_land_at_their_paths_and_keep_the_rest() -> None:
    cases = dict(load(POOL))
    spec = cases["mp.kernel_size=3,padding=1,ceil_mode=true,input=1x2x6x6"]
    assert spec.args == {"stride": 2, "kernel_size": 3, "padding": 1, "ceil_mode": True}  # type: ignore[attr-defined]
    generated = spec.inputs["input"]  # type: ignore[attr-defined]
    assert generated.randn == [1, 2, 6, 6] and generated.seed == 1  # the seed beside the swept key is kept
    assert spec.sweep is None and spec.exclude is None  # type: ignore[attr-defined]


def test_expansion_is_deterministic_and_variant_ids_are_selectable() -> None:
    first = [v.id for v in expand(load_text(POOL, "s.yaml").cases)]
    assert first == [v.id for v in expand(load_text(POOL, "s.yaml").cases)]
    picked = select(
        expand(load_text(POOL, "s.yaml").cases), keyword="kernel_size=3,padding=1 and ceil_mode=true"
    )
    assert [v.id for v in picked] == [
        "mp.kernel_size=3,padding=1,ceil_mode=true,input=1x2x5x5[cpu-float32]",
        "mp.kernel_size=3,padding=1,ceil_mode=true,input=1x2x6x6[cpu-float32]",
    ]


def test_labels_collide_then_full_paths_name_the_axes() -> None:
    text = """\
    cases:
      - id: seq
        layers:
          - {module: MaxPool2d, args: {kernel_size: 2}}
          - {module: MaxPool2d, args: {kernel_size: 1}}
        inputs: {input: {randn: [1, 1, 8, 8]}}
        sweep:
          layers.0.args.stride: [1, 2]
          layers.1.args.stride: [1]
        expect: {shape: [1]}
    """
    assert [i for i, _ in load(text)] == [
        "seq.layers.0.args.stride=1,layers.1.args.stride=1",
        "seq.layers.0.args.stride=2,layers.1.args.stride=1",
    ]


def test_unnamed_values_get_their_index() -> None:
    text = sweep_case(
        "inputs.input: [{randn: [1, 1, 6, 6]}, {arange: [1, 1, 6, 6]}]", args="{kernel_size: 2}"
    )
    assert [i for i, _ in load(text)] == ["s.input=v0", "s.input=v1"]


def test_dotted_state_names_are_matched_whole() -> None:
    text = """\
    cases:
      - id: st
        layers:
          - {module: Conv2d, args: {in_channels: 1, out_channels: 1, kernel_size: 1, bias: false}}
        state: {0.weight: [[[[1.0]]]]}
        inputs: {input: {ones: [1, 1, 2, 2]}}
        sweep:
          state.0.weight: [[[[[2.0]]]], [[[[3.0]]]]]
        expect: {shape: [1, 1, 2, 2]}
    """
    specs = [spec for _, spec in load(text)]
    assert [s.state["0.weight"] for s in specs] == [[[[[2.0]]]], [[[[3.0]]]]]  # type: ignore[attr-defined]


def test_over_max_cases_is_a_load_error_at_max_cases() -> None:
    text = sweep_case("args.kernel_size: [1, 2, 3]\nargs.padding: [0, 1]", "    max_cases: 5\n")
    (error,) = errors_of(text)
    assert error.startswith("s.yaml:10:")  # the max_cases: line
    assert "expands to 6 combinations (3 x 2), over max_cases 5" in error


def test_default_maximum_applies_without_max_cases() -> None:
    n = int(DEFAULT_MAX_CASES**0.5) + 1
    text = sweep_case(f"args.kernel_size: {list(range(1, n + 1))}\nargs.padding: {list(range(n))}")
    (error,) = errors_of(text)
    assert f"over max_cases {DEFAULT_MAX_CASES:,}" in error
    assert error.startswith("s.yaml:7:")  # the sweep: line


def test_an_axis_without_values_expands_to_zero_at_its_line() -> None:
    (error,) = errors_of(sweep_case("args.kernel_size: [2]\nargs.padding: []"))
    assert error.startswith("s.yaml:9:")
    assert 'sweep key "args.padding" has no values: the sweep expands to zero cases' in error


def test_excluding_everything_is_a_zero_cases_error() -> None:
    rules = "    exclude:\n      - {where: {args.kernel_size: 2}, reason: all of them}\n"
    (error,) = errors_of(sweep_case("args.kernel_size: [2]", rules))
    assert "s.yaml:7:" in error and "exclude leaves none of the 1 combinations: zero cases" in error


def test_exclude_where_drops_matching_combinations_with_a_reason() -> None:
    rules = (
        "    exclude:\n"
        "      - where: {args.kernel_size: 3, args.ceil_mode: true}\n"
        "        reason: covered elsewhere\n"
    )
    ids = [i for i, _ in load(sweep_case("args.kernel_size: [2, 3]\nargs.ceil_mode: [true, false]", rules))]
    assert ids == [
        "s.kernel_size=2,ceil_mode=true",
        "s.kernel_size=2,ceil_mode=false",
        "s.kernel_size=3,ceil_mode=false",
    ]


def test_exclude_rule_values_compare_strictly() -> None:
    # true is not 1: a rule must name a value the axis has.
    rules = "    exclude:\n      - {where: {args.ceil_mode: 1}, reason: typo}\n"
    (error,) = errors_of(sweep_case("args.kernel_size: [2]\nargs.ceil_mode: [true, false]", rules))
    assert "s.yaml:11:" in error and "1 is not one of the values of args.ceil_mode: [true, false]" in error


def test_exclude_rule_on_an_unknown_axis_and_a_stale_rule_are_errors() -> None:
    unknown = "    exclude:\n      - {where: {args.stride: 2}, reason: r}\n"
    (error,) = errors_of(sweep_case("args.kernel_size: [2]", unknown))
    assert '"args.stride" is not a key of the sweep (its keys: args.kernel_size)' in error
    stale = "    exclude:\n      - {invalid: true, reason: nothing is invalid here}\n"
    (error,) = errors_of(sweep_case("args.kernel_size: [2, 3]", stale))
    assert "s.yaml:10:" in error and "exclude[0] (nothing is invalid here) matches no combination" in error


def test_invalid_geometry_becomes_an_error_expectation() -> None:
    cases = dict(load(sweep_case("args.kernel_size: [2]\nargs.padding: [0, 1, 2]")))
    valid = cases["s.kernel_size=2,padding=1"]
    assert valid.expect.shape == [1] and valid.expect.error is None  # type: ignore[attr-defined]
    invalid = cases["s.kernel_size=2,padding=2"]
    assert invalid.expect.error.type == "RuntimeError"  # type: ignore[attr-defined]
    assert "PyTorch must reject this geometry" in invalid.note  # type: ignore[attr-defined]
    assert "at most half of the kernel" in invalid.note  # type: ignore[attr-defined]


def test_invalid_module_construction_expects_value_error() -> None:
    text = """\
    cases:
      - id: conv
        module: Conv2d
        args: {in_channels: 4, out_channels: 4, kernel_size: 1}
        inputs: {input: {randn: [1, 4, 3, 3]}}
        sweep:
          args.groups: [1, 2, 3]
        expect: {shape: [1, 4, 3, 3]}
    """
    cases = dict(load(text))
    assert cases["conv.groups=2"].expect.error is None  # type: ignore[attr-defined]
    assert cases["conv.groups=3"].expect.error.type == "ValueError"  # type: ignore[attr-defined]
    # The constructor's refusal counts as the call raising.
    for variant in expand(load_text("defaults: {devices: [cpu]}\n" + textwrap.dedent(text), "s.yaml").cases):
        result = run_variant(variant)
        assert result.status == "passed", (variant.id, result.message)


def test_invalid_combinations_are_rejected_by_pytorch_when_run() -> None:
    text = sweep_case(
        "args.kernel_size: [1, 2, 3]\nargs.padding: [0, 1, 2]\nargs.dilation: [1, 3]\nargs.ceil_mode: [true, false]",
        args="{stride: 2}",
    ).replace("expect: {shape: [1]}", "expect: {dtype: float32}")
    variants = list(expand(load_text("defaults:\n  devices: [cpu]\n" + text, "s.yaml").cases))
    errors = [v for v in variants if v.case.spec.expect.error is not None]
    assert errors and len(errors) < len(variants)
    for variant in variants:
        result = run_variant(variant)
        assert result.status == "passed", (variant.id, result.message)


def test_declared_invalid_rule_drops_only_what_pytorch_rejects() -> None:
    rules = "    exclude:\n      - {invalid: true, reason: checked by another sweep}\n"
    ids = [i for i, _ in load(sweep_case("args.kernel_size: [2]\nargs.padding: [0, 1, 2]", rules))]
    assert ids == ["s.kernel_size=2,padding=0", "s.kernel_size=2,padding=1"]


def test_a_case_expecting_an_error_keeps_its_expectation() -> None:
    text = sweep_case("args.padding: [2, 3]", args="{kernel_size: 2}").replace(
        "expect: {shape: [1]}", 'expect: {error: {type: RuntimeError, match: "pad should be"}}'
    )
    for _, spec in load(text):
        assert spec.expect.error.match == "pad should be"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("sweep", "line", "message"),
    [
        (
            "expect.shape: [[1], [2]]",
            8,
            'a sweep varies args, call_args, inputs, state, layers, chain, seed, mode, not "expect"',
        ),
        ("args.: [1]", 8, 'sweep key "args." is not a dotted key path'),
        ("seed.x: [1]", 8, "seed has no keys inside"),
        ("args.kernel_size: [2]\nargs.kernel_size.x: [1]", 9, "overlap"),
        ("inputs.input.randn.7: [1]", 8, '"7" is not an index of inputs.input.randn (a list of 4)'),
        ("args.stride.x: [1]", 8, "args.stride is a int, not a mapping"),
        ("args.kernel_size: [2, 3, 2]", 8, 'sweep key "args.kernel_size" repeats the value 2'),
    ],
)
def test_bad_sweep_keys_point_at_their_line(sweep: str, line: int, message: str) -> None:
    (error,) = errors_of(sweep_case(sweep))
    assert error.startswith(f"s.yaml:{line}:"), error
    assert message in error


def test_bad_swept_value_points_at_the_value() -> None:
    (error,) = errors_of(sweep_case("args.kernel_size: [2]\ninputs.input.randn: [[1, 1, 6, 6], [1, -1, 6]]"))
    assert error.startswith("s.yaml:9:"), error
    assert "sweep.inputs.input.randn[1]" in error and "inputs.input.randn:" in error


def test_error_outside_the_swept_keys_is_reported_once() -> None:
    text = sweep_case("args.kernel_size: [2, 3, 4]").replace("op: max_pool2d", "op: max_pool9d")
    errors = errors_of(text)
    assert len(errors) == 1 and 'unknown op "max_pool9d"' in errors[0]
    assert "(in the combination s.kernel_size=2 and 2 more)" in errors[0]


def test_sweep_needs_a_list_and_max_cases_needs_a_sweep() -> None:
    (error,) = errors_of(sweep_case("args.kernel_size: 2"))
    assert "s.yaml:8:" in error and "list" in error
    no_sweep = "cases:\n  - id: a\n    op: relu\n    inputs: {input: [1.0]}\n    expect: {shape: [1]}\n    max_cases: 3\n"
    (error,) = errors_of(no_sweep)
    assert "max_cases and exclude apply to a sweep" in error


def test_generated_id_colliding_with_another_case_is_reported() -> None:
    text = sweep_case("args.kernel_size: [2]") + (
        "  - id: s.kernel_size=2\n    op: relu\n    inputs: {input: [1.0]}\n    expect: {shape: [1]}\n"
    )
    (error,) = errors_of(text)
    assert 'duplicate case id "s.kernel_size=2"' in error


def test_cli_validate_exits_2_with_file_and_line(tmp_path: object) -> None:
    from pathlib import Path

    path = Path(str(tmp_path)) / "bad.yaml"
    path.write_text(sweep_case("args.kernel_size: []"), encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "cnnbench", "validate", str(path)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 2
    assert f"{path}:8:" in done.stdout + done.stderr


def test_repeated_values_are_found_by_hash_with_the_strict_equality() -> None:
    """The repeat check keys each value (a set, O(n) per axis, not O(n^2)) with the equality a case file means:
    true, 1 and 1.0 differ, lists and mappings compare by content, NaN equals nothing."""
    from cnnbench.casefile.sweep import _strict_equal, _strict_key

    values = [
        1,
        True,
        1.0,
        [1, 2],
        [1, True],
        {"a": [1]},
        {"a": [1.0]},
        None,
        "1",
        float("nan"),
        float("nan"),
    ]
    for a in values:
        for b in values:
            assert (_strict_key(a) == _strict_key(b)) == _strict_equal(a, b), (a, b)
    assert _strict_key([1, {"x": 2}]) == _strict_key([1, {"x": 2}])
    (error,) = errors_of(sweep_case("args.kernel_size: [2, 3, 4, 5, 3]"))
    assert "repeats the value 3" in error and "sweep.args.kernel_size[4]" in error


def test_a_sweeps_cases_share_their_equal_values_and_equal_cases_written_out() -> None:
    """A sweep's cases hold one copy of what they have in common (memory for a million variants), and each is
    still equal, field by field and set by set, to the same case written out by hand and validated alone."""
    from cnnbench.casefile.format import CaseSpec

    text = textwrap.dedent(
        """\
        defaults: {devices: [cpu], dtypes: [float32]}
        cases:
          - id: c
            op: conv2d
            args: {padding: 1}
            inputs: {input: {randn: [1, 2, 5, 5]}, weight: {randn: [2, 2, 3, 3], seed: 7}}
            sweep: {seed: [1, 2, 3], inputs.input.randn: [[1, 2, 5, 5], [1, 2, 6, 6]]}
            expect: {reference: numpy}
        """
    )
    specs = [c.spec for c in load_text(text).cases]
    assert len(specs) == 6
    first, second = specs[0], specs[1]
    assert first.expect is second.expect and first.args is second.args and first.devices is second.devices
    assert first.inputs is not second.inputs  # the input's shape is swept ...
    assert first.inputs["weight"] is second.inputs["weight"]  # ... the weight is not
    for spec in specs:
        alone = CaseSpec.model_validate(spec.model_dump(exclude_unset=True), context={})
        assert spec == alone and spec.model_fields_set == alone.model_fields_set
        assert spec.model_dump() == alone.model_dump()
