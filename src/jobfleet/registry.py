"""The persistent job registry: every job of every backend, shared by all processes.

State lives under a home directory (see :func:`default_home`)::

    registry.db     SQLite in WAL mode: tables jobs, elements, events
    jobs/<id>/      one directory per job (script, logs, exit-code files); never
                    reused: when ``<id>`` is taken (the database was replaced),
                    the job gets ``jobs/<id>-<random>/`` instead

The home holds the submitters' environments and their jobs' outputs, so the
directories jobfleet creates are private to their owner (mode 0700).

Every write is one ``BEGIN IMMEDIATE`` transaction, so many processes can
write at once without losing anything, and every change is committed before
the method returns. Terminal states are final: a late or stale report never
moves a finished job, it may only fill in an exit code or reason still missing.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, TypeAlias

from jobfleet import owner
from jobfleet.errors import RegistryError, UnknownJobError
from jobfleet.spec import JobSpec, spec_to_dict
from jobfleet.sqlite import connect
from jobfleet.states import (
    DEFAULT_RETRY_ON,
    RETRYABLE,
    TERMINAL,
    ElementRecord,
    JobRecord,
    JobState,
    aggregate,
)

__all__ = ["SUBMITTING", "NewJob", "Registry", "StatusUpdate", "default_home"]

log = logging.getLogger(__name__)

# Each entry upgrades the schema by one version (PRAGMA user_version); never
# edit a released entry, append a new one.
_MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE jobs (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            name TEXT NOT NULL,
            backend TEXT NOT NULL,
            native_id TEXT,
            state TEXT NOT NULL,
            exit_code INTEGER,
            reason TEXT,
            submitted INTEGER NOT NULL DEFAULT 0,
            is_array INTEGER NOT NULL,
            job_dir TEXT NOT NULL,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            spec TEXT NOT NULL)""",
        "CREATE INDEX jobs_by_state ON jobs (state, backend)",
        "CREATE INDEX jobs_by_native ON jobs (backend, native_id)",
        """CREATE TABLE elements (
            job_id INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
            idx INTEGER NOT NULL,
            state TEXT NOT NULL,
            exit_code INTEGER,
            reason TEXT,
            PRIMARY KEY (job_id, idx)) WITHOUT ROWID""",
        """CREATE TABLE events (
            id INTEGER PRIMARY KEY,
            job_id INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
            idx INTEGER,
            at REAL NOT NULL,
            old_state TEXT,
            new_state TEXT NOT NULL,
            exit_code INTEGER,
            reason TEXT)""",
        "CREATE INDEX events_by_job ON events (job_id, id)",
    ),
    (
        # A random token, fixed for this registry's life: it names its jobs on the
        # schedulers, so a new registry in the same place never mistakes an old
        # registry's job (same id, same name) for one of its own.
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        "INSERT INTO meta (key, value) VALUES ('token', lower(hex(randomblob(4))))",
    ),
    (
        # Retries: the attempt a job is on, and every earlier attempt as it ended.
        "ALTER TABLE jobs ADD COLUMN attempt INTEGER NOT NULL DEFAULT 1",
        """CREATE TABLE attempts (
            job_id INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
            attempt INTEGER NOT NULL,
            native_id TEXT,
            state TEXT NOT NULL,
            exit_code INTEGER,
            reason TEXT,
            job_dir TEXT NOT NULL,
            ended_at REAL NOT NULL,
            PRIMARY KEY (job_id, attempt)) WITHOUT ROWID""",
        # Jobs (idx -1) or elements a scheduler answered it does not know: since when,
        # in how many answered polls in a row (see Registry.track_absence).
        """CREATE TABLE absences (
            job_id INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
            idx INTEGER NOT NULL,
            since REAL NOT NULL,
            polls INTEGER NOT NULL,
            PRIMARY KEY (job_id, idx)) WITHOUT ROWID""",
        # Callbacks fired (done_at set) or being fired by a process (owner).
        """CREATE TABLE callbacks (
            job_id INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
            key TEXT NOT NULL,
            owner TEXT NOT NULL,
            claimed_at REAL NOT NULL,
            done_at REAL,
            outcome TEXT,
            PRIMARY KEY (job_id, key)) WITHOUT ROWID""",
        # Jobs a schema-2 client was submitting name no submitter: look for them by name.
        "UPDATE jobs SET reason = 'submission outcome unknown (recorded by an older jobfleet);"
        " it is looked for by its name at the next status'"
        " WHERE submitted = 0 AND state = 'unknown' AND reason IS NULL",
    ),
)
SCHEMA_VERSION = len(_MIGRATIONS)

_UNFINISHED = tuple(s.value for s in JobState if s not in TERMINAL)
_STATE_OF = {s.value: s for s in JobState}  # JobState(value) is slow over 100,000 elements
_PRIVATE_DIR = 0o700
_PRIVATE_FILE = 0o600
_SELECT_JOBS = (
    "SELECT id, name, backend, native_id, state, exit_code, reason, submitted, job_dir,"
    " created_at, updated_at, spec, attempt, is_array FROM jobs"
)
# Lists of values are passed as one JSON parameter, so no SQL is built at run time.
_BY_IDS = " WHERE id IN (SELECT value FROM json_each(?))"
_STATE_IN = "state IN (SELECT value FROM json_each(?))"
_IDX_IN = "idx IN (SELECT value FROM json_each(?))"
# Unfinished: not terminal, or ended in a way its spec retries with retries left
# (JobRecord.retry_due). Parameters: _UNFINISHED, RETRYABLE, DEFAULT_RETRY_ON (for
# a spec stored without retry_on), then the backend twice.
_UNFINISHED_OF_BACKEND = (
    " WHERE (state IN (SELECT value FROM json_each(?)) OR (state IN"
    " (SELECT value FROM json_each(?)) AND is_array = 0"
    " AND attempt <= coalesce(json_extract(spec, '$.retries'), 0)"
    " AND state IN (SELECT value FROM json_each("
    "coalesce(json_extract(spec, '$.retry_on'), ?)))))"
    " AND (? IS NULL OR backend = ?)"
)
_UNFINISHED_PARAMS = (
    json.dumps(_UNFINISHED),
    json.dumps([s.value for s in RETRYABLE]),
    json.dumps([s.value for s in DEFAULT_RETRY_ON]),
)
_INSERT_EVENT = (
    "INSERT INTO events (job_id, idx, at, old_state, new_state, exit_code, reason)"
    " VALUES (?, ?, ?, ?, ?, ?, ?)"
)

#: The reason of a job recorded and not yet submitted, followed by its submitter
#: (see :mod:`jobfleet.owner`): a job whose submitter died is looked for by name.
SUBMITTING = "being submitted by "
#: The idx of a single job in the absences table.
_WHOLE_JOB = -1

#: (state, exit_code, reason) of a job or an element.
_Status: TypeAlias = tuple[JobState, int | None, str | None]


def default_home(env: Mapping[str, str] | None = None) -> Path:
    """Where the registry lives: ``$JOBFLEET_HOME``, else ``$XDG_DATA_HOME/jobfleet``,
    else ``~/.local/share/jobfleet``."""
    env = os.environ if env is None else env
    if env.get("JOBFLEET_HOME"):
        return Path(env["JOBFLEET_HOME"]).expanduser()
    xdg = env.get("XDG_DATA_HOME", "")
    if xdg and Path(xdg).is_absolute():  # the XDG spec says to ignore relative paths
        return Path(xdg) / "jobfleet"
    user_home = Path(env["HOME"]) if env.get("HOME") else Path.home()
    return user_home / ".local" / "share" / "jobfleet"


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
    An array's exit code is always derived from its elements.
    """

    job_id: str
    state: JobState | None = None
    exit_code: int | None = None
    reason: str | None = None
    elements: Mapping[int, tuple[JobState, int | None, str | None]] = field(default_factory=dict)
    #: The native id the report is about: when given, a job now on another native id
    #: (retried meanwhile by another process) ignores it.
    native_id: str | None = None


def _next_reason(old: JobState, new: JobState, reason: str | None, given: str | None) -> str | None:
    # A reason describes a state: a new state replaces it, even with None.
    if old in TERMINAL:
        return reason if reason is not None else given
    if new is not old:
        return given
    return given if given is not None else reason


def _merge(job_id: str, idx: int | None, old: _Status, given: _Status) -> _Status:
    """The status after a report, keeping terminal states final."""
    state, exit_code, reason = old
    new_state, new_exit, new_reason = given
    if state in TERMINAL and new_state is not state:
        where = "" if idx is None else f" element {idx}"
        log.warning("job %s:%s already %s; ignoring report of %s", job_id, where, state, new_state)
        new_state = state
    if state in TERMINAL:
        new_exit = exit_code if exit_code is not None else new_exit
    elif new_exit is None:
        new_exit = exit_code
    return new_state, new_exit, _next_reason(state, new_state, reason, new_reason)


class Registry:
    """The job registry under ``home`` (default: :func:`default_home`).

    One object may be shared by threads; any number of processes may open the
    same home at once. Use as a context manager, or call :meth:`close`.

    Raises:
        RegistryError: the home cannot be created or the database cannot be read.
    """

    def __init__(self, home: str | os.PathLike[str] | None = None) -> None:
        self.home = Path(home) if home is not None else default_home()
        self.db_path = self.home / "registry.db"
        self._lock = threading.Lock()
        #: Random, fixed for this registry's life: part of its jobs' scheduler names.
        self.token = ""
        try:
            _make_private_home(self.home)
        except OSError as exc:
            raise RegistryError(f"cannot create the registry directory {self.home}: {exc}") from exc
        try:
            # SQLite gives its -wal and -shm files the mode of the database file.
            _create_private_file(self.db_path)
        except OSError as exc:
            raise self._error("create", exc) from exc
        try:
            self._conn = connect(self.db_path, synchronous="FULL")
        except sqlite3.Error as exc:
            self.close()
            raise self._error("open", exc) from exc
        try:
            self._migrate()
        except BaseException:
            self.close()
            raise

    def _migrate(self) -> None:
        with self._transaction(write=True) as conn:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise RegistryError(
                    f"{self.db_path} was written by a newer jobfleet (schema {version}, this one "
                    f"knows {SCHEMA_VERSION}); upgrade jobfleet or use another JOBFLEET_HOME"
                )
            for statements in _MIGRATIONS[version:]:
                for statement in statements:
                    conn.execute(statement)
            if version < SCHEMA_VERSION:
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            self.token = str(
                conn.execute("SELECT value FROM meta WHERE key = 'token'").fetchone()[0]
            )

    def _error(self, action: str, exc: BaseException) -> RegistryError:
        hint = ""
        if isinstance(exc, sqlite3.DatabaseError) and (
            "not a database" in str(exc) or "malformed" in str(exc)
        ):
            hint = " (the file is damaged: move it aside to start an empty registry)"
        return RegistryError(f"cannot {action} the job registry {self.db_path}: {exc}{hint}")

    def close(self) -> None:
        """Close the database connection; the object cannot be used afterwards."""
        with self._lock:
            if hasattr(self, "_conn"):
                self._conn.close()

    def __enter__(self) -> Registry:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @contextmanager
    def _transaction(self, *, write: bool) -> Iterator[sqlite3.Connection]:
        """One transaction under the thread lock; reads see one consistent snapshot."""
        with self._lock:
            conn = self._conn
            try:
                conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
                try:
                    yield conn
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
            except (sqlite3.Error, OSError) as exc:
                raise self._error("write" if write else "read", exc) from exc

    # -- writes -------------------------------------------------------------

    def create_jobs(
        self, jobs: Sequence[NewJob], native_ids: Sequence[str] | None = None
    ) -> list[JobRecord]:
        """Record new, unsubmitted jobs (state UNKNOWN) and create their directories.

        Their reason names this process as the submitter (:data:`SUBMITTING`).
        With ``native_ids`` (one per job), the jobs are already on their
        scheduler (adopted): they are recorded submitted and pending at once.
        """
        now = time.time()
        ids: list[int] = []
        submitter = SUBMITTING + owner.current()
        with self._transaction(write=True) as conn:
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
                    raise RegistryError(f"{self.db_path}: no id assigned to job {job.name!r}")
                job_dir = self._new_job_dir(row_id)
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
                self._apply_one(conn, StatusUpdate(str(row_id), JobState.PENDING), now)
            return self._load(conn, ids)

    def _new_job_dir(self, row_id: int, name: str | None = None) -> Path:
        """Create a directory no job has used before, named after the job if possible.

        An existing ``jobs/<id>`` belongs to another job (the database was moved
        aside and ids started again): its exit-code files must never be read as
        this job's, so the job gets a fresh name instead.
        """
        jobs = self.home / "jobs"
        jobs.mkdir(mode=_PRIVATE_DIR, parents=True, exist_ok=True)
        job_dir = jobs / (name or str(row_id))
        while True:
            try:
                job_dir.mkdir(mode=_PRIVATE_DIR)
            except FileExistsError:
                log.warning(
                    "job %s: %s is taken by an older job; using another name", row_id, job_dir
                )
                job_dir = jobs / f"{name or row_id}-{secrets.token_hex(4)}"
            else:
                return job_dir

    def mark_submitted(self, job_id: str, native_id: str) -> JobRecord:
        """Record a confirmed submission: an UNKNOWN job (and elements) becomes PENDING."""
        return self.mark_submitted_many([(job_id, native_id)])[0]

    def mark_submitted_many(self, submitted: Sequence[tuple[str, str]]) -> list[JobRecord]:
        """:meth:`mark_submitted` for ``(job_id, native_id)`` pairs, in one transaction."""
        now = time.time()
        # Only UNKNOWN moves: a state a poll has already seen is newer news.
        movable = frozenset({JobState.UNKNOWN})
        with self._transaction(write=True) as conn:
            for job_id, native_id in submitted:
                # An unknown id raises in _apply_one, which rolls all of this back.
                conn.execute(
                    "UPDATE jobs SET submitted = 1, native_id = ?, updated_at = ? WHERE id = ?",
                    (native_id, now, _row_id(job_id)),
                )
                self._apply_one(conn, StatusUpdate(job_id, JobState.PENDING), now, movable)
            return self._load(conn, [_row_id(job_id) for job_id, _ in submitted])

    def mark_submit_failed(self, job_id: str, reason: str) -> JobRecord:
        """Record a failed submission: the job and every element become FAILED."""
        return self.mark_submit_failed_many([(job_id, reason)])[0]

    def mark_submit_failed_many(self, failed: Sequence[tuple[str, str]]) -> list[JobRecord]:
        """:meth:`mark_submit_failed` for ``(job_id, reason)`` pairs, in one transaction."""
        now = time.time()
        with self._transaction(write=True) as conn:
            for job_id, reason in failed:
                update = StatusUpdate(
                    job_id, JobState.FAILED, reason=f"submission failed: {reason}"
                )
                self._apply_one(conn, update, now)
            return self._load(conn, [_row_id(job_id) for job_id, _ in failed])

    def apply(self, updates: Sequence[StatusUpdate]) -> list[JobRecord]:
        """Apply poll results in one transaction; return the records that changed.

        Raises:
            UnknownJobError: an update names a job not in the registry (nothing is applied).
        """
        now = time.time()
        with self._transaction(write=True) as conn:
            changed = [u.job_id for u in updates if self._apply_one(conn, u, now)]
            return self._load(conn, [int(i) for i in dict.fromkeys(changed)])

    def _apply_one(
        self,
        conn: sqlite3.Connection,
        update: StatusUpdate,
        now: float,
        movable: frozenset[JobState] | None = None,
    ) -> bool:
        """Apply one update; True when the job or any of its elements changed.

        ``movable``: the states a job-level ``update.state`` may move a job or an
        element out of (default: any state for single jobs, unfinished elements).
        """
        job_id, row_id = update.job_id, _row_id(update.job_id)
        state, exit_code, reason, is_array, native_id = self._job_row(conn, job_id)
        if update.native_id is not None and update.native_id != native_id:
            log.info(
                "job %s: ignoring a report about %s, it is now %s (retried)",
                job_id,
                update.native_id,
                native_id,
            )
            return False
        old: _Status = (_state(state, job_id), exit_code, reason)
        if is_array:
            elements_changed = self._apply_elements(conn, update, now, movable)
            new = self._array_status(conn, row_id, old, update.reason)
        else:
            elements_changed = False
            if update.elements:
                log.warning("job %s: not an array; ignoring element updates", job_id)
            new_state = update.state
            if new_state is None or (movable is not None and old[0] not in movable):
                new_state = old[0]
            new = _merge(job_id, None, old, (new_state, update.exit_code, update.reason))
        if new == old and not elements_changed:
            return False
        conn.execute(
            "UPDATE jobs SET state = ?, exit_code = ?, reason = ?, updated_at = ? WHERE id = ?",
            (new[0].value, new[1], new[2], now, row_id),
        )
        if new != old:
            conn.execute(_INSERT_EVENT, (row_id, None, now, old[0].value, new[0].value, *new[1:]))
        return True

    def _apply_elements(
        self,
        conn: sqlite3.Connection,
        update: StatusUpdate,
        now: float,
        movable: frozenset[JobState] | None,
    ) -> bool:
        row_id = int(update.job_id)
        select = "SELECT idx, state, exit_code, reason FROM elements WHERE job_id = ? AND "
        current: dict[int, _Status] = {}
        targets: dict[int, _Status] = {}
        if update.state is not None:
            allowed = [s.value for s in movable] if movable is not None else list(_UNFINISHED)
            current = _statuses(conn, select + _STATE_IN, row_id, allowed)
            targets = dict.fromkeys(current, (update.state, None, None))
        targets.update(update.elements)
        unread = [idx for idx in update.elements if idx not in current]
        if unread:
            current.update(_statuses(conn, select + _IDX_IN, row_id, unread))
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
            new = _merge(update.job_id, idx, old, targets[idx])
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
        return bool(changes)

    def _array_status(
        self, conn: sqlite3.Connection, row_id: int, old: _Status, given_reason: str | None
    ) -> _Status:
        """The job-level status of an array, derived from its elements."""
        present = {
            _state(s, row_id, "elements")
            for (s,) in conn.execute(
                "SELECT DISTINCT state FROM elements WHERE job_id = ?", (row_id,)
            )
        }
        state = aggregate(present)
        exit_code = None
        if present <= TERMINAL:
            if present == {JobState.COMPLETED}:
                exit_code = 0
            else:
                exit_code = conn.execute(
                    "SELECT max(exit_code) FROM elements WHERE job_id = ? AND exit_code != 0",
                    (row_id,),
                ).fetchone()[0]
        return state, exit_code, _next_reason(old[0], state, old[2], given_reason)

    def begin_retry(self, job_id: str, attempt: int, reason: str) -> JobRecord | None:
        """Start attempt ``attempt + 1`` of an ended job: file the ended attempt away and
        make the job unsubmitted again, in a fresh directory.

        Only one caller wins: None when the job is not (any more) an ended
        single job on ``attempt``, e.g. another process retried it first.
        """
        now = time.time()
        row_id = _row_id(job_id)
        with self._transaction(write=True) as conn:
            row = conn.execute(
                "SELECT native_id, state, exit_code, reason, job_dir, is_array FROM jobs"
                " WHERE id = ? AND attempt = ?",
                (row_id, attempt),
            ).fetchone()
            if row is None or row[5] or _state(row[1], job_id) not in TERMINAL:
                return None
            native_id, state, exit_code, old_reason, job_dir, _ = row
            conn.execute(
                "INSERT INTO attempts (job_id, attempt, native_id, state, exit_code, reason,"
                " job_dir, ended_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (row_id, attempt, native_id, state, exit_code, old_reason, job_dir, now),
            )
            new_dir = self._new_job_dir(row_id, f"{row_id}.{attempt + 1}")
            conn.execute(
                "UPDATE jobs SET attempt = ?, native_id = NULL, submitted = 0, state = ?,"
                " exit_code = NULL, reason = ?, job_dir = ?, updated_at = ? WHERE id = ?",
                (attempt + 1, JobState.UNKNOWN.value, reason, str(new_dir), now, row_id),
            )
            conn.execute(
                _INSERT_EVENT, (row_id, None, now, state, JobState.UNKNOWN.value, None, reason)
            )
            conn.execute("DELETE FROM absences WHERE job_id = ?", (row_id,))
            return self._load(conn, [row_id])[0]

    def attempts(self, job_id: str) -> list[dict[str, Any]]:
        """The ended earlier attempts of a job, oldest first (the current one is the job).

        Each has ``attempt``, ``native_id``, ``state``, ``exit_code``, ``reason``,
        ``job_dir`` and ``ended_at``.
        """
        keys = ("attempt", "native_id", "state", "exit_code", "reason", "job_dir", "ended_at")
        with self._transaction(write=False) as conn:
            self._job_row(conn, job_id)
            rows = conn.execute(
                "SELECT attempt, native_id, state, exit_code, reason, job_dir, ended_at"
                " FROM attempts WHERE job_id = ? ORDER BY attempt",
                (_row_id(job_id),),
            ).fetchall()
        return [dict(zip(keys, row, strict=True)) for row in rows]

    def note_outage(self, backend: str, at: float) -> None:
        """Record that ``backend``'s scheduler did not answer at ``at``: absence timers
        started before it start again (see :meth:`track_absence`)."""
        with self._transaction(write=True) as conn:
            conn.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (f"outage.{backend}", repr(at)),
            )

    def track_absence(
        self,
        backend: str,
        polled: Sequence[str],
        absent: Mapping[str, Sequence[int | None]],
        *,
        at: float,
        lost_after_s: float,
        min_polls: int = 3,
        natives: Mapping[str, str] | None = None,
    ) -> dict[str, list[int | None]]:
        """Count an answered poll of ``polled`` jobs in which the scheduler knew nothing
        of ``absent`` (job id -> indices, None for a single job); return those lost.

        A job (or element) is lost when it has been absent from every answered
        poll for ``lost_after_s`` seconds and at least ``min_polls`` polls. An
        outage of the backend (:meth:`note_outage`) restarts the count: time
        during which the scheduler did not answer never counts as absence.
        Absence counts of polled jobs that were present are cleared. With
        ``natives`` (job id -> the native id polled), a job now on another native
        id (retried meanwhile) is not counted.
        """
        lost: dict[str, list[int | None]] = {}
        with self._transaction(write=True) as conn:
            row = conn.execute(
                "SELECT value FROM meta WHERE key = ?", (f"outage.{backend}",)
            ).fetchone()
            outage = float(row[0]) if row else 0.0
            if natives and absent:
                # A report about an attempt the job is no longer on says nothing of it.
                current = dict(
                    conn.execute(
                        "SELECT id, native_id FROM jobs"
                        " WHERE id IN (SELECT value FROM json_each(?))",
                        (json.dumps([int(j) for j in absent]),),
                    ).fetchall()
                )
                absent = {j: ix for j, ix in absent.items() if current.get(int(j)) == natives[j]}
            wanted = {
                (int(j), _WHOLE_JOB if i is None else i) for j, ix in absent.items() for i in ix
            }
            known = {
                (job, idx): (since, polls)
                for job, idx, since, polls in conn.execute(
                    "SELECT job_id, idx, since, polls FROM absences"
                    " WHERE job_id IN (SELECT value FROM json_each(?))",
                    (json.dumps([int(j) for j in polled]),),
                )
            }
            conn.executemany(
                "DELETE FROM absences WHERE job_id = ? AND idx = ?",
                [key for key in known if key not in wanted],
            )
            counts = []
            for key in wanted:
                since, polls = known.get(key, (at, 0))
                if since < outage:  # the scheduler was unreachable since: start again
                    since, polls = at, 0
                polls += 1
                counts.append((since, polls, *key))
                if polls >= min_polls and at - since >= lost_after_s:
                    job, idx = key
                    lost.setdefault(str(job), []).append(None if idx == _WHOLE_JOB else idx)
            conn.executemany(
                "INSERT INTO absences (since, polls, job_id, idx) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (job_id, idx) DO UPDATE SET since = excluded.since,"
                " polls = excluded.polls",
                [c for c in counts if str(c[2]) not in lost],
            )
            # Lost is final: nothing left to count for them.
            conn.executemany(
                "DELETE FROM absences WHERE job_id = ? AND idx = ?",
                [(c[2], c[3]) for c in counts if str(c[2]) in lost],
            )
        return lost

    def claim_callbacks(
        self, wanted: Sequence[tuple[str, str]], claimant: str
    ) -> list[tuple[str, str]]:
        """Claim ``(job_id, key)`` callbacks for ``claimant`` to fire; return those won.

        A callback is won when nobody claimed it, or when its claimant died
        before it finished (:func:`jobfleet.owner.is_gone`); never when it was
        fired already or is being fired by a live process.
        """
        now = time.time()
        won: list[tuple[str, str]] = []
        with self._transaction(write=True) as conn:
            for job_id, key in wanted:
                row = conn.execute(
                    "SELECT owner, done_at FROM callbacks WHERE job_id = ? AND key = ?",
                    (_row_id(job_id), key),
                ).fetchone()
                if row is not None and (row[1] is not None or not owner.is_gone(row[0])):
                    continue
                conn.execute(
                    "INSERT INTO callbacks (job_id, key, owner, claimed_at) VALUES (?, ?, ?, ?)"
                    " ON CONFLICT (job_id, key) DO UPDATE SET owner = excluded.owner,"
                    " claimed_at = excluded.claimed_at",
                    (_row_id(job_id), key, claimant, now),
                )
                won.append((job_id, key))
        return won

    def release_callbacks(self, claimed: Sequence[tuple[str, str]], claimant: str) -> None:
        """Give back ``(job_id, key)`` callbacks ``claimant`` claimed and did not fire
        (interrupted): the next monitor fires them."""
        with self._transaction(write=True) as conn:
            conn.executemany(
                "DELETE FROM callbacks WHERE job_id = ? AND key = ? AND owner = ?"
                " AND done_at IS NULL",
                [(_row_id(job_id), key, claimant) for job_id, key in claimed],
            )

    def stop_retries(self, job_ids: Sequence[str]) -> None:
        """No more retries for these jobs (they were cancelled): the attempt they are
        on is their last."""
        with self._transaction(write=True) as conn:
            conn.executemany(
                "UPDATE jobs SET spec = json_set(spec, '$.retries', attempt - 1) WHERE id = ?"
                " AND attempt <= coalesce(json_extract(spec, '$.retries'), 0)",
                [(_row_id(job_id),) for job_id in job_ids],
            )

    def callbacks_done(self, done: Sequence[tuple[str, str, str]]) -> None:
        """Record ``(job_id, key, outcome)`` callbacks as fired (``ok`` or the error)."""
        now = time.time()
        with self._transaction(write=True) as conn:
            conn.executemany(
                "UPDATE callbacks SET done_at = ?, outcome = ? WHERE job_id = ? AND key = ?",
                [(now, outcome, _row_id(job_id), key) for job_id, key, outcome in done],
            )

    def callbacks_fired(self, job_id: str) -> dict[str, str | None]:
        """The callbacks of a job fired so far: key -> outcome (``ok`` or the error)."""
        with self._transaction(write=False) as conn:
            rows = conn.execute(
                "SELECT key, outcome FROM callbacks WHERE job_id = ? AND done_at IS NOT NULL",
                (_row_id(job_id),),
            ).fetchall()
        return {key: outcome for key, outcome in rows}

    # -- reads --------------------------------------------------------------

    def _job_row(self, conn: sqlite3.Connection, job_id: str) -> tuple[Any, ...]:
        row = conn.execute(
            "SELECT state, exit_code, reason, is_array, native_id FROM jobs WHERE id = ?",
            (_row_id(job_id),),
        ).fetchone()
        if row is None:
            raise UnknownJobError(job_id)
        return tuple(row)

    def _records(self, conn: sqlite3.Connection, sql: str, *params: Any) -> list[JobRecord]:
        """Jobs selected by ``sql`` (which starts with ``_SELECT_JOBS``), with their elements.

        Two queries in all, however many jobs: no query per job.
        """
        rows = conn.execute(sql, params).fetchall()
        elements: dict[int, dict[int, ElementRecord]] = {}
        array_ids = [row[0] for row in rows if row[-1]]
        if array_ids:
            strange: dict[int, set[str]] = {}  # job -> unknown element states, warned once
            for job_id, idx, state, exit_code, reason in conn.execute(
                "SELECT job_id, idx, state, exit_code, reason FROM elements"
                " WHERE job_id IN (SELECT value FROM json_each(?)) ORDER BY job_id, idx",
                (json.dumps(array_ids),),
            ):
                known = _STATE_OF.get(state)
                if known is None:
                    strange.setdefault(job_id, set()).add(state)
                    known = JobState.UNKNOWN
                by_index = elements.setdefault(job_id, {})
                by_index[idx] = ElementRecord(idx, known, exit_code, reason)
            for job_id, states in strange.items():
                _warn_unknown_state(job_id, "elements", ", ".join(map(repr, sorted(states))))
        return [
            JobRecord(
                id=str(row[0]),
                name=row[1],
                backend=row[2],
                native_id=row[3],
                state=_state(row[4], row[0]),
                exit_code=row[5],
                reason=row[6],
                submitted=bool(row[7]),
                job_dir=row[8],
                created_at=row[9],
                updated_at=row[10],
                spec=json.loads(row[11]),
                elements=elements.get(row[0], {}),
                attempt=row[12],
            )
            for row in rows
        ]

    def _load(self, conn: sqlite3.Connection, ids: Sequence[int]) -> list[JobRecord]:
        """The records of ``ids`` (all present), in that order."""
        found = self._records(conn, _SELECT_JOBS + _BY_IDS, json.dumps(list(ids)))
        by_id = {int(record.id): record for record in found}
        return [by_id[i] for i in ids]

    def get(self, job_id: str) -> JobRecord:
        """The record of one job.

        Raises:
            UnknownJobError: no such job.
        """
        return self.get_many([job_id])[0]

    def get_many(self, job_ids: Sequence[str]) -> list[JobRecord]:
        """The records of ``job_ids``, in the order asked.

        Raises:
            UnknownJobError: for the first id not in the registry.
        """
        wanted = {job_id: _parse_id(job_id) for job_id in job_ids}
        ids = [i for i in dict.fromkeys(wanted.values()) if i is not None]
        with self._transaction(write=False) as conn:
            found = self._records(conn, _SELECT_JOBS + _BY_IDS, json.dumps(ids))
        by_id: dict[int | None, JobRecord] = {int(record.id): record for record in found}
        for job_id in job_ids:
            if wanted[job_id] not in by_id:
                raise UnknownJobError(job_id)
        return [by_id[wanted[job_id]] for job_id in job_ids]

    def recent(self, limit: int = 20) -> list[JobRecord]:
        """The ``limit`` most recently created jobs, newest first."""
        with self._transaction(write=False) as conn:
            return self._records(conn, _SELECT_JOBS + " ORDER BY id DESC LIMIT ?", limit)

    def unfinished(self, backend: str | None = None) -> list[JobRecord]:
        """Jobs not settled (not terminal, or about to be retried; including unsubmitted
        ones), oldest first."""
        with self._transaction(write=False) as conn:
            return self._records(
                conn,
                _SELECT_JOBS + _UNFINISHED_OF_BACKEND + " ORDER BY id",
                *_UNFINISHED_PARAMS,
                backend,
                backend,
            )

    def find_native(self, backend: str, native_id: str) -> JobRecord | None:
        """The newest job of ``backend`` with this scheduler id (schedulers reuse ids)."""
        with self._transaction(write=False) as conn:
            found = self._records(
                conn,
                _SELECT_JOBS + " WHERE backend = ? AND native_id = ? ORDER BY id DESC LIMIT 1",
                backend,
                native_id,
            )
        return found[0] if found else None

    def events(self, job_id: str) -> list[dict[str, Any]]:
        """The history of a job and its elements, oldest first.

        Each event has ``job_id``, ``idx`` (None for the job itself), ``at``,
        ``old_state`` (None at creation), ``new_state``, ``exit_code`` and ``reason``.
        """
        keys = ("job_id", "idx", "at", "old_state", "new_state", "exit_code", "reason")
        with self._transaction(write=False) as conn:
            self._job_row(conn, job_id)
            rows = conn.execute(
                "SELECT job_id, idx, at, old_state, new_state, exit_code, reason FROM events"
                " WHERE job_id = ? ORDER BY id",
                (_row_id(job_id),),
            ).fetchall()
        events = []
        for row_id, idx, at, old_state, new_state, exit_code, reason in rows:
            where = "an event" if idx is None else f"an event of element {idx}"
            if old_state is not None:
                old_state = _state(old_state, row_id, where).value
            new_state = _state(new_state, row_id, where).value
            values = (str(row_id), idx, at, old_state, new_state, exit_code, reason)
            events.append(dict(zip(keys, values, strict=True)))
        return events


def _statuses(
    conn: sqlite3.Connection, sql: str, row_id: int, values: Sequence[object]
) -> dict[int, _Status]:
    rows = conn.execute(sql, (row_id, json.dumps(list(values))))
    return {
        idx: (_state(state, row_id, f"element {idx}"), code, why) for idx, state, code, why in rows
    }


def _state(value: str, job_id: object, where: str = "") -> JobState:
    """The state stored as ``value``; UNKNOWN (with a warning) for a value this
    version does not know, such as a state added by a newer jobfleet."""
    state = _STATE_OF.get(value)
    if state is None:
        _warn_unknown_state(job_id, where, repr(value))
        return JobState.UNKNOWN
    return state


def _warn_unknown_state(job_id: object, where: str, value: str) -> None:
    log.warning(
        "job %s: unknown state %s%s in the registry (written by a newer jobfleet?); "
        "reading it as unknown",
        job_id,
        value,
        f" of {where}" if where else "",
    )


def _make_private_home(home: Path) -> None:
    """Create ``home`` (mode 0700; its parents as usual) and ``home/jobs`` (0700).

    An existing home keeps its mode: it may be a directory the user made and
    chose the mode of.
    """
    with suppress(FileExistsError):
        home.mkdir(mode=_PRIVATE_DIR, parents=True)
    (home / "jobs").mkdir(mode=_PRIVATE_DIR, exist_ok=True)


def _create_private_file(path: Path) -> None:
    """Create ``path`` empty with mode 0600 unless it exists (an empty file is a new database)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, _PRIVATE_FILE)
    except FileExistsError:
        return
    os.close(fd)


def _parse_id(job_id: str) -> int | None:
    """The row id of a jobfleet id, or None when it cannot be one ("01", "x")."""
    if not (job_id.isascii() and job_id.isdigit()) or job_id != str(int(job_id)):
        return None
    return int(job_id)


def _row_id(job_id: str) -> int:
    row_id = _parse_id(job_id)
    if row_id is None:
        raise UnknownJobError(job_id)
    return row_id
