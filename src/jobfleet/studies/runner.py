"""Running a study: each step as ONE array job (split by the backend's array limit),
resumable after anything.

For each step, in order: which points to run (:func:`choose`), then the points staged
for the step's array job (:mod:`.pointfile`: one file per thousand points), the
submission written to the study's state BEFORE it is made (:mod:`.state`), made, and
written again with its ids. What a rerun does with a point, by how it last ended:

==============================  ============================================
completed                       kept (``--rerun-all``: run again)
failed, timeout, out_of_memory  kept, reported (``--rerun-failed``: run again)
pending, running                waited for, never submitted twice
cancelled, lost, never run      run
==============================  ============================================

(the model of GNU parallel's ``--resume`` and ``--resume-failed``; a point whose job
never reached the scheduler never ran). A step that follows another point by point
(``after: {prep: each}``) waits for that step's jobs to end, and each of its points
checks its own predecessor point (it runs nothing, ``cancelled``, when that one did
not complete); one that follows all of another (fan-in) waits until every point of
it completed. A point whose predecessor failed
and is not run again is not submitted: it reads ``not run``, with the reason.
"""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from jobfleet.arrays import MAX_ARRAY_SIZE, ArraySpec
from jobfleet.config import load_config
from jobfleet.engine.fleet import Fleet
from jobfleet.errors import SubmitError
from jobfleet.jobdir import exit_code_path, located
from jobfleet.spec import Dependency, DepKind, JobSpec
from jobfleet.states import JobRecord, JobState
from jobfleet.studies.model import Step, Study, StudyPoint
from jobfleet.studies.outcomes import (
    StepPoint,
    first_step_point,
    outcome_of,
    write_step_points,
)
from jobfleet.studies.piped import PIPE_DIR, submit_piped
from jobfleet.studies.pointfile import (
    LaunchPoint,
    Requirement,
    write_points,
    write_text_atomically,
)
from jobfleet.studies.points import point_shard
from jobfleet.studies.state import STATE_DIR, Ran, StudyState, Submission

__all__ = [
    "LAUNCH_MODULE",
    "SHARDED_FROM",
    "Choice",
    "Rerun",
    "StepPlan",
    "choose",
    "point_directory",
    "shards_points",
    "submit",
]

#: The module every element of a step runs (``python -m``).
LAUNCH_MODULE = "jobfleet.studies.launch"
Rerun = Literal["none", "failed", "all"]
_FAILED = frozenset({JobState.FAILED, JobState.TIMEOUT, JobState.OUT_OF_MEMORY})
#: The ``why`` of a kept point that did not complete.
FAILED = "did not complete"
#: A step first staged with this many points or more (point numbers of five digits)
#: has its points' directories in shards of a thousand: no directory of the output
#: holds more than 10,000 entries (9,999 points and ``.jobfleet``, below it).
SHARDED_FROM = 10_000


def point_directory(study: Study, step: Step, point: StudyPoint, *, sharded: bool = False) -> Path:
    """Where a point runs: ``<output>/<point>`` for a study of one step, else
    ``<output>/<step>/<point>``, with the point's shard between (``<index // 1000>xxx/``)
    in a step whose points are ``sharded`` (:func:`shards_points`); a step of one point
    runs in its step's directory."""
    single = len(study.steps) == 1
    base = study.output_dir if single else study.output_dir / step.name
    if step.runs_once:
        return base
    return base / point_shard(point.index) / point.dirname if sharded else base / point.dirname


def shards_points(study: Study, step: Step, points: Sequence[StudyPoint]) -> bool:
    """Whether the directories of the points of ``step`` go in shards of a thousand:
    as they went the first time the step was staged in this output directory (its
    points' file says so; one an older jobfleet wrote says flat), else when it has
    :data:`SHARDED_FROM` points or more. A step never changes its layout: its points'
    directories, and the relative paths its commands use, stay where they were."""
    first = first_step_point(study.output_dir, step.name)
    if first is not None:
        return first.sharded
    return not step.runs_once and len(points) >= SHARDED_FROM


@dataclass(frozen=True, slots=True)
class Choice:
    """What to do with one point: ``run``, ``keep`` (completed, or failed and not run
    again), ``wait`` (pending or running), or ``blocked`` (``why``)."""

    point: int
    action: str
    why: str | None = None


@dataclass(frozen=True, slots=True)
class StepPlan:
    """What a run does with one step's points (:func:`choose`)."""

    step: str
    choices: tuple[Choice, ...]

    def of(self, action: str) -> list[int]:
        return [c.point for c in self.choices if c.action == action]


def _outcome(ran: Ran | None, records: Mapping[str, JobRecord]) -> JobState | None:
    """How a point last ran ended (a single job with a retry due is still running)."""
    if ran is None or ran.job_id not in records:
        return None
    record = records[ran.job_id]
    if record.never_submitted:
        return None  # it never reached the scheduler: the point never ran
    if ran.index is None and not record.settled:
        return JobState.RUNNING
    return outcome_of(record, ran.index)[0]


def choose(
    study: Study,
    step: Step,
    points: Sequence[StudyPoint],
    state: StudyState,
    records: Mapping[str, JobRecord],
    rerun: Rerun,
    earlier: Mapping[str, StepPlan],
) -> StepPlan:
    """What this run does with each point of ``step`` (``earlier``: the plans of the
    steps before it in this run)."""
    where = state.last_runs(step.name)
    choices = []
    for point in points:
        last = _outcome(where.get(point.key), records)
        if last is not None and not last.is_terminal:
            action = "wait"
        elif last is JobState.COMPLETED:
            action = "run" if rerun == "all" else "keep"
        elif last in _FAILED and rerun == "none":
            choices.append(Choice(point.index, "keep", FAILED))
            continue
        else:
            action = "run"
        why = _blocked(step, point.index, earlier) if action == "run" else None
        choices.append(Choice(point.index, "blocked" if why else action, why))
    return StepPlan(step.name, tuple(choices))


def _blocked(step: Step, index: int, earlier: Mapping[str, StepPlan]) -> str | None:
    """Why point ``index`` of ``step`` cannot run: a predecessor's point (or, for a
    fan-in, any of its points) ended unsuccessfully and is not run again."""
    for dep in step.after:
        plan = earlier[dep.step]
        mine = [plan.choices[index]] if dep.per_point else list(plan.choices)
        for choice in mine:
            if choice.action == "blocked":
                return f"point {choice.point} of step {dep.step!r} cannot run"
            if choice.action == "keep" and choice.why == FAILED:
                return f"point {choice.point} of step {dep.step!r} did not complete"
    return None


def submit(
    fleet: Fleet,
    study: Study,
    step: Step,
    plan: StepPlan,
    points: Sequence[StudyPoint],
    state: StudyState,
    records: Mapping[str, JobRecord],
    backend: str | None,
    earlier: Mapping[str, StepPlan],
) -> list[JobRecord]:
    """Stage and submit the points ``plan`` runs, as arrays of at most the backend's
    size (single jobs where it has no arrays); the records of the jobs submitted."""
    todo = plan.of("run")
    sharded = shards_points(study, step, points)
    where = [str(point_directory(study, step, p, sharded=sharded)) for p in points]
    staged_points = [
        StepPoint(p.index, p.key, p.params, d, sharded) for p, d in zip(points, where, strict=True)
    ]
    write_step_points(study.output_dir, step.name, staged_points)
    if not todo:
        return []
    can = fleet.backend(backend).capabilities
    per_job = min(can.max_array_size or MAX_ARRAY_SIZE, MAX_ARRAY_SIZE) if can.arrays else 1
    piped = step.workers is not None
    if piped:
        per_job = len(todo)  # one pipe run: its workers are the one job
    run = state.current_run
    name = f"{study.name}.{step.name}.{run}.{uuid.uuid4().hex[:8]}"
    chunks = [todo[i : i + per_job] for i in range(0, len(todo), per_job)]
    array = [piped or (can.arrays and not step.runs_once) for _ in chunks]
    staged = study.output_dir / STATE_DIR / "runs" / name
    # Where each per-point predecessor's points last ran: read once, not once a point.
    before = {d.step: state.last_runs(d.step) for d in step.after if d.per_point}
    for k, chunk in enumerate(chunks):
        write_points(
            staged / str(k + 1),
            [
                _launch_point(study, step, points[i], where[i], n, before, records, earlier)
                for n, i in enumerate(chunk)
            ],
        )
        for i in chunk:
            _write_params(study, step, points[i], Path(where[i]))
    submission = Submission(
        step.name, run, name, [[points[i].key for i in c] for c in chunks], array,
        pipe=str(staged / "1" / PIPE_DIR) if piped else None,
    )  # fmt: skip
    state.submissions.append(submission)
    state.save()  # before the submission is made: a rerun finds its jobs by name
    config = load_config(profile=study.profile, overrides=step.config_overrides())
    if piped:
        assert step.workers is not None
        job_id = submit_piped(
            fleet, staged / "1", len(todo), step.workers, name=submission.job_name(0),
            resources=config.resources, env=dict(step.env),
            max_concurrent=step.max_concurrent, backend=backend,
        )  # fmt: skip
        submission.job_ids = [job_id]
        state.save()
        return fleet.records([job_id])
    deps = _dependencies(study, step, state, records)
    specs = [
        JobSpec(
            [sys.executable, "-m", LAUNCH_MODULE, str(staged / str(k + 1))],
            name=submission.job_name(k),
            resources=config.resources,
            env=dict(step.env),
            array=ArraySpec(tuple(range(1, len(c) + 1)), step.max_concurrent) if array[k] else None,
            dependencies=deps,
        )
        for k, c in enumerate(chunks)
    ]
    try:
        made = fleet.submit_many(specs, backend=backend)
    except SubmitError:
        find_submitted(fleet, state)  # those that were recorded keep their ids
        raise
    submission.job_ids = [r.id for r in made]
    state.save()
    return made


def find_submitted(fleet: Fleet, state: StudyState) -> None:
    """Give the submissions written but not known to be made the ids the registry gave
    their jobs (found by name); a job the registry never recorded was never submitted."""
    waiting = state.pending_ids()
    if not waiting:
        return
    names = [s.job_name(k) for s in waiting for k in range(len(s.chunks))]
    found = {r.name: r.id for r in fleet.named(names)}
    for submission in waiting:
        submission.job_ids = [
            found.get(submission.job_name(k)) for k in range(len(submission.chunks))
        ]
    state.save()


def _launch_point(
    study: Study,
    step: Step,
    point: StudyPoint,
    directory: str,
    position: int,
    before: Mapping[str, Mapping[str, Ran]],
    records: Mapping[str, JobRecord],
    earlier: Mapping[str, StepPlan],
) -> LaunchPoint:
    """Point ``point`` as element ``position + 1`` runs it, with the exit-code files of
    the predecessor points it follows that are not completed yet (run or waited for
    in this run; a completed one needs no check). ``before``: where the points of each
    step it follows point by point last ran, by key."""
    requires = []
    for dep in step.after:
        if not dep.per_point or earlier[dep.step].choices[point.index].action == "keep":
            continue
        ran = before[dep.step][study.step(dep.step).render(point.index).key]
        job_dir = records[ran.job_id].job_dir
        code_file = located(exit_code_path(job_dir, ran.index))  # an older job's: flat
        requires.append(Requirement(dep.step, point.index, code_file))
    command = point.command
    if isinstance(command, str):
        return LaunchPoint(position, directory, shell=command, requires=tuple(requires))
    return LaunchPoint(position, directory, argv=command, requires=tuple(requires))


def _write_params(study: Study, step: Step, point: StudyPoint, directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    doc = {
        "study": study.name,
        "step": step.name,
        "index": point.index,
        "params": dict(point.params),
        "key": point.key,
        "command": point.command,
    }
    text = json.dumps(doc, indent=1, ensure_ascii=False) + "\n"
    write_text_atomically(directory / "params.json", text)


def _dependencies(
    study: Study, step: Step, state: StudyState, records: Mapping[str, JobRecord]
) -> tuple[Dependency, ...]:
    """On the unfinished jobs of the steps ``step`` follows (those of this run, and
    earlier ones still running): after each point (AFTER_ANY: every point checks its
    own), or after all of them (AFTER_OK)."""
    deps = []
    for dep in step.after:
        ids = [i for i in state.job_ids([dep.step]) if i in records and not records[i].settled]
        if ids:
            kind = DepKind.AFTER_ANY if dep.per_point else DepKind.AFTER_OK
            deps.append(Dependency(kind, tuple(ids)))
    return tuple(deps)
