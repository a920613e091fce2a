"""A poll of a big array costs what changed (issue 16): ``Registry.apply`` reads again only
the job row and the elements it wrote, while nothing else wrote, and what it returns is
always what the database holds."""

from __future__ import annotations

import random
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from jobfleet.errors import RegistryError
from jobfleet.registry import NewJob, Registry, StatusUpdate, records
from jobfleet.spec import JobSpec, parse_array
from jobfleet.states import JobRecord
from jobfleet.states import JobState as S
from jobfleet.usage import Usage

STATES = [S.PENDING, S.RUNNING, S.COMPLETED, S.FAILED, S.CANCELLED, S.TIMEOUT, S.UNKNOWN]


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def loads(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[list[int]]]:
    """The row ids of every whole load of records (elements and all)."""
    seen: list[list[int]] = []
    original = records.load

    def counted(conn: object, ids: list[int]) -> list[JobRecord]:
        if ids:
            seen.append(list(ids))
        return original(conn, ids)  # type: ignore[arg-type]

    monkeypatch.setattr(records, "load", counted)
    yield seen


def _arrays(reg: Registry, n: int, size: int) -> list[str]:
    made = reg.create_jobs(
        [
            NewJob(f"a{i}", "board", JobSpec(["true"], array=parse_array(f"0-{size - 1}")))
            for i in range(n)
        ]
    )
    reg.mark_submitted_many([(r.id, f"n{r.id}") for r in made])
    return [r.id for r in made]


def _random_update(rng: random.Random, job_id: str, size: int) -> StatusUpdate:
    picked = rng.sample(range(size), rng.randrange(1, 6))
    elements = {
        i: (rng.choice(STATES), rng.choice([None, 0, 1, 137]), rng.choice([None, "why", "é"]))
        for i in picked
    }
    used = {
        i: Usage(
            started_at=rng.choice([None, 1e9 + rng.random()]),
            cpu_time_s=rng.choice([None, 2, 0.5]),  # an int stored in a REAL column
            hosts=rng.choice([None, ("n1",), ("n1", "n2")]),
            max_memory_bytes=rng.choice([None, 1 << 33]),
        )
        for i in rng.sample(range(size), rng.randrange(0, 4))
    }
    state = rng.choice([None, None, None, S.RUNNING, S.CANCELLED])
    return StatusUpdate(
        job_id,
        state=state,
        elements=elements,
        element_usage=used,
        usage=rng.choice([None, Usage(cpu_time_s=1.5)]),
    )


def test_what_apply_returns_is_what_the_database_holds(home: Path) -> None:
    rng = random.Random(1616)
    size = 40
    with Registry(home) as reg, Registry(home) as other:
        ids = _arrays(reg, 3, size)
        for step in range(150):
            if step % 17 == 5:  # another process polls meanwhile
                other.apply([_random_update(rng, rng.choice(ids), size)])
            if step % 23 == 11:  # this one writes what no record holds
                reg.note_outage("board", 1.0)
            if step % 29 == 13:  # this one writes another job
                reg.create_jobs([NewJob("single", "board", JobSpec(["true"]))])
            updates = [_random_update(rng, job, size) for job in rng.sample(ids, 2)]
            for record in reg.apply(updates):
                (truth,) = other.get_many([record.id])
                assert record == truth, step
                assert record.to_dict() == truth.to_dict(), step
                assert list(record.elements) == sorted(record.elements)


def test_only_the_first_poll_of_an_array_reads_it_whole(home: Path, loads: list[list[int]]) -> None:
    with Registry(home) as reg, Registry(home) as other:
        (job,) = _arrays(reg, 1, 1000)
        row = int(job)
        loads.clear()  # creating and submitting it read it
        running = {i: (S.RUNNING, None, None) for i in range(10)}
        reg.apply([StatusUpdate(job, elements=running)])
        assert loads == [[row]]
        for i in range(10):  # ten polls, an element ending in each
            (record,) = reg.apply([StatusUpdate(job, elements={i: (S.COMPLETED, 0, None)})])
            assert record.elements[i].state is S.COMPLETED and len(record.elements) == 1000
        assert loads == [[row]]  # none read it whole again
        reg.track_absence("board", [job], {}, at=1.0, lost_after_s=60)
        reg.note_outage("board", 2.0)  # what the lost rule keeps is in no record
        reg.apply([StatusUpdate(job, elements={30: (S.RUNNING, None, None)})])
        assert loads == [[row]]
        other.apply([StatusUpdate(job, elements={500: (S.RUNNING, None, None)})])
        loads.clear()  # (the other one's first apply read it whole)
        (record,) = reg.apply([StatusUpdate(job, elements={20: (S.RUNNING, None, None)})])
        assert loads == [[row]]  # another connection wrote: read whole again
        assert record.elements[500].state is S.RUNNING  # what the other one wrote
        reg.apply([StatusUpdate(job, elements={22: (S.RUNNING, None, None)})])
        assert loads == [[row]]
        reg.mark_submitted_many([])  # a write of this one's own, of anything
        reg.apply([StatusUpdate(job, elements={21: (S.RUNNING, None, None)})])
        assert loads == [[row], [row]]


def test_an_array_that_ended_is_not_kept(home: Path, loads: list[list[int]]) -> None:
    with Registry(home) as reg:
        (job,) = _arrays(reg, 1, 3)
        loads.clear()
        done = {i: (S.COMPLETED, 0, None) for i in range(3)}
        (record,) = reg.apply([StatusUpdate(job, elements=done)])
        assert record.state is S.COMPLETED
        reg.apply([StatusUpdate(job, element_usage={0: Usage(cpu_time_s=1.0)})])
        assert loads == [[int(job)], [int(job)]]


class _FailingCommit:
    """A connection whose next COMMIT is rolled back by SQLite (a full disk)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn, self.fail = conn, False

    def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
        if sql == "COMMIT" and self.fail:
            self.fail = False
            self.conn.execute("ROLLBACK")
            raise sqlite3.OperationalError("database or disk is full")
        return self.conn.execute(sql, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.conn, name)


class _LockThenRun:
    """The registry's lock; once released, runs ``then`` in another thread at once (a
    thread that was waiting for it)."""

    def __init__(self) -> None:
        self.lock, self.then = threading.Lock(), None

    def __enter__(self) -> None:
        self.lock.acquire()

    def __exit__(self, *exc: object) -> None:
        self.lock.release()
        then, self.then = self.then, None
        if then is not None:
            thread = threading.Thread(target=then)
            thread.start()
            thread.join()


def test_a_commit_that_failed_leaves_nothing_kept(home: Path) -> None:
    with Registry(home) as reg:
        (job,) = _arrays(reg, 1, 5)
        connection = _FailingCommit(reg._opened.conn)  # type: ignore[union-attr]
        object.__setattr__(reg._opened, "conn", connection)
        lock = _LockThenRun()
        reg._lock = lock  # type: ignore[assignment]
        reg.apply([StatusUpdate(job, elements={0: (S.RUNNING, None, None)})])  # kept
        seen: list[JobRecord] = []
        connection.fail = True
        lock.then = lambda: seen.extend(
            reg.apply([StatusUpdate(job, elements={1: (S.RUNNING, None, None)})])
        )
        with pytest.raises(RegistryError, match="disk is full"):
            reg.apply([StatusUpdate(job, elements={2: (S.FAILED, 1, "never committed")})])
        (record,) = seen
        assert record.elements[2].state is S.PENDING  # what the database holds
        (truth,) = reg.get_many([job])
        assert record == truth
