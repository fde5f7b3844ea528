"""End to end through the CLI (subprocess): what issue 13 found a case file could not state or got wrong —
keyword tensors, tuples, module-only cases, ConvTranspose output_size, modelled reference arguments, chains,
validate's hints."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path


def cnnbench(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cnnbench", *args],
        check=False,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


#: Runs each script file named on the command line in a fresh namespace, one torch import for all of them.
_DRIVER = """
import contextlib, io, runpy, sys, traceback
for path in sys.argv[1:]:
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            runpy.run_path(path, run_name="__main__")
        status = "OK"
    except BaseException:
        status = "RAISED " + traceback.format_exc().strip().splitlines()[-1]
    print(f"@@ {status} {out.getvalue().strip()!r}")
"""


def run_scripts(scripts: list[str], cwd: Path) -> list[tuple[bool, str]]:
    """Run repro scripts (plain torch) in one interpreter: (ran without raising, what it printed or raised)."""
    paths = []
    for i, script in enumerate(scripts):
        paths.append(cwd / f"repro_{i}.py")
        paths[-1].write_text(script, encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, "-c", _DRIVER, *map(str, paths)],
        check=False,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )
    lines = [line.removeprefix("@@ ") for line in proc.stdout.splitlines() if line.startswith("@@ ")]
    assert len(lines) == len(scripts), proc.stdout + proc.stderr
    return [(line.startswith("OK"), line) for line in lines]


def repro_scripts(path: Path, variants: list[str], cwd: Path) -> list[str]:
    """The repro scripts of variants: the first through `cnnbench repro` (the CLI end to end), the rest in-process
    (the same function the command prints)."""
    from cnnbench.numerics.repro import find_variant, repro_snippet

    first = cnnbench("repro", variants[0], str(path), cwd=cwd)
    assert first.returncode == 0, first.stderr
    return [first.stdout] + [repro_snippet(find_variant(v, [str(path)])) for v in variants[1:]]


def test_keyword_tensors_tuples_module_only_cases_and_chains_pass(
    write_case: Callable[..., Path], tmp_path: Path
) -> None:
    path = write_case(
        r"""
        defaults: {devices: [cpu], dtypes: [float64, float32]}
        cases:
          - id: gn-affine
            op: group_norm
            args:
              num_groups: 2
              weight: {data: [1, 2, 3, 4]}
              bias: {data: [0, 10, 20, 30]}
            inputs: {input: [[[1, 3], [1, 3], [5, 5], [5, 5]]]}
            tolerance: {atol: 1e-3, rtol: 0}
            expect: {output: [[[-1, 1], [8, 12], [20, 20], [30, 30]]]}
          - id: pool-tuples
            module: MaxPool2d
            args: {kernel_size: [2, 3], stride: [1, 2]}
            inputs: {input: {randn: [1, 1, 4, 6]}}
            expect:
              repr: "MaxPool2d(kernel_size=(2, 3), stride=(1, 2), padding=0, dilation=1, ceil_mode=False)"
          - id: seed003-conv-repr
            module: Conv2d
            args: {in_channels: 3, out_channels: 64, kernel_size: 3, stride: 1}
            expect:
              repr: "Conv2d(3, 64, kernel_size=(3, 3), stride=(1, 1))"
              state_shapes: {weight: [64, 3, 3, 3], bias: [64]}
          - id: bn-initial-state
            module: BatchNorm2d
            args: {num_features: 2}
            expect: {state: {running_mean: [0, 0], running_var: [1, 1]}}
          - id: pool-unpool
            chain:
              - {op: max_pool2d, args: {kernel_size: 2, return_indices: true}}
              - {op: max_unpool2d, args: {kernel_size: 2}}
            inputs: {input: [[[[1, 5, 2, 8], [7, 3, 6, 4], [9, 13, 15, 10], [14, 12, 11, 16]]]]}
            expect:
              layer_shapes: [[1, 1, 2, 2], [1, 1, 4, 4]]
              output: [[[[0, 0, 0, 8], [7, 0, 0, 0], [0, 0, 0, 0], [14, 0, 0, 16]]]]
        """
    )
    proc = cnnbench("run", str(path), cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "10 passed" in proc.stdout
    variants = ["pool-tuples[cpu-float64]", "seed003-conv-repr[cpu-float32]", "pool-unpool[cpu-float32]"]
    for ok, shown in run_scripts(repro_scripts(path, variants, tmp_path), tmp_path):
        assert ok and "reproduces as expected" in shown, shown


def test_a_bad_keyword_tensor_exits_2_at_its_line(write_case: Callable[..., Path], tmp_path: Path) -> None:
    path = write_case(
        """
        cases:
          - id: gn
            op: group_norm
            args:
              num_groups: 2
              weight: {randn: [4], sed: 1}
            inputs: {input: {randn: [2, 4, 3, 3]}}
            expect: {shape: [2, 4, 3, 3]}
        """
    )
    proc = cnnbench("validate", str(path), cwd=tmp_path)
    assert proc.returncode == 2
    assert f"{path.name}:6:" in proc.stdout + proc.stderr and "Traceback" not in proc.stderr


def test_validate_hints_nested_keys_and_reports_duplicates_at_once(
    write_case: Callable[..., Path], tmp_path: Path
) -> None:
    path = write_case(
        """
        cases:
          - id: a
            op: relu
            inputs: {input: [1]}
            tolerance: {float32: {atl: 1}}
            expect: {shape: [1]}
          - id: a
            op: relu
            inputs: {input: [1]}
            expect: {outptu: [1]}
        """
    )
    proc = cnnbench("validate", str(path), cwd=tmp_path)
    assert proc.returncode == 2
    lines = [line for line in (proc.stdout + proc.stderr).splitlines() if path.name in line]
    assert len(lines) == 3, lines
    assert 'tolerance.float32.atl: unknown key "atl" (did you mean "atol"?)' in lines[0]
    assert 'duplicate case id "a"' in lines[1]
    assert 'expect.outptu: unknown key "outptu" (did you mean "output"?)' in lines[2]
    assert "benchmark_defaults" not in proc.stdout + proc.stderr


def test_conv_transpose_output_size_run_and_repro_agree(
    write_case: Callable[..., Path], tmp_path: Path
) -> None:
    """Issue 13 item 5: output_size= legally gives 6x6 where the arithmetic without it says 5x5; the run used to
    fail the variant while its repro script said it reproduced. Now both pass, and a wrong shape fails both."""
    path = write_case(
        """
        defaults: {devices: [cpu]}
        cases:
          - id: convt-6x6
            module: ConvTranspose2d
            args: {in_channels: 1, out_channels: 1, kernel_size: 3, stride: 2}
            call_args: {output_size: [6, 6]}
            inputs: {input: {randn: [1, 1, 2, 2]}}
            expect: {shape: [1, 1, 6, 6]}
          - id: convt-wrong
            module: ConvTranspose2d
            args: {in_channels: 1, out_channels: 1, kernel_size: 3, stride: 2}
            call_args: {output_size: [6, 6]}
            inputs: {input: {randn: [1, 1, 2, 2]}}
            expect: {shape: [1, 1, 5, 5]}
        """
    )
    run = cnnbench("run", str(path), cwd=tmp_path)
    assert run.returncode == 1 and "1 passed, 1 failed" in run.stdout, run.stdout + run.stderr
    scripts = repro_scripts(path, ["convt-6x6[cpu-float32]", "convt-wrong[cpu-float32]"], tmp_path)
    assert all("arithmetic = [1, 1, 6, 6]" in script for script in scripts)
    (good, good_shown), (bad, bad_shown) = run_scripts(scripts, tmp_path)
    assert good and "reproduces as expected" in good_shown, good_shown
    assert not bad and "reproduces as expected" not in bad_shown and "output shape" in bad_shown, bad_shown


def test_reference_arguments_it_does_not_model_exit_2_and_the_new_modes_pass(
    write_case: Callable[..., Path], tmp_path: Path
) -> None:
    """Issue 13 item 3: bicubic, area and antialias under reference: numpy used to error in every variant; now
    they are modelled (and agree with torch), and an argument value the reference does not model exits 2."""
    good = write_case(
        """
        defaults: {devices: [cpu], dtypes: [float64, float32]}
        cases:
          - id: resample
            op: interpolate
            inputs: {input: {randn: [2, 3, 9, 7], seed: 1}}
            sweep:
              args.mode: [bicubic, area, bilinear]
              args.size: [[4, 3], [13, 16]]
            expect: {reference: numpy}
          - id: resample-aa
            op: interpolate
            args: {size: [4, 5], mode: bicubic, antialias: true, align_corners: false}
            inputs: {input: {randn: [1, 2, 11, 9], seed: 2}}
            expect: {reference: numpy}
        """,
        "good.yaml",
    )
    proc = cnnbench("run", str(good), cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "14 passed" in proc.stdout
    bad = write_case(
        """
        cases:
          - id: aa-nearest
            op: interpolate
            args: {size: [2, 2], mode: nearest, antialias: true}
            inputs: {input: {randn: [1, 1, 4, 4]}}
            expect: {reference: numpy}
        """,
        "bad.yaml",
    )
    proc = cnnbench("run", str(bad), cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    out = proc.stdout + proc.stderr
    assert "bad.yaml:6:" in out and "does not model antialias=True" in out
