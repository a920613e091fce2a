"""What every backend offers, and the records it exchanges with the rest of jobfleet.

A backend turns a rendered job script into a scheduler submission, answers
"what state are these jobs in" for many jobs at once, and cancels. It never
touches the registry: the caller (:class:`jobfleet.fleet.Fleet`) records what
the backend reports, before reporting it to anybody.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import ClassVar

from jobfleet.errors import SubmitError
from jobfleet.spec import DepKind, JobSpec
from jobfleet.states import JobState

__all__ = ["Backend", "NativeStatus", "SubmitRequest"]


@dataclass(frozen=True, slots=True)
class SubmitRequest:
    """Everything a backend needs to submit one job.

    Attributes:
        job_id: the jobfleet id (already recorded in the registry).
        name: the job name to give the scheduler.
        spec: the job description.
        script_path: the rendered job script, already on disk.
        job_dir: the job's directory (logs, exit-code files).
        dependencies: the spec's dependencies with jobfleet ids replaced by native ids.
        env: environment of the submitter, for backends that must carry it over
            (schedulers do this themselves, e.g. sbatch's ``--export=ALL``).
    """

    job_id: str
    name: str
    spec: JobSpec
    script_path: str
    job_dir: str
    dependencies: tuple[tuple[DepKind, tuple[str, ...]], ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class NativeStatus:
    """A job's state as its scheduler reports it, already mapped to jobfleet's states.

    Attributes:
        state: the state of a single job; for arrays, the aggregate (informative only:
            the registry recomputes it from the elements).
        exit_code: exit code when known.
        reason: why it is pending, or how it ended, in the scheduler's words.
        elements: for arrays, index -> (state, exit_code, reason).
    """

    state: JobState
    exit_code: int | None = None
    reason: str | None = None
    elements: Mapping[int, tuple[JobState, int | None, str | None]] = field(default_factory=dict)


class Backend(abc.ABC):
    """The interface the rest of jobfleet uses for any scheduler."""

    #: Name used in configuration and on the command line.
    name: ClassVar[str]
    #: Script dialect (see :mod:`jobfleet.script`).
    dialect: ClassVar[str]

    @abc.abstractmethod
    def submit(self, request: SubmitRequest) -> str:
        """Submit one job and return its native id.

        Raises:
            SubmitError: the scheduler refused the job or could not be reached.
        """

    def submit_many(self, requests: Sequence[SubmitRequest]) -> list[str | SubmitError]:
        """Submit several jobs; each result is a native id or the error for that job.

        Backends that can submit in bulk override this.
        """
        results: list[str | SubmitError] = []
        for request in requests:
            try:
                results.append(self.submit(request))
            except SubmitError as exc:
                results.append(exc)
        return results

    @abc.abstractmethod
    def submit_argv(self, request: SubmitRequest) -> list[str] | None:
        """The command a submission would run, for dry runs; None when no command is run."""

    @abc.abstractmethod
    def poll(self, native_ids: Sequence[str]) -> dict[str, NativeStatus]:
        """The states of many jobs at once, in as few scheduler calls as possible.

        A job absent from the result is one the scheduler does not know (now).

        Raises:
            CommandError: the scheduler could not be asked. Callers must then
                keep every job's last known state: an error is never an answer.
        """

    @abc.abstractmethod
    def cancel(self, native_ids: Sequence[str]) -> None:
        """Ask the scheduler to cancel these jobs (all their elements)."""

    def check_request(self, spec: JobSpec) -> None:  # noqa: B027 - optional hook
        """Raise :class:`jobfleet.errors.SpecError` when this backend cannot run ``spec``."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release what the backend holds (connections, files)."""
