"""The rule "which states use up a retry" is written once (states.DEFAULT_RETRY_ON)
and the spec, the record and the registry's SQL all follow it."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from jobfleet.registry import NewJob, Registry, StatusUpdate
from jobfleet.spec import JobSpec, spec_from_dict, spec_to_dict
from jobfleet.states import DEFAULT_RETRY_ON, RETRYABLE, TERMINAL, JobRecord, JobState


def test_default_is_failed_and_lost_and_retryable() -> None:
    assert DEFAULT_RETRY_ON == (JobState.FAILED, JobState.LOST)
    assert set(DEFAULT_RETRY_ON) <= set(RETRYABLE) <= TERMINAL


def test_spec_default_and_stored_default_agree() -> None:
    assert JobSpec(["true"]).retry_on == DEFAULT_RETRY_ON
    stored = spec_to_dict(JobSpec(["true"], retries=1))
    del stored["retry_on"]
    assert spec_from_dict(stored).retry_on == DEFAULT_RETRY_ON


@pytest.mark.parametrize("state", sorted(TERMINAL, key=str))
def test_record_and_sql_agree_for_a_spec_stored_without_retry_on(
    tmp_path: Path, state: JobState
) -> None:
    with Registry(tmp_path / "home") as reg:
        (job,) = reg.create_jobs([NewJob("j", "local", JobSpec(["true"], retries=1))])
        reg.mark_submitted(job.id, "1")
        reg.apply([StatusUpdate(job.id, state)])
        # As written by a jobfleet whose specs had no retry_on.
        with sqlite3.connect(reg.db_path) as raw:
            raw.execute("UPDATE jobs SET spec = json_remove(spec, '$.retry_on')")
        raw.close()
        record = reg.get(job.id)
        assert "retry_on" not in record.spec
        assert record.retry_due == (state in DEFAULT_RETRY_ON)
        assert [r.id for r in reg.unfinished()] == ([job.id] if record.retry_due else [])


@pytest.mark.parametrize("retry_on", [("timeout",), ("failed", "out_of_memory"), ()])
def test_record_and_sql_agree_for_an_explicit_retry_on(
    tmp_path: Path, retry_on: tuple[str, ...]
) -> None:
    spec = JobSpec(["true"], retries=2, retry_on=retry_on)
    with Registry(tmp_path / "home") as reg:
        jobs = reg.create_jobs([NewJob(str(s), "local", spec) for s in sorted(TERMINAL, key=str)])
        reg.mark_submitted_many([(j.id, j.id) for j in jobs])
        reg.apply([StatusUpdate(j.id, JobState(j.name)) for j in jobs])
        due = {r.id for r in reg.get_many([j.id for j in jobs]) if r.retry_due}
        assert {r.id for r in reg.unfinished()} == due
        assert {reg.get(i).state.value for i in due} == set(retry_on)


def test_record_without_spec_uses_the_default() -> None:
    def record(state: JobState) -> JobRecord:
        return JobRecord(
            "1", "j", "local", "1", state, None, None, True, "", 0.0, 0.0, {"retries": 1}
        )

    assert {s for s in TERMINAL if record(s).retry_due} == set(DEFAULT_RETRY_ON)
