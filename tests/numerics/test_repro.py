"""cnnbench repro: the standalone plain-torch snippet runs, passes when the variant passes and fails when not."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from repo import REPO

from cnnbench.casefile.load import load_paths
from cnnbench.casefile.select import select
from cnnbench.casefile.variants import expand
from cnnbench.cli import main
from cnnbench.errors import CaseFileError, UsageError
from cnnbench.execution.dispatch import run_variant
from cnnbench.numerics.repro import find_variant, parse_variant_id, repro_snippet
from cnnbench.numerics.runner import output_digest
from cnnbench.store.run import RunStore

CASES = """
cases:
  - id: conv-k1to9
    module: Conv2d
    args: {in_channels: 1, out_channels: 1, kernel_size: 3, padding: 1, bias: false}
    state: {weight: {arange: [1, 1, 3, 3], start: 1}}
    devices: [cpu]
    dtypes: [float32, int64]
    inputs: {input: [[[[3, 4, 6], [2, 4, 6], [1, 6, 7]]]]}
    expect:
      output: [[[[91, 168, 122], [114, 211, 160], [57, 104, 75]]]]
      state_shapes: {weight: [1, 1, 3, 3]}
  - id: softmax-randn
    op: softmax
    args: {dim: -1, dtype: float64}
    devices: [cpu]
    dtypes: [float32, bfloat16]
    inputs: {x: {randn: [2, 3], seed: 7}}
    expect: {shape: [2, 3], dtype: float64}
  - id: pool-indices
    op: max_pool2d
    args: {kernel_size: 2, return_indices: true}
    devices: [cpu]
    inputs: {x: {arange: [1, 1, 2, 2]}}
    expect: {output: [[[[3.0]]], {data: [[[[3]]]], dtype: int64}]}
  - id: stack
    layers:
      - {module: Conv2d, args: {in_channels: 1, out_channels: 2, kernel_size: 2}}
      - {module: ReLU}
      - {module: Flatten}
    mode: train
    seed: 3
    devices: [cpu]
    dtypes: [float64]
    inputs: {x: {rand: [1, 1, 3, 3], seed: 1}}
    expect: {layer_shapes: [[1, 2, 2, 2], [1, 2, 2, 2], [1, 8]], repr: "Sequential(\\n  (0): Conv2d(1, 2, kernel_size=(2, 2), stride=(1, 1))\\n  (1): ReLU()\\n  (2): Flatten(start_dim=1, end_dim=-1)\\n)"}
  - id: bad-channels
    module: Conv2d
    args: {in_channels: 5, out_channels: 1, kernel_size: 1}
    devices: [cpu]
    inputs: {x: {zeros: [1, 3, 2, 2]}}
    expect: {error: {type: RuntimeError, match: "expected input\\\\[1, 3, 2, 2\\\\] to have 5 channels"}}
  - id: nan-passes
    op: relu
    devices: [cpu]
    inputs: {x: [.nan, -.inf, 1.5]}
    expect: {output: [.nan, 0.0, 1.5]}
  - id: conv-exact
    module: Conv2d
    args: {in_channels: 2, out_channels: 3, kernel_size: 3}
    fill: exact
    devices: [cpu]
    dtypes: [float32, bfloat16]
    memory_formats: [contiguous, channels_last]
    inputs: {x: {randn: [1, 2, 5, 5], seed: 3}}
    expect: {shape: [1, 3, 3, 3], reference: numpy}
"""

ORACLE_ONLY = """
cases:
  - {id: ref-only, op: relu, devices: [cpu], inputs: {x: {randn: [4]}}, expect: {reference: numpy}}
"""

#: Runs each snippet file in a fresh namespace of one process; prints {path: [error or "", digest of out]} as
#: JSON. The digest is runner.output_digest's, written out again: the harness must not import cnnbench.
_HARNESS = """
import contextlib, hashlib, io, json, sys
import torch

def digest(out):
    tensors = [out] if isinstance(out, torch.Tensor) else [t for t in out if isinstance(t, torch.Tensor)]
    h = hashlib.sha256()
    for tensor in tensors:
        t = tensor.detach().to("cpu").contiguous()
        h.update(f"{t.dtype}{list(t.shape)};".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:16] if tensors else None

out = {}
for path in sys.argv[1:]:
    ns = {"__name__": "__main__"}
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            exec(compile(open(path).read(), path, "exec"), ns)
        error = ""
    except BaseException as exc:
        error = f"{type(exc).__name__}: {exc}"[:300]
    out[path] = [error, digest(ns["out"]) if "out" in ns else None]
assert "cnnbench" not in sys.modules, "a snippet imported cnnbench"
print(json.dumps(out))
"""


def _run_snippets(paths: list[Path], cwd: Path) -> dict[str, list[str | None]]:
    done = subprocess.run(
        [sys.executable, "-c", _HARNESS, *map(str, paths)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, list[str | None]] = json.loads(done.stdout)
    return result


def test_parse_variant_id() -> None:
    assert parse_variant_id("a.b-c[cuda:1-bfloat16]") == ("a.b-c", "cuda:1", "bfloat16")
    for bad in ("conv", "conv[cpu]", "conv[cpu-float32", "[cpu-float32]"):
        with pytest.raises(UsageError, match="not a variant id"):
            parse_variant_id(bad)


def test_snippet_for_a_passing_variant_runs_standalone(
    write_case: Callable[..., Path], tmp_path: Path
) -> None:
    cases = write_case(CASES)
    snippet = repro_snippet(find_variant("conv-k1to9[cpu-float32]", [str(cases)]))
    assert not [line for line in snippet.splitlines() if "import" in line and "cnnbench" in line]
    script = tmp_path / "repro.py"
    script.write_text(snippet)
    done = subprocess.run(
        [sys.executable, "-I", str(script)], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "ok: conv-k1to9[cpu-float32] reproduces as expected" in done.stdout


def test_snippet_fails_on_a_wrong_expected_value(write_case: Callable[..., Path], tmp_path: Path) -> None:
    cases = write_case(CASES.replace("[114, 211, 160]", "[114, 212, 160]"))
    variant = find_variant("conv-k1to9[cpu-float32]", [str(cases)])
    assert run_variant(variant).status == "failed"
    script = tmp_path / "repro.py"
    script.write_text(repro_snippet(variant))
    done = subprocess.run(
        [sys.executable, "-I", str(script)], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 1
    assert "AssertionError: output: Tensor-likes are not close!" in done.stderr


def test_every_variant_reproduces_its_status(write_case: Callable[..., Path], tmp_path: Path) -> None:
    """The snippets of every variant of a small file and of the seed suite agree with the runner: same verdict,
    and the very same output bits."""
    cases = write_case(CASES)
    wrong = write_case(
        CASES.replace("[114, 211, 160]", "[114, 212, 160]").replace("id: ", "id: wrong-"), "w.yaml"
    )
    variants = select(expand(load_paths([str(cases), str(wrong)])), devices=["cpu"])
    seeds = REPO / "cases" / "seeds"
    if seeds.is_dir():
        # Every third seed variant: all ops and dtypes still appear, in a third of the time.
        variants += select(expand(load_paths([str(seeds)])), devices=["cpu"])[::3]
    expected: dict[str, tuple[str, str | None]] = {}
    paths = []
    for i, variant in enumerate(variants):
        result = run_variant(variant)
        if result.status == "skipped" or variant.case.spec.train is not None:
            continue
        path = tmp_path / "snippets" / f"{i}.py"
        path.parent.mkdir(exist_ok=True)
        try:
            path.write_text(repro_snippet(variant))
        except UsageError:  # checked only by cnnbench's own oracles: nothing for a plain snippet to do
            continue
        paths.append(path)
        expected[str(path)] = (result.status, result.output_digest)
    outcomes = _run_snippets(paths, tmp_path)
    disagree = {
        p: (expected[p], error)
        for p, (error, _) in outcomes.items()
        if (error == "") != (expected[p][0] in ("passed", "xpass", "mistrusted"))
    }
    assert not disagree
    assert sum(1 for e, _ in outcomes.values() if e) >= 6  # the wrong- copies and the seeds' xfails fail
    other_bits = {
        p: (expected[p][1], d) for p, (_, d) in outcomes.items() if d and expected[p][1] not in (None, d)
    }
    assert not other_bits
    assert sum(1 for _, d in outcomes.values() if d) > 20


def test_repro_cli_with_a_stored_run(
    write_case: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cases = write_case(CASES.replace("[114, 211, 160]", "[114, 212, 160]"))
    main(["run", str(cases), "--reports", str(tmp_path / "reports")])
    run = RunStore(tmp_path / "reports").load(None)
    capsys.readouterr()
    assert main(["repro", "conv-k1to9[cpu-int64]", "--run", str(run.path)]) == 0
    out = capsys.readouterr().out
    assert (
        "# stored status: failed: output: 1 of 9 elements differ (max abs err 1," in out
        and "dtype = torch.int64" in out
    )
    assert main(["repro", "conv-k1to9[cpu-int64]", str(cases), "-o", str(tmp_path / "r.py")]) == 0
    assert (tmp_path / "r.py").read_text().startswith("# Reproduces cnnbench variant conv-k1to9[cpu-int64]")


def test_repro_cli_errors(write_case: Callable[..., Path], capsys: pytest.CaptureFixture[str]) -> None:
    cases = write_case(CASES)
    assert main(["repro", "conv-k1t09[cpu-float32]", str(cases)]) == 2
    assert 'did you mean "conv-k1to9"' in capsys.readouterr().err
    assert main(["repro", "nonsense", str(cases)]) == 2
    with pytest.raises(CaseFileError):
        find_variant("x[cpu-float32]", [str(cases.parent / "missing")])


def test_exact_fill_and_memory_format_are_reproduced(write_case: Callable[..., Path]) -> None:
    cases = write_case(CASES)
    variant = find_variant("conv-exact[cpu-bfloat16-channels_last]", [str(cases)])
    snippet = repro_snippet(variant)
    assert "# fill: exact integers" in snippet and "set_state(module, 'weight'" in snippet
    assert (
        "# not reproduced here (cnnbench's oracles): expect.reference, the channels_last vs contiguous"
        in snippet
    )
    namespace: dict[str, object] = {"__name__": "__main__"}
    exec(compile(snippet, "repro", "exec"), namespace)
    out = namespace["out"]
    assert isinstance(out, torch.Tensor) and out.is_contiguous(memory_format=torch.channels_last)
    assert output_digest(out) == run_variant(variant).output_digest


def test_oracle_only_and_training_cases_are_refused(write_case: Callable[..., Path]) -> None:
    cases = write_case(ORACLE_ONLY)
    with pytest.raises(
        UsageError, match=r"cnnbench's own oracles.*cnnbench run .* -k 'ref-only\[cpu-float32\]'"
    ):
        repro_snippet(find_variant("ref-only[cpu-float32]", [str(cases)]))
    with pytest.raises(
        UsageError, match="has no variant ref-only\\[cpu-int64\\]; it has: ref-only\\[cpu-float32\\]"
    ):
        find_variant("ref-only[cpu-int64]", [str(cases)])
