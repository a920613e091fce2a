"""A registry written by an earlier jobfleet still opens, reads back as written, and takes writes.

``tests/unit/registry/fixtures/schema3.db`` was written by the single-module registry
(schema 3) by ``make_fixture.py``, ``schema4.db`` by the package before schema 5 added
``cleaned_at``; ``schema<N>.json`` is what that code read back. Every test runs on both.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from jobfleet.registry import SCHEMA_VERSION, SUBMITTING, NewJob, Registry, StatusUpdate
from jobfleet.spec import JobSpec
from jobfleet.states import JobState
from jobfleet.usage import USAGE_KEYS, Usage

FIXTURES = Path(__file__).resolve().parent / "fixtures"
#: The schema versions of the fixtures: each is opened by every test.
VERSIONS = (3, 4)
WRITTEN: dict[int, dict[str, Any]] = {
    v: json.loads((FIXTURES / f"schema{v}.json").read_text()) for v in VERSIONS
}
#: The same jobs, by role, in every fixture (make_fixture.py's build()).
IDS: dict[str, str] = WRITTEN[3]["ids"]
#: The absence bookkeeping's clock in make_fixture.py.
T0 = 1_700_000_000.0


@pytest.fixture(params=VERSIONS, ids=lambda v: f"schema{v}")
def version(request: pytest.FixtureRequest) -> int:
    return int(request.param)


@pytest.fixture
def expected(version: int) -> dict[str, Any]:
    return WRITTEN[version]


@pytest.fixture
def reg(tmp_path: Path, version: int) -> Iterator[Registry]:
    home = tmp_path / "home"
    home.mkdir()
    shutil.copyfile(FIXTURES / f"schema{version}.db", home / "registry.db")
    with Registry(home) as registry:
        yield registry


def test_fixtures_are_schemas_3_and_4() -> None:
    assert [WRITTEN[v]["user_version"] for v in VERSIONS] == [3, 4]
    assert all(WRITTEN[v]["ids"] == IDS for v in VERSIONS)
    # Schema 4 added the usage columns (issue 11), schema 5 cleaned_at (jobfleet clean).
    assert SCHEMA_VERSION == 5


#: What a schema-3 record reads back with: schema 4's usage, all unknown.
NO_USAGE_JSON = dict.fromkeys(USAGE_KEYS)


def _as_read_now(record: dict[str, Any], version: int) -> dict[str, Any]:
    """A record written by an older schema as this one reads it: the same, plus (from
    schema 3) usage keys, all null, on the job and on each element, plus (from schema 3
    and 4) ``cleaned_at`` null: its files were never removed."""
    out = {**record, "cleaned_at": None}
    if version == 3:
        out.update(NO_USAGE_JSON)
        if "elements" in record:
            out["elements"] = {i: {**e, **NO_USAGE_JSON} for i, e in record["elements"].items()}
    return out


def test_every_record_reads_back_as_written(
    reg: Registry, version: int, expected: dict[str, Any]
) -> None:
    records = reg.get_many(list(IDS.values()))
    assert {r.id: {**r.to_dict(), "spec": r.spec} for r in records} == {
        job_id: _as_read_now(record, version) for job_id, record in expected["records"].items()
    }
    assert all(r.cleaned_at is None for r in records)
    assert reg.token == expected["token"]
    for job_id in IDS.values():
        assert reg.attempts(job_id) == expected["attempts"][job_id]
        assert reg.events(job_id) == expected["events"][job_id]
        assert reg.callbacks_fired(job_id) == expected["callbacks"][job_id]
    assert [r.id for r in reg.unfinished()] == expected["unfinished"]
    assert [r.id for r in reg.unfinished("slurm")] == expected["unfinished_slurm"]
    assert [r.id for r in reg.recent(5)] == expected["recent"]


def test_states_exit_codes_and_reasons(reg: Registry) -> None:
    """The same facts as above, spelled out, so a wrong fixture cannot pass."""
    get = {name: reg.get(job_id) for name, job_id in IDS.items()}
    assert (get["done"].state, get["done"].exit_code, get["done"].reason) == (
        JobState.COMPLETED,
        0,
        None,
    )
    failed = get["failed"]
    assert (failed.state, failed.exit_code, failed.reason) == (
        JobState.FAILED,
        3,
        "NonZeroExitCode",
    )
    array = get["array"]
    assert array.state is JobState.RUNNING and array.exit_code is None
    assert {i: (e.state, e.exit_code, e.reason) for i, e in array.elements.items()} == {
        0: (JobState.COMPLETED, 0, None),
        1: (JobState.FAILED, 2, "NonZeroExitCode"),
        2: (JobState.RUNNING, None, None),
    }
    retried = get["retried"]
    assert (retried.state, retried.attempt, retried.native_id, retried.reason) == (
        JobState.PENDING,
        2,
        "9004",
        "Priority",
    )
    assert retried.job_dir.endswith("/jobs/4.2")
    (first,) = reg.attempts(IDS["retried"])
    assert (first["attempt"], first["native_id"], first["state"], first["exit_code"]) == (
        1,
        "9001",
        "failed",
        1,
    )
    due = get["retry-due"]
    assert due.state is JobState.LOST and due.retry_due and not due.settled
    submitting = get["submitting"]
    assert submitting.state is JobState.UNKNOWN and not submitting.submitted
    assert submitting.native_id is None
    assert submitting.reason is not None and submitting.reason.startswith(SUBMITTING)
    adopted = get["adopted"]
    assert adopted.state is JobState.TIMEOUT and adopted.spec["retries"] == 0
    assert adopted.settled
    assert reg.callbacks_fired(IDS["done"]) == {"on_done": "ok"}
    assert reg.callbacks_fired(IDS["failed"]) == {"on_done": "RuntimeError('boom')"}
    counts = {name: len(reg.events(job_id)) for name, job_id in IDS.items()}
    assert counts == {
        "done": 4,
        "failed": 4,
        "array": 10,
        "retried": 7,
        "retry-due": 3,
        "absent": 3,
        "submitting": 1,
        "adopted": 3,
    }
    assert reg._conn.execute("SELECT * FROM absences").fetchall() == [
        (int(IDS["absent"]), -1, T0, 2)
    ]
    assert reg.find_native("slurm", "9004") == retried
    assert reg.find_native("slurm", "9001") is None


def test_opening_migrates_to_schema_5_and_keeps_the_data(
    reg: Registry, expected: dict[str, Any]
) -> None:
    with sqlite3.connect(reg.db_path) as raw:
        assert raw.execute("PRAGMA user_version").fetchone()[0] == 5
        for table in ("jobs", "elements"):
            columns = {r[1] for r in raw.execute(f"SELECT * FROM pragma_table_info('{table}')")}
            assert set(USAGE_KEYS) <= columns, table
            assert ("cleaned_at" in columns) == (table == "jobs")
        absences = [list(r) for r in raw.execute("SELECT * FROM absences ORDER BY 1, 2")]
        meta = dict(raw.execute("SELECT key, value FROM meta").fetchall())
    raw.close()
    assert absences == expected["absences"]
    assert meta == expected["meta"]


def test_writes_work(reg: Registry) -> None:
    # The absence counted twice by the fixture is lost at its third poll.
    lost = reg.track_absence(
        "slurm",
        [IDS["absent"]],
        {IDS["absent"]: [None]},
        at=T0 + 90.0,
        lost_after_s=60.0,
    )
    assert lost == {IDS["absent"]: [None]}
    (array,) = reg.apply([StatusUpdate(IDS["array"], elements={2: (JobState.COMPLETED, 0, None)})])
    assert array.state is JobState.FAILED and array.exit_code == 2
    # Terminal states stay final on the old data too.
    assert reg.apply([StatusUpdate(IDS["done"], JobState.FAILED, exit_code=9)]) == []
    marked = reg.mark_submitted(IDS["submitting"], "106")
    assert marked.state is JobState.PENDING and marked.submitted
    retry = reg.begin_retry(IDS["retry-due"], 1, "retry 1 of 1: lost")
    assert retry is not None and retry.attempt == 2 and retry.state is JobState.UNKNOWN
    # Fired callbacks are never claimed again; a new one is.
    won = reg.claim_callbacks([(IDS["done"], "on_done"), (IDS["done"], "other")], "me")
    assert won == [(IDS["done"], "other")]
    reg.callbacks_done([(IDS["done"], "other", "ok")])
    assert reg.callbacks_fired(IDS["done"]) == {"on_done": "ok", "other": "ok"}
    (new,) = reg.create_jobs([NewJob("new", "local", JobSpec(["true"]))])
    assert int(new.id) == len(IDS) + 1 and Path(new.job_dir).is_dir()
    # Usage lands on the migrated rows, of a job and of an element, and stays.
    used = Usage(started_at=T0, ended_at=T0 + 5.0, hosts=("vm",), max_memory_bytes=2**20)
    reg.apply([StatusUpdate(IDS["done"], usage=used)])
    reg.apply([StatusUpdate(IDS["array"], element_usage={1: used})])
    assert reg.get(IDS["done"]).usage == used
    assert reg.get(IDS["done"]).state is JobState.COMPLETED
    array_now = reg.get(IDS["array"])
    assert array_now.elements[1].usage == used and array_now.elements[0].usage.empty
    assert reg.get(new.id) == new
    # The files of the migrated ended jobs can be marked removed; unfinished ones not.
    ended = [r.id for r, _ in reg.uncleaned() if r.settled]
    assert ended == [IDS["done"], IDS["failed"], IDS["array"], IDS["adopted"]]
    assert reg.mark_cleaned([(i, 1) for i in ended] + [(IDS["retried"], 2)]) == ended
    assert reg.get(IDS["done"]).cleaned_at is not None
    assert reg.get(IDS["retried"]).cleaned_at is None
