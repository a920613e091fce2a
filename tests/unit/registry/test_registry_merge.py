"""The state-merge rules as pure functions: no database."""

from __future__ import annotations

import logging

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jobfleet.registry.merge import (
    Status,
    array_status,
    merge,
    merge_job,
    needs_worst_exit,
    next_reason,
)
from jobfleet.states import TERMINAL, JobState

S = JobState
states = st.sampled_from(list(JobState))
codes = st.none() | st.integers(0, 255)
reasons = st.none() | st.text(max_size=5)
statuses = st.tuples(states, codes, reasons)


@pytest.mark.parametrize(
    ("old", "new", "reason", "given", "expected"),
    [
        # A new state replaces the reason, even with None.
        (S.PENDING, S.RUNNING, "Priority", None, None),
        (S.PENDING, S.RUNNING, "Priority", "node7", "node7"),
        # The same state keeps the reason unless a new one is given.
        (S.PENDING, S.PENDING, "Priority", None, "Priority"),
        (S.PENDING, S.PENDING, "Priority", "Resources", "Resources"),
        # A terminal state keeps its reason; a missing one fills in.
        (S.FAILED, S.FAILED, "NonZeroExitCode", "late", "NonZeroExitCode"),
        (S.FAILED, S.FAILED, None, "late", "late"),
        (S.COMPLETED, S.COMPLETED, None, None, None),
    ],
)
def test_next_reason(
    old: JobState, new: JobState, reason: str | None, given: str | None, expected: str | None
) -> None:
    assert next_reason(old, new, reason, given) == expected


def test_terminal_is_final_and_warns(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="jobfleet.registry"):
        assert merge("7", None, (S.COMPLETED, None, None), (S.RUNNING, 0, "done")) == (
            S.COMPLETED,
            0,
            "done",
        )
        assert merge("7", 2, (S.TIMEOUT, None, None), (S.RUNNING, 140, None)) == (
            S.TIMEOUT,
            140,
            None,
        )
    assert "job 7: already completed; ignoring report of running" in caplog.text
    assert "job 7: element 2 already timeout" in caplog.text


def test_known_exit_code_of_a_terminal_status_stays() -> None:
    assert merge("1", None, (S.FAILED, 3, "x"), (S.FAILED, 9, "y")) == (S.FAILED, 3, "x")


def test_unfinished_status_keeps_its_exit_code_without_news() -> None:
    assert merge("1", None, (S.RUNNING, 5, None), (S.RUNNING, None, None)) == (S.RUNNING, 5, None)
    assert merge("1", None, (S.RUNNING, 5, None), (S.FAILED, 6, None)) == (S.FAILED, 6, None)


@given(old=statuses, new=statuses)
def test_terminal_never_moves_and_details_only_fill_in(old: Status, new: Status) -> None:
    state, exit_code, reason = merge("1", None, old, new)
    if old[0] in TERMINAL:
        assert state is old[0]
        assert exit_code == (old[1] if old[1] is not None else new[1])
        assert reason == (old[2] if old[2] is not None else new[2])
    else:
        assert state is new[0]
        assert exit_code == (new[1] if new[1] is not None else old[1])


def test_merge_job_without_state_news_keeps_the_state() -> None:
    old: Status = (S.RUNNING, None, "node7")
    assert merge_job("1", old, (None, None, None)) == old
    assert merge_job("1", old, (None, None, "node8")) == (S.RUNNING, None, "node8")


def test_merge_job_moves_only_out_of_movable_states() -> None:
    unknown = frozenset({S.UNKNOWN})
    assert merge_job("1", (S.UNKNOWN, None, "x"), (S.PENDING, None, None), unknown) == (
        S.PENDING,
        None,
        None,
    )
    # A submission confirmed after a poll saw the job run: running is newer news.
    assert merge_job("1", (S.RUNNING, None, "x"), (S.PENDING, None, None), unknown) == (
        S.RUNNING,
        None,
        "x",
    )


@pytest.mark.parametrize(
    ("present", "needed"),
    [
        ({S.COMPLETED}, False),
        ({S.COMPLETED, S.FAILED}, True),
        ({S.CANCELLED}, True),
        ({S.COMPLETED, S.RUNNING}, False),
        (set(), True),
    ],
)
def test_needs_worst_exit(present: set[JobState], needed: bool) -> None:
    assert needs_worst_exit(present) is needed


def test_array_status() -> None:
    running: Status = (S.RUNNING, None, "r")
    assert array_status(running, {S.COMPLETED, S.RUNNING}, None, None) == (S.RUNNING, None, "r")
    assert array_status(running, {S.COMPLETED}, None, None) == (S.COMPLETED, 0, None)
    assert array_status(running, {S.COMPLETED, S.FAILED}, 2, "x") == (S.FAILED, 2, "x")
    # Cancelled elements may have no exit code at all.
    assert array_status(running, {S.CANCELLED}, None, None) == (S.CANCELLED, None, None)
    # An ended array keeps its reason.
    assert array_status((S.FAILED, 2, "why"), {S.FAILED}, 2, "late") == (S.FAILED, 2, "why")
