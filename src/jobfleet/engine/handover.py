"""Handing recorded jobs to their backend: write each job's files, submit, record.

Every job's files are written first. A backend whose ``submit_many`` takes
many jobs in one step (:attr:`~jobfleet.backends.base.Capabilities.bulk_submit`:
the local backend's one queue transaction) then gets them all at once. Every
other one gets them one at a time, in the order given (users rely on first in,
first out), and the jobs submitted are recorded as such every
:data:`MARK_EVERY_S` seconds as they go, so that a process killed half-way
leaves few jobs for recovery to look for by name.

Whatever stops a hand-over half-way (an exception, KeyboardInterrupt; a job
the scheduler refuses stops nothing: the next one is submitted), each job is
then recorded as one of: submitted, with its native id; failed, with the
scheduler's refusal or as never having reached it; ``unknown`` with the reason
:data:`MAYBE_SUBMITTED` when it may have reached it (the next status looks for
it by its unique name). A job whose outcome could not be recorded (the disk is
full) stays ``being submitted`` by this process, which recovery settles the
same way once the process is gone.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from jobfleet.backends.base import Backend, SubmitRequest
from jobfleet.errors import RegistryError, SubmitError
from jobfleet.jobdir import make_element_dirs, script_path, write_env
from jobfleet.naming import scheduler_name
from jobfleet.registry import MAYBE_SUBMITTED, Registry, StatusUpdate
from jobfleet.script import render_script
from jobfleet.scriptdeps import Requirement
from jobfleet.spec import DepKind, JobSpec
from jobfleet.states import JobRecord, JobState

__all__ = ["MARK_EVERY_S", "Deps", "hand_over", "maybe_submitted", "write_job"]

log = logging.getLogger(__name__)

#: Jobs submitted one at a time are recorded as submitted at least this often (seconds):
#: one transaction per batch, not per job (it costs about 1% of an sbatch per job).
MARK_EVERY_S = 0.25

#: The reason of a job that never reached its scheduler (followed by why).
_NOT_REACHED = "submission interrupted before reaching the backend"


def maybe_submitted(error: object) -> str:
    """The reason recorded for a job whose submission may have reached its scheduler."""
    return f"{MAYBE_SUBMITTED} ({error}); it is looked for by its name at the next status"


@dataclass(frozen=True, slots=True)
class Deps:
    """A spec's dependencies, resolved for one backend.

    Attributes:
        native: each kind with the native ids of the predecessors still unfinished.
        owners: native id -> jobfleet id.
        never: why the job can never start, if so (it is then not submitted).
        requires: what the job script checks itself, where the scheduler only
            waits for predecessors to end.
    """

    native: tuple[tuple[DepKind, tuple[str, ...]], ...]
    owners: dict[str, str]
    never: str | None
    requires: tuple[Requirement, ...] = ()


Todo = Sequence[tuple[JobRecord, JobSpec, Deps]]


def hand_over(
    registry: Registry, backend: Backend, todo: Todo, env: Mapping[str, str] | None = None
) -> list[tuple[str, SubmitError]]:
    """Write the jobs' files, submit them, record each outcome; the submissions that
    failed (recorded as failed, or as ``unknown`` when they may have gone through).

    ``env``: the environment to submit in (default: this process's).

    Raises:
        RegistryError: jobs the scheduler took could not be recorded (it names them).
        BaseException: whatever stopped the hand-over half-way, once what is known of
            every job is recorded.
    """
    env = dict(os.environ if env is None else env)
    turn = _HandOver(registry, backend, todo, env)
    turn.run()
    return turn.failed


def write_job(
    registry: Registry, backend: Backend, job: tuple[JobRecord, JobSpec, Deps], env: dict[str, str]
) -> SubmitRequest:
    """Write a recorded job's script (and environment, element directories) into its
    directory; the request to submit it.

    Raises:
        OSError: a file could not be written (it names the file).
    """
    record, spec, dep = job
    if spec.retries:
        # A retry is submitted by whichever process sees the failure: it must
        # run in this environment, not that process's.
        write_env(record.job_dir, env)
    if spec.array is not None:
        make_element_dirs(record.job_dir, spec.array.indices)
    path = Path(script_path(record.job_dir))
    text = render_script(
        spec,
        backend.script_dialect(),
        job_id=record.id,
        job_dir=record.job_dir,
        requires=dep.requires,
    )
    try:
        path.write_text(text, encoding="utf-8", errors="surrogateescape")
    except OSError as exc:
        if exc.filename is not None or exc.errno is None:
            raise
        # write() names no file; the user needs to know which (and where) it was.
        raise OSError(exc.errno, f"{exc.strerror} (job {record.id}'s script)", str(path)) from exc
    return SubmitRequest(
        job_id=record.id,
        name=scheduler_name(
            registry.token, record.id, spec.display_name, record.attempt, spec.resources.name_prefix
        ),
        spec=spec,
        script_path=str(path),
        job_dir=record.job_dir,
        dependencies=dep.native,
        dependency_owners=dep.owners,
        env=env,
    )


@dataclass
class _HandOver:
    """One hand-over, and how far it got."""

    registry: Registry
    backend: Backend
    todo: Todo
    env: dict[str, str]
    #: (job id, native id or the error), in order, for each job the backend answered.
    outcomes: list[tuple[str, str | SubmitError]] = field(default_factory=list)
    #: How many of the outcomes have their submissions recorded already.
    marked: int = 0
    #: How many jobs, from the first, were handed to the backend (those without an
    #: outcome may have reached it).
    handed: int = 0

    @property
    def failed(self) -> list[tuple[str, SubmitError]]:
        return [(i, r) for i, r in self.outcomes if isinstance(r, SubmitError)]

    def run(self) -> None:
        try:
            # Every script first: a file that cannot be written stops the batch before
            # anything reached the scheduler. (Written in one go they also cost half as
            # much as one before each submit: the submit command leaves caches cold.)
            requests = [write_job(self.registry, self.backend, job, self.env) for job in self.todo]
            if self.backend.capabilities.bulk_submit:
                self.handed = len(requests)
                results = self.backend.submit_many(requests) if requests else []
                self.outcomes = [
                    (r.id, result) for (r, _, _), result in zip(self.todo, results, strict=True)
                ]
            else:
                self._one_at_a_time(requests)
        except BaseException as exc:
            done = len(self.outcomes)
            maybe, never = self.todo[done : self.handed], self.todo[max(done, self.handed) :]
            self._abandon(exc, maybe=maybe, never=never)
            raise
        self._finish()

    def _one_at_a_time(self, requests: Sequence[SubmitRequest]) -> None:
        """Submit in order; a refusal stops nothing. The submitted ones are recorded as
        they go (one transaction per :data:`MARK_EVERY_S`)."""
        last_mark = time.monotonic()
        for request in requests:
            self.handed += 1
            try:
                result: str | SubmitError = self.backend.submit(request)
            except SubmitError as exc:
                result = exc  # refused, or unsure: the next one goes on
            self.outcomes.append((request.job_id, result))
            if time.monotonic() - last_mark >= MARK_EVERY_S:
                self._mark()
                last_mark = time.monotonic()

    def _mark(self) -> None:
        """Record the submissions not recorded yet.

        Raises:
            RegistryError: naming the jobs the scheduler took that it could not record.
        """
        upto = len(self.outcomes)
        new = [(i, r) for i, r in self.outcomes[self.marked : upto] if isinstance(r, str)]
        try:
            if new:
                self.registry.mark_submitted_many(new)
        except RegistryError as exc:
            self.marked = upto  # named in the error; not to be tried again
            raise _not_recorded(self.backend.name, new, exc) from exc
        self.marked = upto

    def _finish(self) -> None:
        try:
            self._mark()
        except RegistryError:
            # Even when recording the submitted ones failed, the refused ones are recorded.
            self._quietly(self._record_failures)
            raise
        self._record_failures()

    def _record_failures(self) -> None:
        """Record the refused submissions and those of unknown outcome."""
        failed = self.failed
        refused = [(i, str(e)) for i, e in failed if not e.maybe_submitted]
        if refused:
            self.registry.mark_submit_failed_many(refused)
        unsure = [
            StatusUpdate(i, JobState.UNKNOWN, reason=maybe_submitted(e))
            for i, e in failed
            if e.maybe_submitted
        ]
        if unsure:
            self.registry.apply(unsure)

    def _abandon(self, exc: BaseException, *, maybe: Todo, never: Todo) -> None:
        """Record what is known of every job once ``exc`` stopped the hand-over: the
        outcomes so far, ``maybe`` as ``unknown`` (they may have reached the backend),
        ``never`` as never having reached it. Raises nothing: the error to report is
        ``exc``."""
        error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__

        def stopped() -> None:
            if maybe:
                self.registry.apply(
                    [
                        StatusUpdate(r.id, JobState.UNKNOWN, reason=maybe_submitted(error))
                        for r, _, _ in maybe
                    ]
                )
            if never:
                self.registry.mark_submit_failed_many(
                    [(r.id, f"{_NOT_REACHED}: {error}") for r, _, _ in never]
                )

        for step in (self._mark, self._record_failures, stopped):
            self._quietly(step)

    def _quietly(self, step: Callable[[], None]) -> None:
        """Run a recording step whose error only goes to the log: another one is being
        reported (a warning line: a traceback here would read as a crash). The jobs it
        could not record keep naming this process as their submitter: once it is gone,
        the next status settles them (recovery)."""
        try:
            step()
        except Exception as exc:
            jobs = [r.id for r, _, _ in self.todo]
            shown = ", ".join(jobs[:5]) + (f" and {len(jobs) - 5} more" if len(jobs) > 5 else "")
            log.warning("jobs %s: could not record how their submission ended: %s", shown, exc)


def _not_recorded(
    backend: str, submitted: Sequence[tuple[str, str]], error: RegistryError
) -> RegistryError:
    """The error for jobs the scheduler accepted that the registry could not record:
    they run, and say which (their records still name this process as submitting
    them, so once it has exited the next status finds them by their names)."""
    jobs = ", ".join(f"{job_id} (native id {native})" for job_id, native in submitted[:5])
    more = f" and {len(submitted) - 5} more" if len(submitted) > 5 else ""
    return RegistryError(
        f"job {jobs}{more} reached {backend} but could not be recorded as submitted "
        f"({error}); `jobfleet status` finds it by its name once the registry can be written"
    )
