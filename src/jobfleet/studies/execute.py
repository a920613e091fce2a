"""Run a study, or tell how it stands: the library behind ``jobfleet run`` and
``jobfleet study status``.

>>> from jobfleet.studies import load_study, run_study       # doctest: +SKIP
>>> result = run_study(load_study("grid.yaml"))               # doctest: +SKIP
>>> result.ok, result.counts()                                # doctest: +SKIP
(True, {'completed': 12})
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from jobfleet.config import load_config
from jobfleet.engine.fleet import Fleet
from jobfleet.errors import SpecError
from jobfleet.states import JobRecord
from jobfleet.studies.model import Study
from jobfleet.studies.outcomes import StudyResult, results, step_names
from jobfleet.studies.runner import Rerun, StepPlan, choose, find_submitted, submit
from jobfleet.studies.state import StudyState, state_path

__all__ = ["Preview", "run_study", "study_job_ids", "study_status"]


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


def _fresh(fleet: Fleet, ids: Sequence[str]) -> dict[str, JobRecord]:
    """The study's jobs, asked about now (one poll per backend)."""
    if not ids:
        return {}
    return {r.id: r for r in fleet.refresh(fleet.records(list(ids)))}


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
    records = _fresh(fleet, state.job_ids())
    plans: dict[str, StepPlan] = {}
    submitted: list[str] = []
    for step in study.steps:
        points = list(step.points)
        plans[step.name] = plan = choose(study, step, points, state, records, rerun, plans)
        if dry_run:
            continue
        made = submit(fleet, study, step, plan, points, state, records, backend, plans)
        records.update((r.id, r) for r in made)
        submitted += [r.id for r in made]
    if dry_run:
        return Preview(study, tuple(plans.values()))
    unfinished = [i for i, r in records.items() if not r.settled]
    if wait and unfinished:
        records.update(
            (r.id, r) for r in fleet.wait(unfinished, timeout_s=timeout_s, on_update=on_update)
        )
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
        records = _fresh(fleet, state.job_ids())
    finally:
        if own:
            fleet.close()
    order = list(dict.fromkeys(s.step for s in state.submissions))
    steps = order + [s for s in step_names(directory) if s not in order]
    return results(state, steps, records)
