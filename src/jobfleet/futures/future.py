"""A future for one Python call running as a job (or part of an array element)."""

from __future__ import annotations

import concurrent.futures
import logging
import pickle
from pathlib import Path
from typing import Any, Literal, Protocol

from jobfleet.errors import JobfleetError
from jobfleet.futures.errors import JobFailedError, RemoteError, with_remote_traceback
from jobfleet.futures.payload import Outcome
from jobfleet.states import JobRecord, JobState


class Dispatcher(Protocol):
    """What a future asks of the executor's thread (:mod:`jobfleet.futures.dispatch`)."""

    def record(self, job_id: str) -> JobRecord: ...

    def log_path(
        self, job_id: str, index: int | None, stream: Literal["stdout", "stderr"]
    ) -> Path: ...

    def cancel(self, future: JobFuture) -> bool: ...


__all__ = ["JobFuture", "settle", "settle_outcome"]

log = logging.getLogger(__name__)


class JobFuture(concurrent.futures.Future[Any]):
    """A :class:`concurrent.futures.Future` for a call that runs as a job.

    ``concurrent.futures.wait``, ``as_completed`` and ``asyncio.wrap_future`` work
    with it; jobfleet's monitor completes it (one batched poll per backend).

    Attributes:
        job_id: the jobfleet job running the call (None until a ``batch()`` submits).
        index: the array element running it, or None for a single job.
        position: the call's place among the calls of its job or element (0 unless
            ``map`` was given a ``chunksize``).
    """

    def __init__(self, dispatcher: Dispatcher, directory: Path | None = None) -> None:
        super().__init__()
        self._dispatcher = dispatcher
        self.directory = directory
        self.job_id: str | None = None
        self.index: int | None = None
        self.position = 0
        self.last_state = JobState.PENDING
        self.cancelling = False
        self.pipe: Path | None = None  # the pipe run whose task runs it (workers=N)

    def __repr__(self) -> str:
        where = self.job_id if self.index is None else f"{self.job_id}[{self.index}]"
        return f"<JobFuture job {where} {self._state.lower()} ({self.last_state.value})>"

    def record(self) -> JobRecord:
        """The job's record as last stored (for an array: the whole array's; see ``index``)."""
        if self.job_id is None:
            raise RuntimeError("this call is not submitted yet (its batch() is still open)")
        return self._dispatcher.record(self.job_id)

    def _log(self, stream: Literal["stdout", "stderr"]) -> str:
        if self.job_id is None:
            return ""
        if self.pipe is not None and self.index is not None:
            # A pipe task's two streams are one, kept in its worker's output file.
            if stream == "stderr":
                return ""
            from jobfleet.pipe.api import Pipe

            try:
                return Pipe(self.pipe).logs(self.index - 1)
            except JobfleetError:
                return ""  # it has not run yet
        path = self._dispatcher.log_path(self.job_id, self.index, stream)
        try:
            return path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def stdout(self) -> str:
        """What the job (or element) has written to standard output so far (a call run
        as a pipe task: its output, both streams, once its attempt ended)."""
        return self._log("stdout")

    def stderr(self) -> str:
        """What the job (or element) has written to standard error so far."""
        return self._log("stderr")

    def running(self) -> bool:
        """True while its job (or element) was last seen running."""
        return not self.done() and self.last_state is JobState.RUNNING

    def mark_cancelled(self) -> bool:
        """Cancelled, as the standard library's executors leave a cancelled future:
        notified, so that ``concurrent.futures.wait`` and ``as_completed`` see it."""
        if not super().cancel():
            return False
        self.set_running_or_notify_cancel()  # CANCELLED -> CANCELLED_AND_NOTIFIED
        return True

    def cancel(self) -> bool:
        """Cancel the job (or the array element) running the call, waiting or running;
        True when it was cancelled, False when it had already ended or the scheduler
        refused (logged: e.g. HTCondor cannot remove an element not materialized yet).

        The other calls of the same element (``map`` with a ``chunksize``) end with
        it, raising :class:`JobFailedError` (``cancelled``).
        """
        if self.done():
            return False
        # The monitor's thread must not complete it while its job is being cancelled.
        self.cancelling = True
        try:
            if self.job_id is not None and not self._dispatcher.cancel(self):
                return False
            return self.mark_cancelled()
        except JobfleetError as exc:  # the scheduler refused, or cannot be asked now
            log.warning("job %s: cannot cancel it: %s", self.job_id, exc)
            return False
        finally:
            self.cancelling = False


def settle_outcome(future: JobFuture, outcome: Outcome | None, where: str) -> bool:
    """Complete ``future`` from its call's ``outcome``: its value, or the exception it
    raised; False (nothing done) when there is no outcome."""
    if outcome is None:
        return False
    if outcome.ok:
        try:
            future.set_result(outcome.value())
        except Exception as exc:
            future.set_exception(
                RemoteError(
                    f"{type(exc).__module__}.{type(exc).__qualname__}",
                    f"the call of job {where} returned, but its value cannot be "
                    f"unpickled here: {exc}",
                    "",
                )
            )
    else:
        future.set_exception(_rebuild(outcome, where))
    return True


def _rebuild(outcome: Outcome, where: str) -> BaseException:
    """The exception a call raised, rebuilt when it can be (with its remote traceback)."""
    if outcome.blob:
        try:
            exc = pickle.loads(outcome.blob)  # noqa: S301 - our own job's result file
        except Exception:  # its class is not importable here, ...
            exc = None
        if isinstance(exc, Exception):
            return with_remote_traceback(exc, where, outcome.traceback)
    return RemoteError(outcome.type_name or "Exception", outcome.message, outcome.traceback)


def settle(future: JobFuture, record: JobRecord, outcome: Outcome | None) -> None:
    """Complete ``future`` from its job's final ``record`` and its call's ``outcome``.

    The outcome file wins: a call that returned has its value even if the job was
    then killed; one that raised has its exception. Without an outcome, the job
    ended without a result: :class:`JobFailedError` naming how.
    """
    where = future.job_id if future.index is None else f"{future.job_id}[{future.index}]"
    element = record.elements.get(future.index) if future.index is not None else None
    state = element.state if element is not None else record.state
    future.last_state = state
    try:
        if not settle_outcome(future, outcome, str(where)):
            dispatcher = future._dispatcher
            future.set_exception(
                JobFailedError(
                    str(future.job_id),
                    future.index,
                    state.value,
                    element.exit_code if element is not None else record.exit_code,
                    element.reason if element is not None else record.reason,
                    str(dispatcher.log_path(str(future.job_id), future.index, "stdout")),
                    str(dispatcher.log_path(str(future.job_id), future.index, "stderr")),
                )
            )
    except concurrent.futures.InvalidStateError:
        pass  # cancelled meanwhile
