"""Writing jobs: recording, confirming submissions, applying poll results, retries.

Functions over a :class:`sqlite3.Connection` in a write transaction the caller
opened (see :class:`~jobfleet.registry.store.Registry`), with the time ``now``
the caller read before waiting for it. How a report changes a status is
:mod:`jobfleet.registry.merge`'s to say; this module reads and writes rows.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from jobfleet import owner
from jobfleet.errors import RegistryError
from jobfleet.registry import absences, merge, records, usage
from jobfleet.registry.files import DB_NAME, new_job_dir
from jobfleet.registry.merge import Status
from jobfleet.states import TERMINAL, JobRecord, JobState
from jobfleet.usage import Usage

if TYPE_CHECKING:
    from jobfleet.spec import JobSpec

__all__ = [
    "MAYBE_SUBMITTED",
    "SUBMITTING",
    "NewJob",
    "StatusUpdate",
    "apply",
    "awaits_reconciling",
    "begin_retry",
    "create",
    "mark_cleaned",
    "mark_submit_failed",
    "mark_submitted",
    "stop_retries",
]

log = logging.getLogger(__name__)

#: The reason of a job recorded and not yet submitted, followed by its submitter
#: (see :mod:`jobfleet.owner`): a job whose submitter died is looked for by name.
SUBMITTING = "being submitted by "
#: How the registry marks a job whose submission may have reached its scheduler.
MAYBE_SUBMITTED = "submission outcome unknown"

_INSERT_EVENT = (
    "INSERT INTO events (job_id, idx, at, old_state, new_state, exit_code, reason)"
    " VALUES (?, ?, ?, ?, ?, ?, ?)"
)
# Elements of a job (first parameter) by state or by index (one JSON list).
_ELEMENTS_IN_STATES = (
    "SELECT idx, state, exit_code, reason FROM elements"
    " WHERE job_id = ? AND state IN (SELECT value FROM json_each(?))"
)
_ELEMENTS_AT = (
    "SELECT idx, state, exit_code, reason FROM elements"
    " WHERE job_id = ? AND idx IN (SELECT value FROM json_each(?))"
)
# Only UNKNOWN moves when a submission is confirmed: a state a poll has already
# seen is newer news.
_SUBMITTED_MOVES = frozenset({JobState.UNKNOWN})


@dataclass(frozen=True, slots=True)
class NewJob:
    """A job to record before it is submitted."""

    name: str
    backend: str
    spec: JobSpec


@dataclass(frozen=True, slots=True)
class StatusUpdate:
    """What a poll learned about one job; None fields mean "no news".

    For arrays, ``elements`` maps indices to ``(state, exit_code, reason)``; a
    job-level ``state`` applies to every unfinished element not listed there.
    An array's exit code is always derived from its elements. ``usage`` and
    ``element_usage`` (what the job or each element used) fill in what the registry
    does not know yet and never change a state (:mod:`jobfleet.registry.usage`).
    """

    job_id: str
    state: JobState | None = None
    exit_code: int | None = None
    reason: str | None = None
    elements: Mapping[int, tuple[JobState, int | None, str | None]] = field(default_factory=dict)
    #: The native id the report is about: when given, a job now on another native id
    #: (retried meanwhile by another process) ignores it.
    native_id: str | None = None
    usage: Usage | None = None
    element_usage: Mapping[int, Usage] = field(default_factory=dict)


def awaits_reconciling(record: JobRecord) -> bool:
    """A job whose submission may have reached the scheduler and nobody is finishing it:
    its submitter said so, or died while submitting (killed, the machine rebooted)."""
    if record.submitted or record.state is not JobState.UNKNOWN:
        return False
    reason = record.reason or ""
    if reason.startswith(MAYBE_SUBMITTED):
        return True
    return reason.startswith(SUBMITTING) and owner.is_gone(reason.removeprefix(SUBMITTING))


def create(
    conn: sqlite3.Connection,
    home: Path,
    jobs: Sequence[NewJob],
    native_ids: Sequence[str] | None,
    *,
    submitter: str,
    now: float,
    made: list[Path] | None = None,
) -> list[JobRecord]:
    """Record new jobs with their directories under ``home`` (see ``Registry.create_jobs``).

    ``submitter`` is their reason while unsubmitted (:data:`SUBMITTING` and an owner).
    ``made`` gets each directory made, for the caller to remove if the transaction fails.
    """
    from jobfleet.spec import spec_to_dict  # recording a job; reading one needs no spec

    ids: list[int] = []
    for job in jobs:
        array = job.spec.array
        spec = json.dumps(spec_to_dict(job.spec))
        cursor = conn.execute(
            "INSERT INTO jobs (name, backend, state, reason, is_array, job_dir,"
            " created_at, updated_at, spec) VALUES (?, ?, ?, ?, ?, '', ?, ?, ?)",
            (
                job.name,
                job.backend,
                JobState.UNKNOWN.value,
                submitter,
                array is not None,
                now,
                now,
                spec,
            ),
        )
        row_id = cursor.lastrowid
        if row_id is None:  # pragma: no cover - an INSERT always sets it
            raise RegistryError(f"{home / DB_NAME}: no id assigned to job {job.name!r}")
        job_dir = new_job_dir(home, row_id)
        if made is not None:
            made.append(job_dir)
        conn.execute("UPDATE jobs SET job_dir = ? WHERE id = ?", (str(job_dir), row_id))
        if array is not None:
            conn.executemany(
                "INSERT INTO elements (job_id, idx, state) VALUES (?, ?, ?)",
                ((row_id, i, JobState.UNKNOWN.value) for i in array.indices),
            )
        conn.execute(_INSERT_EVENT, (row_id, None, now, None, "unknown", None, submitter))
        ids.append(row_id)
    for row_id, native_id in zip(ids, native_ids or (), strict=False):
        conn.execute(
            "UPDATE jobs SET submitted = 1, native_id = ? WHERE id = ?", (native_id, row_id)
        )
        _apply_one(conn, StatusUpdate(str(row_id), JobState.PENDING), now)
    return records.load(conn, ids)


def mark_submitted(
    conn: sqlite3.Connection, submitted: Sequence[tuple[str, str]], now: float
) -> list[JobRecord]:
    """Record confirmed submissions of ``(job_id, native_id)`` pairs.

    Raises:
        UnknownJobError: a job is not in the registry (the caller rolls back).
    """
    for job_id, native_id in submitted:
        # An unknown id raises in _apply_one, which rolls all of this back.
        conn.execute(
            "UPDATE jobs SET submitted = 1, native_id = ?, updated_at = ? WHERE id = ?",
            (native_id, now, records.row_id(job_id)),
        )
        _apply_one(conn, StatusUpdate(job_id, JobState.PENDING), now, _SUBMITTED_MOVES)
    return records.load(conn, [records.row_id(job_id) for job_id, _ in submitted])


def mark_submit_failed(
    conn: sqlite3.Connection, failed: Sequence[tuple[str, str]], now: float
) -> list[JobRecord]:
    """Record failed submissions of ``(job_id, reason)`` pairs: jobs and elements FAILED."""
    for job_id, reason in failed:
        update = StatusUpdate(job_id, JobState.FAILED, reason=f"submission failed: {reason}")
        _apply_one(conn, update, now)
    return records.load(conn, [records.row_id(job_id) for job_id, _ in failed])


def apply(
    conn: sqlite3.Connection,
    updates: Sequence[StatusUpdate],
    now: float,
    known: Mapping[int, JobRecord] | None = None,
) -> list[JobRecord]:
    """Apply poll results; return the records that changed.

    ``known``: arrays (by row id) exactly as the registry held them before this
    transaction; of those, only the job's row and the elements written here are read
    again (:func:`records.load_patched`).

    Raises:
        UnknownJobError: an update names a job not in the registry.
    """
    written: dict[int, set[int]] = {}
    changed = [
        u.job_id
        for u in updates
        if _apply_one(conn, u, now, written=written.setdefault(records.row_id(u.job_id), set()))
    ]
    ids = [int(i) for i in dict.fromkeys(changed)]
    if not known:
        return records.load(conn, ids)
    return records.load_patched(conn, ids, known, written)


def _apply_one(
    conn: sqlite3.Connection,
    update: StatusUpdate,
    now: float,
    movable: Set[JobState] | None = None,
    written: set[int] | None = None,
) -> bool:
    """Apply one update; True when the job or any of its elements changed.

    ``movable``: the states a job-level ``update.state`` may move a job or an
    element out of (default: any state for single jobs, unfinished elements).
    ``written``: gets the indices of the elements whose rows were written.
    """
    job_id, row_id = update.job_id, records.row_id(update.job_id)
    state, exit_code, reason, is_array, native_id = records.job_row(conn, job_id)
    if update.native_id is not None and update.native_id != native_id:
        log.info(
            "job %s: ignoring a report about %s, it is now %s (retried)",
            job_id,
            update.native_id,
            native_id,
        )
        return False
    old: Status = (records.stored_state(state, job_id), exit_code, reason)
    used = False
    if update.usage is not None:
        used = usage.store_job(conn, row_id, update.usage)
    if written is None:
        written = set()
    if update.element_usage and is_array:
        used_by = usage.store_elements(conn, row_id, update.element_usage)
        written.update(used_by)
        used = used or bool(used_by)
    if is_array:
        elements_changed = _apply_elements(conn, update, now, movable, written)
        new = _array_status(conn, row_id, old, update.reason)
    else:
        elements_changed = False
        if update.elements:
            log.warning("job %s: not an array; ignoring element updates", job_id)
        new = merge.merge_job(job_id, old, (update.state, update.exit_code, update.reason), movable)
    if new == old and not elements_changed:
        return used  # usage is no state change: updated_at and events stay
    conn.execute(
        "UPDATE jobs SET state = ?, exit_code = ?, reason = ?, updated_at = ? WHERE id = ?",
        (new[0].value, new[1], new[2], now, row_id),
    )
    if new != old:
        conn.execute(_INSERT_EVENT, (row_id, None, now, old[0].value, new[0].value, *new[1:]))
    return True


def _statuses(
    conn: sqlite3.Connection, sql: str, row_id: int, values: Sequence[object]
) -> dict[int, Status]:
    """The elements of a job selected by ``sql`` (:data:`_ELEMENTS_IN_STATES` or
    :data:`_ELEMENTS_AT`) with ``values``."""
    rows = conn.execute(sql, (row_id, json.dumps(list(values))))
    return {
        idx: (records.stored_state(state, row_id, f"element {idx}"), code, why)
        for idx, state, code, why in rows
    }


def _apply_elements(
    conn: sqlite3.Connection,
    update: StatusUpdate,
    now: float,
    movable: Set[JobState] | None,
    written: set[int],
) -> bool:
    row_id = int(update.job_id)
    current: dict[int, Status] = {}
    targets: dict[int, Status] = {}
    if update.state is not None:
        allowed = [s.value for s in movable] if movable is not None else list(records.UNFINISHED)
        current = _statuses(conn, _ELEMENTS_IN_STATES, row_id, allowed)
        targets = dict.fromkeys(current, (update.state, None, None))
    targets.update(update.elements)
    unread = [idx for idx in update.elements if idx not in current]
    if unread:
        current.update(_statuses(conn, _ELEMENTS_AT, row_id, unread))
    missing = [idx for idx in targets if idx not in current]
    if missing:
        log.warning(
            "job %s: no array element %s; ignoring %d element update(s)",
            update.job_id,
            ", ".join(map(str, missing[:10])) + (" ..." if len(missing) > 10 else ""),
            len(missing),
        )
    changes = []  # (idx, old state, new state, exit code, reason)
    for idx, old in sorted(current.items()):
        new = merge.merge(update.job_id, idx, old, targets[idx])
        if new != old:
            changes.append((idx, old[0].value, new[0].value, new[1], new[2]))
    conn.executemany(
        "UPDATE elements SET state = ?, exit_code = ?, reason = ? WHERE job_id = ? AND idx = ?",
        ((state, code, why, row_id, idx) for idx, _, state, code, why in changes),
    )
    conn.executemany(
        _INSERT_EVENT,
        ((row_id, idx, now, was, state, code, why) for idx, was, state, code, why in changes),
    )
    written.update(change[0] for change in changes)
    return bool(changes)


def _array_status(
    conn: sqlite3.Connection, row_id: int, old: Status, given_reason: str | None
) -> Status:
    """The job-level status of an array, derived from its elements."""
    present = {
        records.stored_state(s, row_id, "elements")
        for (s,) in conn.execute("SELECT DISTINCT state FROM elements WHERE job_id = ?", (row_id,))
    }
    worst = None
    if merge.needs_worst_exit(present):
        worst = conn.execute(
            "SELECT max(exit_code) FROM elements WHERE job_id = ? AND exit_code != 0", (row_id,)
        ).fetchone()[0]
    return merge.array_status(old, present, worst, given_reason)


def begin_retry(
    conn: sqlite3.Connection, home: Path, job_id: str, attempt: int, reason: str, now: float
) -> JobRecord | None:
    """Start attempt ``attempt + 1`` of an ended job (see ``Registry.begin_retry``);
    None when the job is not (any more) an ended single job on ``attempt``."""
    row_id = records.row_id(job_id)
    row = conn.execute(
        "SELECT native_id, state, exit_code, reason, job_dir, is_array FROM jobs"
        " WHERE id = ? AND attempt = ?",
        (row_id, attempt),
    ).fetchone()
    if row is None or row[5] or records.stored_state(row[1], job_id) not in TERMINAL:
        return None
    native_id, state, exit_code, old_reason, job_dir, _ = row
    conn.execute(
        "INSERT INTO attempts (job_id, attempt, native_id, state, exit_code, reason,"
        " job_dir, ended_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (row_id, attempt, native_id, state, exit_code, old_reason, job_dir, now),
    )
    new_dir = new_job_dir(home, row_id, f"{row_id}.{attempt + 1}")
    conn.execute(
        "UPDATE jobs SET attempt = ?, native_id = NULL, submitted = 0, state = ?,"
        " exit_code = NULL, reason = ?, job_dir = ?, updated_at = ?, cleaned_at = NULL"
        " WHERE id = ?",
        (attempt + 1, JobState.UNKNOWN.value, reason, str(new_dir), now, row_id),
    )
    conn.execute(_INSERT_EVENT, (row_id, None, now, state, JobState.UNKNOWN.value, None, reason))
    usage.clear_job(conn, row_id)  # the new attempt has used nothing yet
    absences.forget(conn, row_id)
    return records.load(conn, [row_id])[0]


def restore_retries(conn: sqlite3.Connection, retries: Mapping[str, int]) -> None:
    """Give jobs back the retries :func:`stop_retries` took (their cancel failed)."""
    conn.executemany(
        "UPDATE jobs SET spec = json_set(spec, '$.retries', ?) WHERE id = ?",
        [(n, records.row_id(job_id)) for job_id, n in retries.items()],
    )


def stop_retries(conn: sqlite3.Connection, job_ids: Sequence[str]) -> None:
    """Make the attempt each job is on its last."""
    conn.executemany(
        "UPDATE jobs SET spec = json_set(spec, '$.retries', attempt - 1) WHERE id = ?"
        " AND attempt <= coalesce(json_extract(spec, '$.retries'), 0)",
        [(records.row_id(job_id),) for job_id in job_ids],
    )


def mark_cleaned(
    conn: sqlite3.Connection, done: Sequence[tuple[str, int]], now: float
) -> list[str]:
    """Record that the files of ``(job_id, attempt)`` jobs were removed; the ids marked.

    A job on another attempt (retried meanwhile), not ended, or marked already is left
    as it is.
    """
    terminal = json.dumps([s.value for s in TERMINAL])
    marked = []
    for job_id, attempt in done:
        cursor = conn.execute(
            "UPDATE jobs SET cleaned_at = ? WHERE id = ? AND attempt = ? AND cleaned_at IS NULL"
            " AND state IN (SELECT value FROM json_each(?))",
            (now, records.row_id(job_id), attempt, terminal),
        )
        if cursor.rowcount:
            marked.append(job_id)
    return marked
