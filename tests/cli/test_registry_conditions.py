"""Every command with no registry, a home that is a file, a registry written by a
newer jobfleet, a damaged one, a read-only home, a full disk and a lock held too
long: one ``jobfleet: error:`` line naming the file and the fix, exit 2 (it cannot
be used as it is) or 1 (an operation failed), never a traceback (``jf`` checks),
and an existing registry left byte for byte as it was.

Each command is a separate process, as a user runs it (local backend).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from jobfleet.registry import SCHEMA_VERSION
from support.cli import PY, jf
from support.mounts import fill, read_only, tmpfs

#: Every command that opens the registry, as a user would type it about job 1.
COMMANDS = [
    ("status",),
    ("status", "1"),
    ("wait", "1", "--timeout", "5"),
    ("cancel", "1"),
    ("logs", "1"),
    ("top", "--iterations", "1"),
    ("queue",),
    ("adopt", "--prefix", "zz-none-"),
    ("submit", "--", "true"),
]
IDS = [" ".join(c[:2]) for c in COMMANDS]


def digest(path: Path) -> tuple[str, int]:
    return hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns


def error_line(proc: subprocess.CompletedProcess[str]) -> str:
    """The one error line of a failed command (anything else on stderr is a failure)."""
    lines = proc.stderr.splitlines()
    errors = [line for line in lines if line.startswith("jobfleet: error: ")]
    assert len(errors) == 1 and lines[-1] == errors[0], proc.stderr
    assert len(errors[0]) < 500
    return errors[0]


def a_registry(home: Path) -> Path:
    """A registry with one ended job (id 1), and no process left using it."""
    job = jf("submit", "--", "true").stdout.strip()
    jf("wait", job, "--timeout", "60")
    return home / "registry.db"


# -- 1. no registry ---------------------------------------------------------------


NO_SUCH_JOB = [("status", "1"), ("wait", "1", "--timeout", "5"), ("cancel", "1"), ("logs", "1")]


@pytest.mark.parametrize("command", NO_SUCH_JOB, ids=[c[0] for c in NO_SUCH_JOB])
def test_no_registry_is_no_such_job_and_creates_nothing(jf_home: Path, command: tuple[str]) -> None:
    assert "no job with id '1'" in error_line(jf(*command, expect=2))
    assert not jf_home.exists()


def test_no_registry_is_no_jobs_yet_and_creates_nothing(jf_home: Path) -> None:
    assert "no jobs yet" in jf("status").stdout
    assert "0 jobs" in jf("top", "--iterations", "1").stdout
    assert json.loads(jf("status", "--json").stdout) == []
    assert not jf_home.exists()
    jf("submit", "--", "true")  # the first write makes the home
    assert (jf_home / "registry.db").is_file()


@pytest.mark.parametrize("where", ["home", "parent"])
@pytest.mark.parametrize("command", COMMANDS, ids=IDS)
def test_a_home_that_is_a_file(
    tmp_path: Path, jf_home: Path, where: str, command: tuple[str, ...]
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("mine\n")
    home = blocker if where == "home" else blocker / "jobfleet"
    line = error_line(jf(*command, expect=2, env={"JOBFLEET_HOME": str(home)}))
    assert f"the jobfleet home {home} cannot be a directory" in line
    assert "set JOBFLEET_HOME to a directory" in line
    assert blocker.read_text() == "mine\n"


def test_config_show_needs_no_registry(tmp_path: Path, jf_home: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("mine\n")
    jf("config", "show", env={"JOBFLEET_HOME": str(blocker)})


# -- 3. a newer jobfleet's registry, 4. a damaged one -----------------------------


def _newer(db: Path) -> None:
    conn = sqlite3.connect(db)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()


def _other_tables(db: Path) -> None:
    db.unlink()
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE notes (text TEXT)")
    conn.close()


def _missing_column(db: Path) -> None:
    db.unlink()
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE jobs (id INTEGER)")
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    conn.close()


CONDITIONS = {
    "newer": (_newer, "was written by a newer jobfleet"),
    "random bytes": (lambda db: db.write_bytes(bytes(range(256)) * 64), "is damaged"),
    "truncated": (lambda db: db.write_bytes(db.read_bytes()[:9000]), "is damaged"),
    "zero length": (lambda db: db.write_bytes(b""), "is damaged"),
    "text": (lambda db: db.write_text("notes\n" * 99), "is not a jobfleet registry"),
    "other tables": (_other_tables, "is not a jobfleet registry"),
    "missing column": (_missing_column, "is not a jobfleet registry"),
}


@pytest.fixture(scope="module")
def spoiled(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """The bytes of each spoiled registry, made once from a real one."""
    home = tmp_path_factory.mktemp("spoiled")
    config = home / "jobfleet.yaml"
    config.write_text("backend: local\nlocal:\n  idle_exit: 1s\n")
    env = {"JOBFLEET_HOME": str(home / "h"), "JOBFLEET_CONFIG": str(config)}
    job = jf("submit", "--", "true", env=env, cwd=home).stdout.strip()
    jf("wait", job, "--timeout", "60", env=env, cwd=home)
    good = (home / "h" / "registry.db").read_bytes()
    made = {}
    for name, (spoil, _) in CONDITIONS.items():
        db = home / f"{name}.db"
        db.write_bytes(good)
        spoil(db)
        made[name] = db.read_bytes()
    return made


@pytest.mark.parametrize("condition", list(CONDITIONS))
@pytest.mark.parametrize("command", COMMANDS, ids=IDS)
def test_an_unusable_registry_is_one_line_and_left_unchanged(
    jf_home: Path, spoiled: dict[str, bytes], condition: str, command: tuple[str, ...]
) -> None:
    jf_home.mkdir()
    db = jf_home / "registry.db"
    db.write_bytes(spoiled[condition])
    before = digest(db)
    line = error_line(jf(*command, expect=2))
    assert str(db) in line and CONDITIONS[condition][1] in line
    if condition == "newer":
        assert f"(schema {SCHEMA_VERSION + 1}; this one knows up to {SCHEMA_VERSION})" in line
        assert line.endswith("upgrade jobfleet, or set JOBFLEET_HOME to another directory")
    else:
        assert "move it aside" in line
    assert digest(db) == before
    assert sorted(p.name for p in jf_home.iterdir()) == ["registry.db"]


# -- 2. a home nobody may write to ------------------------------------------------


def test_a_read_only_home_still_reads(jf_home: Path) -> None:
    db = a_registry(jf_home)
    time.sleep(1.5)  # the local agent's idle exit: nothing writes here any more
    before = digest(db)
    with read_only(jf_home):
        assert "completed" in jf("status", "1").stdout
        assert jf("logs", "1", "--path").stdout.strip().startswith(str(jf_home / "jobs"))
        line = error_line(jf("submit", "--", "true", expect=1))
        assert "is not writable" in line and "JOBFLEET_HOME" in line
    assert digest(db) == before


# -- 5. a full disk ---------------------------------------------------------------


def test_a_full_disk_is_one_line_and_the_registry_survives(tmp_path: Path, jf_home: Path) -> None:
    mount = tmp_path / "small"
    with tmpfs(mount, 1024):
        home = mount / "jobfleet"
        env = {"JOBFLEET_HOME": str(home)}
        jf("submit", "--", "true", env=env)
        filler = fill(mount)
        for command in (("submit", "--", "true"), ("status",), ("status", "1")):
            line = error_line(jf(*command, expect=1, env=env))
            assert "no space left" in line and str(home) in line, line
        filler.unlink()
        # Nothing half-written: what was recorded reads back, and writes work again.
        records = json.loads(jf("status", "--json", env=env).stdout)
        assert [r["id"] for r in records] == ["1"]
        conn = sqlite3.connect(home / "registry.db")
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        conn.close()


def test_a_disk_filling_up_during_submit_leaves_every_job_accounted_for(
    tmp_path: Path, jf_home: Path
) -> None:
    mount = tmp_path / "small"
    with tmpfs(mount, 1024):
        home = mount / "jobfleet"
        env = {"JOBFLEET_HOME": str(home)}
        jf("submit", "--", "true", env=env)
        exits = []
        # From no room at all to enough: each step fails somewhere else, or not at all.
        for leave_kib in (0, 8, 16, 32, 48, 64, 96, 128, 192, 256):
            filler = fill(mount, leave_kib)
            proc = jf("submit", "--", "true", expect=None, env=env)
            filler.unlink()
            exits.append(proc.returncode)
            if proc.returncode:
                assert proc.returncode == 1
                line = error_line(proc)
                assert "no space left" in line.lower() or "no space left" in proc.stderr.lower()
                if "reached" in line:  # the scheduler has it: the message names it
                    assert "native id" in line
        assert exits[0] == 1 and 0 in exits, exits
        records = json.loads(jf("status", "--json", env=env).stdout)
        # Every job the registry holds is settled one way or the other, none half-made.
        submitted = [r for r in records if r["native_id"] is not None]
        assert len(submitted) >= exits.count(0) + 1
        for record in records:
            assert record["native_id"] is not None or record["state"] in ("failed", "unknown")
        conn = sqlite3.connect(home / "registry.db")
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        conn.close()


# -- 6. a lock held too long ------------------------------------------------------


def test_a_lock_held_too_long_is_one_line(jf_home: Path) -> None:
    db = a_registry(jf_home)
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        # The busy time-out (30 s) made short: jobfleet run as `python -c`, not -m.
        code = (
            "import jobfleet.sqlite as s; s.BUSY_TIMEOUT_S = 1.0; "
            "from jobfleet.cli.main import main; main()"
        )
        started = time.monotonic()
        proc = subprocess.run(
            [PY, "-c", code, "submit", "--", "true"],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=jf_home.parent,
        )
        took = time.monotonic() - started
        assert "Traceback" not in proc.stderr and proc.returncode == 1, proc.stderr
        line = error_line(proc)
        assert "another process kept it locked for 1s" in line and f"fuser {db}" in line
        assert took < 20
        # Reading is not blocked by a writer.
        assert "completed" in jf("status", "1").stdout
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    jf("submit", "--", "true")


def test_a_read_only_home_shows_unfinished_jobs_as_recorded(jf_home: Path) -> None:
    from jobfleet.registry import NewJob, Registry, StatusUpdate
    from jobfleet.spec import JobSpec
    from jobfleet.states import JobState

    a_registry(jf_home)
    with Registry(jf_home) as registry:
        (job,) = registry.create_jobs([NewJob("far", "slurm", JobSpec(["true"]))], ["987654"])
        registry.apply([StatusUpdate(job.id, JobState.RUNNING, native_id="987654")])
    time.sleep(1.5)  # the local agent's idle exit: nothing writes here any more
    db = jf_home / "registry.db"
    before = digest(db)
    with read_only(jf_home):
        proc = jf("status", "--json", job.id)  # a poll's news could not be recorded
        (row,) = json.loads(proc.stdout)
        assert (row["state"], row["refreshed"]) == ("running", False)
        assert row["not_refreshed_because"].startswith("not asked: ")
        assert "not writable" in row["not_refreshed_because"]
        assert proc.stderr.startswith("jobfleet: warning: slurm not asked: ")
    assert digest(db) == before
