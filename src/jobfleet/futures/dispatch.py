"""Completing futures: one thread per executor asks its backend's monitor.

The thread waits until the monitor's next poll is due (or a new job is watched),
lets it poll every watched job at once (one batched call to the scheduler, never
one per future), and completes the futures of the calls whose job or array
element has ended, reading each call's outcome file.

An ended job's outcome file may show up a moment after the scheduler says the
job ended (a shared file system's attribute cache): a call whose job completed
without one is given :data:`OUTCOME_GRACE_S` before it fails.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from jobfleet.engine.fleet import Fleet
from jobfleet.errors import JobfleetError
from jobfleet.futures.future import JobFuture, settle
from jobfleet.futures.payload import Outcome, read_outcomes
from jobfleet.futures.piped import PipedRuns
from jobfleet.futures.run import call_files
from jobfleet.pipe.api import Pipe
from jobfleet.states import TERMINAL, JobRecord, JobState

__all__ = ["OUTCOME_GRACE_S", "Dispatcher"]

log = logging.getLogger(__name__)

#: How long a completed job's missing outcome file is waited for.
OUTCOME_GRACE_S = 10.0


class Dispatcher:
    """The futures of one executor (and of its ``options()`` copies) and their thread.

    Args:
        fleet: where the jobs are recorded and polled.
        backend: the backend the jobs run on.
        owns_fleet: close ``fleet`` when the thread ends after :meth:`close`.
    """

    def __init__(self, fleet: Fleet, backend: str, *, owns_fleet: bool) -> None:
        self.fleet = fleet
        self.backend = backend
        self.monitor = fleet.monitor(backend)
        self._owns_fleet = owns_fleet
        self._wake = threading.Condition()
        self._waiting: dict[str, list[JobFuture]] = {}
        self._missing_since: dict[tuple[str, int | None], float] = {}
        self._thread: threading.Thread | None = None
        self._closing = False
        self.piped = PipedRuns()  # calls run as pipe tasks (Executor(workers=N))

    # -- what the futures ask ---------------------------------------------------------

    def record(self, job_id: str) -> JobRecord:
        return self.fleet.records([job_id])[0]

    def log_path(self, job_id: str, index: int | None, stream: Literal["stdout", "stderr"]) -> Path:
        return self.fleet.log_path(job_id, index=index, stream=stream)

    def cancel(self, future: JobFuture) -> bool:
        """Cancel the job or element of ``future``; False when it had ended already, or
        runs as a pipe task (the run's workers serve every call: a task cannot be
        taken out alone; ``shutdown(cancel_futures=True)`` cancels the whole run)."""
        assert future.job_id is not None
        if future.pipe is not None:
            return False
        indices = None if future.index is None else [future.index]
        record = self.fleet.cancel([future.job_id], indices=indices)[0]
        element = record.elements.get(future.index) if future.index is not None else None
        state = element.state if element is not None else record.state
        return state is JobState.CANCELLED or state not in TERMINAL

    def cancel_waiting(self, futures: Sequence[JobFuture]) -> None:
        """Cancel the futures whose job (or element) has not started yet, in one
        call per job (``shutdown(cancel_futures=True)``, a ``map`` left early)."""
        with self._wake:
            self.piped.cancel_waiting(futures, self.fleet)
        by_job: dict[str, list[JobFuture]] = {}
        for future in futures:
            if future.pipe is not None:
                continue
            waits = future.last_state is JobState.PENDING
            if future.job_id is not None and waits and not future.done():
                by_job.setdefault(future.job_id, []).append(future)
        for job_id, mine in by_job.items():
            indices = sorted({f.index for f in mine if f.index is not None}) or None
            try:
                self.fleet.cancel([job_id], indices=indices)
            except JobfleetError as exc:
                log.warning("job %s: could not cancel its waiting calls: %s", job_id, exc)
                continue
            for future in mine:
                future.mark_cancelled()  # its job is cancelled already

    # -- tracking ---------------------------------------------------------------------

    def track(self, job_id: str, futures: Sequence[JobFuture], pipe: Pipe | None = None) -> None:
        """Complete ``futures`` (the calls of job ``job_id``) when their job ends; or,
        with ``pipe``, when their tasks of that run (served by job ``job_id``) end."""
        self.monitor.watch([job_id])
        with self._wake:
            if pipe is None:
                self._waiting.setdefault(job_id, []).extend(futures)
            else:
                self.piped.add(pipe, job_id, futures)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name=f"jobfleet-futures-{self.backend}", daemon=True
                )
                self._thread.start()
            self._wake.notify_all()

    def pending(self) -> list[JobFuture]:
        with self._wake:
            mine = [f for futures in self._waiting.values() for f in futures if not f.done()]
            return mine + self.piped.pending()

    def close(self) -> None:
        """Stop once every tracked future is done (then close an owned fleet)."""
        with self._wake:
            self._closing = True
            idle = self._thread is None or not self._thread.is_alive()
            self._wake.notify_all()
        if idle and self._owns_fleet:
            self.fleet.close()

    # -- the thread -------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._wake:
                self._prune()
                if not self._waiting and not self.piped.runs:
                    if self._closing:
                        break
                    self._wake.wait(timeout=1.0)
                    continue
                delay = self.monitor.delay()
                if delay > 0:
                    self._wake.wait(timeout=delay)
                    continue
            try:
                self.monitor.poll()
            except JobfleetError as exc:  # the scheduler answers again later
                log.warning("%s: polling failed (%s); still waiting", self.backend, exc)
                time.sleep(self.fleet.config.wait.poll_interval_s)
                continue
            except Exception:  # never die silently: the futures would hang for ever
                log.exception("%s: polling failed; still waiting", self.backend)
                time.sleep(self.fleet.config.wait.poll_interval_s)
                continue
            self._settle()
            self.piped.settle(self.fleet)
        if self._owns_fleet:
            self.fleet.close()

    def _prune(self) -> None:
        for job_id in [j for j, fs in self._waiting.items() if all(f.done() for f in fs)]:
            del self._waiting[job_id]
        self.piped.prune()

    def _settle(self) -> None:
        with self._wake:
            waiting = {job_id: list(fs) for job_id, fs in self._waiting.items()}
        for job_id, futures in waiting.items():
            record = self.monitor.record(job_id)
            outcomes: dict[int | None, list[Outcome] | None] = {}
            for future in futures:
                if future.done() or future.cancelling:
                    continue
                self._settle_one(future, record, outcomes)

    def _settle_one(
        self,
        future: JobFuture,
        record: JobRecord,
        outcomes: dict[int | None, list[Outcome] | None],
    ) -> None:
        index = future.index
        element = record.elements.get(index) if index is not None else None
        state = element.state if element is not None else record.state
        future.last_state = state
        ended = state in TERMINAL if index is not None else record.settled
        if not ended:
            return
        if index not in outcomes:
            assert future.directory is not None
            try:
                outcomes[index] = read_outcomes(call_files(future.directory, index)[1])
            except (OSError, ValueError) as exc:
                log.warning("job %s: its outcome file cannot be read: %s", record.id, exc)
                outcomes[index] = None
        found = outcomes[index]
        outcome = found[future.position] if found and future.position < len(found) else None
        key = (record.id, index)
        if outcome is None and state is JobState.COMPLETED:
            first = self._missing_since.setdefault(key, time.monotonic())
            if time.monotonic() - first < OUTCOME_GRACE_S:
                return  # look again at the next poll
        self._missing_since.pop(key, None)
        settle(future, record, outcome)
