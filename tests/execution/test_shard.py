"""Sharding (--shard K/N: stable, balanced, disjoint) and merging shard runs (cnnbench merge)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from synthetic_runs import check_row, make_run

from cnnbench.cli import main
from cnnbench.errors import UsageError
from cnnbench.execution.shard import Shard, merge_runs, parse_shard, shard_of, take_shard
from cnnbench.store.run import RunStore

IDS = [f"case-{i}[cpu-{d}]" for i in range(400) for d in ("float32", "float64")]


def test_parse_shard() -> None:
    assert parse_shard("2/4") == Shard(2, 4)
    assert str(parse_shard(" 1 / 3 ")) == "1/3"
    for bad in ("0/2", "3/2", "1", "a/b", "1/0", "-1/2"):
        with pytest.raises(UsageError, match="K/N"):
            parse_shard(bad)


def test_shards_partition_the_variants_and_stay_balanced() -> None:
    for n in (2, 3, 5):
        shards = [take_shard(IDS, Shard(k, n), key=str) for k in range(1, n + 1)]
        assert sorted(x for s in shards for x in s) == sorted(IDS)
        sizes = [len(s) for s in shards]
        assert max(sizes) - min(sizes) < 0.2 * len(IDS) / n, sizes


def test_shard_of_is_stable_when_cases_are_added() -> None:
    # Pinned values: a process restart or a new Python must not move a variant to another shard.
    assert [shard_of(f"case-{i}[cpu-float32]", 4) for i in range(6)] == [3, 1, 4, 2, 3, 1]
    assert shard_of("seed000-conv2d-4x4-k3[cpu-float32]", 4) == 2
    before = {i: shard_of(i, 3) for i in IDS}
    more = IDS + [f"new-{i}[cpu-float32]" for i in range(50)]
    assert all(shard_of(i, 3) == before[i] for i in more if i in before)


def test_run_shards_and_merge_equal_a_full_run(write_case: Callable[..., Path], tmp_path: Path) -> None:
    lines = [
        f"  - {{id: relu-{i}, op: relu, inputs: {{x: [{i - 3}.0]}}, expect: {{output: [{max(i - 3, 0)}.0]}}}}"
        for i in range(6)
    ]
    cases = write_case("defaults: {devices: [cpu], dtypes: [float32, float64]}\ncases:\n" + "\n".join(lines))
    for k in (1, 2, 3):
        assert main(["run", str(cases), "--shard", f"{k}/3", "--reports", str(tmp_path / f"s{k}")]) == 0
    shards = [RunStore(tmp_path / f"s{k}").load(None) for k in (1, 2, 3)]
    assert [r.meta["shard"] for r in shards] == ["1/3", "2/3", "3/3"]
    assert Counter(len(r.results) for r in shards).total() == 3 and sum(len(r.results) for r in shards) == 12
    out = tmp_path / "merged"
    assert main(["merge", *(str(r.path) for r in shards), "-o", str(out)]) == 0
    merged = RunStore().load(str(out))
    assert merged.complete and sorted(r.variant_id for r in merged.results) == sorted(
        f"relu-{i}[cpu-{d}]" for i in range(6) for d in ("float32", "float64")
    )
    assert merged.meta["environment"] == shards[0].meta["environment"]
    assert merged.meta["counts"] == {"passed": 12}
    assert [m["shard"] for m in merged.meta["merged_from"]] == ["1/3", "2/3", "3/3"]
    assert json.loads((out / "meta.json").read_text())["schema_version"] >= 2


def test_merge_without_a_shard_is_incomplete(tmp_path: Path) -> None:
    a = make_run(tmp_path / "a", [check_row("x")], shard="1/2")
    merged = RunStore().load(str(merge_runs([a], tmp_path / "m")))
    assert not merged.complete and merged.meta["missing_shards"] == ["2/2"]


def test_merge_refuses_duplicates_other_case_files_and_mixed_splits(tmp_path: Path) -> None:
    a = make_run(tmp_path / "a", [check_row("x")], shard="1/2")
    b = make_run(tmp_path / "b", [check_row("x")], shard="2/2")
    with pytest.raises(UsageError, match=r"x\[cpu-float32\] is in both a and b"):
        merge_runs([a, b], tmp_path / "m1")
    c = make_run(tmp_path / "c", [check_row("y")], shard="2/2", case_files_hash="other")
    with pytest.raises(UsageError, match="ran other case files"):
        merge_runs([a, c], tmp_path / "m2")
    d = make_run(tmp_path / "d", [check_row("y")], shard="2/3")
    with pytest.raises(UsageError, match="different splits"):
        merge_runs([a, d], tmp_path / "m3")
    with pytest.raises(UsageError, match="at least one"):
        merge_runs([], tmp_path / "m4")


def test_merge_cli_default_output_and_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = make_run(tmp_path / "a", [check_row("x")])
    b = make_run(tmp_path / "b", [check_row("y")])
    reports = tmp_path / "reports"
    assert main(["merge", str(a.path), str(b.path), "--reports", str(reports)]) == 0
    (merged_dir,) = (reports / "runs").iterdir()
    assert len(RunStore().load(str(merged_dir)).results) == 2
    assert "merged 2 runs, 2 variants" in capsys.readouterr().out
    assert main(["merge", str(a.path), str(a.path), "-o", str(tmp_path / "m")]) == 2
    assert main(["merge", str(a.path), "-o", str(a.path)]) == 2  # not empty: never overwrite a run
    assert "exists and is not empty" in capsys.readouterr().err


def test_a_missing_shard_is_named_and_resume_runs_only_its_variants(
    write_case: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = [
        f"  - {{id: relu-{i}, op: relu, inputs: {{x: [{i - 3}.0]}}, expect: {{output: [{max(i - 3, 0)}.0]}}}}"
        for i in range(8)
    ]
    cases = write_case("defaults: {devices: [cpu], dtypes: [float32, float64]}\ncases:\n" + "\n".join(lines))
    for k in (1, 3):  # shard 2/3 failed or never came back
        assert main(["run", str(cases), "--shard", f"{k}/3", "--reports", str(tmp_path / f"s{k}")]) == 0
    out = tmp_path / "merged"
    capsys.readouterr()
    assert main(["merge", str(tmp_path / "s1"), str(tmp_path / "s3"), "-o", str(out)]) == 0
    said = capsys.readouterr().out
    assert "incomplete: shard 2/3 missing" in said and f"--resume {out}" in said
    merged = RunStore().load(str(out))
    assert not merged.complete and merged.meta["missing_shards"] == ["2/3"]
    before = {r.variant_id for r in merged.results}
    assert main(["run", "--resume", str(out), "--reports", str(tmp_path / "r")]) == 0
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    added = [r["variant_id"] for r in rows[len(before) :]]
    assert added and all(shard_of(v, 3) == 2 for v in added)  # exactly the missing shard's variants
    assert sorted(before | set(added)) == sorted(
        f"relu-{i}[cpu-{d}]" for i in range(8) for d in ("float32", "float64")
    )
    resumed = RunStore().load(str(out))
    assert resumed.complete and resumed.meta["missing_shards"] == []


def test_merge_names_shards_that_never_came_back_when_the_count_is_known(tmp_path: Path) -> None:
    a = make_run(tmp_path / "a", [check_row("x")], shard="1/4")
    merged = RunStore().load(str(merge_runs([a], tmp_path / "m", shards=4)))
    assert merged.meta["missing_shards"] == ["2/4", "3/4", "4/4"]
    unsharded = make_run(tmp_path / "b", [check_row("y")])
    assert RunStore().load(str(merge_runs([unsharded], tmp_path / "n"))).meta["missing_shards"] == []


def test_an_empty_shard_stores_its_empty_run_and_exits_5(
    write_case: Callable[..., Path], tmp_path: Path
) -> None:
    cases = write_case(
        "cases:\n  - {id: one, op: relu, devices: [cpu], inputs: {x: [1.0]}, expect: {output: [1.0]}}\n"
    )
    codes = {
        k: main(["run", str(cases), "--shard", f"{k}/2", "--reports", str(tmp_path / f"s{k}")])
        for k in (1, 2)
    }
    assert sorted(codes.values()) == [0, 5]  # the shard that got the variant passed; the other ran nothing
    empty = next(k for k, code in codes.items() if code == 5)
    assert RunStore(tmp_path / f"s{empty}").load(None).results == []


def test_a_merge_streams_rows_it_did_not_load_and_leaves_nothing_half_written(tmp_path: Path) -> None:
    """Runs loaded without their rows (what `cnnbench merge` does) are read from disk one row at a time: the
    merged run is the same as from fully loaded runs, a torn row of a shard is counted and not copied, and a
    duplicate found half-way leaves no half-written merge."""
    a = make_run(tmp_path / "a", [check_row("x"), check_row("y", status="failed")], shard="1/2")
    b = make_run(tmp_path / "b", [check_row("z")], shard="2/2")
    whole = RunStore().load(str(merge_runs([RunStore().load(str(a.path)), b], tmp_path / "whole")))
    streamed_in = [RunStore().load(str(run.path), rows=False) for run in (a, b)]
    assert all(run.results == [] for run in streamed_in)
    streamed = RunStore().load(str(merge_runs(streamed_in, tmp_path / "streamed")))
    assert streamed.results == whole.results and len(streamed.results) == 3
    assert streamed.meta["counts"] == whole.meta["counts"] == {"passed": 2, "failed": 1}
    assert streamed.meta["variants_selected"] == whole.meta["variants_selected"]
    with open(b.path / "results.jsonl", "a", encoding="utf-8") as f:
        f.write('{"variant_id": "torn')
    torn = RunStore().load(str(b.path), rows=False)
    rows = RunStore().load(str(merge_runs([RunStore().load(str(a.path), rows=False), torn], tmp_path / "t")))
    assert len(rows.results) == 3 and torn.dropped_lines == 1
    again = RunStore().load(str(b.path), rows=False)
    twice = [RunStore().load(str(a.path), rows=False), again, RunStore().load(str(b.path), rows=False)]
    with pytest.raises(UsageError, match=r"z\[cpu-float32\] is in both b and b"):
        merge_runs(twice, tmp_path / "dup")
    assert not (tmp_path / "dup").exists()
