"""Polling: ask each backend about its unfinished jobs at once, record what changed.

Nothing else happens here: no submission, no retry, no reconciling (those are
:mod:`jobfleet.engine.recovery`'s, run by the fleet after a poll). One rule
belongs to the poll itself because it is read off the poll's answers: a job
(or element) the scheduler answered it does not know, in its queue or its
accounting, and that left no exit-code file, becomes ``lost`` only after
``wait.lost_after`` AND several answered polls in a row
(:meth:`jobfleet.registry.Registry.track_absence`); a poll that fails
restarts the count and concludes nothing.

What a job used arrives with the report that ends it; where a backend's accounting
fills some of it in later (:attr:`~jobfleet.backends.base.Capabilities.usage_settles_s`),
a job that ended less long ago with its usage incomplete is asked about again, for
its usage only: such a report never changes its state (nor counts as an absence).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from jobfleet.engine.pool import BackendPool
from jobfleet.errors import CommandError, JobfleetError
from jobfleet.naming import name_on_scheduler
from jobfleet.registry import Registry, StatusUpdate
from jobfleet.states import TERMINAL, JobRecord, JobState
from jobfleet.usage import Usage

if TYPE_CHECKING:  # imported when a backend is asked: a refresh of ended jobs asks none
    from jobfleet.backends.base import Backend, NativeStatus, PollTarget

__all__ = ["USAGE_SETTLES_AT_MOST_S", "PollResult", "Poller"]

#: The longest ``usage_settles_s`` honoured: a job that ended longer ago than this is
#: never asked about for its usage (nor its backend looked up to know its settling time).
USAGE_SETTLES_AT_MOST_S = 3600.0

#: When a backend was asked, and what it answered (or why it could not).
_Answer = tuple[float, "Mapping[str, NativeStatus] | CommandError"]


@dataclass(frozen=True, slots=True)
class PollResult:
    """The fresh records of a poll, and the first backend that did not answer.

    Attributes:
        records: every record given, as fresh as this poll could make it.
        unanswered: each backend that could not be asked, with its error (its
            jobs keep their last known state); what the others answered is
            recorded all the same.
    """

    records: list[JobRecord]
    unanswered: dict[str, CommandError] = field(default_factory=dict)


class Poller:
    """Polls and records, for one registry and its backends.

    Args:
        registry: where every change is written before it is returned.
        backends: the backends to ask.
        lost_after_s: gives how long a job may be unknown to an answering
            scheduler before it is ``lost`` (``wait.lost_after``, read at each poll).
    """

    def __init__(
        self, registry: Registry, backends: BackendPool, lost_after_s: Callable[[], float]
    ):
        self.registry = registry
        self.backends = backends
        self.lost_after_s = lost_after_s
        self._targets: dict[tuple[str, str | None, int, bool], PollTarget] = {}
        self._settles: dict[str, float] = {}  # backend -> usage_settles_s

    def refresh(self, records: Iterable[JobRecord]) -> PollResult:
        """Poll the unfinished submitted jobs among ``records``, record changes, and
        return every record fresh.

        Only what differs from the given records is written; a record another
        process may have changed meanwhile (a job it is submitting or has
        retried, a job the scheduler said nothing about) is read again.
        """
        current = {r.id: r for r in records}
        by_backend: dict[str, list[JobRecord]] = {}
        now = time.time()
        for record in current.values():
            if not (record.submitted and record.native_id):
                continue
            if not record.state.is_terminal or self._usage_due(record, now):
                by_backend.setdefault(record.backend, []).append(record)
        updates: list[StatusUpdate] = []
        failed: dict[str, CommandError] = {}
        reread = [
            r.id for r in current.values() if not r.settled and not (r.submitted and r.native_id)
        ]
        for name, (asked_at, answer) in self._ask(by_backend).items():
            if isinstance(answer, CommandError):
                # No answer: nothing is concluded, and absence timers start again.
                self.registry.note_outage(name, asked_at)
                failed[name] = answer
                continue
            found, unanswered = self._conclude(name, by_backend[name], answer, asked_at)
            updates += found
            reread += unanswered
        changed: dict[str, JobRecord] = {}
        if updates:
            changed = {r.id: r for r in self.registry.apply(updates)}
            # An update not applied may be about an attempt the job is no longer on.
            reread += [u.job_id for u in updates if u.job_id not in changed]
        reread = [i for i in dict.fromkeys(reread) if i not in changed]
        changed.update((r.id, r) for r in self.registry.get_many(reread))
        current.update(changed)
        return PollResult(list(current.values()), failed)

    def _ask(self, by_backend: Mapping[str, Sequence[JobRecord]]) -> dict[str, _Answer]:
        """Each backend's answer about its jobs (or why it gave none), with when it
        was asked; all backends at once (:meth:`BackendPool.ask_each`)."""
        targets: dict[str, list[PollTarget]] = {}
        for name, group in by_backend.items():
            mine = targets[name] = [self._target(r) for r in group if not r.state.is_terminal]
            if len(mine) < len(group):
                # Ended jobs (asked about for their usage only) last: see PollTarget.ended.
                mine += [self._target(r) for r in group if r.state.is_terminal]
        asked_at: dict[str, float] = {}

        def poll(name: str) -> Callable[[Backend], Mapping[str, NativeStatus]]:
            def call(backend: Backend) -> Mapping[str, NativeStatus]:
                asked_at[name] = time.time()
                return backend.poll(targets[name])

            return call

        answers = self.backends.ask_each({name: poll(name) for name in targets})
        return {name: (asked_at.get(name, time.time()), a) for name, a in answers.items()}

    def _conclude(
        self,
        name: str,
        group: Sequence[JobRecord],
        statuses: Mapping[str, NativeStatus],
        asked_at: float,
    ) -> tuple[list[StatusUpdate], list[str]]:
        """What one backend said of its jobs, with the lost rule applied; and the jobs
        it said nothing about (their records may be out of date: read them again)."""
        updates: list[StatusUpdate] = []
        absent: dict[str, list[int | None]] = {}
        ended = [r for r in group if r.state.is_terminal]
        if ended:
            group = [r for r in group if not r.state.is_terminal]
            updates += _usage_updates(ended, statuses)
        for record in group:
            status = statuses.get(record.native_id or "")
            if status is None:
                absent[record.id] = _unfinished_indices(record, {})
                continue
            if record.elements:
                missing = _unfinished_indices(record, status.elements)
                if missing:
                    absent[record.id] = missing
            update = StatusUpdate(
                record.id,
                state=None if status.elements else status.state,
                exit_code=status.exit_code,
                reason=status.reason,
                elements=status.elements,
                native_id=record.native_id,
                usage=status.usage,
                element_usage=status.element_usage,
            )
            news = _news(update, record)
            if news is not None:
                updates.append(news)
        natives = {r.id: r.native_id or "" for r in group}
        lost_after = self.lost_after_s()
        lost = self.registry.track_absence(
            name,
            list(natives),
            absent,
            at=asked_at,
            lost_after_s=lost_after,
            natives=natives,
        )
        updates += _lost_updates(lost, natives, lost_after)
        return updates, list(absent)

    def _usage_due(self, record: JobRecord, now: float) -> bool:
        """Whether an ended job is to be asked about again for its usage: it ended
        within its backend's ``usage_settles_s`` and some of its usage is missing.

        The usage is looked at first: an ended job whose usage is complete (most) never
        makes its backend (``status`` of ended jobs works on a read-only home). One
        whose files ``jobfleet clean`` removed is not asked about again either."""
        if record.cleaned_at is not None or now - record.updated_at > USAGE_SETTLES_AT_MOST_S:
            return False  # long ended: no backend is even looked up
        if record.elements:
            if not any(_incomplete(e.usage) for e in record.elements.values()):
                return False
        elif not _incomplete(record.usage):
            return False
        settles = self._settles.get(record.backend)
        if settles is None:
            try:
                settles = self.backends.usage_settles_s(record.backend)
            except JobfleetError:
                # Not configured any more, or cannot be opened here (a read-only home):
                # nobody to ask, and no reason to fail a status over usage.
                settles = 0.0
            self._settles[record.backend] = settles
        return bool(settles) and now - record.updated_at <= min(settles, USAGE_SETTLES_AT_MOST_S)

    def _target(self, record: JobRecord) -> PollTarget:
        """What a backend needs to find ``record``: built once per job and attempt (a
        monitor asks about the same thousands of jobs every few seconds)."""
        ended = record.state.is_terminal
        key = (record.id, record.native_id, record.attempt, ended)
        target = self._targets.get(key)
        if target is None:
            from jobfleet.backends.base import PollTarget

            target = self._targets[key] = PollTarget(
                job_id=record.id,
                native_id=record.native_id or "",
                job_dir=record.job_dir,
                submitted_at=record.created_at,
                indices=tuple(sorted(record.elements)) if record.elements else None,
                name=name_on_scheduler(record, self.registry.token),
                ended=ended,
            )
        return target


def _incomplete(usage: Usage) -> bool:
    """Usage accounting may still fill in: none at all (the job left the queue before
    accounting had it), or a job that ran without its peak memory or end yet. A job
    accounting shows as never started has nothing more to tell."""
    if usage.empty:
        return True
    return usage.started_at is not None and (
        usage.max_memory_bytes is None or usage.ended_at is None
    )


def _usage_updates(
    ended: Sequence[JobRecord], statuses: Mapping[str, NativeStatus]
) -> list[StatusUpdate]:
    """What ended jobs asked about again for their usage used (their states stay)."""
    updates = []
    for record in ended:
        status = statuses.get(record.native_id or "")
        if status is None:
            continue
        usage, element_usage = _new_usage(record, status.usage, status.element_usage)
        if usage is not None or element_usage:
            updates.append(
                StatusUpdate(
                    record.id,
                    native_id=record.native_id,
                    usage=usage,
                    element_usage=element_usage,
                )
            )
    return updates


def _new_usage(
    record: JobRecord, usage: Usage | None, element_usage: Mapping[int, Usage]
) -> tuple[Usage | None, dict[int, Usage]]:
    """Of a report's usage, what tells something the record does not know: the
    registry then merges a few elements' usage, not a whole array's at every poll."""
    if usage is not None and record.usage.merged(usage) == record.usage:
        usage = None
    news = {}
    elements = record.elements
    for index, used in element_usage.items():
        element = elements.get(index)
        # Most reports repeat what the record has: equal, nothing to merge.
        if element is None or used == element.usage:
            continue
        if element.usage.merged(used) != element.usage:
            news[index] = used
    return usage, news


def _lost_updates(
    lost: Mapping[str, list[int | None]], natives: Mapping[str, str], lost_after_s: float
) -> list[StatusUpdate]:
    reason = (
        f"vanished: the scheduler has not known it for {lost_after_s} s of answered polls "
        "and it left no exit-code file (its real outcome is unknown)"
    )
    updates = []
    for job_id, indices in lost.items():
        if indices == [None]:
            updates.append(
                StatusUpdate(job_id, JobState.LOST, reason=reason, native_id=natives[job_id])
            )
        else:
            lost_element = (JobState.LOST, None, reason)
            elements = {i: lost_element for i in indices if i is not None}
            updates.append(StatusUpdate(job_id, elements=elements, native_id=natives[job_id]))
    return updates


def _news(update: StatusUpdate, record: JobRecord) -> StatusUpdate | None:
    """What a backend's report says that the record does not say already (an array's
    elements and usage as they changed, not the whole array); None: nothing."""
    usage, element_usage = _new_usage(record, update.usage, update.element_usage)
    if update.elements:
        elements = {}
        for index, reported in update.elements.items():
            element = record.elements.get(index)
            if element is None or reported != (element.state, element.exit_code, element.reason):
                elements[index] = reported
        if not elements and usage is None and not element_usage:
            return None
        return replace(update, elements=elements, usage=usage, element_usage=element_usage)
    same = (update.state, update.exit_code, update.reason) == (
        record.state,
        record.exit_code,
        record.reason,
    )
    if same and usage is None and not element_usage:
        return None
    return replace(update, usage=usage, element_usage=element_usage)


def _unfinished_indices(record: JobRecord, reported: Mapping[int, object]) -> list[int | None]:
    """The unfinished parts of a job (None: the job itself) a report left out."""
    if not record.elements:
        return [None]
    return [i for i, e in record.elements.items() if e.state not in TERMINAL and i not in reported]
