"""The registry's tables, and how an older registry is brought up to date.

Each entry of :data:`MIGRATIONS` upgrades the schema by one version, counted
in ``PRAGMA user_version``. Never edit a released entry: append a new one, and
keep a registry written by the last release as a fixture
(``tests/unit/registry/fixtures/``).
"""

from __future__ import annotations

import functools
import sqlite3
from pathlib import Path

from jobfleet.errors import NewerRegistryError

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "check", "migrate", "new_database"]

MIGRATIONS: tuple[tuple[str, ...], ...] = (
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
    (
        # What a job and each array element used (jobfleet.usage.Usage), NULL where
        # unknown: times as Unix time, hosts as a JSON list.
        *(
            f"ALTER TABLE {table} ADD COLUMN {column} {kind}"
            for table in ("jobs", "elements")
            for column, kind in (
                ("submitted_at", "REAL"),
                ("started_at", "REAL"),
                ("ended_at", "REAL"),
                ("hosts", "TEXT"),
                ("max_memory_bytes", "INTEGER"),
                ("cpu_time_s", "REAL"),
                ("wall_time_s", "REAL"),
            )
        ),
    ),
    (
        # When `jobfleet clean` removed the job's files (its directories, a Python
        # call's payload); NULL while they are kept. The record itself stays.
        "ALTER TABLE jobs ADD COLUMN cleaned_at REAL",
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)


def check(conn: sqlite3.Connection, db_path: Path) -> int:
    """The schema version of ``conn``'s database, checked to be a jobfleet registry
    this jobfleet can use; reads only, so a refused file is left as it was.

    Returns:
        The version (0: a new, empty database).

    Raises:
        NewerRegistryError: written by a newer jobfleet.
        ValueError: not a jobfleet registry: why, in words (the caller names the file).
        sqlite3.Error: the file is not a database, or is damaged.
    """
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if version > SCHEMA_VERSION:
        raise NewerRegistryError(str(db_path), version, SCHEMA_VERSION)
    if version < 0:
        raise ValueError(f"its schema version is {version}")
    tables = _tables(conn)
    if version == 0:
        # Version 0 is a database no jobfleet has written to yet: it must be empty.
        if tables:
            names = ", ".join(sorted(tables)[:5])
            raise ValueError(f"it holds other tables ({names}) and no jobfleet schema version")
        return version
    for table, columns in _expected(version).items():
        if table not in tables:
            raise ValueError(f"table {table!r} of schema {version} is missing")
        missing = sorted(columns - tables[table])
        if missing:
            raise ValueError(f"table {table!r} lacks column {missing[0]!r}")
    return version


def _tables(conn: sqlite3.Connection) -> dict[str, set[str]]:
    names = [
        str(row[0])
        for row in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        )
    ]
    return {
        name: {str(row[1]) for row in conn.execute("SELECT * FROM pragma_table_info(?)", (name,))}
        for name in names
    }


@functools.cache
def _expected(version: int) -> dict[str, frozenset[str]]:
    """The tables and columns a registry of schema ``version`` has."""
    conn = sqlite3.connect(":memory:")
    try:
        for statements in MIGRATIONS[:version]:
            for statement in statements:
                conn.execute(statement)
        return {name: frozenset(columns) for name, columns in _tables(conn).items()}
    finally:
        conn.close()


def new_database(conn: sqlite3.Connection) -> None:
    """Create the current schema in the new, empty database of ``conn`` (autocommit)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        migrate(conn, Path())
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def migrate(conn: sqlite3.Connection, db_path: Path) -> None:
    """Run the migrations ``conn``'s database lacks, inside the caller's write transaction.

    ``db_path`` only names the database in the error.

    Raises:
        NewerRegistryError: the database was written by a newer jobfleet.
    """
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise NewerRegistryError(str(db_path), version, SCHEMA_VERSION)
    for statements in MIGRATIONS[version:]:
        for statement in statements:
            conn.execute(statement)
    if version < SCHEMA_VERSION:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
