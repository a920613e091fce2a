"""``status`` and ``top`` tables count an ended array's elements without reading them
(``Fleet.status_report(ended_elements=False)``), and still poll what has not ended."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from jobfleet.backends.base import NativeStatus
from jobfleet.engine.fleet import Fleet
from jobfleet.spec import JobSpec, parse_array
from jobfleet.states import JobState as S
from support.board import Board, fleet_with


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[Fleet]:
    with fleet_with(Board(), tmp_path) as f:
        yield f


def test_ended_arrays_are_counted_and_running_ones_polled(fleet: Fleet) -> None:
    board = fleet.backend("board")
    assert isinstance(board, Board)
    ended, running = fleet.submit_many(
        [JobSpec(["true"], array=parse_array("0-2")), JobSpec(["true"], array=parse_array("0-1"))],
        backend="board",
    )
    assert ended.native_id and running.native_id
    board.board[ended.native_id] = NativeStatus(
        S.FAILED,
        elements={0: (S.COMPLETED, 0, None), 1: (S.COMPLETED, 0, None), 2: (S.FAILED, 1, None)},
    )
    fleet.status([ended.id])  # recorded as ended
    board.board[running.native_id] = NativeStatus(
        S.RUNNING, elements={0: (S.RUNNING, None, None), 1: (S.COMPLETED, 0, None)}
    )
    polls = board.polls
    report = fleet.status_report(ended_elements=False)
    assert board.polls == polls + 1  # one poll, for the running array
    fresh = {r.id: r for r in report.records}
    assert [r.id for r in report.records] == [running.id, ended.id]  # newest first
    assert fresh[ended.id].elements == {}  # not read: counted
    assert report.counts(fresh[ended.id]) == {"completed": 2, "failed": 1}
    assert fresh[running.id].state is S.RUNNING  # polled: as the scheduler says now
    assert report.counts(fresh[running.id]) == {"running": 1, "completed": 1}
    whole = fleet.status_report()
    assert len({r.id: r for r in whole.records}[ended.id].elements) == 3
    assert whole.element_counts == {}
