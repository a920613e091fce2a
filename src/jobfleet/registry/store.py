"""The :class:`Registry`: one connection, its transactions, and the public methods.

Each method opens one transaction and hands the connection to the module that
owns the SQL (:mod:`~jobfleet.registry.jobs`, :mod:`~jobfleet.registry.records`,
:mod:`~jobfleet.registry.callbacks`, :mod:`~jobfleet.registry.absences`).
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from types import TracebackType
from typing import Any

from jobfleet import owner
from jobfleet.errors import RegistryError
from jobfleet.registry import absences, callbacks, jobs, opening, records
from jobfleet.registry.files import DB_NAME, default_home
from jobfleet.registry.jobs import SUBMITTING, NewJob, StatusUpdate
from jobfleet.registry.jobs import create as _create  # create_jobs's argument hides ``jobs``
from jobfleet.registry.opening import Opened, open_existing
from jobfleet.registry.problems import explain
from jobfleet.states import JobRecord

__all__ = ["Registry"]


class Registry:
    """The job registry under ``home`` (default: :func:`default_home`).

    One object may be shared by threads; any number of processes may open the
    same home at once. Use as a context manager, or call :meth:`close`.

    A missing registry is not created until something is written: reading one
    that does not exist reads an empty one. An existing one is checked at once
    and never changed when it cannot be used (:mod:`.opening`).

    Raises:
        RegistryUnusableError: the registry is damaged, is not a jobfleet registry,
            was written by a newer jobfleet, or its home is a file.
        RegistryError: it cannot be opened even for reading.
    """

    def __init__(self, home: str | os.PathLike[str] | None = None) -> None:
        self.home = Path(home) if home is not None else default_home()
        self.db_path = self.home / DB_NAME
        self._lock = threading.Lock()
        self._opened: Opened | None = None
        self._empty: sqlite3.Connection | None = None
        self._closed = False
        self._token = ""
        # Arrays as the last polls left them (row id -> record), while nothing else has
        # written: stamped (connection, data_version, writes) by :meth:`apply`.
        self._writes = 0  # writes of jobs or elements begun through this object
        self._arrays: dict[int, JobRecord] = {}
        self._arrays_at: tuple[int, int, int] | None = None
        self._keeps_arrays = True
        # An existing registry is checked now; a missing one is made by the first write.
        self._opened = open_existing(self.db_path)

    @property
    def token(self) -> str:
        """Random, fixed for this registry's life: part of its jobs' scheduler names."""
        if not self._token:
            with self._transaction(write=False) as conn:
                row = conn.execute("SELECT value FROM meta WHERE key = 'token'").fetchone()
                token = str(row[0])
                if self._opened is None:
                    return token  # no registry yet: nothing was named with it
            self._token = token
        return self._token

    @property
    def read_only(self) -> RegistryError | None:
        """Why this registry can only be read (the error writing raises), else None."""
        return self._opened.read_only if self._opened is not None else None

    @property
    def _conn(self) -> sqlite3.Connection:
        """The database's connection (tests reach for it)."""
        self._keeps_arrays = False  # what is written through it, now or later, is not counted
        if self._opened is None:
            raise RegistryError(f"there is no job registry at {self.db_path} yet")
        return self._opened.conn

    def close(self) -> None:
        """Close the database connection; the object cannot be used afterwards."""
        with self._lock:
            self._closed = True
            if self._opened is not None:
                self._opened.close()
            if self._empty is not None:
                self._empty.close()

    def __enter__(self) -> Registry:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _connection(self, *, write: bool) -> sqlite3.Connection:
        """The connection to use, under the thread lock. Reading no registry reads an
        empty one (nothing is created); the first write creates it."""
        if self._closed:
            raise RegistryError(f"the job registry {self.db_path} was closed")
        if self._opened is None:
            self._opened = open_existing(self.db_path)  # another process may have made it
        if self._opened is None:
            if not write:
                if self._empty is None:
                    self._empty = opening.empty()
                return self._empty
            opening.create(self.db_path)
            self._opened = open_existing(self.db_path)
            if self._opened is None:
                raise RegistryError(f"{self.db_path} vanished as it was made; try again")
        if write and self._opened.read_only is not None:
            raise self._opened.read_only
        return self._opened.conn

    @contextmanager
    def _transaction(
        self, *, write: bool, records_too: bool = True
    ) -> Iterator[sqlite3.Connection]:
        """One transaction under the thread lock; reads see one consistent snapshot.
        ``records_too=False``: a write of what no record holds (absences, callbacks).

        Every SQLite or OS error becomes a :class:`RegistryError` saying what to do
        (:func:`~jobfleet.registry.problems.explain`).
        """
        with self._lock:
            conn = self._connection(write=write)
            self._writes += write and records_too
            try:
                conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
                try:
                    yield conn
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
                try:
                    conn.execute("COMMIT")
                except BaseException:
                    # Not committed: nothing of it may be kept, nor the transaction open.
                    self._arrays_at = None
                    with suppress(sqlite3.Error):
                        if conn.in_transaction:
                            conn.execute("ROLLBACK")
                    raise
            except (sqlite3.Error, OSError) as exc:
                raise explain(exc, self.db_path, "write" if write else "read") from exc

    # -- jobs ---------------------------------------------------------------

    def create_jobs(
        self, jobs: Sequence[NewJob], native_ids: Sequence[str] | None = None
    ) -> list[JobRecord]:
        """Record new, unsubmitted jobs (state UNKNOWN) and create their directories.

        Their reason names this process as the submitter (:data:`SUBMITTING`).
        With ``native_ids`` (one per job), the jobs are already on their
        scheduler (adopted): they are recorded submitted and pending at once.
        """
        now = time.time()
        submitter = SUBMITTING + owner.current()
        made: list[Path] = []
        try:
            with self._transaction(write=True) as conn:
                return _create(
                    conn, self.home, jobs, native_ids, submitter=submitter, now=now, made=made
                )
        except BaseException:
            # Not recorded (e.g. the disk is full): its id is free again, so is its directory.
            for job_dir in made:
                with suppress(OSError):
                    job_dir.rmdir()
            raise

    def mark_submitted(self, job_id: str, native_id: str) -> JobRecord:
        """Record a confirmed submission: an UNKNOWN job (and elements) becomes PENDING."""
        return self.mark_submitted_many([(job_id, native_id)])[0]

    def mark_submitted_many(self, submitted: Sequence[tuple[str, str]]) -> list[JobRecord]:
        """:meth:`mark_submitted` for ``(job_id, native_id)`` pairs, in one transaction."""
        now = time.time()
        with self._transaction(write=True) as conn:
            return jobs.mark_submitted(conn, submitted, now)

    def mark_submit_failed(self, job_id: str, reason: str) -> JobRecord:
        """Record a failed submission: the job and every element become FAILED."""
        return self.mark_submit_failed_many([(job_id, reason)])[0]

    def mark_submit_failed_many(self, failed: Sequence[tuple[str, str]]) -> list[JobRecord]:
        """:meth:`mark_submit_failed` for ``(job_id, reason)`` pairs, in one transaction."""
        now = time.time()
        with self._transaction(write=True) as conn:
            return jobs.mark_submit_failed(conn, failed, now)

    def apply(self, updates: Sequence[StatusUpdate]) -> list[JobRecord]:
        """Apply poll results in one transaction; return the records that changed.

        Raises:
            UnknownJobError: an update names a job not in the registry (nothing is applied).
        """
        now = time.time()
        try:
            with self._transaction(write=True) as conn:
                # Another connection's commit changes data_version; this object's other
                # writes are counted: when neither happened since the last apply, the
                # arrays it returned are still the database's, and only what this one
                # writes is read again (a poll of a 100,000-element array read them all).
                stamp = (id(conn), conn.execute("PRAGMA data_version").fetchone()[0])
                fresh = self._keeps_arrays and self._arrays_at == (*stamp, self._writes - 1)
                changed = jobs.apply(conn, updates, now, self._arrays if fresh else None)
                self._keep_arrays(changed, fresh)
                self._arrays_at = (*stamp, self._writes)
        except BaseException:
            self._arrays, self._arrays_at = {}, None
            raise
        return changed

    def _keep_arrays(self, changed: Sequence[JobRecord], fresh: bool) -> None:
        """Keep the unfinished arrays among ``changed`` for the next :meth:`apply` (at
        most :data:`_KEPT_ARRAYS`; the others kept stay true while ``fresh``)."""
        kept = self._arrays if fresh else {}
        for record in changed:
            kept.pop(int(record.id), None)
            if record.elements and not record.state.is_terminal:
                kept[int(record.id)] = record
        while len(kept) > _KEPT_ARRAYS:
            del kept[next(iter(kept))]
        self._arrays = kept

    # -- retries ------------------------------------------------------------

    def begin_retry(self, job_id: str, attempt: int, reason: str) -> JobRecord | None:
        """Start attempt ``attempt + 1`` of an ended job: file the ended attempt away and
        make the job unsubmitted again, in a fresh directory.

        Only one caller wins: None when the job is not (any more) an ended
        single job on ``attempt``, e.g. another process retried it first.
        """
        now = time.time()
        records.row_id(job_id)  # an id that cannot be a job's fails before any transaction
        with self._transaction(write=True) as conn:
            return jobs.begin_retry(conn, self.home, job_id, attempt, reason, now)

    def attempts(self, job_id: str) -> list[dict[str, Any]]:
        """The ended earlier attempts of a job, oldest first (the current one is the job).

        Each has ``attempt``, ``native_id``, ``state``, ``exit_code``, ``reason``,
        ``job_dir`` and ``ended_at``.
        """
        with self._transaction(write=False) as conn:
            return records.attempts(conn, job_id)

    def restore_retries(self, retries: Mapping[str, int]) -> None:
        """Give jobs back the retries :meth:`stop_retries` took (job id -> retries)."""
        with self._transaction(write=True) as conn:
            jobs.restore_retries(conn, retries)

    def stop_retries(self, job_ids: Sequence[str]) -> None:
        """No more retries for these jobs (they were cancelled): the attempt they are
        on is their last."""
        with self._transaction(write=True) as conn:
            jobs.stop_retries(conn, job_ids)

    # -- absences (the lost rule) -------------------------------------------

    def note_outage(self, backend: str, at: float) -> None:
        """Record that ``backend``'s scheduler did not answer at ``at``: absence timers
        started before it start again (see :meth:`track_absence`)."""
        with self._transaction(write=True, records_too=False) as conn:
            absences.note_outage(conn, backend, at)

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
        with self._transaction(write=True, records_too=False) as conn:
            return absences.track(
                conn,
                backend,
                polled,
                absent,
                at=at,
                lost_after_s=lost_after_s,
                min_polls=min_polls,
                natives=natives,
            )

    # -- callbacks ----------------------------------------------------------

    def claim_callbacks(
        self, wanted: Sequence[tuple[str, str]], claimant: str
    ) -> list[tuple[str, str]]:
        """Claim ``(job_id, key)`` callbacks for ``claimant`` to fire; return those won.

        A callback is won when nobody claimed it, or when its claimant died
        before it finished (:func:`jobfleet.owner.is_gone`); never when it was
        fired already or is being fired by a live process.
        """
        now = time.time()
        with self._transaction(write=True, records_too=False) as conn:
            return callbacks.claim(conn, wanted, claimant, now)

    def release_callbacks(self, claimed: Sequence[tuple[str, str]], claimant: str) -> None:
        """Give back ``(job_id, key)`` callbacks ``claimant`` claimed and did not fire
        (interrupted): the next monitor fires them."""
        with self._transaction(write=True, records_too=False) as conn:
            callbacks.release(conn, claimed, claimant)

    def callbacks_done(self, done: Sequence[tuple[str, str, str]]) -> None:
        """Record ``(job_id, key, outcome)`` callbacks as fired (``ok`` or the error)."""
        now = time.time()
        with self._transaction(write=True, records_too=False) as conn:
            callbacks.done(conn, done, now)

    def callbacks_fired(self, job_id: str) -> dict[str, str | None]:
        """The callbacks of a job fired so far: key -> outcome (``ok`` or the error)."""
        with self._transaction(write=False) as conn:
            return callbacks.fired(conn, job_id)

    # -- reads --------------------------------------------------------------

    def get(self, job_id: str) -> JobRecord:
        """The record of one job.

        Raises:
            UnknownJobError: no such job.
        """
        return self.get_many([job_id])[0]

    def get_many(self, job_ids: Sequence[str], *, ended_elements: bool = True) -> list[JobRecord]:
        """The records of ``job_ids``, in the order asked (``ended_elements``: see
        :meth:`recent`).

        Raises:
            UnknownJobError: for the first id not in the registry.
        """
        with self._transaction(write=False) as conn:
            return records.get_many(conn, job_ids, ended_elements=ended_elements)

    def get_with_element(self, job_id: str, index: int | None) -> JobRecord:
        """The record of one job with only element ``index`` among its elements (none
        when it has no such element, or for None): its cost does not grow with the array.

        Raises:
            UnknownJobError: no such job.
        """
        with self._transaction(write=False) as conn:
            return records.get_with_element(conn, job_id, index)

    def first_indices(self, job_id: str, limit: int = 5) -> list[int]:
        """The lowest ``limit`` element indices of a job (none for a single job)."""
        with self._transaction(write=False) as conn:
            return records.first_indices(conn, job_id, limit)

    def recent(self, limit: int = 20, *, ended_elements: bool = True) -> list[JobRecord]:
        """The ``limit`` most recently created jobs, newest first.

        ``ended_elements=False`` is for views that only count elements: an array that
        ended then comes without its elements (``elements`` is empty), and
        :meth:`element_counts` counts them, without reading a million rows.
        """
        with self._transaction(write=False) as conn:
            return records.recent(conn, limit, ended_elements=ended_elements)

    def recent_summaries(self, limit: int = 20) -> list[tuple[str, str, str]]:
        """``(id, name, state)`` of the ``limit`` most recent jobs, newest first: one
        query on the jobs alone (shell completion lists them as one types)."""
        with self._transaction(write=False) as conn:
            return records.recent_summaries(conn, limit)

    def element_counts(self, job_ids: Sequence[str]) -> dict[str, dict[str, int]]:
        """How many elements of each array among ``job_ids`` are in each state:
        ``{job_id: {state value: count}}`` (arrays only; unknown ids are left out)."""
        with self._transaction(write=False) as conn:
            return records.element_counts(conn, job_ids)

    def elements_json(self, job_id: str) -> list[tuple[int, str]]:
        """Each element of an array, in index order, with its ``--json`` object on one
        line (``ElementRecord.to_dict()``, encoded): for a report of an ended array of
        any size without reading it into records (none for a single job or an unknown id).
        """
        with self._transaction(write=False) as conn:
            return records.elements_json(conn, job_id)

    def named(self, names: Sequence[str]) -> list[JobRecord]:
        """The jobs with one of these names (names need not be unique), oldest first."""
        with self._transaction(write=False) as conn:
            return records.named(conn, names)

    def unfinished(self, backend: str | None = None) -> list[JobRecord]:
        """Jobs not settled (not terminal, or about to be retried; including unsubmitted
        ones), oldest first."""
        with self._transaction(write=False) as conn:
            return records.unfinished(conn, backend)

    def uncleaned(self) -> list[tuple[JobRecord, list[str]]]:
        """Every job that ended whose files ``jobfleet clean`` has not removed (a retry
        may still be due: :attr:`JobRecord.settled` says), oldest first, each with the
        directories of its earlier attempts, oldest first."""
        with self._transaction(write=False) as conn:
            return records.uncleaned(conn)

    def mark_cleaned(self, done: Sequence[tuple[str, int]]) -> list[str]:
        """Record that the files of the jobs ``(job_id, attempt)`` were removed (the
        record stays); the ids marked. A job retried meanwhile (on another attempt),
        not ended, or marked already is left as it is."""
        now = time.time()
        with self._transaction(write=True) as conn:
            return jobs.mark_cleaned(conn, done, now)

    def find_native(self, backend: str, native_id: str) -> JobRecord | None:
        """The newest job of ``backend`` with this scheduler id (schedulers reuse ids)."""
        with self._transaction(write=False) as conn:
            return records.find_native(conn, backend, native_id)

    def events(self, job_id: str) -> list[dict[str, Any]]:
        """The history of a job and its elements, oldest first.

        Each event has ``job_id``, ``idx`` (None for the job itself), ``at``,
        ``old_state`` (None at creation), ``new_state``, ``exit_code`` and ``reason``.
        """
        with self._transaction(write=False) as conn:
            return records.events(conn, job_id)


#: Unfinished arrays :meth:`Registry.apply` keeps to read only what changed of them.
_KEPT_ARRAYS = 64
