"""What the local agent knows of dependencies between its jobs.

A task may start when every job it depends on has ended as its kind asks
(after_ok: all completed; after_not_ok: not all completed; after_any: ended).
A dependency that can never be met cancels the task, through whole chains.
"""

from __future__ import annotations

from jobfleet.backends.local.queue import QueueStore, TaskRow

__all__ = ["READY", "WAIT", "Verdicts"]

#: The task may start as far as its dependencies go.
READY = "ready"
#: Some job it depends on has not ended yet.
WAIT = "wait"


class Verdicts:
    """Dependency verdicts for one round of the agent: ``READY``, ``WAIT``, or the
    reason a dependency can never be met. Outcomes of ended jobs are kept for
    ever (terminal is final); verdicts only for the round.

    Args:
        store: the queue, asked about jobs the agent no longer holds.
    """

    def __init__(self, store: QueueStore) -> None:
        self.store = store
        self.outcomes: dict[int, tuple[bool, bool]] = {}  # ended jobs: (ended, all ok)
        self._active: set[int] = set()
        self._verdicts: dict[int, str] = {}

    def new_round(self, active_jobs: set[int]) -> None:
        """Forget the round's verdicts; ``active_jobs`` have unfinished tasks."""
        self._active = active_jobs
        self._verdicts = {}

    def get(self, job: int) -> str:
        """The verdict reached this round for ``job`` (``READY`` if none was)."""
        return self._verdicts.get(job, READY)

    def _job_outcome(self, job: int) -> tuple[bool, bool] | None:
        """(ended, every task completed) for a job, or None when it is unknown."""
        if job in self._active:
            return (False, False)
        if job not in self.outcomes:
            # Only final outcomes are cached: terminal is final, so they never go stale.
            outcome = self.store.job_outcomes([job]).get(job)
            if outcome is None or not outcome[0]:
                return outcome
            self.outcomes[job] = outcome
        return self.outcomes[job]

    def verdict(self, task: TaskRow) -> str:
        """``READY``, ``WAIT`` or a reason why the dependency can never be met."""
        if task.job in self._verdicts:
            return self._verdicts[task.job]
        verdict = READY
        for kind, jobs in task.deps:
            for job in jobs:
                outcome = self._job_outcome(job)
                if outcome is None:
                    verdict = f"dependency on unknown local job {job}"
                elif not outcome[0]:
                    verdict = WAIT
                    continue
                elif kind == "after_ok" and not outcome[1]:
                    verdict = f"after_ok dependency on job {self._jf_id(job)} can never be met"
                elif kind == "after_not_ok" and outcome[1]:
                    verdict = f"after_not_ok dependency on job {self._jf_id(job)} can never be met"
                else:
                    continue
                if verdict != WAIT:
                    self._verdicts[task.job] = verdict
                    return verdict
        self._verdicts[task.job] = verdict
        return verdict

    def _jf_id(self, job: int) -> str:
        return self.store.jf_ids([job]).get(job, f"local:{job}")
