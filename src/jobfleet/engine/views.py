"""What the CLI shows: reports of records (fresh or last known), and schedulers'
queues with this registry's eyes (which rows are our jobs)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from jobfleet.backends.base import QueueEntry, user_name
from jobfleet.engine.pool import BackendPool
from jobfleet.errors import BackendError, CommandError
from jobfleet.naming import name_on_scheduler
from jobfleet.registry import Registry
from jobfleet.runner import within
from jobfleet.states import JobRecord

__all__ = ["QueueReport", "QueueRow", "Report", "ask_queues", "queue_rows"]


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

    def refreshed(self, record: JobRecord) -> bool:
        """Whether ``record`` is as its backend answered now (not its last known state)."""
        return record.backend not in self.unanswered


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
