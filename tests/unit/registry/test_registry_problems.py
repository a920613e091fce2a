"""The registry under hostile conditions: each low-level error becomes one
:class:`RegistryError` naming the file and the fix (``registry/problems.py``,
``jobfleet.sqlite.describe``), and a registry that cannot be used is never changed.

The command line's side of the same conditions: tests/cli/test_registry_conditions.py.
"""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from jobfleet import sqlite as jf_sqlite
from jobfleet.errors import (
    NewerRegistryError,
    RegistryError,
    RegistryUnusableError,
    UnknownJobError,
)
from jobfleet.registry import SCHEMA_VERSION, NewJob, Registry
from jobfleet.registry.opening import NO_TOKEN_YET
from jobfleet.registry.problems import explain
from jobfleet.spec import JobSpec
from support.mounts import read_only

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "schema3.db"


def job(name: str = "job") -> NewJob:
    return NewJob(name, "local", JobSpec(["true"], name=name))


def made(home: Path, jobs: int = 2) -> Path:
    """A real registry under ``home`` with ``jobs`` jobs; its database file."""
    with Registry(home) as registry:
        registry.create_jobs([job(f"j{i}") for i in range(jobs)])
    return home / "registry.db"


def digest(path: Path) -> tuple[str, int]:
    return hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns


def raw(path: Path, *statements: str) -> None:
    conn = sqlite3.connect(path)
    try:
        for statement in statements:
            conn.execute(statement)
        conn.commit()
    finally:
        conn.close()


# -- no registry ------------------------------------------------------------------


def test_reading_no_registry_reads_an_empty_one_and_creates_nothing(tmp_path: Path) -> None:
    home = tmp_path / "not" / "yet"
    with Registry(home) as registry:
        assert registry.recent() == [] and registry.unfinished() == []
        assert registry.find_native("local", "1") is None
        with pytest.raises(UnknownJobError):
            registry.get("1")
        assert registry.token == NO_TOKEN_YET  # the same in every dry run before the first job
    assert not (tmp_path / "not").exists()


def test_the_first_write_makes_the_registry_whole_and_leaves_nothing_else(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with Registry(home) as registry:
        (record,) = registry.create_jobs([job()])
        assert registry.token != NO_TOKEN_YET and len(registry.token) == 8
        assert registry.get(record.id).name == "job"
    assert sorted(p.name for p in home.iterdir()) == ["jobs", "registry.db"]


def test_registries_made_at_once_are_one(tmp_path: Path) -> None:
    home = tmp_path / "home"
    registries = [Registry(home) for _ in range(6)]
    errors: list[BaseException] = []

    def first_write(registry: Registry) -> None:
        try:
            registry.create_jobs([job()])
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=first_write, args=(r,)) for r in registries]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len({r.token for r in registries}) == 1
    assert sorted(int(r.id) for r in registries[0].recent(limit=10)) == [1, 2, 3, 4, 5, 6]
    for registry in registries:
        registry.close()


@pytest.mark.parametrize("where", ["home", "parent"])
def test_a_home_that_is_a_file_is_unusable(tmp_path: Path, where: str) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("mine\n")
    home = blocker if where == "home" else blocker / "home"
    with pytest.raises(RegistryUnusableError, match="JOBFLEET_HOME") as info:
        Registry(home)
    assert str(blocker) in str(info.value) and info.value.exit_status == 2
    assert blocker.read_text() == "mine\n"


# -- a newer jobfleet's registry --------------------------------------------------


def test_a_newer_registry_is_refused_and_left_unchanged(tmp_path: Path) -> None:
    db = made(tmp_path)
    raw(db, f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    before, listing = digest(db), sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(NewerRegistryError) as info:
        Registry(tmp_path)
    assert str(info.value) == (
        f"registry {db} was written by a newer jobfleet (schema {SCHEMA_VERSION + 1}; this "
        f"one knows up to {SCHEMA_VERSION}): upgrade jobfleet, or set JOBFLEET_HOME to "
        "another directory"
    )
    assert info.value.exit_status == 2
    assert digest(db) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == listing


# -- damaged files and other databases --------------------------------------------


def _random(db: Path) -> None:
    db.write_bytes(bytes(range(256)) * 200)


def _truncated(db: Path) -> None:
    db.write_bytes(db.read_bytes()[:20_000])


def _truncated_header(db: Path) -> None:
    db.write_bytes(db.read_bytes()[:60])


def _empty(db: Path) -> None:
    db.write_bytes(b"")


def _text(db: Path) -> None:
    db.write_text("my notes\n" * 50)


def _other_tables(db: Path) -> None:
    db.unlink()
    raw(db, "CREATE TABLE accounts (id INTEGER, balance REAL)")


def _missing_column(db: Path) -> None:
    db.unlink()
    raw(db, "CREATE TABLE jobs (id INTEGER)", f"PRAGMA user_version = {SCHEMA_VERSION}")


def _missing_table(db: Path) -> None:
    raw(db, "DROP TABLE callbacks")


DAMAGE: dict[str, tuple[Callable[[Path], None], str]] = {
    "random bytes": (_random, "not an SQLite database"),
    "truncated": (_truncated, "cut short"),
    "truncated header": (_truncated_header, "cut short"),
    "zero length": (_empty, "empty"),
    "text": (_text, "not an SQLite database"),
    "other tables": (_other_tables, "other tables (accounts)"),
    "missing column": (_missing_column, "lacks column"),
    "missing table": (_missing_table, "'callbacks'"),
}


@pytest.mark.parametrize("kind", list(DAMAGE))
def test_a_damaged_registry_is_refused_and_left_unchanged(tmp_path: Path, kind: str) -> None:
    db = made(tmp_path)
    damage, why = DAMAGE[kind]
    damage(db)
    before = digest(db)
    with pytest.raises(RegistryUnusableError) as info:
        Registry(tmp_path)
    message = str(info.value)
    assert message.startswith(f"{db} is damaged or is not a jobfleet registry (")
    assert why in message and "move it aside" in message and len(message) < 480
    assert info.value.exit_status == 2
    assert digest(db) == before
    assert not (tmp_path / "registry.db-wal").exists()


def test_damage_found_only_by_a_query_is_unusable_too(tmp_path: Path) -> None:
    db = made(tmp_path, jobs=300)
    data = bytearray(db.read_bytes())
    page = int.from_bytes(data[16:18], "big")
    data[page * 3 : page * 3 + 200] = b"\xff" * 200  # a page of the tables, not the header
    db.write_bytes(bytes(data))
    with Registry(tmp_path) as registry, pytest.raises(RegistryUnusableError, match="damaged"):
        for _ in range(3):
            registry.recent(limit=1000)
            registry.unfinished()


# -- what SQLite and the system say, in words -------------------------------------


def test_a_full_disk_undoes_the_write_and_says_so(tmp_path: Path) -> None:
    db = made(tmp_path, jobs=1)
    with Registry(tmp_path) as registry:
        pages = registry._conn.execute("PRAGMA page_count").fetchone()[0]
        # What SQLite says when its file cannot grow: SQLITE_FULL.
        registry._conn.execute(f"PRAGMA max_page_count = {pages + 1}")
        with pytest.raises(RegistryError) as info:
            registry.create_jobs([job(f"big{i}" * 30) for i in range(300)])
        assert "no space left" in str(info.value) and str(db) in str(info.value)
        assert type(info.value) is RegistryError and info.value.exit_status == 1
        # Nothing of the failed write: no record, no directory.
        assert [r.name for r in registry.recent()] == ["j0"]
        made_dirs = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.glob("jobs/*/*"))
        assert made_dirs == ["jobs/0xxx/1"]
    raw_conn = sqlite3.connect(db)
    try:
        assert raw_conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    finally:
        raw_conn.close()


def test_a_lock_held_too_long_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = made(tmp_path, jobs=1)
    monkeypatch.setattr(jf_sqlite, "BUSY_TIMEOUT_S", 0.3)
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with Registry(tmp_path) as registry:
            assert [r.name for r in registry.recent()] == ["j0"]  # reading is not blocked
            with pytest.raises(RegistryError) as info:
                registry.create_jobs([job()])
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert "another process kept it locked for 0.3s" in str(info.value)
    assert f"fuser {db}" in str(info.value)


def test_explain_names_each_condition(tmp_path: Path) -> None:
    db = tmp_path / "registry.db"
    made(tmp_path, jobs=1)
    ro = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        with pytest.raises(sqlite3.OperationalError) as readonly:
            ro.execute("DELETE FROM jobs")
    finally:
        ro.close()
    assert "is not writable" in str(explain(readonly.value, db, "write"))
    full = OSError(28, "No space left on device", str(tmp_path / "jobs" / "0xxx" / "9"))
    assert "no space left on its file system" in str(explain(full, db, "write"))
    assert str(tmp_path / "jobs" / "0xxx" / "9") in str(explain(full, db, "write"))
    not_dir = OSError(20, "Not a directory", str(db))
    assert isinstance(explain(not_dir, db, "create"), RegistryUnusableError)
    other = explain(OSError(5, "Input/output error"), db, "read")
    assert str(other) == f"cannot read the job registry {db}: Input/output error"
    already = RegistryError("as it was")
    assert explain(already, db, "read") is already


# -- a home nobody may write to ---------------------------------------------------


def test_a_read_only_home_is_read_and_writes_say_why(tmp_path: Path) -> None:
    home = tmp_path / "home"
    db = made(home)
    before = digest(db)
    with read_only(home), Registry(home) as registry:
        assert registry.read_only is not None
        assert [r.name for r in registry.recent()] == ["j1", "j0"]
        with pytest.raises(RegistryError) as info:
            registry.create_jobs([job()])
    assert "is not writable" in str(info.value) and str(db) in str(info.value)
    assert digest(db) == before


def test_a_read_only_home_without_a_registry_reads_empty(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    with read_only(home), Registry(home) as registry:
        assert registry.recent() == []
        with pytest.raises(RegistryError, match="not writable"):
            registry.create_jobs([job()])


def test_the_fixture_of_an_older_registry_still_upgrades(tmp_path: Path) -> None:
    # Judging a file before touching it must not refuse a real older registry.
    shutil.copy(FIXTURE, tmp_path / "registry.db")
    with Registry(tmp_path) as registry:
        assert registry.recent(limit=100)
        assert registry._conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
