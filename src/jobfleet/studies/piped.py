"""A study step as pipe tasks (``workers: N``): its points served by N workers submitted
as ONE array job (docs/pipe.md), instead of one array element per point.

The step's staged points are the tasks (``python -m jobfleet.studies.launch STAGED
INDEX``: task ``i`` runs point ``i``). The rest of the study reads the run through the
worker job's record, rewritten with an element per task (:func:`pipe_record`), so that
planning, resuming and reporting treat it as they treat an array. A piped step, and a
step that follows one, is submitted only once the steps it follows have ended (their
outcomes decide which of its points run): a worker job's own end says nothing of its
tasks', so no scheduler dependency can stand for them.
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

from jobfleet.engine.fleet import Fleet
from jobfleet.jobdir import never_met_path, read_never_met
from jobfleet.pipe.api import Pipe
from jobfleet.pipe.model import JOB_STATE, TaskSpec
from jobfleet.resources import Resources
from jobfleet.scriptdeps import EXIT_DEPENDENCY_NEVER_MET
from jobfleet.states import ElementRecord, JobRecord, JobState, aggregate, never_met

__all__ = ["PIPE_DIR", "pipe_record", "submit_piped"]

#: The pipe run of a staged chunk, inside it.
PIPE_DIR = "pipe"


def submit_piped(
    fleet: Fleet,
    staged: Path,
    count: int,
    workers: int,
    *,
    name: str,
    resources: Resources,
    env: dict[str, str],
    max_concurrent: int | None,
    backend: str | None,
) -> str:
    """Make the pipe run of the ``count`` points staged in ``staged`` and submit its
    workers (at most one per point) as one job named ``name``; the job's id."""
    tasks = [
        TaskSpec((sys.executable, "-m", "jobfleet.studies.launch", str(staged), str(i + 1)))
        for i in range(count)
    ]
    pipe = Pipe.create(staged / PIPE_DIR, tasks)
    return pipe.submit(
        min(workers, count), backend=backend, resources=resources, env=env,
        max_concurrent=max_concurrent, name=name, fleet=fleet,
    )  # fmt: skip


def pipe_record(record: JobRecord, run_dir: str) -> JobRecord:
    """The worker job's ``record`` as the study reads it: element ``i + 1`` is task ``i``
    of the pipe run (a point whose predecessor did not complete, exit 196 with its
    reason written, reads ``cancelled``, as an array element's does)."""
    try:
        results = Pipe(run_dir).results()
    except Exception:
        return record
    staged = str(Path(run_dir).parent)
    elements: dict[int, ElementRecord] = {}
    for task in results:
        index = task.number + 1
        state, code, reason = JOB_STATE[task.state], task.exit_code, task.why
        if state is JobState.FAILED and code == EXIT_DEPENDENCY_NEVER_MET:
            why = read_never_met(staged, index)
            if why is not None:
                state, code, reason = JobState.CANCELLED, None, never_met(why)
        elements[index] = ElementRecord(index, state, code, reason)
    state = aggregate(e.state for e in elements.values())
    codes = [e.exit_code for e in elements.values() if e.exit_code is not None]
    return replace(record, state=state, elements=elements, exit_code=max(codes) if codes else None)


def never_path(staged: str, index: int) -> str:
    """Where a piped point's launch writes why it cannot run."""
    return never_met_path(staged, index)
