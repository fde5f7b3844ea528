"""Stored runs: schema migrations, refusing newer schemas, the output digest and the environment fingerprint."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from synthetic_runs import check_row, make_run

from cnnbench.cli import main
from cnnbench.environment import capture_environment
from cnnbench.errors import UsageError
from cnnbench.numerics.runner import output_digest
from cnnbench.store.result import _MIGRATIONS, SCHEMA_VERSION, columns
from cnnbench.store.run import RunStore

#: A run as cnnbench wrote it before meta.json had a schema_version: rows without kind, metrics, source,
#: examples or output_digest, and one without its variant_id.
V0_META = {"run_id": "old-run", "complete": True, "environment": {"torch_version": "2.1.0"}}
V0_ROWS = [
    {
        "variant_id": "conv[cpu-float32]",
        "case_id": "conv",
        "file": "cases/a.yaml",
        "line": 3,
        "target": "conv2d",
        "device": "cpu",
        "dtype": "float32",
        "status": "passed",
        "max_abs_err": 0.0,
    },
    {
        "case_id": "pool",
        "file": "cases/a.yaml",
        "line": 9,
        "target": "max_pool2d",
        "device": "cpu",
        "dtype": "float64",
        "status": "failed",
        "message": "output: 1 of 4 elements differ",
    },
]


def _write(path: Path, meta: dict[str, object], rows: list[dict[str, object]]) -> Path:
    path.mkdir(parents=True)
    (path / "meta.json").write_text(json.dumps(meta))
    (path / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_every_version_has_a_migration() -> None:
    assert sorted(_MIGRATIONS) == list(range(SCHEMA_VERSION))


def test_v0_run_is_migrated(tmp_path: Path) -> None:
    run = RunStore().load(str(_write(tmp_path / "old", V0_META, V0_ROWS)))
    assert [r.variant_id for r in run.results] == ["conv[cpu-float32]", "pool[cpu-float64]"]
    assert all(r.kind == "check" and r.metrics == {} and r.output_digest is None for r in run.results)
    assert run.meta["migrated_from"] == 0
    assert run.meta["schema_version"] == SCHEMA_VERSION and run.meta["columns"] == columns()
    assert run.dropped_lines == 0


def test_v1_run_gets_an_empty_digest(tmp_path: Path) -> None:
    row = {**V0_ROWS[0], "kind": "check", "metrics": {}, "source": "", "examples": []}
    run = RunStore().load(str(_write(tmp_path / "v1", {**V0_META, "schema_version": 1}, [row])))
    assert run.results[0].output_digest is None and run.meta["migrated_from"] == 1


def test_v2_run_records_no_precision_budget_ulps_or_warnings(tmp_path: Path) -> None:
    row = {
        **V0_ROWS[0],
        "kind": "check",
        "metrics": {},
        "source": "",
        "examples": [],
        "output_digest": "ab12",
    }
    run = RunStore().load(str(_write(tmp_path / "v2", {**V0_META, "schema_version": 2}, [row])))
    (r,) = run.results
    assert (r.compute_precision, r.budget_used, r.ulps_max, r.ulps_p99, r.warnings) == (
        None,
        None,
        None,
        None,
        [],
    )
    assert r.output_digest == "ab12" and run.meta["migrated_from"] == 2


def test_migrated_run_renders_and_compares(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    old = _write(tmp_path / "old", V0_META, V0_ROWS)
    assert main(["report", str(old), "--format", "junit"]) == 0
    assert 'tests="2" failures="1"' in capsys.readouterr().out
    assert main(["compare", str(old), str(old)]) == 0


@pytest.mark.parametrize("version", [SCHEMA_VERSION + 1, 99])
def test_newer_schema_is_refused_with_a_clear_message(tmp_path: Path, version: int) -> None:
    path = _write(tmp_path / "new", {**V0_META, "schema_version": version}, V0_ROWS[:1])
    with pytest.raises(UsageError, match=f"schema_version {version} is newer than this cnnbench understands"):
        RunStore().load(str(path))
    assert main(["report", str(path)]) == 2


@pytest.mark.parametrize("version", ["2", -1, 1.5, True])
def test_malformed_schema_version(tmp_path: Path, version: object) -> None:
    path = _write(tmp_path / "bad", {**V0_META, "schema_version": version}, V0_ROWS[:1])
    with pytest.raises(UsageError, match="is not a schema version"):
        RunStore().load(str(path))


def test_reports_folder_stands_for_its_latest_run(tmp_path: Path) -> None:
    run = make_run(tmp_path / "reports" / "runs" / "r1", [check_row("x")])
    (tmp_path / "reports" / "latest").write_text("r1\n")
    assert RunStore("unused").resolve(str(tmp_path / "reports")) == run.path


def test_output_digest_is_bitwise() -> None:
    x = torch.arange(6, dtype=torch.float32).reshape(2, 3)
    assert output_digest(x) == output_digest(x.t().contiguous().t())  # same values and layout-independent
    assert output_digest(x) != output_digest(x.to(torch.float64))  # dtype is part of it
    assert output_digest(x) != output_digest(x.reshape(3, 2))  # shape too
    y = x.clone()
    y[0, 0] = -0.0  # equal to 0.0, but not bitwise
    assert output_digest(x) != output_digest(y)
    assert output_digest((x, torch.tensor([1]))) != output_digest(x)
    assert output_digest(torch.tensor(1.5, dtype=torch.bfloat16)) is not None
    assert output_digest("not a tensor") is None and output_digest(()) is None


def test_runner_stores_the_digest(write_case: Callable[..., Path], tmp_path: Path) -> None:
    cases = write_case(
        """
        cases:
          - {id: relu, op: relu, devices: [cpu], inputs: {x: [-1.0, 2.0]}, expect: {output: [0.0, 2.0]}}
          - id: bad-shape
            op: relu
            devices: [cpu]
            inputs: {x: [-1.0, 2.0]}
            expect: {error: {type: RuntimeError}}
        """
    )
    main(["run", str(cases), "--reports", str(tmp_path)])
    rows = {r.case_id: r for r in RunStore(tmp_path).load(None).results}
    assert rows["relu"].output_digest == output_digest(torch.tensor([0.0, 2.0], dtype=torch.float32))
    assert rows["bad-shape"].output_digest is None


def test_fingerprint_covers_what_changes_numerics() -> None:
    env = capture_environment()
    wanted = {
        "torch_version",
        "torch_git_version",
        "cuda_version",
        "cudnn_version",
        "accelerators",  # device names and the driver version
        "cpu_model",
        "num_threads",
        "cuda_matmul_allow_tf32",
        "cudnn_allow_tf32",
        "cudnn_benchmark",
        "deterministic_algorithms",
        "cudnn_deterministic",
        "python_version",
        "platform",
        "cnnbench_version",
        "torch_config_hash",
        "env_vars",
    }
    assert wanted <= env.keys()
    json.dumps(env)  # plain JSON values only
