"""Views that only count elements read ended arrays without them (issue 16): the
registry counts by state instead of reading a million rows."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from jobfleet.registry import NewJob, Registry, StatusUpdate
from jobfleet.spec import JobSpec, parse_array
from jobfleet.states import JobState as S


@pytest.fixture
def reg(tmp_path: Path) -> Iterator[Registry]:
    with Registry(tmp_path / "home") as registry:
        yield registry


def _made(reg: Registry) -> tuple[str, str, str]:
    """An ended array (3 completed, 1 failed), a running one, an ended single job."""
    ended, running, single = reg.create_jobs(
        [
            NewJob("ended", "board", JobSpec(["true"], array=parse_array("0-3"))),
            NewJob("running", "board", JobSpec(["true"], array=parse_array("0-1"))),
            NewJob("single", "board", JobSpec(["true"])),
        ]
    )
    reg.mark_submitted_many([(ended.id, "1"), (running.id, "2"), (single.id, "3")])
    done = {i: (S.COMPLETED, 0, None) for i in range(3)}
    reg.apply(
        [
            StatusUpdate(ended.id, elements={**done, 3: (S.FAILED, 2, None)}),
            StatusUpdate(running.id, elements={0: (S.RUNNING, None, None)}),
            StatusUpdate(single.id, S.COMPLETED, exit_code=0),
        ]
    )
    return ended.id, running.id, single.id


def test_an_ended_array_is_counted_not_read(reg: Registry) -> None:
    ended, running, single = _made(reg)
    light = {r.id: r for r in reg.recent(10, ended_elements=False)}
    assert light[ended].elements == {} and light[ended].state is S.FAILED
    assert len(light[running].elements) == 2  # unfinished: polled, so read whole
    assert light[single].state is S.COMPLETED
    whole = {r.id: r for r in reg.recent(10)}
    assert len(whole[ended].elements) == 4  # the default reads every element
    counts = reg.element_counts([ended, running, single, "404", "x"])
    assert counts == {ended: {"completed": 3, "failed": 1}, running: {"running": 1, "pending": 1}}
    by_elements: dict[str, int] = {}
    for element in whole[ended].elements.values():
        by_elements[element.state.value] = by_elements.get(element.state.value, 0) + 1
    assert counts[ended] == by_elements
    (again,) = reg.get_many([ended], ended_elements=False)
    assert again.elements == {} and len(reg.get_many([ended])[0].elements) == 4


def test_a_state_this_version_does_not_know_counts_as_unknown(reg: Registry) -> None:
    ended, _, _ = _made(reg)
    reg._conn.execute(  # as a newer jobfleet may have written it
        "UPDATE elements SET state = 'hibernating' WHERE job_id = ? AND idx = 0", (int(ended),)
    )
    assert reg.element_counts([ended]) == {ended: {"unknown": 1, "completed": 2, "failed": 1}}
