"""Run a study, or tell how it stands: the library behind ``jobfleet run`` and
``jobfleet study status``.

>>> from jobfleet.studies import load_study, run_study       # doctest: +SKIP
>>> result = run_study(load_study("grid.yaml"))               # doctest: +SKIP
>>> result.ok, result.counts()                                # doctest: +SKIP
(True, {'completed': 12})
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from jobfleet.config import load_config
from jobfleet.engine.fleet import Fleet
from jobfleet.errors import SpecError, WaitTimeout
from jobfleet.pipe.api import Pipe
from jobfleet.states import JobRecord
from jobfleet.studies.model import Step, Study
from jobfleet.studies.outcomes import StudyResult, results, step_names
from jobfleet.studies.piped import pipe_record
from jobfleet.studies.runner import Choice, Rerun, StepPlan, choose, find_submitted, submit
from jobfleet.studies.state import StudyState, state_path

__all__ = ["Preview", "run_study", "study_job_ids", "study_status"]

#: How often a run looks again at a submission not yet known to have been made.
_UNSURE_LOOK_S = 1.0


@dataclass(frozen=True, slots=True)
class Preview:
    """What a run would do (a dry run): each step's plan, nothing written or submitted."""

    study: Study
    plans: tuple[StepPlan, ...]

    def to_dict(self) -> dict[str, object]:
        return {
            "name": self.study.name,
            "output": str(self.study.output_dir),
            "steps": [
                {
                    "name": plan.step,
                    "points": len(plan.choices),
                    **{a: len(plan.of(a)) for a in ("run", "keep", "wait", "blocked")},
                }
                for plan in self.plans
            ],
        }


def _state(study: Study) -> StudyState:
    try:
        state = StudyState.load(study.output_dir)
    except ValueError as exc:
        raise SpecError("output", str(exc)) from None
    if state is None:
        return StudyState(study.output_dir, study.name, str(study.path))
    if state.name != study.name:
        raise SpecError(
            "output",
            f"{study.output_dir} holds the study {state.name!r}, not {study.name!r}: "
            "give this study another output directory",
        )
    state.file = str(study.path)
    return state


def _fresh(fleet: Fleet, ids: Sequence[str], pipes: Mapping[str, str]) -> dict[str, JobRecord]:
    """The study's jobs, asked about now (one poll per backend); the workers of a step
    run as pipe tasks read as an element per task (:func:`~.piped.pipe_record`)."""
    if not ids:
        return {}
    fresh = fleet.refresh(fleet.records(list(ids)))
    return {r.id: pipe_record(r, pipes[r.id]) if r.id in pipes else r for r in fresh}


def _wait(
    fleet: Fleet,
    ids: Sequence[str],
    pipes: Mapping[str, str],
    timeout_s: float | None,
    on_update: Callable[[list[JobRecord]], None] | None,
) -> dict[str, JobRecord]:
    """Wait for jobs to end; a pipe run's workers until every task ended (workers are
    submitted again when all are gone while tasks remain)."""
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    plain = [i for i in ids if i not in pipes]
    if plain:
        fleet.wait(plain, timeout_s=timeout_s, on_update=on_update)
    for job_id in [i for i in ids if i in pipes]:
        left = None if deadline is None else max(deadline - time.monotonic(), 0.0)
        record = fleet.records([job_id])[0]

        def show(_: object, record: JobRecord = record, run: str = pipes[job_id]) -> None:
            if on_update is not None:
                on_update([pipe_record(record, run)])

        status = Pipe(pipes[job_id]).wait(
            timeout=left, keep_alive=True, on_progress=show, fleet=fleet
        )
        if not status.ended:
            raise WaitTimeout([job_id], timeout_s or 0.0)
    return _fresh(fleet, ids, pipes)


def _until_submitted(
    fleet: Fleet,
    records: Mapping[str, JobRecord],
    pipes: Mapping[str, str],
    timeout_s: float | None,
) -> dict[str, JobRecord]:
    """The jobs of ``records`` not yet known to have reached their scheduler (their
    submitter died while submitting them, or is submitting them now), looked at until
    that is known: one that never got there leaves its points not run, so that this
    run submits them, and one that did is waited for like any other."""
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    unsure = [i for i, r in records.items() if not r.submitted and not r.settled]
    fresh: dict[str, JobRecord] = {}
    while unsure:
        if deadline is not None and time.monotonic() >= deadline:
            raise WaitTimeout(unsure, timeout_s or 0.0)
        time.sleep(_UNSURE_LOOK_S)
        fresh.update(_fresh(fleet, unsure, pipes))
        unsure = [i for i in unsure if not fresh[i].submitted and not fresh[i].settled]
    return fresh


def _gate(
    study: Study, step: Step, records: Mapping[str, JobRecord], state: StudyState
) -> list[str]:
    """The unfinished jobs of the steps ``step`` follows, when ``step`` runs as pipe tasks
    or follows a step that does: such a step is submitted only once they ended."""
    followed = [study.step(d.step) for d in step.after]
    if step.workers is None and all(f.workers is None for f in followed):
        return []
    ids = state.job_ids([f.name for f in followed])
    return [i for i in ids if i in records and not records[i].settled]


def run_study(
    study: Study,
    *,
    fleet: Fleet | None = None,
    backend: str | None = None,
    rerun: Rerun = "none",
    dry_run: bool = False,
    wait: bool = True,
    timeout_s: float | None = None,
    on_update: Callable[[list[JobRecord]], None] | None = None,
) -> StudyResult | Preview:
    """Run what of ``study`` is not done yet (see :mod:`jobfleet.studies.runner` for
    what a rerun does with each point); wait for it with ``wait``.

    Returns:
        How every point stands (a :class:`Preview` with ``dry_run``).

    Raises:
        SpecError: the output directory holds another study; a step's resources do
            not fit the backend.
        SubmitError: some submissions failed (recorded; a rerun resumes).
        WaitTimeout: ``timeout_s`` passed first (the jobs keep running).
    """
    own = fleet is None
    fleet = fleet if fleet is not None else Fleet(load_config(profile=study.profile))
    try:
        return _run(
            study, fleet, backend or study.backend, rerun, dry_run, wait, timeout_s, on_update
        )
    finally:
        if own:
            fleet.close()


def _run(
    study: Study,
    fleet: Fleet,
    backend: str | None,
    rerun: Rerun,
    dry_run: bool,
    wait: bool,
    timeout_s: float | None,
    on_update: Callable[[list[JobRecord]], None] | None,
) -> StudyResult | Preview:
    state = _state(study)
    if not dry_run:
        find_submitted(fleet, state)
    state.current_run = state.runs + 1
    records = _fresh(fleet, state.job_ids(), state.pipes())
    if wait and not dry_run:
        records.update(_until_submitted(fleet, records, state.pipes(), timeout_s))
    plans: dict[str, StepPlan] = {}
    submitted: list[str] = []
    for step in study.steps:
        points = list(step.points)
        gate = [] if dry_run else _gate(study, step, records, state)
        if gate and not wait:
            why = "it waits for the steps it follows to end: run the study again then"
            plans[step.name] = StepPlan(
                step.name, tuple(Choice(p.index, "blocked", why) for p in points)
            )
            continue
        if gate:
            records.update(_wait(fleet, gate, state.pipes(), timeout_s, on_update))
            for dep in step.after:  # their outcomes now decide which points run
                followed = study.step(dep.step)
                plans[dep.step] = choose(
                    study, followed, list(followed.points), state, records, "none", plans
                )
        plans[step.name] = plan = choose(study, step, points, state, records, rerun, plans)
        if dry_run:
            continue
        made = submit(fleet, study, step, plan, points, state, records, backend, plans)
        pipes = state.pipes()
        records.update((r.id, pipe_record(r, pipes[r.id]) if r.id in pipes else r) for r in made)
        submitted += [r.id for r in made]
    if dry_run:
        return Preview(study, tuple(plans.values()))
    unfinished = [i for i, r in records.items() if not r.settled]
    if wait and unfinished:
        records.update(_wait(fleet, unfinished, state.pipes(), timeout_s, on_update))
    notes = {
        (plan.step, c.point): c.why
        for plan in plans.values()
        for c in plan.choices
        if c.action == "blocked" and c.why
    }
    return results(state, [s.name for s in study.steps], records, submitted, notes)


def _load(output_dir: str | os.PathLike[str]) -> StudyState:
    directory = Path(output_dir).resolve()
    try:
        state = StudyState.load(directory)
    except ValueError as exc:
        raise SpecError("DIR", str(exc)) from None
    if state is None:
        raise SpecError(
            "DIR",
            f"{directory} holds no study (no {state_path(directory)}); give the "
            "output directory of a study run with jobfleet run",
        )
    return state


def study_job_ids(output_dir: str | os.PathLike[str]) -> list[str]:
    """The ids of every job the study in ``output_dir`` submitted, oldest first.

    Raises:
        SpecError: ``output_dir`` holds no study.
    """
    return _load(output_dir).job_ids()


def study_status(output_dir: str | os.PathLike[str], *, fleet: Fleet | None = None) -> StudyResult:
    """How every point of the study whose outputs are in ``output_dir`` stands, its
    jobs asked about now; nothing else is needed (the study file need not be there).

    Raises:
        SpecError: ``output_dir`` holds no study.
    """
    state = _load(output_dir)
    directory = state.output_dir
    own = fleet is None
    fleet = fleet if fleet is not None else Fleet()
    try:
        records = _fresh(fleet, state.job_ids(), state.pipes())
    finally:
        if own:
            fleet.close()
    order = list(dict.fromkeys(s.step for s in state.submissions))
    steps = order + [s for s in step_names(directory) if s not in order]
    return results(state, steps, records)
