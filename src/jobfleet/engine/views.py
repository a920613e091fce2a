"""What the CLI shows: reports of records (fresh or last known), schedulers'
queues with this registry's eyes (which rows are our jobs), and a fleet's views
that record nothing (:class:`FleetViews`: recorded jobs, queues, output paths)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from jobfleet.errors import BackendError, CommandError, FilesRemovedError, SpecError
from jobfleet.naming import name_on_scheduler
from jobfleet.runner import within
from jobfleet.states import JobRecord

if TYPE_CHECKING:
    from jobfleet.backends.base import QueueEntry
    from jobfleet.config import Config
    from jobfleet.engine.pool import BackendPool
    from jobfleet.registry import Registry

__all__ = [
    "FleetViews",
    "QueueReport",
    "QueueRow",
    "Report",
    "ask_queues",
    "counted",
    "element_counts",
    "queue_rows",
    "recent_summaries",
]


def user_name() -> str | None:
    """:func:`jobfleet.backends.base.user_name`, imported when a queue is shown (a
    ``status`` imports no backend)."""
    from jobfleet.backends import base

    return base.user_name()


@dataclass(frozen=True, slots=True)
class Report:
    """Records as fresh as they could be made, and the backends that did not answer.

    Attributes:
        records: every job asked about; those of an unanswering backend as last known.
        unanswered: backend name -> why it could not be asked.
        errors: backend name -> the error itself.
    """

    records: list[JobRecord]
    unanswered: dict[str, str] = field(default_factory=dict)
    errors: dict[str, CommandError] = field(default_factory=dict)
    #: job id -> {state: how many elements}, for the arrays read without their
    #: elements (``Fleet.status_report(ended_elements=False)``).
    element_counts: dict[str, dict[str, int]] = field(default_factory=dict)

    def refreshed(self, record: JobRecord) -> bool:
        """Whether ``record`` is as its backend answered now (not its last known state)."""
        return record.backend not in self.unanswered

    def counts(self, record: JobRecord) -> dict[str, int] | None:
        """How many elements of the array ``record`` are in each state; None for a
        single job."""
        found = self.element_counts.get(record.id)
        return found if found is not None else element_counts(record)


def element_counts(record: JobRecord) -> dict[str, int] | None:
    """How many elements of ``record`` are in each state; None for a single job."""
    if not record.elements:
        return None
    counts: dict[str, int] = {}
    for element in record.elements.values():
        counts[element.state.value] = counts.get(element.state.value, 0) + 1
    return counts


def recent_summaries(limit: int, home: str | None = None) -> list[tuple[str, str, str]]:
    """``(id, name, state)`` of the ``limit`` most recent jobs of the registry in
    ``home`` (default: ``$JOBFLEET_HOME`` or the per-user one), newest first: no
    configuration read, nothing written (shell completion lists them as one types)."""
    from jobfleet.registry import Registry

    registry = Registry(home)
    try:
        return registry.recent_summaries(limit)
    finally:
        registry.close()


def counted(
    registry: Registry,
    job_ids: Sequence[str] | None,
    limit: int,
    ended_elements: bool,
    settling_whole: bool = False,
) -> tuple[list[JobRecord], dict[str, dict[str, int]]]:
    """The records of ``job_ids`` (None: the ``limit`` most recent) and, read without
    ``ended_elements``, the element counts of the arrays that ended, which come
    without their elements (counted by the registry, not read). ``settling_whole``:
    but an array that ended within the hour its usage may still fill in
    (:data:`~jobfleet.engine.polling.USAGE_SETTLES_AT_MOST_S`) comes whole, to be polled."""
    ids = list(job_ids or ())
    if ids:
        records = registry.get_many(ids, ended_elements=ended_elements)
    else:
        records = registry.recent(limit, ended_elements=ended_elements)
    if ended_elements:
        return records, {}
    counts = registry.element_counts([r.id for r in records if r.state.is_terminal])
    if settling_whole:
        from jobfleet.engine.polling import USAGE_SETTLES_AT_MOST_S

        now = time.time()
        recent = [
            r.id
            for r in records
            if r.id in counts and now - r.updated_at <= USAGE_SETTLES_AT_MOST_S
        ]
        if recent:
            whole = {r.id: r for r in registry.get_many(recent)}
            records = [whole.get(r.id, r) for r in records]
            counts = {i: c for i, c in counts.items() if i not in whole}
    return records, counts


@dataclass(frozen=True, slots=True)
class QueueRow:
    """One row of a scheduler's queue (:meth:`Fleet.queue`), with its jobfleet id.

    Attributes:
        job_id: the id of the job in this registry; None for any other job.
        backend: the backend whose queue it is.
        entry: the row as the scheduler shows it.
    """

    job_id: str | None
    backend: str
    entry: QueueEntry

    def to_dict(self) -> dict[str, object]:
        """The JSON form used by ``jobfleet queue --json`` (a stable contract)."""
        return {"id": self.job_id, "backend": self.backend, **self.entry.to_dict()}


@dataclass(frozen=True, slots=True)
class QueueReport:
    """The queues of several backends (:meth:`Fleet.queues`).

    Attributes:
        rows: the rows of every backend that answered, backend by backend.
        asked: the backends asked, in order.
        unanswered: backend name -> why it could not be asked (its rows are missing).
        skipped: backend name -> why it was not asked (it cannot list its queue).
    """

    rows: list[QueueRow]
    asked: list[str]
    unanswered: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)


def queue_rows(
    registry: Registry, backend: str, entries: Sequence[QueueEntry], me: str | None
) -> list[QueueRow]:
    """Each queue row of ``backend`` with the id of its job in ``registry``, if it is one.

    A row is this registry's job when its native id is one the registry
    recorded for this backend, it belongs to this user ``me`` (the registry is
    this user's; None: a user without a name, every row counts), and its name
    is the one the job has on its scheduler: a native id the scheduler reused
    for somebody else's job is not ours.
    """
    token = registry.token
    found: dict[str, JobRecord | None] = {}
    rows: list[QueueRow] = []
    for entry in entries:
        record = None
        if me is None or entry.user == me:
            # One indexed lookup per job, not per row: an array has many rows.
            if entry.native_id not in found:
                found[entry.native_id] = registry.find_native(backend, entry.native_id)
            record = found[entry.native_id]
        # Submitted jobs carry jobfleet's name (per attempt); adopted ones keep their own.
        ours = record is not None and entry.name in (
            name_on_scheduler(record, token),
            record.name,
        )
        rows.append(QueueRow(record.id if record is not None and ours else None, backend, entry))
    return rows


def ask_queues(
    registry: Registry,
    backends: BackendPool,
    names: Sequence[str],
    *,
    refuse: bool,
    all_users: bool,
    within_s: float,
) -> QueueReport:
    """The queues of the backends ``names``, asked at once within ``within_s``
    (see :meth:`Fleet.queues`).

    Args:
        refuse: raise for a backend that cannot list its queue (it was named by
            the user) rather than skip it.

    Raises:
        ConfigError: an unknown backend.
        BackendError: ``refuse`` and a backend that cannot list its queue.
    """
    asked: list[str] = []
    skipped: dict[str, str] = {}
    for name in names:
        if backends.get(name).capabilities.queue_view:
            asked.append(name)
        elif refuse:
            raise BackendError(f"the {name} backend cannot list its queue")
        else:
            skipped[name] = "it cannot list its queue"
    with within(within_s):
        answers = backends.ask_each(dict.fromkeys(asked, lambda be: be.list_queue(all_users)))
    me = user_name()
    rows: list[QueueRow] = []
    unanswered: dict[str, str] = {}
    for name, answer in answers.items():
        if isinstance(answer, CommandError):
            unanswered[name] = str(answer)
        else:
            rows += queue_rows(registry, name, answer, me)
    return QueueReport(rows, asked, unanswered, skipped)


class FleetViews:
    """What a :class:`~jobfleet.engine.fleet.Fleet` shows without recording anything:
    the registry's jobs as last recorded, the schedulers' queues with this registry's
    ids, where a job's output goes (the CLI's views; ``Fleet`` is one)."""

    config: Config
    registry: Registry
    _backends: BackendPool

    def records(self, job_ids: Sequence[str]) -> list[JobRecord]:
        """The recorded state of these jobs, nothing asked.

        Raises:
            UnknownJobError: an id is not in the registry.
        """
        return self.registry.get_many(list(job_ids))

    def log_path(
        self,
        job_id: str,
        *,
        index: int | None = None,
        stream: Literal["stdout", "stderr"] = "stdout",
    ) -> Path:
        """Where a job's (or an array element's) output goes.

        Raises:
            SpecError: an array without ``index``, or an index it does not have.
            FilesRemovedError: it was in the job's directory, which ``jobfleet clean``
                removed.
        """
        # One element read, not the array's every one (a future's stdout() asks per call).
        record = self.registry.get_with_element(job_id, index)
        if index is None:
            first = self.registry.first_indices(job_id, 5)
            if first:
                shown = ", ".join(map(str, first))
                raise SpecError("index", f"job {job_id} is an array; pass --index N (e.g. {shown})")
        elif index not in record.elements:
            raise SpecError("index", f"job {job_id} has no element {index}")
        from jobfleet.jobdir import located, stream_path, user_stream
        from jobfleet.spec import spec_from_dict

        spec = spec_from_dict(record.spec)
        path = Path(stream_path(spec, record.job_dir, stream, index, job_id=record.id))
        if user_stream(spec, stream) is None:  # in the job directory: maybe written flat
            path = Path(located(str(path)))
        if record.cleaned_at is not None and path.is_relative_to(record.job_dir):
            # A path the spec names outside the job's directory is never removed.
            raise FilesRemovedError(record.id, record.cleaned_at, f"its {stream} was {path}")
        return path

    def queues(
        self,
        backends: Sequence[str] | None = None,
        *,
        all_users: bool = False,
        within_s: float | None = None,
    ) -> QueueReport:
        """:meth:`queue` of several backends at once, never blind: one that does not
        answer (within ``within_s``, default ``wait.status_timeout``) is named in
        :attr:`QueueReport.unanswered` and the others' rows are returned.

        Args:
            backends: the backends to ask; default: the configured one and those
                of the registry's unfinished jobs (one that cannot list its queue
                is then skipped, and named in :attr:`QueueReport.skipped`).
            all_users: everybody's jobs, not only this user's.
            within_s: the longest wait for the schedulers.

        Raises:
            ConfigError: an unknown backend.
            BackendError: a backend named in ``backends`` cannot list its queue.
        """
        names = list(dict.fromkeys(self._backends.resolve(n) for n in backends or ()))
        configured = self._backends.resolve(self.config.backend)
        default = [configured, *(r.backend for r in self.registry.unfinished())]
        return ask_queues(
            self.registry,
            self._backends,
            names or list(dict.fromkeys(default)),
            refuse=bool(names),
            all_users=all_users,
            within_s=self.config.wait.status_timeout_s if within_s is None else within_s,
        )

    def unfinished(self, backend: str | None = None) -> list[JobRecord]:
        """The registry's jobs not settled yet (of one backend, or of all), oldest
        first, as last recorded: :meth:`refresh` them for their current states.

        Includes jobs not yet submitted and failed ones about to be retried.
        """
        return self.registry.unfinished(backend)

    def named(self, names: Sequence[str]) -> list[JobRecord]:
        """The registry's jobs with one of these names, oldest first, as last recorded
        (a program that died while submitting finds what it submitted by name)."""
        return self.registry.named(names)

    def element_counts(self, job_ids: Sequence[str]) -> dict[str, dict[str, int]]:
        """How many elements of each array among ``job_ids`` are in each state, as
        recorded, counted without reading them (:meth:`Registry.element_counts
        <jobfleet.registry.Registry.element_counts>`)."""
        return self.registry.element_counts(job_ids)

    def elements_json(self, job_id: str) -> list[tuple[int, str]]:
        """Each element of an array as recorded, in index order, with its ``--json``
        object encoded on one line (:meth:`Registry.elements_json
        <jobfleet.registry.Registry.elements_json>`): an ended array's report of any
        size without a record of each element."""
        return self.registry.elements_json(job_id)

    def recent(self, limit: int = 20, *, ended_elements: bool = True) -> list[JobRecord]:
        """The ``limit`` most recently created jobs, newest first, as last
        recorded (:meth:`status` gives them fresh); ``ended_elements``: see
        :meth:`Registry.recent <jobfleet.registry.Registry.recent>`."""
        return self.registry.recent(limit, ended_elements=ended_elements)

    def queue(self, backend: str | None = None, *, all_users: bool = False) -> list[QueueRow]:
        """Every unfinished job the scheduler knows for this user (``all_users``:
        everybody's), jobfleet's or not, in one scheduler call; each row with the
        id of its job in this registry, if it is one of its jobs
        (:func:`~jobfleet.engine.views.queue_rows` says when).

        Raises:
            ConfigError: an unknown backend.
            CommandError: the scheduler could not be asked.
            BackendError: this backend cannot list its queue.
        """
        be = self._backends.get(backend or self.config.backend)
        return queue_rows(self.registry, be.name, be.list_queue(all_users), user_name())
