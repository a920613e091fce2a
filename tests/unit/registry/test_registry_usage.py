"""What jobs used, in the registry: stored, merged (None never erases), kept apart
from states and events, forgotten by a retry, and spelled the same in every query."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from jobfleet.registry import NewJob, Registry, StatusUpdate
from jobfleet.registry import usage as stored
from jobfleet.spec import JobSpec, parse_array
from jobfleet.states import JobState
from jobfleet.usage import USAGE_KEYS, Usage

T0 = 1_796_560_366.0
ENDED = Usage(T0 - 1, T0, T0 + 4, ("vm",), None, 0.3, 4.0)


@pytest.fixture
def reg(tmp_path: Path) -> Iterator[Registry]:
    with Registry(tmp_path / "home") as registry:
        yield registry


def _submitted(reg: Registry, spec: JobSpec) -> str:
    (record,) = reg.create_jobs([NewJob("job", "slurm", spec)])
    reg.mark_submitted(record.id, "100")
    return record.id


def test_usage_arrives_with_the_end_and_is_filled_in_later(reg: Registry) -> None:
    job = _submitted(reg, JobSpec(["true"]))
    (done,) = reg.apply([StatusUpdate(job, JobState.COMPLETED, 0, usage=ENDED)])
    assert done.state is JobState.COMPLETED and done.usage == ENDED
    events = len(reg.events(job))
    # MaxRSS comes a poll later: filled in; nothing known is erased by None.
    later = Usage(max_memory_bytes=221_400 * 1024)
    (filled,) = reg.apply([StatusUpdate(job, usage=later)])
    assert filled.usage == Usage(T0 - 1, T0, T0 + 4, ("vm",), 221_400 * 1024, 0.3, 4.0)
    assert filled.updated_at == done.updated_at  # not a state change
    assert len(reg.events(job)) == events  # nor an event
    # The same again, or nothing at all: no change reported.
    assert reg.apply([StatusUpdate(job, usage=later)]) == []
    assert reg.apply([StatusUpdate(job, usage=Usage())]) == []
    assert reg.get(job).usage == filled.usage


def test_usage_never_changes_a_state_or_an_exit_code(reg: Registry) -> None:
    job = _submitted(reg, JobSpec(["true"]))
    reg.apply([StatusUpdate(job, JobState.FAILED, 3)])
    (record,) = reg.apply([StatusUpdate(job, usage=ENDED)])
    assert (record.state, record.exit_code, record.usage) == (JobState.FAILED, 3, ENDED)


def test_each_element_has_its_own_usage(reg: Registry) -> None:
    job = _submitted(reg, JobSpec(["true"], array=parse_array("1-3")))
    one = Usage(started_at=T0, max_memory_bytes=10)
    two = Usage(started_at=T0 + 1, max_memory_bytes=20)
    reg.apply(
        [
            StatusUpdate(
                job,
                elements={1: (JobState.COMPLETED, 0, None), 2: (JobState.RUNNING, None, None)},
                element_usage={1: one, 2: two, 9: one},  # 9: no such element, ignored
            )
        ]
    )
    record = reg.get(job)
    assert {i: e.usage for i, e in record.elements.items()} == {1: one, 2: two, 3: Usage()}
    data = record.to_dict()
    assert data["elements"]["2"]["max_memory_bytes"] == 20
    assert data["elements"]["3"]["started_at"] is None
    assert set(USAGE_KEYS) <= set(data)


def test_a_retry_starts_with_no_usage(reg: Registry) -> None:
    job = _submitted(reg, JobSpec(["false"], retries=1))
    reg.apply([StatusUpdate(job, JobState.FAILED, 1, usage=ENDED)])
    retry = reg.begin_retry(job, 1, "retry 1 of 1: failed")
    assert retry is not None and retry.usage.empty


def test_the_spelled_out_queries_name_the_columns_in_order() -> None:
    # registry/usage.py and records.py spell the columns out (no SQL built at run time).
    assert ", ".join(stored.COLUMNS) == stored.LIST
    assert stored.COLUMNS == USAGE_KEYS
    conn = sqlite3.connect(":memory:")
    from jobfleet.registry.schema import migrate

    migrate(conn, Path())
    for table, after in (("jobs", ["cleaned_at"]), ("elements", [])):
        columns = [r[1] for r in conn.execute(f"SELECT * FROM pragma_table_info('{table}')")]
        # Schema 5 added cleaned_at after them (records.py reads it at that place).
        assert columns[len(columns) - 7 - len(after) :] == [*stored.COLUMNS, *after]
