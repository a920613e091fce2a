"""The local scheduler's own persistent queue: ``<home>/local/queue.db``.

This plays the part slurmctld's state plays for SLURM: clients enqueue and
ask for cancellation here, the agent (:mod:`.agent`) is the only one that
moves tasks between states, and the backend reads states from here in one
query per poll. It is separate from the jobfleet registry, so the local
backend is a backend like any other.

Task states, as stored: ``pending``, ``starting`` (chosen to run, process
being created), ``running``, and the terminal ``completed``, ``failed``,
``cancelled``, ``timeout``, ``lost``.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jobfleet.errors import BackendError
from jobfleet.sqlite import connect, describe

__all__ = [
    "CAPACITY_KEY",
    "LOCK_NAME",
    "LOG_NAME",
    "NO_INDEX",
    "WAKE_NAME",
    "NewLocalJob",
    "QueueStore",
    "TaskRow",
]

#: Files in the queue directory: the agent's lock, its wake-up FIFO and its log.
LOCK_NAME = "agent.lock"
WAKE_NAME = "wake"
LOG_NAME = "agent.log"

#: The setting holding what the agent may hand out:
#: ``{"cores": N, "memory": BYTES, "gpu_ids": ["0", ...]}``.
CAPACITY_KEY = "capacity"

#: Version of the schema below; a newer one is refused rather than misread.
SCHEMA_VERSION = 3
#: What each version adds to the one before (the schema above is the newest).
_MIGRATIONS: dict[int, tuple[str, ...]] = {
    2: ("ALTER TABLE tasks ADD COLUMN signal_requested TEXT",),
    # What a task used, as the agent measured it (wait4's rusage of the script).
    3: (
        "ALTER TABLE tasks ADD COLUMN max_rss INTEGER",
        "ALTER TABLE tasks ADD COLUMN cpu_time REAL",
    ),
}

#: The index stored for the one task of a job that is not an array.
NO_INDEX = -1
TERMINAL_TASK_STATES = ("completed", "failed", "cancelled", "timeout", "lost")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    jf_id TEXT NOT NULL,
    name TEXT NOT NULL,
    script TEXT NOT NULL,
    job_dir TEXT NOT NULL,
    cores INTEGER NOT NULL,
    memory INTEGER NOT NULL,
    gpus INTEGER NOT NULL,
    walltime INTEGER,
    max_concurrent INTEGER,
    deps TEXT NOT NULL,
    env TEXT NOT NULL,
    submitted_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS tasks (
    job INTEGER NOT NULL REFERENCES jobs(id),
    idx INTEGER NOT NULL,
    state TEXT NOT NULL,
    pid INTEGER,
    started_at REAL,
    ended_at REAL,
    exit_code INTEGER,
    reason TEXT,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    gpus TEXT,
    ending TEXT,
    signal_requested TEXT,
    max_rss INTEGER,
    cpu_time REAL,
    PRIMARY KEY (job, idx)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_jf_id ON jobs(jf_id);
CREATE INDEX IF NOT EXISTS tasks_active ON tasks(state)
    WHERE state IN ('pending', 'starting', 'running');
CREATE INDEX IF NOT EXISTS tasks_cancel ON tasks(cancel_requested) WHERE cancel_requested = 1;
"""


def _selection(job_ids: Sequence[int], indices: Sequence[int] | None) -> tuple[str, ...]:
    """Query parameters: the jobs, then (twice) the indices as JSON or NULL."""
    chosen = (
        None if indices is None else json.dumps([NO_INDEX if i is None else i for i in indices])
    )
    return (json.dumps(list(job_ids)), chosen, chosen)  # type: ignore[return-value]


@dataclass(slots=True)
class TaskRow:
    """One task (a single job, or one array element) with its job's request."""

    job: int
    idx: int
    state: str
    pid: int | None
    started_at: float | None
    exit_code: int | None
    reason: str | None
    cancel_requested: bool
    gpus: str | None
    ending: str | None
    jf_id: str
    name: str
    script: str
    job_dir: str
    cores: int
    memory: int
    gpu_count: int
    walltime: int | None
    max_concurrent: int | None
    deps: list[tuple[str, list[int]]]
    env: dict[str, str]
    submitted_at: float
    max_rss: int | None = None  # bytes, once the agent reaped the script (its child)
    cpu_time: float | None = None  # user + system seconds, likewise

    @property
    def index(self) -> int | None:
        return None if self.idx == NO_INDEX else self.idx


_TASK_COLUMNS = (
    "t.job, t.idx, t.state, t.pid, t.started_at, t.exit_code, t.reason, t.cancel_requested, "
    "t.gpus, t.ending, j.jf_id, j.name, j.script, j.job_dir, j.cores, j.memory, j.gpus, "
    "j.walltime, j.max_concurrent, j.deps, j.env, j.submitted_at"
)


#: A job's columns (the request its tasks share), then a task's own.
_JOB_COLUMNS = (
    "id, jf_id, name, script, job_dir, cores, memory, gpus, walltime, max_concurrent, deps, env,"
    " submitted_at"
)
_STATE_COLUMNS = (
    "job, idx, state, pid, started_at, exit_code, reason, cancel_requested, gpus, ending"
)


def _task(row: tuple[Any, ...]) -> TaskRow:
    """A task from its row (:data:`_TASK_COLUMNS`): deps and env as JSON, or already
    decoded (shared by the tasks of one job)."""
    return TaskRow(
        job=row[0],
        idx=row[1],
        state=row[2],
        pid=row[3],
        started_at=row[4],
        exit_code=row[5],
        reason=row[6],
        cancel_requested=bool(row[7]),
        gpus=row[8],
        ending=row[9],
        jf_id=row[10],
        name=row[11],
        script=row[12],
        job_dir=row[13],
        cores=row[14],
        memory=row[15],
        gpu_count=row[16],
        walltime=row[17],
        max_concurrent=row[18],
        deps=[(kind, list(ids)) for kind, ids in json.loads(row[19])]
        if isinstance(row[19], str)
        else row[19],
        env=json.loads(row[20]) if isinstance(row[20], str) else row[20],
        submitted_at=row[21],
    )


@dataclass(frozen=True, slots=True)
class NewLocalJob:
    """A job to enqueue."""

    jf_id: str
    name: str
    script: str
    job_dir: str
    cores: int
    memory: int
    gpus: int
    walltime: int | None
    max_concurrent: int | None
    indices: Sequence[int]  # [NO_INDEX] for a single job
    deps: Sequence[tuple[str, Sequence[int]]]
    env: dict[str, str]


class QueueStore:
    """Connection to the local queue database, safe to share between threads."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.path = directory / "queue.db"
        self._lock = threading.RLock()
        try:
            directory.mkdir(parents=True, exist_ok=True)
            # NORMAL in WAL mode survives any process crash; the exit-code files
            # written by the job scripts cover an operating system crash.
            self._db = connect(self.path, synchronous="NORMAL")
            self._db.executescript(f"BEGIN IMMEDIATE;{_SCHEMA}COMMIT;")
            self._migrate()
        except (OSError, sqlite3.Error) as exc:
            raise BackendError(
                f"cannot open the local queue {self.path}: {describe(exc, self.path)}"
            ) from exc

    def _migrate(self) -> None:
        with self.write() as db:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise BackendError(
                    f"{self.path} was written by a newer jobfleet (queue schema {version}); "
                    "upgrade jobfleet, or wait for that version's jobs to end"
                )
            fresh = db.execute("SELECT count(*) FROM jobs").fetchone()[0] == 0 and version == 0
            if not fresh:
                for step in range(max(version, 1) + 1, SCHEMA_VERSION + 1):
                    for statement in _MIGRATIONS[step]:
                        db.execute(statement)
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            # The agent looks for signal requests each round: without this index, a
            # look at every task ever queued (the column exists once migrated).
            db.execute(
                "CREATE INDEX IF NOT EXISTS tasks_signal ON tasks(job)"
                " WHERE signal_requested IS NOT NULL"
            )

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (BEGIN IMMEDIATE), committed on success."""
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise BackendError(f"local queue {self.path}: {describe(exc, self.path)}") from exc
            try:
                yield self._db
                self._db.execute("COMMIT")
            except BaseException as exc:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise BackendError(
                        f"local queue {self.path}: {describe(exc, self.path)}"
                    ) from exc
                raise

    def read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            try:
                return self._db.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise BackendError(f"local queue {self.path}: {describe(exc, self.path)}") from exc

    def enqueue(self, jobs: Sequence[NewLocalJob]) -> list[int]:
        """Add jobs and their pending tasks in one transaction; return their ids."""
        now = time.time()
        ids: list[int] = []
        with self.write() as db:
            for job in jobs:
                cur = db.execute(
                    "INSERT INTO jobs (jf_id, name, script, job_dir, cores, memory, gpus, walltime,"
                    " max_concurrent, deps, env, submitted_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                    (
                        job.jf_id,
                        job.name,
                        job.script,
                        job.job_dir,
                        job.cores,
                        job.memory,
                        job.gpus,
                        job.walltime,
                        job.max_concurrent,
                        json.dumps([[kind, list(ids)] for kind, ids in job.deps]),
                        json.dumps(job.env),
                        now,
                    ),
                )
                job_id = cur.lastrowid
                if job_id is None:  # pragma: no cover - sqlite always sets it after INSERT
                    raise BackendError("local queue did not assign a job id")
                db.executemany(
                    "INSERT INTO tasks (job, idx, state) VALUES (?, ?, 'pending')",
                    [(job_id, idx) for idx in job.indices],
                )
                ids.append(job_id)
        return ids

    def request_cancel(self, job_ids: Sequence[int], indices: Sequence[int] | None = None) -> int:
        """Mark unfinished tasks of these jobs (only these indices, if given) for
        cancellation; return how many."""
        with self.write() as db:
            cur = db.execute(
                "UPDATE tasks SET cancel_requested = 1"
                " WHERE job IN (SELECT value FROM json_each(?))"
                " AND (? IS NULL OR idx IN (SELECT value FROM json_each(?)))"
                " AND state IN ('pending', 'starting', 'running')",
                _selection(job_ids, indices),
            )
            return cur.rowcount

    def request_signal(
        self, job_ids: Sequence[int], indices: Sequence[int] | None, signal_name: str
    ) -> int:
        """Ask the agent to send a signal to these running tasks; return how many."""
        with self.write() as db:
            cur = db.execute(
                "UPDATE tasks SET signal_requested = ?"
                " WHERE job IN (SELECT value FROM json_each(?))"
                " AND (? IS NULL OR idx IN (SELECT value FROM json_each(?)))"
                " AND state IN ('starting', 'running')",
                (signal_name, *_selection(job_ids, indices)),
            )
            return cur.rowcount

    def signal_requests(self) -> list[tuple[int, int, str]]:
        """(job, idx, signal name) of running tasks a client asked to signal."""
        return [
            (r[0], r[1], r[2])
            for r in self.read(
                "SELECT job, idx, signal_requested FROM tasks WHERE signal_requested IS NOT NULL"
            )
        ]

    def clear_signal(self, job: int, idx: int) -> None:
        with self.write() as db:
            db.execute(
                "UPDATE tasks SET signal_requested = NULL WHERE job = ? AND idx = ?", (job, idx)
            )

    def tasks_of(self, job_ids: Sequence[int]) -> list[TaskRow]:
        """Every task of these jobs (one query however many)."""
        rows = self.read(
            f"SELECT {_TASK_COLUMNS} FROM tasks t JOIN jobs j ON j.id = t.job"  # noqa: S608
            " WHERE t.job IN (SELECT value FROM json_each(?)) ORDER BY t.job, t.idx",
            (json.dumps(list(job_ids)),),
        )
        return [_task(r) for r in rows]

    def task_rows(
        self, job_ids: Sequence[int]
    ) -> list[tuple[int, int, str, int | None, str | None]]:
        """(job, idx, state, exit_code, reason) of every task of these jobs, by job and
        index (what a poll reads: one row a task, nothing joined)."""
        return self.read(
            "SELECT job, idx, state, exit_code, reason FROM tasks"
            " WHERE job IN (SELECT value FROM json_each(?)) ORDER BY job, idx",
            (json.dumps(list(job_ids)),),
        )

    def polled_jobs(self, job_ids: Sequence[int]) -> dict[int, tuple[str, float]]:
        """Each of these queue jobs' jobfleet id and when it was submitted."""
        rows = self.read(
            "SELECT id, jf_id, submitted_at FROM jobs WHERE id IN (SELECT value FROM json_each(?))",
            (json.dumps(list(job_ids)),),
        )
        return {int(r[0]): (str(r[1]), float(r[2])) for r in rows}

    def task_usage(
        self, job_ids: Sequence[int]
    ) -> list[tuple[int, int, float | None, float | None, int | None, float | None]]:
        """(job, idx, started_at, ended_at, max_rss, cpu_time) for every ended task of
        these jobs."""
        return self.read(
            "SELECT job, idx, started_at, ended_at, max_rss, cpu_time FROM tasks"
            " WHERE job IN (SELECT value FROM json_each(?)) AND ended_at IS NOT NULL",
            (json.dumps(list(job_ids)),),
        )

    def find_job(self, jf_id: str, name: str) -> int | None:
        """The newest queue job enqueued for jobfleet job ``jf_id`` as ``name``, if any
        (a job retried is enqueued again under another name)."""
        rows = self.read("SELECT max(id) FROM jobs WHERE jf_id = ? AND name = ?", (jf_id, name))
        return int(rows[0][0]) if rows and rows[0][0] is not None else None

    def jf_ids(self, job_ids: Sequence[int]) -> dict[int, str]:
        """The jobfleet id each of these queue jobs was submitted for."""
        rows = self.read(
            "SELECT id, jf_id FROM jobs WHERE id IN (SELECT value FROM json_each(?))",
            (json.dumps(list(job_ids)),),
        )
        return {int(r[0]): str(r[1]) for r in rows}

    def set_setting(self, key: str, value: object) -> None:
        """Store a setting (as JSON) for the agent, e.g. the capacity it may hand out."""
        text = json.dumps(value, sort_keys=True)
        with self.write() as db:
            db.execute(
                "INSERT INTO settings (key, value) VALUES (?, ?)"
                " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (key, text),
            )

    def setting(self, key: str) -> Any:
        """A stored setting, or None."""
        rows = self.read("SELECT value FROM settings WHERE key = ?", (key,))
        return json.loads(rows[0][0]) if rows else None

    def active_tasks(self, after_job: int = 0) -> list[TaskRow]:
        """Unfinished tasks of jobs with id > ``after_job``, in FIFO order.

        The tasks of one job share its request's values (one environment, one script
        path, ... per job, not per element): a 100,000-element array costs one small
        row per element, in the query and in the agent. Without a job newer than
        ``after_job`` this is one look at the jobs table's largest id.
        """
        newest = self.read("SELECT max(id) FROM jobs")[0][0]
        if newest is None or newest <= after_job:
            return []
        rows = self.read(
            f"SELECT {_STATE_COLUMNS} FROM tasks"  # noqa: S608
            " WHERE job > ? AND state IN ('pending', 'starting', 'running') ORDER BY job, idx",
            (after_job,),
        )
        # The jobs of those tasks, read after them (two reads, not one snapshot): a job
        # whose tasks were read was committed with them, so it is there; a job submitted
        # or ended in between changes nothing.
        wanted = json.dumps(list(dict.fromkeys(row[0] for row in rows)))
        jobs = {
            r[0]: r
            for r in self.read(
                f"SELECT {_JOB_COLUMNS} FROM jobs"  # noqa: S608
                " WHERE id IN (SELECT value FROM json_each(?))",
                (wanted,),
            )
        }
        shared: dict[int, tuple[Any, ...]] = {}
        tasks = []
        for row in rows:
            job = shared.get(row[0])
            if job is None:
                j = jobs[row[0]]
                deps = [(kind, list(ids)) for kind, ids in json.loads(j[10])]
                job = shared[row[0]] = (*j[1:10], deps, json.loads(j[11]), j[12])
            tasks.append(_task(row + job))
        return tasks

    def cancel_requests(self) -> list[tuple[int, int]]:
        """(job, idx) of unfinished tasks whose cancellation was asked for."""
        return [
            (r[0], r[1])
            for r in self.read(
                "SELECT job, idx FROM tasks WHERE cancel_requested = 1"
                " AND state IN ('pending', 'starting', 'running')"
            )
        ]

    def count_active(self) -> int:
        return int(
            self.read(
                "SELECT count(*) FROM tasks WHERE state IN ('pending', 'starting', 'running')"
            )[0][0]
        )

    def job_outcomes(self, job_ids: Sequence[int]) -> dict[int, tuple[bool, bool]]:
        """job -> (every task ended, every task completed), for dependency checks."""
        rows = self.read(
            "SELECT job, sum(state NOT IN ('completed','failed','cancelled','timeout','lost')),"
            " sum(state != 'completed') FROM tasks WHERE job IN (SELECT value FROM json_each(?))"
            " GROUP BY job",
            (json.dumps(list(job_ids)),),
        )
        return {r[0]: (r[1] == 0, r[2] == 0) for r in rows}
