"""Tests for jobfleet.states: the neutral state enum, TERMINAL, aggregation, records."""

from __future__ import annotations

import doctest
import itertools
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import jobfleet.states
from jobfleet.states import ACTIVE, TERMINAL, ElementRecord, JobRecord, JobState, aggregate
from jobfleet.usage import USAGE_KEYS

S = JobState
FAILURE_ORDER = [S.FAILED, S.OUT_OF_MEMORY, S.TIMEOUT, S.LOST, S.CANCELLED, S.COMPLETED]
ACTIVE_ORDER = [S.RUNNING, S.UNKNOWN, S.PENDING]


def test_doctests() -> None:
    result = doctest.testmod(jobfleet.states)
    assert result.attempted > 0
    assert result.failed == 0


def test_string_values_are_the_public_contract() -> None:
    assert [s.value for s in JobState] == [
        "pending",
        "running",
        "completed",
        "failed",
        "cancelled",
        "timeout",
        "out_of_memory",
        "lost",
        "unknown",
    ]
    for state in JobState:
        assert str(state) == state.value
        assert f"{state}" == state.value
        assert JobState(state.value) is state
        assert state == state.value  # a str enum compares equal to its value


def test_terminal_membership() -> None:
    assert {S.COMPLETED, S.FAILED, S.CANCELLED, S.TIMEOUT, S.OUT_OF_MEMORY, S.LOST} == TERMINAL
    assert {S.PENDING, S.RUNNING, S.UNKNOWN} == ACTIVE
    assert set(JobState) == TERMINAL | ACTIVE
    assert not TERMINAL & ACTIVE
    for state in JobState:
        assert state.is_terminal == (state in TERMINAL)
    # UNKNOWN is "cannot tell right now", never an outcome
    assert not S.UNKNOWN.is_terminal


def test_aggregate_empty_is_unknown() -> None:
    assert aggregate([]) is S.UNKNOWN


@pytest.mark.parametrize("state", list(JobState))
def test_aggregate_single(state: JobState) -> None:
    assert aggregate([state]) is state
    assert aggregate([state] * 5) is state


@pytest.mark.parametrize(
    ("states", "expected"),
    [
        ([S.COMPLETED, S.RUNNING], S.RUNNING),
        ([S.FAILED, S.PENDING], S.PENDING),
        ([S.FAILED, S.RUNNING, S.PENDING], S.RUNNING),
        ([S.PENDING, S.UNKNOWN], S.UNKNOWN),
        ([S.UNKNOWN, S.RUNNING], S.RUNNING),
        ([S.COMPLETED, S.UNKNOWN], S.UNKNOWN),
        ([S.COMPLETED, S.COMPLETED], S.COMPLETED),
        ([S.COMPLETED, S.CANCELLED], S.CANCELLED),
        ([S.COMPLETED, S.TIMEOUT], S.TIMEOUT),
        ([S.LOST, S.COMPLETED], S.LOST),
        ([S.TIMEOUT, S.OUT_OF_MEMORY, S.COMPLETED], S.OUT_OF_MEMORY),
        ([S.CANCELLED, S.FAILED, S.TIMEOUT], S.FAILED),
    ],
)
def test_aggregate_examples(states: list[JobState], expected: JobState) -> None:
    assert aggregate(states) is expected
    assert aggregate(reversed(states)) is expected
    assert aggregate(iter(states)) is expected  # any iterable, consumed once


@pytest.mark.parametrize(("better", "worse"), list(itertools.combinations(FAILURE_ORDER, 2)))
def test_terminal_precedence(better: JobState, worse: JobState) -> None:
    assert aggregate([worse, better]) is better


@pytest.mark.parametrize(("better", "worse"), list(itertools.combinations(ACTIVE_ORDER, 2)))
def test_active_precedence(better: JobState, worse: JobState) -> None:
    assert aggregate([worse, better]) is better


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(JobState), min_size=1, max_size=20))
def test_aggregate_properties(states: list[JobState]) -> None:
    result = aggregate(states)
    assert result in states
    # terminal only when every element is
    assert result.is_terminal == all(s.is_terminal for s in states)
    # completed only when every element completed
    assert (result is S.COMPLETED) == all(s is S.COMPLETED for s in states)
    # order does not matter
    assert aggregate(sorted(states, key=lambda s: s.value)) is result
    if result.is_terminal:
        assert FAILURE_ORDER.index(result) == min(FAILURE_ORDER.index(s) for s in states)
    else:
        unfinished = [s for s in states if not s.is_terminal]
        assert ACTIVE_ORDER.index(result) == min(ACTIVE_ORDER.index(s) for s in unfinished)


def _record(**changes: object) -> JobRecord:
    values: dict[str, object] = {
        "id": "12",
        "name": "train",
        "backend": "local",
        "native_id": "4242",
        "state": S.COMPLETED,
        "exit_code": 0,
        "reason": None,
        "submitted": True,
        "job_dir": "/jobs/12",
        "created_at": 1.5,
        "updated_at": 2.5,
    }
    values.update(changes)
    return JobRecord(**values)  # type: ignore[arg-type]


def test_single_record_to_dict() -> None:
    data = _record().to_dict()
    assert data == {
        "id": "12",
        "name": "train",
        "backend": "local",
        "native_id": "4242",
        "state": "completed",
        "exit_code": 0,
        "reason": None,
        "submitted": True,
        "job_dir": "/jobs/12",
        "created_at": 1.5,
        "updated_at": 2.5,
        "attempt": 1,
        # what it used: unknown here (tests/unit/test_usage.py has known values)
        "submitted_at": None,
        "started_at": None,
        "ended_at": None,
        "hosts": None,
        "max_memory_bytes": None,
        "cpu_time_s": None,
        "wall_time_s": None,
        # when jobfleet clean removed its files: never
        "cleaned_at": None,
    }
    cleaned = _record(cleaned_at=1_700_000_000.25).to_dict()["cleaned_at"]
    assert cleaned == "2023-11-14T22:13:20.250000Z"
    assert "elements" not in data
    assert json.loads(json.dumps(data)) == data


def test_array_record_to_dict() -> None:
    elements = {
        10: ElementRecord(10, S.FAILED, 3, "NonZeroExitCode"),
        2: ElementRecord(2, S.COMPLETED, 0),
        1: ElementRecord(1, S.RUNNING),
    }
    record = _record(state=S.RUNNING, exit_code=None, native_id=None, elements=elements)
    data = record.to_dict()
    assert data["state"] == "running"
    assert data["native_id"] is None
    assert data["exit_code"] is None
    # keys are strings (JSON), in numeric order
    assert list(data["elements"]) == ["1", "2", "10"]
    unknown = dict.fromkeys(USAGE_KEYS)
    assert data["elements"]["10"] == {
        "state": "failed",
        "exit_code": 3,
        "reason": "NonZeroExitCode",
        **unknown,
    }
    assert data["elements"]["1"] == {
        "state": "running",
        "exit_code": None,
        "reason": None,
        **unknown,
    }
    assert json.loads(json.dumps(data)) == data
    assert record.is_array
    assert not record.succeeded


def test_record_properties() -> None:
    assert _record().succeeded
    assert not _record().is_array
    assert not _record(state=S.FAILED, exit_code=1).succeeded
    assert not _record(state=S.LOST, exit_code=None).succeeded
