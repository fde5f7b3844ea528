"""``cnnbench submit``: the N shards of a run as a Slurm job array through submitit, merged into one run.

submitit (the optional extra ``cnnbench[slurm]``) does the cluster's part: it writes the sbatch script, submits
one array job of N tasks, watches them and brings back each task's return value or failure. Each task runs
``--shard K/N`` of the selection with this module's ``run_shard``, storing its run in the shared folder
(``FOLDER/shards/K``); once every task has ended, the shards' runs are merged into one run under the reports
folder. A shard that failed still contributes the rows it stored; one that never stored a run is named in the
merged run's ``missing_shards``, which is then incomplete, and ``cnnbench run --resume MERGED`` runs only what is
missing. The same code runs with submitit's local executor (``--executor local``: the tasks are processes on this
machine), which is how it is tested.

submitit pickles the job (a ShardJob of plain values and this module's function, by reference) into the folder
it owns; nothing from a case file is ever unpickled.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cnnbench.errors import UsageError
from cnnbench.execution.shard import merge_runs
from cnnbench.store.run import Run, RunStore

__all__ = ["EXECUTORS", "ShardJob", "ShardOutcome", "SubmitOptions", "run_shard", "submit"]

#: Where the shards run: a Slurm cluster, or processes on this machine (submitit's local executor).
EXECUTORS = ("slurm", "local")
_INSTALL_HINT = "cnnbench submit needs submitit: pip install 'cnnbench[slurm]'"


@dataclass(frozen=True)
class ShardJob:
    """One array task: the run's options (as RunOptions keywords) and its shard."""

    options: dict[str, Any]
    index: int
    count: int
    reports: str
    """This shard's reports folder in the shared folder."""
    cwd: str
    """Where the run was submitted: relative case paths are read from there."""


@dataclass(frozen=True)
class ShardOutcome:
    """What a task returns: its stored run, whether it finished, and how many variants it ran."""

    index: int
    run_path: str
    complete: bool
    ran: int


def run_shard(job: ShardJob) -> ShardOutcome:
    """The body of one array task: run shard index/count of the selection, storing it under job.reports."""
    from cnnbench.execution.session import RunOptions, RunSession
    from cnnbench.report.console import make_console

    os.chdir(job.cwd)
    options = RunOptions(**{**job.options, "shard": f"{job.index}/{job.count}"})
    outcome = RunSession(options, RunStore(job.reports), err=make_console(stderr=True)).run()
    return ShardOutcome(job.index, str(outcome.run.path), outcome.complete, outcome.ran)


@dataclass(frozen=True)
class SubmitOptions:
    """How the array is submitted: the executor, the shared folder, and the cluster's resources."""

    shards: int
    folder: Path
    """A folder every node can read and write (submitit's logs and each shard's run)."""
    executor: str = "slurm"
    partition: str | None = None
    gpus_per_node: int | None = None
    cpus_per_task: int | None = None
    time_min: int | None = None
    """The time limit of each task in minutes."""
    array_parallelism: int | None = None
    extra: dict[str, str] = field(default_factory=dict)
    """Further sbatch options passed through (``--slurm-option constraint=a100``)."""

    def __post_init__(self) -> None:
        if self.shards < 1:
            raise UsageError(f"--shards {self.shards}: expected a whole number >= 1")
        if self.executor not in EXECUTORS:
            raise UsageError(f"--executor {self.executor}: expected one of {', '.join(EXECUTORS)}")


def parse_slurm_option(text: str) -> tuple[str, str]:
    """``KEY=VALUE`` of --slurm-option (an sbatch option without its dashes, e.g. ``constraint=a100``)."""
    key, sep, value = text.partition("=")
    key = key.strip().lstrip("-")
    if not sep or not key:
        raise UsageError(f"--slurm-option {text!r}: expected KEY=VALUE, e.g. constraint=a100")
    return key, value


def _executor(opts: SubmitOptions) -> Any:
    try:
        import submitit
    except ImportError:
        raise UsageError(_INSTALL_HINT) from None
    executor = submitit.AutoExecutor(folder=opts.folder / "submitit" / "%j", cluster=opts.executor)
    params: dict[str, Any] = {"name": "cnnbench"}
    if opts.time_min is not None:
        params["timeout_min"] = opts.time_min
    if opts.gpus_per_node is not None:
        params["gpus_per_node"] = opts.gpus_per_node
    if opts.cpus_per_task is not None:
        params["cpus_per_task"] = opts.cpus_per_task
    if opts.partition is not None:
        params["slurm_partition"] = opts.partition
    if opts.array_parallelism is not None:
        params["slurm_array_parallelism"] = opts.array_parallelism
    if opts.extra:
        params["slurm_additional_parameters"] = dict(opts.extra)
    executor.update_parameters(**params)
    return executor


@dataclass
class Submitted:
    """The outcome of a submission: the merged run and what became of each shard."""

    merged: Run
    failures: dict[int, str]
    """Shard index -> why its task failed (its stored rows, if any, are merged all the same)."""
    job_ids: list[str]


def _stored_run(reports: Path) -> Run | None:
    """The run a shard stored (also one cut short by a failure), or None if it stored none."""
    if not (reports / "runs").is_dir() or not any((reports / "runs").iterdir()):
        return None
    return RunStore(reports).load(None, rows=False)  # its rows are streamed by the merge


def submit(run_options: dict[str, Any], opts: SubmitOptions, reports: str | os.PathLike[str]) -> Submitted:
    """Submit the shards, wait for every task, merge their runs into a new run under reports and return it."""
    executor = _executor(opts)
    shared = opts.folder.resolve()
    jobs_in = [
        ShardJob(run_options, k, opts.shards, str(shared / "shards" / str(k)), os.getcwd())
        for k in range(1, opts.shards + 1)
    ]
    jobs = executor.map_array(run_shard, jobs_in)
    failures: dict[int, str] = {}
    for job_in, job in zip(jobs_in, jobs, strict=True):
        try:
            job.result()
        except Exception as exc:  # submitit raises the task's own error, or why the task died
            failures[job_in.index] = (
                str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
            )
    stored: list[Run] = []
    for job_in in jobs_in:
        run = _stored_run(Path(job_in.reports))
        if run is not None:
            stored.append(run)
    if not stored:
        raise UsageError(
            "submit: no shard stored a run; see the tasks' logs under "
            f"{opts.folder / 'submitit'} ({'; '.join(f'{k}/{opts.shards}: {m}' for k, m in failures.items())})"
        )
    store = RunStore(reports)
    path = merge_runs(stored, store.new_run_dir(), shards=opts.shards)
    store.point_latest(path.name)
    merged = store.load(str(path), summary=True)  # for the summary: counted and listed
    return Submitted(merged, failures, [str(j.job_id) for j in jobs])


def describe_failures(failures: dict[int, str], count: int) -> Sequence[str]:
    """One line per failed shard."""
    return [f"shard {k}/{count} failed: {why}" for k, why in sorted(failures.items())]
