"""Calls as pipe tasks: ``Executor(..., workers=N)``.

``map`` and ``batch()`` write their calls' payloads as usual (``<index>.in``, a task
per chunk), stage one pipe task per chunk (``python -m jobfleet.futures.run DIR
INDEX``) in a run directory beside them, and submit N workers as ONE array job
(:mod:`jobfleet.pipe`): a million short calls never become a million array elements,
and each is finished exactly once. The executor's thread settles each future from
its task's one counted end and the call's outcome file, and submits the workers again
when they are all gone while calls remain (their allocation ended first).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from jobfleet.errors import JobfleetError
from jobfleet.futures.errors import JobFailedError
from jobfleet.futures.future import JobFuture, settle_outcome
from jobfleet.futures.payload import Outcome, read_outcomes
from jobfleet.futures.run import call_files
from jobfleet.pipe.api import Pipe, TaskResult
from jobfleet.pipe.model import JOB_STATE, TaskSpec, TaskState

if TYPE_CHECKING:
    from jobfleet.engine.fleet import Fleet

__all__ = ["PIPE_DIR", "SETTINGS", "PipedRuns", "stage_tasks"]

log = logging.getLogger(__name__)

#: The run directory of a piped ``map``, inside its payload directory.
PIPE_DIR = "pipe"
#: How long a completed task's missing outcome file is waited for (a shared file
#: system's attribute cache), as for a job (``jobfleet.futures.dispatch.OUTCOME_GRACE_S``).
OUTCOME_GRACE_S = 10.0


#: The settings of a piped ``map``'s run (pipe mode's defaults; tests shorten the lease).
SETTINGS: dict[str, float] = {"lease": 60.0, "heartbeat": 10.0}


def stage_tasks(directory: Path, indices: Sequence[int], python: str) -> Pipe:
    """The pipe run of the calls in ``directory``: task ``i - 1`` runs ``<i>.in``."""
    tasks = [
        TaskSpec((python, "-m", "jobfleet.futures.run", str(directory), str(i))) for i in indices
    ]
    return Pipe.create(
        directory / PIPE_DIR, tasks, lease=SETTINGS["lease"], heartbeat=SETTINGS["heartbeat"]
    )


def _settle_task(future: JobFuture, task: TaskResult, outcome: Outcome | None, pipe: Pipe) -> None:
    """Complete ``future`` from its task's end and its call's outcome (which wins)."""
    future.last_state = JOB_STATE[task.state]
    where = f"{future.job_id} (pipe task {task.number})"
    try:
        if settle_outcome(future, outcome, where):
            return
        output = pipe.dir.output_path(task.worker) if task.worker else pipe.path / "out"
        future.set_exception(
            JobFailedError(
                str(future.job_id),
                future.index,
                task.state.value,
                task.exit_code,
                task.why or f"its pipe task ended {task.state.value} without a result",
                str(output),
                str(output),
            )
        )
    except concurrent.futures.InvalidStateError:
        pass  # cancelled meanwhile


@dataclass
class _Run:
    pipe: Pipe
    job_id: str
    futures: list[JobFuture] = field(default_factory=list)


class PipedRuns:
    """The piped runs an executor's thread completes futures of."""

    def __init__(self) -> None:
        self.runs: dict[Path, _Run] = {}
        self._missing_since: dict[int, float] = {}  # id(future) -> outcome first missed

    def add(self, pipe: Pipe, job_id: str, futures: Sequence[JobFuture]) -> None:
        run = self.runs.setdefault(pipe.path, _Run(pipe, job_id))
        run.futures.extend(futures)
        for future in futures:
            future.pipe = pipe.path

    def pending(self) -> list[JobFuture]:
        return [f for r in self.runs.values() for f in r.futures if not f.done()]

    def prune(self) -> None:
        for path in [p for p, r in self.runs.items() if all(f.done() for f in r.futures)]:
            del self.runs[path]

    def settle(self, fleet: Fleet) -> None:
        """Complete the futures whose tasks ended; submit the workers again when none
        is left and calls remain."""
        for run in list(self.runs.values()):
            try:
                results = run.pipe.results()
            except (OSError, ValueError) as exc:
                log.warning("%s: cannot read the pipe run: %s", run.pipe.path, exc)
                continue
            for future in run.futures:
                if future.done() or future.index is None:
                    continue
                task = results[future.index - 1]
                future.last_state = JOB_STATE[task.state]
                if not task.state.is_terminal:
                    continue
                try:
                    found = read_outcomes(call_files(run.pipe.path.parent, future.index)[1])
                except (OSError, ValueError):
                    found = None  # not there yet (a file system's cache), or unreadable now
                outcome = found[future.position] if found and future.position < len(found) else None
                if outcome is None and task.state is TaskState.COMPLETED:
                    first = self._missing_since.setdefault(id(future), time.monotonic())
                    if time.monotonic() - first < OUTCOME_GRACE_S:
                        continue  # look again at the next poll
                self._missing_since.pop(id(future), None)
                _settle_task(future, task, outcome, run.pipe)
            if any(not f.done() for f in run.futures):
                self._top_up(run, fleet)

    def _top_up(self, run: _Run, fleet: Fleet) -> None:
        """Workers again when none is left; the calls fail, saying why, when the last
        workers ended without ending any task (they would only fail again)."""
        try:
            run.pipe.top_up(fleet=fleet)
        except JobfleetError as exc:
            for future in run.futures:
                if not future.done():
                    with contextlib.suppress(concurrent.futures.InvalidStateError):
                        future.set_exception(
                            JobFailedError(
                                str(future.job_id), future.index, "failed", None, str(exc),
                                str(run.pipe.path / "out"), str(run.pipe.path / "out"),
                            )
                        )  # fmt: skip
        except Exception as exc:  # a scheduler that fails now: tried again next poll
            log.warning("%s: cannot submit workers again: %s", run.pipe.path, exc)

    def cancel_waiting(self, futures: Sequence[JobFuture], fleet: Fleet) -> None:
        """Cancel a whole piped run when every call of it not done is being cancelled."""
        asked = {id(f) for f in futures}
        for run in list(self.runs.values()):
            left = [f for f in run.futures if not f.done()]
            if left and all(id(f) in asked for f in left):
                run.pipe.cancel(fleet=fleet)
                for future in left:
                    future.mark_cancelled()
