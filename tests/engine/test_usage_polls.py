"""What a job used, through the engine: recorded with the end, filled in by later polls
while the backend's accounting settles (Capabilities.usage_settles_s), never changing the
state, and not asked about again once complete or once the window has passed."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from jobfleet.backends.base import Capabilities, NativeStatus, PollTarget
from jobfleet.engine.polling import USAGE_SETTLES_AT_MOST_S
from jobfleet.spec import JobSpec
from jobfleet.states import JobState
from jobfleet.usage import Usage
from support.board import Board, fleet_with

S = JobState
T0 = 1_796_560_366.0
AT_END = Usage(T0 - 5, T0, T0 + 4, ("n1",), None, 0.3, 4.0)  # MaxRSS not sampled yet
PEAK = Usage(max_memory_bytes=220 * 2**20)


class SettlingBoard(Board):
    """A board whose accounting fills in usage after the end, and which keeps the
    targets of each poll."""

    capabilities = Capabilities(usage_settles_s=60.0)

    def __init__(self) -> None:
        super().__init__()
        self.asked: list[list[PollTarget]] = []

    def poll(self, targets: Sequence[PollTarget]) -> dict[str, NativeStatus]:
        self.asked.append(list(targets))
        return super().poll(targets)


def test_usage_comes_with_the_end_then_settles_without_touching_the_state(
    tmp_path: Path,
) -> None:
    be = SettlingBoard()
    with fleet_with(be, tmp_path) as fleet:
        job = fleet.submit_many([JobSpec(["true"])], backend="board")[0]
        native = job.native_id or ""
        be.board[native] = NativeStatus(S.COMPLETED, 0, usage=AT_END)
        (done,) = fleet.refresh([job])
        assert (done.state, done.exit_code, done.usage) == (S.COMPLETED, 0, AT_END)
        # Ended, its peak still unknown: asked again, as ended, for its usage only. The
        # report's state (even a different one) changes nothing.
        be.board[native] = NativeStatus(S.FAILED, 9, "late", usage=PEAK)
        (settled,) = fleet.refresh([done])
        assert [t.ended for t in be.asked[-1]] == [True]
        assert (settled.state, settled.exit_code, settled.reason) == (S.COMPLETED, 0, None)
        assert settled.usage == replace(AT_END, max_memory_bytes=PEAK.max_memory_bytes)
        # Complete now: not asked again.
        polls = len(be.asked)
        fleet.refresh([settled])
        assert len(be.asked) == polls


def test_ended_jobs_are_listed_after_the_others_and_not_after_the_window(
    tmp_path: Path,
) -> None:
    be = SettlingBoard()
    with fleet_with(be, tmp_path) as fleet:
        ended = fleet.submit_many([JobSpec(["true"])], backend="board")[0]
        running = fleet.submit_many([JobSpec(["true"])], backend="board")[0]
        be.board[ended.native_id or ""] = NativeStatus(S.COMPLETED, 0)  # no usage at all
        be.board[running.native_id or ""] = NativeStatus(S.RUNNING)
        first = {r.id: r for r in fleet.refresh([ended, running])}
        assert first[ended.id].usage.empty
        fleet.refresh(list(first.values()))
        assert [(t.job_id, t.ended) for t in be.asked[-1]] == [
            (running.id, False),
            (ended.id, True),
        ]
        # Past the window (its end long ago), an ended job is not asked about any more.
        old = replace(first[ended.id], updated_at=time.time() - 61.0)
        polls = len(be.asked)
        fleet.refresh([old])
        assert len(be.asked) == polls


def test_an_ended_job_whose_files_were_cleaned_is_not_asked_about(tmp_path: Path) -> None:
    be = SettlingBoard()
    with fleet_with(be, tmp_path) as fleet:
        job = fleet.submit_many([JobSpec(["true"])], backend="board")[0]
        be.board[job.native_id or ""] = NativeStatus(S.COMPLETED, 0, usage=AT_END)
        (done,) = fleet.refresh([job])
        assert fleet.clean().job_ids == [job.id]
        (cleaned,) = fleet.records([job.id])
        assert cleaned.cleaned_at is not None
        polls = len(be.asked)
        # Its usage is still incomplete and it ended within the window, yet its job
        # directory (which a backend may read) is gone: nobody is asked.
        fleet.refresh([cleaned])
        assert len(be.asked) == polls
        fleet.refresh([done])  # the same, unmarked, would be asked
        assert len(be.asked) == polls + 1


class SlowSettlingBoard(SettlingBoard):
    capabilities = Capabilities(usage_settles_s=10 * 86_400.0)  # ten days: more than honoured


def test_a_settling_time_is_honoured_for_an_hour_at_most(tmp_path: Path) -> None:
    """A job that ended more than USAGE_SETTLES_AT_MOST_S ago is never asked about for
    its usage, whatever its backend says: ``status`` of an old job looks up no backend."""
    be = SlowSettlingBoard()
    with fleet_with(be, tmp_path) as fleet:
        job = fleet.submit_many([JobSpec(["true"])], backend="board")[0]
        be.board[job.native_id or ""] = NativeStatus(S.COMPLETED, 0)  # no usage at all
        (done,) = fleet.refresh([job])
        polls = len(be.asked)
        fleet.refresh([replace(done, updated_at=time.time() - USAGE_SETTLES_AT_MOST_S + 60)])
        assert len(be.asked) == polls + 1  # within the hour: asked for its usage
        fleet.refresh([replace(done, updated_at=time.time() - USAGE_SETTLES_AT_MOST_S - 60)])
        assert len(be.asked) == polls + 1  # past it: not asked
