"""What every backend offers, and the records it exchanges with the rest of jobfleet.

A backend turns a rendered job script into a scheduler submission, answers
"what state are these jobs in" for many jobs at once, and cancels. It never
touches the registry: the caller (:class:`jobfleet.engine.fleet.Fleet`) records what
the backend reports, before reporting it to anybody.
"""

from __future__ import annotations

import abc
import importlib
import os
import pwd
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from jobfleet.errors import BackendError, SubmitError
from jobfleet.spec import DepKind, JobSpec
from jobfleet.states import JobState
from jobfleet.usage import Usage

if TYPE_CHECKING:  # the script renderer is for submitting: a poll goes without it
    from jobfleet.runner import Runner
    from jobfleet.script import Dialect

__all__ = [
    "Backend",
    "BackendType",
    "Capabilities",
    "NativeStatus",
    "PollTarget",
    "QueueEntry",
    "SubmitRequest",
    "user_name",
]


@dataclass(frozen=True, slots=True)
class SubmitRequest:
    """Everything a backend needs to submit one job.

    Attributes:
        job_id: the jobfleet id (already recorded in the registry).
        name: the job name to give the scheduler.
        spec: the job description.
        script_path: the rendered job script, already on disk.
        job_dir: the job's directory (logs, exit-code files).
        dependencies: the spec's dependencies with jobfleet ids replaced by native ids
            (dependencies on jobs that already ended are settled by the caller).
        dependency_owners: native id -> jobfleet id, for each native id above.
        env: environment of the submitter, for backends that must carry it over
            (schedulers do this themselves, e.g. sbatch's ``--export=ALL``).
    """

    job_id: str
    name: str
    spec: JobSpec
    script_path: str
    job_dir: str
    dependencies: tuple[tuple[DepKind, tuple[str, ...]], ...] = ()
    dependency_owners: Mapping[str, str] = field(default_factory=dict)
    env: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PollTarget:
    """A tracked job, as a backend needs it to find the job's state.

    Attributes:
        job_id: the jobfleet id (lets a backend check that a native id still
            belongs to this job, as native ids can be reused).
        native_id: the scheduler's id.
        job_dir: the job's directory, where its exit-code files are.
        submitted_at: when it was recorded (Unix time), to bound accounting queries.
        indices: the array indices, or None for a single job.
        name: the job's name on the scheduler (see :func:`jobfleet.naming.scheduler_name`).
        ended: the job has ended already and only its usage is asked for (accounting
            fills some of it in after the end: SLURM's MaxRSS); its state is known.
            Callers list such targets after the others (a command-line backend looks
            for them only when the last target is one).
    """

    job_id: str
    native_id: str
    job_dir: str
    submitted_at: float
    indices: tuple[int, ...] | None = None
    name: str = ""
    ended: bool = False


@dataclass(frozen=True, slots=True)
class NativeStatus:
    """A job's state as its scheduler reports it, already mapped to jobfleet's states.

    Attributes:
        state: the state of a single job; for arrays, the aggregate (informative only:
            the registry recomputes it from the elements).
        exit_code: exit code when known.
        reason: why it is pending, or how it ended, in the scheduler's words.
        elements: for arrays, index -> (state, exit_code, reason).
        usage: what the job used, where the backend knows some of it (mostly with the
            report that ends it); None: nothing new.
        element_usage: for arrays, index -> what that element used.
    """

    state: JobState
    exit_code: int | None = None
    reason: str | None = None
    elements: Mapping[int, tuple[JobState, int | None, str | None]] = field(default_factory=dict)
    usage: Usage | None = None
    element_usage: Mapping[int, Usage] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class QueueEntry:
    """One row of a scheduler's queue: a job, a started array element, or the
    elements of an array still waiting (one row for all of them, as the
    scheduler itself shows them).

    Attributes:
        native_id: the scheduler's id of the job, or of the whole array for an
            array's rows (what the registry records as a job's native id).
        tasks: for an array's rows, the element index (``"4"``) or the waiting
            elements in the scheduler's notation (``"5-10%2"``, ``"3-10:1"``);
            None for a job that is no array.
        display_id: the id as the scheduler writes it (``123``, ``123_4``,
            ``123_[5-10%2]``; Grid Engine ``45``, ``45.3``, ``45.4-10:1``).
        name: the job's name on the scheduler.
        user: who owns it.
        state: jobfleet's state for ``native_state`` (see each backend's table).
        native_state: the scheduler's own state code (``PENDING``, ``hqw``).
        elapsed_s: seconds since it started; None while it waits.
        nodes: where it runs; None until it does.
        queue: its partition or queue, when known.
        reason: why it waits or is held, in the scheduler's words, if it says.
    """

    native_id: str
    tasks: str | None
    display_id: str
    name: str
    user: str
    state: JobState
    native_state: str
    elapsed_s: int | None = None
    nodes: str | None = None
    queue: str | None = None
    reason: str | None = None

    def to_dict(self) -> dict[str, object]:
        """The JSON form used by ``jobfleet queue --json`` (a stable contract)."""
        return {
            "native_id": self.native_id,
            "tasks": self.tasks,
            "display_id": self.display_id,
            "name": self.name,
            "user": self.user,
            "state": self.state.value,
            "native_state": self.native_state,
            "elapsed_s": self.elapsed_s,
            "nodes": self.nodes,
            "queue": self.queue,
            "reason": self.reason,
        }


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a backend's scheduler can do: the engine and the CLI branch on these,
    never on a backend's name.

    Attributes:
        arrays: runs array jobs.
        max_array_size: most elements in one array; None for jobfleet's own limit.
        max_concurrency: honours an array's "at most N at once" (SLURM's ``%N``).
        stepped_indices: takes a range with a step (``1-9:2``).
        listed_indices: takes several ranges or single indices (``1,3,7-9``); Grid
            Engine takes one range per array.
        dependencies: the dependency kinds the scheduler honours itself. For the
            others it only waits until the predecessors ended (Grid Engine's
            ``-hold_jid``): the job script checks the outcome
            (:class:`jobfleet.scriptdeps.Requirement`).
        signals: can send a chosen signal to a running job (``cancel --signal``).
        accounting: can report how a job that left the queue ended.
        usage_settles_s: how long after a job's end its accounting may still fill in
            what it used (SLURM samples memory): jobs that ended less long ago with
            their usage incomplete are asked about again, for their usage only (0: the
            report that ends a job carries all the usage there will be; at most an
            hour is honoured).
        queue_view: can list its whole queue (``jobfleet queue``).
        shared_queue: its queue holds other users' jobs too (``--all-users`` shows
            more); False for a per-user queue such as the local backend's.
        polls_scheduler: polling asks a shared scheduler, whose rate limit polls must
            respect (``wait.min_gap``); False for a backend reading its own queue.
        submit_in_flight_s: how long a submission may still be running after the
            process that started it died (its outcome is not known before then): a
            command's time-out for the command-line backends, 0 for the local one,
            whose enqueue cannot outlive its caller.
        peak_memory_per_process: the peak memory it records is one process's (the
            largest), not a task's total (the local agent's ``ru_maxrss`` from
            ``wait4``): ``jobfleet show`` says so in its memory line and hint.
        bulk_submit: its ``submit_many`` puts many jobs on the scheduler in one step
            (the local backend's one queue transaction): the engine hands it a whole
            batch at once. Otherwise the engine calls ``submit`` for one job at a
            time, in order, and records the outcome of each as it goes (a stop
            half-way leaves the jobs before it recorded submitted, the others
            failed or unknown).
    """

    arrays: bool = True
    max_array_size: int | None = None
    max_concurrency: bool = True
    stepped_indices: bool = True
    listed_indices: bool = True
    dependencies: frozenset[DepKind] = frozenset(DepKind)
    signals: bool = True
    accounting: bool = True
    usage_settles_s: float = 0.0
    queue_view: bool = True
    shared_queue: bool = True
    polls_scheduler: bool = True
    submit_in_flight_s: float = 0.0
    peak_memory_per_process: bool = False
    bulk_submit: bool = False


#: Backend class attributes of jobfleet 0.1, and what replaces each.
_RETIRED_FLAGS = {
    "holds_mean_after_any": "capabilities.dependencies: the kinds the scheduler honours",
    "polls_scheduler": "capabilities.polls_scheduler",
    "submit_in_flight_s": "capabilities.submit_in_flight_s",
    "dialect": "script_dialect() returning the Dialect",
}


class Backend(abc.ABC):
    """The interface the rest of jobfleet uses for any scheduler."""

    #: Name used in configuration and on the command line.
    name: ClassVar[str]
    #: What the scheduler can do; a backend whose settings change it sets its own
    #: in ``__init__``.
    capabilities: Capabilities = Capabilities()
    #: What a job option (``"resources.cores"``) does on this backend where neither its
    #: job script nor its submit command shows it (``jobfleet options`` reads the
    #: rest off a dry run).
    option_notes: ClassVar[Mapping[str, str]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # Flags of jobfleet 0.1, now Capabilities: ignoring one silently could run a
        # job whose after-ok dependency failed.
        old = [f for f in _RETIRED_FLAGS if f in cls.__dict__]
        if old:
            raise TypeError(
                f"{cls.__name__}: {', '.join(old)} is now part of Capabilities "
                f"({'; '.join(_RETIRED_FLAGS[f] for f in old)}); see docs/backends.md"
            )

    @abc.abstractmethod
    def submit(self, request: SubmitRequest) -> str:
        """Submit one job and return its native id.

        Raises:
            SubmitError: the scheduler refused the job or could not be reached.
        """

    def submit_many(self, requests: Sequence[SubmitRequest]) -> list[str | SubmitError]:
        """Submit several jobs; each result is a native id or the error for that job.

        Backends that can submit in bulk override this and set
        :attr:`Capabilities.bulk_submit`, without which the engine calls :meth:`submit`.
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
    def poll(self, targets: Sequence[PollTarget]) -> dict[str, NativeStatus]:
        """The states of many jobs at once, in as few scheduler calls as possible.

        Keyed by native id. A job absent from the result is one the scheduler
        does not know (now) and that left no exit-code file.

        Raises:
            CommandError: the scheduler could not be asked. Callers must then
                keep every job's last known state: an error is never an answer.
        """

    @abc.abstractmethod
    def cancel(
        self,
        native_ids: Sequence[str],
        *,
        indices: Sequence[int] | None = None,
        signal: str | None = None,
    ) -> dict[str, list[int | None]]:
        """Ask the scheduler to cancel these jobs, or to signal them.

        Args:
            native_ids: the jobs.
            indices: only these elements of each (array) job; None for all.
            signal: send this signal (a name such as ``TERM``) to the running
                jobs instead of cancelling them: a graceful stop the job can handle.

        Returns:
            Elements (native id -> indices, None for a single job) that the
            scheduler removed at once without a trace a poll could find later
            (Grid Engine deleting a pending job): the caller records them.
        """

    @abc.abstractmethod
    def find_submitted(self, name: str, job_id: str) -> str | None:
        """The native id of the job submitted as ``name`` for jobfleet job ``job_id``.

        None when the scheduler answered that it has no such job.

        Raises:
            CommandError: the scheduler could not be asked; nothing is known.
        """

    def list_queue(self, all_users: bool = False) -> list[QueueEntry]:
        """Every unfinished job the scheduler knows for this user, jobfleet's or
        not (``all_users``: everybody's), in ONE scheduler call.

        Raises:
            CommandError: the scheduler could not be asked.
            BackendError: this backend cannot list its queue.
        """
        raise BackendError(f"the {self.name} backend cannot list its queue")

    @abc.abstractmethod
    def script_dialect(self) -> Dialect:
        """The dialect job scripts are rendered in (with this backend's settings)."""

    def check_request(self, spec: JobSpec) -> None:  # noqa: B027 - optional hook
        """Raise :class:`jobfleet.errors.SpecError` when this backend cannot run ``spec``."""

    def submit_files(self, request: SubmitRequest, script: str) -> dict[str, str]:
        """Files besides the script that submitting ``request`` writes (path -> text),
        for a dry run to show; none by default (HTCondor: its submit description)."""
        return {}

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release what the backend holds (connections, files)."""


@dataclass(frozen=True, slots=True)
class BackendType:
    """A backend as the catalog knows it, before anything heavy is imported.

    Each backend package names one in the entry-point group ``jobfleet.backends``
    (see :mod:`jobfleet.backends` and docs/backends.md).

    Attributes:
        name: the name configurations and the command line use (the entry point's).
        settings: the settings dataclass; its fields declare the keys of the
            configuration section ``<name>:`` (:func:`jobfleet.settings.option`).
        factory: ``factory(settings, runner=..., home=...)`` builds the backend;
            it imports the backend's module, so that only a backend in use is loaded.
        summary: one line for listings.
        detect: ``detect(runner)`` looks for the backend's scheduler on this machine
            (:mod:`jobfleet.backends.detect`): a ``Found``, or None when its commands
            are not on PATH; None for a backend with nothing to look for.
        formats: ``formats()`` lists the outputs its parsers read
            (:class:`jobfleet.backends.formats.OutputFormat`, for ``jobfleet debug
            parse``); loaded on use, like the factory.
        usage_settles_s: its :attr:`Capabilities.usage_settles_s`, when the backend
            can tell it without being made (a status of ended jobs then loads no
            backend); None: the backend is made and asked.
    """

    name: str
    settings: type[Any]
    factory: Callable[..., Backend]
    summary: str = ""
    detect: Callable[[Runner | None], Any] | None = None
    formats: Callable[[], Sequence[Any]] | None = None
    usage_settles_s: float | None = None

    def create(self, settings: Any, *, runner: Runner | None, home: Path) -> Backend:
        """The backend, with these settings (an instance of :attr:`settings`).

        Args:
            settings: the configured settings.
            runner: runs scheduler commands (None: real subprocesses).
            home: the jobfleet home, for backends that keep files of their own.
        """
        return self.factory(settings, runner=runner, home=home)


def lazy_names(package: str, where: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for a backend package's light ``__init__``: each name
    of ``where`` is loaded on first use from the submodule it maps to, so the
    catalog's scan imports no backend's heavy modules.

    >>> __getattr__ = lazy_names("jobfleet.backends.slurm", {"STATE_MAP": "parse"})
    >>> __getattr__("STATE_MAP")["RUNNING"]
    <JobState.RUNNING: 'running'>
    """

    def load(name: str) -> Any:
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f"{package}.{module}"), name)

    return load


def user_name() -> str | None:
    """This process's user name, from the password database; None when the
    user has no entry there (e.g. an unnamed uid in a container)."""
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return None
