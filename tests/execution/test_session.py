"""The run session (cnnbench.execution.session): RunOptions validate, round-trip through meta.json for --resume,
and a session runs, stores and reports its variants."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from cnnbench.errors import NothingSelectedError, UsageError
from cnnbench.execution.resume import load_resume
from cnnbench.execution.session import RunOptions, RunSession
from cnnbench.store.run import RunStore

CASES = """\
cases:
  - {id: ok, op: relu, devices: [cpu], dtypes: [float32, float64], inputs: {x: [-1.0, 2.0]}, expect: {output: [0.0, 2.0]}}
  - {id: bad, op: relu, devices: [cpu], inputs: {x: [1.0]}, expect: {output: [3.0]}}
"""


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"paths": ()}, "give the case files"),
        ({"timeout": 0.0}, "--timeout 0.0: expected a positive number of seconds"),
        ({"threads": 0}, "--threads 0: expected a whole number >= 1"),
        ({"max_time_per_case": 601.0}, r"--max-time-per-case 601.0: expected seconds in \(0, 600\]"),
        ({"kind": "everything"}, "--kind everything"),
        ({"devices": ("gpu",)}, "--device gpu: unknown device"),
    ],
)
def test_options_refuse_bad_values(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        RunOptions(**{"paths": ("cases",), **kwargs})  # type: ignore[arg-type]


def test_a_timeout_implies_isolation() -> None:
    assert RunOptions(paths=("x",), timeout=5.0).isolate


def test_options_round_trip_through_a_stored_run(write_case: Callable[..., Path], tmp_path: Path) -> None:
    path = write_case(CASES)
    options = RunOptions(
        paths=(str(path),), keyword="ok", dtypes=("float64",), threads=1, max_case_bytes=2**20, kind="check"
    )
    outcome = RunSession(options, RunStore(tmp_path / "reports")).run()
    assert outcome.complete and [r.variant_id for r in outcome.run.results] == ["ok[cpu-float64]"]
    stored = load_resume(outcome.run.run_id, tmp_path / "reports")
    assert RunOptions.restore(stored) == options
    assert RunOptions.restore(stored, threads=2, isolate=True) == RunOptions(
        **{**options.__dict__, "threads": 2, "isolate": True}
    )


def test_a_session_stores_every_row_and_counts_them(write_case: Callable[..., Path], tmp_path: Path) -> None:
    path = write_case(CASES)
    store = RunStore(tmp_path / "reports")
    outcome = RunSession(RunOptions(paths=(str(path),)), store).run()
    assert (outcome.ran, outcome.cases, outcome.complete) == (3, 2, True)
    loaded = store.load(outcome.run.run_id)
    assert {r.variant_id: r.status for r in loaded.results} == {
        "ok[cpu-float32]": "passed",
        "ok[cpu-float64]": "passed",
        "bad[cpu-float32]": "failed",
    }
    assert loaded.complete and loaded.meta["counts"] == {"passed": 2, "failed": 1}


def test_nothing_selected_exits_5_not_2(write_case: Callable[..., Path]) -> None:
    with pytest.raises(NothingSelectedError, match="no variants selected") as caught:
        RunSession(RunOptions(paths=(str(write_case(CASES)),), keyword="nothing-matches"), None)
    assert caught.value.exit_code == 5


def test_an_explicit_device_not_present_is_a_usage_error_naming_those_present(
    write_case: Callable[..., Path],
) -> None:
    from cnnbench.environment import device_available

    absent = next(d for d in ("cuda", "mps", "xpu") if not device_available(d))
    with pytest.raises(
        UsageError, match=rf"--device {absent}: not available on this machine \(devices present: cpu"
    ):
        RunSession(RunOptions(paths=(str(write_case(CASES)),), devices=(absent,)), None)


def test_a_stored_passed_check_is_kept_as_its_summary_only(
    write_case: Callable[..., Path], tmp_path: Path
) -> None:
    """Once on disk, a passed check keeps its identity and status in memory, not its figures (a million rows
    must not all stay in memory whole); a failure stays whole, for the summary to list; an unsaved run keeps
    every row whole (nothing else holds it)."""
    path = write_case(CASES)
    store = RunStore(tmp_path / "reports")
    kept = {r.variant_id: r for r in RunSession(RunOptions(paths=(str(path),)), store).run().run.results}
    stored = {r.variant_id: r for r in store.load(None).results}
    assert kept.keys() == stored.keys()
    for vid, row in kept.items():
        full = stored[vid]
        identity = ("variant_id", "case_id", "file", "line", "target", "device", "dtype", "status", "kind")
        assert all(getattr(row, k) == getattr(full, k) for k in identity), vid
        if full.status == "passed":
            assert full.output_digest is not None and row.output_digest is None and row.metrics == {}
        else:
            assert row == full
    unsaved = RunSession(RunOptions(paths=(str(path),)), None).run().run.results
    assert all(r.output_digest is not None for r in unsaved if r.status == "passed")


def test_a_session_lets_each_variant_go_once_it_has_run(
    write_case: Callable[..., Path], tmp_path: Path
) -> None:
    """The rows kept grow as the variants left shrink: once run, nothing of the session holds a variant (a run
    of a million never holds every variant and every row at once)."""
    import gc
    import weakref

    path = write_case(CASES)
    session = RunSession(RunOptions(paths=(str(path),)), RunStore(tmp_path / "reports"))
    refs = [weakref.ref(v) for v in session.variants]
    assert len(refs) == 3
    outcome = session.run()
    gc.collect()
    assert session.variants == [] and len(outcome.run.results) == 3
    assert [r() for r in refs] == [None, None, None]
