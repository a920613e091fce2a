"""The monitor over a scheduler the test controls: callbacks once, lost rule, outages, retries."""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from jobfleet import owner
from jobfleet.backends.base import NativeStatus, PollTarget
from jobfleet.config import load_config
from jobfleet.engine.fleet import Fleet
from jobfleet.engine.monitor import POLL_CPU_SHARE, Monitor, Pace
from jobfleet.errors import SpecError, WaitTimeout
from jobfleet.jobdir import exit_code_path
from jobfleet.registry import SUBMITTING, NewJob, StatusUpdate
from jobfleet.spec import Dependency, DepKind, JobSpec, parse_array
from jobfleet.states import JobRecord, JobState
from support.board import FAST, Board, dead_owner, fleet_with

S = JobState


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[Fleet]:
    with fleet_with(Board(), tmp_path) as f:
        yield f


def board(fleet: Fleet) -> Board:
    be = fleet.backend("board")
    assert isinstance(be, Board)
    return be


def submit(fleet: Fleet, n: int = 1, **spec: object) -> list[JobRecord]:
    return fleet.submit_many([JobSpec(["true"], **spec) for _ in range(n)], backend="board")  # type: ignore[arg-type]


def end(fleet: Fleet, record: JobRecord, state: JobState, code: int | None = None) -> None:
    native = fleet.registry.get(record.id).native_id
    assert native is not None
    board(fleet).board[native] = NativeStatus(state, code)


class Calls:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str, JobState]] = []

    def success(self, record: JobRecord) -> None:
        self.seen.append(("success", record.id, record.state))

    def failure(self, record: JobRecord) -> None:
        self.seen.append(("failure", record.id, record.state))

    def exit(self, record: JobRecord) -> None:
        self.seen.append(("exit", record.id, record.state))


def watch(fleet: Fleet, ids: Sequence[str], calls: Calls) -> None:
    fleet.monitor("board").watch(
        ids, on_success=calls.success, on_failure=calls.failure, on_exit=calls.exit
    )


def test_callbacks_fire_once_each_and_only_for_their_outcome(fleet: Fleet) -> None:
    ok, bad = submit(fleet, 2)
    calls = Calls()
    watch(fleet, [ok.id, bad.id], calls)
    monitor = fleet.monitor("board")
    monitor.poll()
    assert calls.seen == []
    end(fleet, ok, S.COMPLETED, 0)
    end(fleet, bad, S.OUT_OF_MEMORY)
    monitor.poll()
    monitor.poll()
    assert sorted(calls.seen) == [
        ("exit", ok.id, S.COMPLETED),
        ("exit", bad.id, S.OUT_OF_MEMORY),
        ("failure", bad.id, S.OUT_OF_MEMORY),
        ("success", ok.id, S.COMPLETED),
    ]
    fired = fleet.registry.callbacks_fired(bad.id)
    assert set(fired) == {f"failure:{__name__}.Calls.failure", f"exit:{__name__}.Calls.exit"}
    assert set(fired.values()) == {"ok"}


def test_a_restarted_program_fires_only_what_did_not_fire(tmp_path: Path) -> None:
    config = load_config(env={"HOME": str(tmp_path)}, cwd=tmp_path, overrides=FAST)
    home = tmp_path / "home"
    shared = Board()
    first = Calls()
    with Fleet(config, home=home) as fleet:
        fleet.use_backend(shared)
        early, late = submit(fleet, 2)
        watch(fleet, [early.id, late.id], first)
        end(fleet, early, S.COMPLETED, 0)
        fleet.monitor("board").poll()
    assert sorted(first.seen) == [
        ("exit", early.id, S.COMPLETED),
        ("success", early.id, S.COMPLETED),
    ]
    # The program is gone; the other job ends while nobody watches.
    shared.board[late.native_id or ""] = NativeStatus(S.FAILED, 3)
    again = Calls()
    with Fleet(config, home=home) as fleet:
        fleet.use_backend(shared)
        watch(fleet, [early.id, late.id], again)
        records = fleet.monitor("board").wait()
    assert [r.state for r in records] == [S.COMPLETED, S.FAILED]
    assert sorted(again.seen) == [("exit", late.id, S.FAILED), ("failure", late.id, S.FAILED)]


def test_a_callback_that_raises_is_logged_and_the_monitor_goes_on(
    fleet: Fleet, caplog: pytest.LogCaptureFixture
) -> None:
    a, b = submit(fleet, 2)
    calls = Calls()

    def broken(record: JobRecord) -> None:
        raise RuntimeError(f"cannot handle {record.id}")

    monitor = fleet.monitor("board")
    monitor.watch([a.id, b.id], on_exit=broken)
    monitor.watch([a.id, b.id], on_exit=calls.exit)
    end(fleet, a, S.COMPLETED, 0)
    end(fleet, b, S.CANCELLED)
    with caplog.at_level(logging.ERROR, logger="jobfleet.engine.monitor"):
        monitor.wait()
    assert sorted(calls.seen) == [("exit", a.id, S.COMPLETED), ("exit", b.id, S.CANCELLED)]
    assert "cannot handle" in caplog.text
    test = "test_a_callback_that_raises_is_logged_and_the_monitor_goes_on"
    key = f"exit:{__name__}.{test}.<locals>.broken"
    assert fleet.registry.callbacks_fired(a.id)[key] == f"RuntimeError: cannot handle {a.id}"


def test_two_different_lambdas_need_keys(fleet: Fleet) -> None:
    (job,) = submit(fleet)
    monitor = fleet.monitor("board")
    monitor.watch([job.id], on_exit=lambda r: None)
    with pytest.raises(SpecError, match="pass key="):
        monitor.watch([job.id], on_exit=lambda r: None)
    monitor.watch([job.id], on_exit=lambda r: None, key="second")


def test_a_callback_whose_process_died_mid_way_fires_again(fleet: Fleet) -> None:
    dead_job, live_job = submit(fleet, 2)
    dead = dead_owner()
    calls = Calls()
    key = f"exit:{__name__}.Calls.exit"
    assert fleet.registry.claim_callbacks([(dead_job.id, key)], dead) == [(dead_job.id, key)]
    # A claim by a live process (this one, as another monitor would) is left to it.
    assert fleet.registry.claim_callbacks([(live_job.id, key)], owner.current())
    end(fleet, dead_job, S.COMPLETED, 0)
    end(fleet, live_job, S.COMPLETED, 0)
    fleet.monitor("board").watch([dead_job.id, live_job.id], on_exit=calls.exit)
    fleet.monitor("board").wait()
    assert calls.seen == [("exit", dead_job.id, S.COMPLETED)]


def test_coroutine_callbacks_in_blocking_and_asyncio_waits(fleet: Fleet) -> None:
    a, b = submit(fleet, 2)
    seen: list[str] = []

    async def note(record: JobRecord) -> None:
        await asyncio.sleep(0)
        seen.append(record.id)

    monitor = fleet.monitor("board")
    monitor.watch([a.id], on_exit=note)
    end(fleet, a, S.COMPLETED, 0)
    monitor.wait([a.id])
    assert seen == [a.id]

    async def main() -> list[JobRecord]:
        monitor.watch([b.id], on_exit=note)
        waiting = asyncio.create_task(monitor.wait_async([b.id]))
        await asyncio.sleep(0.05)
        assert not waiting.done()  # the loop is free while the job runs
        end(fleet, b, S.TIMEOUT)
        return await waiting

    (record,) = asyncio.run(main())
    assert record.state is S.TIMEOUT and seen == [a.id, b.id]


def test_a_vanished_job_is_lost_only_after_the_grace_period(fleet: Fleet) -> None:
    (job,) = submit(fleet)
    monitor = fleet.monitor("board")
    monitor.watch([job.id])
    monitor.poll()
    del board(fleet).board[job.native_id or ""]
    for _ in range(4):
        (record,) = monitor.poll()
    assert record.state is S.PENDING  # absent, but not for long enough
    time.sleep(1.1)
    (record,) = monitor.poll()
    assert record.state is S.LOST
    assert "no exit-code file" in (record.reason or "")


def test_an_outage_freezes_the_lost_timer(fleet: Fleet) -> None:
    (job,) = submit(fleet)
    be = board(fleet)
    monitor = fleet.monitor("board")
    monitor.watch([job.id])
    del be.board[job.native_id or ""]
    for _ in range(3):
        monitor.poll()
    be.down = True
    time.sleep(1.1)
    for _ in range(3):
        (record,) = monitor.poll()  # the scheduler does not answer: nothing concluded
        assert record.state is S.PENDING
    assert monitor.failed_polls == 3
    be.down = False
    for _ in range(3):
        (record,) = monitor.poll()
    assert record.state is S.PENDING  # the time without answers did not count
    time.sleep(1.1)
    (record,) = monitor.poll()
    assert record.state is S.LOST


def test_an_outage_longer_than_any_timeout_fails_nothing(fleet: Fleet) -> None:
    jobs = submit(fleet, 3)
    be = board(fleet)
    be.down = True
    with pytest.raises(WaitTimeout):
        fleet.wait([j.id for j in jobs], timeout_s=1.5)
    assert be.polls >= 3
    assert {r.state for r in fleet.registry.get_many([j.id for j in jobs])} == {S.PENDING}
    be.down = False
    for job in jobs:
        end(fleet, job, S.COMPLETED, 0)
    assert {r.state for r in fleet.wait([j.id for j in jobs])} == {S.COMPLETED}


def test_missing_array_elements_are_lost_one_by_one(fleet: Fleet) -> None:
    (job,) = fleet.submit_many([JobSpec(["true"], array=parse_array("0-2"))], backend="board")
    be = board(fleet)
    native = job.native_id or ""
    running = (S.RUNNING, None, None)
    be.board[native] = NativeStatus(S.RUNNING, elements={0: (S.COMPLETED, 0, None), 1: running})
    monitor = fleet.monitor("board")
    monitor.watch([job.id])
    for _ in range(3):
        monitor.poll()
    time.sleep(1.1)
    (record,) = monitor.poll()
    assert record.elements[0].state is S.COMPLETED
    assert record.elements[1].state is S.RUNNING
    assert record.elements[2].state is S.LOST


def test_a_failed_job_is_retried_and_each_attempt_recorded(fleet: Fleet) -> None:
    (job,) = submit(fleet, retries=2)
    calls = Calls()
    watch(fleet, [job.id], calls)
    monitor = fleet.monitor("board")
    end(fleet, job, S.FAILED, 1)
    (record,) = monitor.poll()
    assert (record.attempt, record.state) == (2, S.PENDING)
    assert calls.seen == []  # not the end of the job: it is being retried
    names = [r.name for r in board(fleet).submitted]
    assert names[1].endswith(f"-{job.id}.2-true") and names[0].endswith(f"-{job.id}-true")
    assert record.job_dir != job.job_dir
    end(fleet, record, S.COMPLETED, 0)
    (record,) = monitor.wait()
    assert (record.attempt, record.state) == (2, S.COMPLETED)
    assert calls.seen == [("success", job.id, S.COMPLETED), ("exit", job.id, S.COMPLETED)]
    (first,) = fleet.registry.attempts(job.id)
    assert (first["attempt"], first["state"], first["exit_code"]) == (1, "failed", 1)
    assert first["native_id"] == job.native_id


def test_retries_stop_when_the_budget_is_spent_or_the_state_is_not_retried(fleet: Fleet) -> None:
    spent, timed_out = submit(fleet, 2, retries=1)
    monitor = fleet.monitor("board")
    monitor.watch([spent.id, timed_out.id])
    end(fleet, spent, S.FAILED, 2)
    end(fleet, timed_out, S.TIMEOUT)
    monitor.poll()
    end(fleet, fleet.registry.get(spent.id), S.FAILED, 3)
    records = monitor.wait()
    assert [(r.attempt, r.state, r.exit_code) for r in records] == [
        (2, S.FAILED, 3),
        (1, S.TIMEOUT, None),
    ]
    assert len(fleet.registry.attempts(spent.id)) == 1


def test_a_job_with_retries_cannot_be_depended_on(fleet: Fleet) -> None:
    (job,) = submit(fleet, retries=1)
    dependent = JobSpec(["true"], dependencies=(Dependency(DepKind.AFTER_OK, (job.id,)),))
    with pytest.raises(SpecError, match="may be retried"):
        fleet.submit(dependent, backend="board")


def test_a_job_whose_submitter_died_is_found_by_name(fleet: Fleet) -> None:
    (job,) = submit(fleet)
    dead = dead_owner()
    # As a submitter killed between recording and submitting leaves it:
    rows = fleet.registry._conn.execute(
        "UPDATE jobs SET submitted = 0, native_id = NULL, state = 'unknown', reason = ?"
        " WHERE id = ?",
        (SUBMITTING + dead, int(job.id)),
    )
    assert rows.rowcount == 1
    (record,) = fleet.status([job.id])
    assert record.submitted and record.native_id == job.native_id


def test_a_job_being_submitted_by_a_live_process_is_left_alone(fleet: Fleet) -> None:
    (job,) = submit(fleet)
    fleet.registry._conn.execute(
        "UPDATE jobs SET submitted = 0, native_id = NULL, state = 'unknown', reason = ?"
        " WHERE id = ?",
        (SUBMITTING + owner.current(), int(job.id)),
    )
    (record,) = fleet.status([job.id])
    assert not record.submitted and record.state is S.UNKNOWN


def test_polls_back_off_to_the_ceiling_and_never_below_the_floor() -> None:
    pace = Pace(first_s=0.1, ceiling_s=1.0, floor_s=0.5)
    assert pace.delay(100.0) == 0.0  # never polled: poll now
    pace.polled(100.0)
    assert pace.delay(100.0) == pytest.approx(0.5)  # interval 0.15, floor 0.5
    gaps = []
    for step in range(12):
        now = 200.0 + step * 10
        pace.polled(now)
        gaps.append(pace.delay(now))
    assert gaps[-1] == pytest.approx(1.0) and gaps == sorted(gaps)
    pace.restart()
    pace.polled(400.0)
    assert pace.delay(400.0) == pytest.approx(0.5)


def test_a_costly_poll_is_followed_by_a_pause_four_times_its_cost() -> None:
    pace = Pace(first_s=0.1, ceiling_s=1.0, floor_s=0.0)
    pace.polled(100.0)
    pace.cost(0.5, 100.6)  # half a second of CPU: the client's share stays at a fifth
    assert pace.delay(100.6) == pytest.approx(0.5 * (1 / POLL_CPU_SHARE - 1)) == 2.0
    assert pace.delay(102.1) == pytest.approx(0.5)
    pace.cost(0.001, 100.01)  # a cheap poll: the interval (0.15 s after the first) rules
    assert pace.delay(100.01) == pytest.approx(0.14)


class _CostlySource:
    """A job source whose polls burn ``burn_s`` of CPU (a huge array's records)."""

    def __init__(self, record: JobRecord, burn_s: float) -> None:
        self.record, self.burn_s = record, burn_s

    def records(self, job_ids: Sequence[str]) -> list[JobRecord]:
        return [self.record]

    def refresh(self, records: Sequence[JobRecord]) -> list[JobRecord]:
        start = time.thread_time()
        while time.thread_time() - start < self.burn_s:
            pass
        return [self.record]

    def unfinished(self, backend: str | None = None) -> list[JobRecord]:
        return [self.record]


def test_the_monitor_measures_what_each_poll_cost_it(fleet: Fleet) -> None:
    (job,) = fleet.submit_many([JobSpec(["true"])], backend="board")
    costly = Monitor("board", _CostlySource(job, 0.1), fleet.registry, Pace(0.01, 0.01, 0.0))
    costly.watch([job.id])
    costly.poll()
    # Four times the 0.1 s of CPU burnt (0.4 s), minus what passed since.
    assert costly.delay() > 0.25
    cheap = Monitor("board", _CostlySource(job, 0.0), fleet.registry, Pace(0.01, 0.01, 0.0))
    cheap.watch([job.id])
    cheap.poll()
    assert cheap.delay() < 0.02


def test_the_local_backend_has_no_rate_floor(tmp_path: Path) -> None:
    config = load_config(env={"HOME": str(tmp_path)}, cwd=tmp_path, overrides={"wait.min_gap": 5})
    with Fleet(config, home=tmp_path / "home") as fleet:
        assert fleet.monitor("local")._pace.floor_s == 0.0
        fleet.use_backend(Board())
        assert fleet.monitor("board")._pace.floor_s == 5.0
        assert fleet.monitor("board") is fleet.monitor("board")


def test_watching_a_job_of_another_backend_is_refused(fleet: Fleet) -> None:
    (job,) = submit(fleet)
    with pytest.raises(SpecError, match=r"fleet.monitor\('board'\)"):
        fleet.monitor("local").watch([job.id])


def test_waiting_for_a_job_of_another_backend_is_refused(fleet: Fleet) -> None:
    (job,) = submit(fleet)
    with pytest.raises(SpecError, match=r"runs on 'board'"):
        fleet.monitor("local").wait([job.id])


def test_the_command_line_submits_with_retries(jf_home: Path, tmp_path: Path) -> None:
    from support.cli import jf

    marker = tmp_path / "seen"
    script = f"test -e {marker} || {{ touch {marker}; exit 1; }}"
    job_id = jf("submit", "--retries", "1", "--shell", "--", script).stdout.strip()
    jf("wait", job_id, "--timeout", "60")
    (record,) = json.loads(jf("status", job_id, "--json").stdout)
    assert (record["state"], record["attempt"]) == ("completed", 2)
    bad = jf("submit", "--retry-on", "cancelled", "--retries", "1", "--", "true", expect=2)
    assert "retry_on" in bad.stderr and "cancelled" in bad.stderr


def test_the_command_line_waits_for_every_unfinished_job(jf_home: Path) -> None:
    from support.cli import jf

    first = jf("submit", "--", "sleep", "0.5").stdout.strip()
    second = jf("submit", "--", "sh", "-c", "sleep 0.5; exit 2").stdout.strip()
    records = json.loads(jf("wait", "--all", "--json", "--timeout", "60", expect=1).stdout)
    assert sorted((r["id"], r["state"]) for r in records) == [
        (first, "completed"),
        (second, "failed"),
    ]
    assert "--all" in jf("wait", expect=2).stderr
    assert "--all" in jf("wait", first, "--all", expect=2).stderr


def test_coroutine_callbacks_from_the_blocking_api_inside_a_running_loop(fleet: Fleet) -> None:
    """As in a notebook, where an event loop runs while blocking calls are made."""
    (job,) = submit(fleet)
    seen: list[str] = []

    async def note(record: JobRecord) -> None:
        await asyncio.sleep(0)
        seen.append(record.id)

    async def broken(record: JobRecord) -> None:
        raise RuntimeError("inside the coroutine")

    monitor = fleet.monitor("board")
    monitor.watch([job.id], on_exit=note)
    monitor.watch([job.id], on_exit=broken)
    end(fleet, job, S.COMPLETED, 0)

    async def cell() -> None:
        monitor.wait([job.id])  # the blocking API, called while this loop runs

    asyncio.run(cell())
    assert seen == [job.id]
    fired = fleet.registry.callbacks_fired(job.id)
    assert sorted(fired.values()) == ["RuntimeError: inside the coroutine", "ok"]


def test_a_job_that_ended_before_its_retry_was_submitted_is_retried_later(
    tmp_path: Path,
) -> None:
    """The program died after the failure was recorded and before the retry: the next
    program's monitor retries it, and does not report it failed."""
    shared = Board()
    with fleet_with(shared, tmp_path) as fleet:
        (job,) = submit(fleet, retries=1)
        end(fleet, job, S.FAILED, 1)
        # Recorded failed, as a refresh does, without the retry that follows it:
        fleet.registry.apply([StatusUpdate(job.id, S.FAILED, exit_code=1)])
    with fleet_with(shared, tmp_path) as fleet:
        assert [r.id for r in fleet.registry.unfinished("board")] == [job.id]
        calls = Calls()
        monitor = fleet.monitor("board")
        monitor.watch_unfinished()
        monitor.watch([job.id], on_exit=calls.exit)
        (record,) = monitor.poll()
        assert (record.attempt, record.state) == (2, S.PENDING)
        assert calls.seen == []
        end(fleet, record, S.COMPLETED, 0)
        (record,) = monitor.wait()
    assert calls.seen == [("exit", job.id, S.COMPLETED)]


def test_cancelling_a_job_with_retries_stops_them(fleet: Fleet) -> None:
    running, ended = submit(fleet, 2, retries=3)
    end(fleet, ended, S.FAILED, 1)
    fleet.registry.apply([StatusUpdate(ended.id, S.FAILED, exit_code=1)])  # no retry yet
    records = fleet.cancel([running.id, ended.id])
    assert [(r.attempt, r.state) for r in records] == [(1, S.PENDING), (1, S.FAILED)]
    assert all(r.settled or not r.state.is_terminal for r in records)
    end(fleet, running, S.FAILED, 1)  # e.g. killed by the cancel's signal
    records = fleet.status([running.id, ended.id])
    assert [(r.attempt, r.state) for r in records] == [(1, S.FAILED), (1, S.FAILED)]
    assert len(board(fleet).submitted) == 2  # nothing submitted again


def test_callback_keys_bound_methods_and_partials(fleet: Fleet) -> None:
    (job,) = submit(fleet)
    calls = Calls()
    monitor = fleet.monitor("board")
    monitor.watch([job.id], on_exit=calls.exit)
    monitor.watch([job.id], on_exit=calls.exit)  # the same method again: no clash
    with pytest.raises(SpecError, match="pass key="):
        monitor.watch([job.id], on_exit=functools.partial(Calls.exit, calls))
    monitor.watch([job.id], on_exit=functools.partial(Calls.exit, calls), key="partial")
    end(fleet, job, S.COMPLETED, 0)
    monitor.wait()
    assert calls.seen == [("exit", job.id, S.COMPLETED)] * 2


def test_a_cancelled_asyncio_wait_loses_no_callback(fleet: Fleet) -> None:
    (job,) = submit(fleet)
    be = board(fleet)
    seen: list[str] = []
    monitor = fleet.monitor("board")
    monitor.watch([job.id], on_exit=lambda r: seen.append(r.id))
    end(fleet, job, S.FAILED, 2)
    slow = be.poll

    def slow_poll(targets: Sequence[PollTarget]) -> dict[str, NativeStatus]:
        time.sleep(0.3)
        return slow(targets)

    be.poll = slow_poll  # type: ignore[method-assign]

    async def impatient() -> None:
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(monitor.wait_async([job.id]), 0.1)
        await asyncio.sleep(0.4)  # the poll in its thread finishes meanwhile

    asyncio.run(impatient())
    assert seen == []
    monitor.wait([job.id])
    assert seen == [job.id]


def test_watching_is_not_blocked_by_a_poll_in_progress(fleet: Fleet) -> None:
    first, second = submit(fleet, 2)
    be = board(fleet)
    answer, asked = threading.Event(), threading.Event()
    real = be.poll

    def held_poll(targets: Sequence[PollTarget]) -> dict[str, NativeStatus]:
        asked.set()
        answer.wait(30)  # the scheduler takes its time
        return real(targets)

    be.poll = held_poll  # type: ignore[method-assign]
    monitor = fleet.monitor("board")
    monitor.watch([first.id])
    polling = threading.Thread(target=monitor.poll)
    polling.start()
    assert asked.wait(30)
    watching = threading.Thread(target=monitor.watch, args=([second.id],))
    watching.start()
    watching.join(10)
    done_while_polling = not watching.is_alive()
    answer.set()
    polling.join()
    watching.join()
    assert done_while_polling, "watch() waited for the scheduler's answer"


def test_a_report_about_an_old_attempt_never_touches_the_new_one(tmp_path: Path) -> None:
    """Two programs watch one job; one retries it: the other's poll of the old attempt
    is ignored, and it follows the new attempt."""
    shared = Board()
    with fleet_with(shared, tmp_path) as a, fleet_with(shared, tmp_path) as b:
        (job,) = submit(a, retries=1)
        b.monitor("board").watch([job.id])
        b.monitor("board").poll()  # b has attempt 1 pending
        end(a, job, S.FAILED, 1)
        (retried,) = a.status([job.id])
        assert (retried.attempt, retried.state) == (2, S.PENDING)
        (seen,) = b.monitor("board").poll()  # b asks about attempt 1: failed
        assert (seen.attempt, seen.state, seen.native_id) == (2, S.PENDING, retried.native_id)
        assert len(shared.submitted) == 2 and len(a.registry.attempts(job.id)) == 1
        end(a, retried, S.COMPLETED, 0)
        (final,) = b.monitor("board").wait()
    assert (final.attempt, final.state, final.exit_code) == (2, S.COMPLETED, 0)


def test_a_job_another_live_program_is_submitting_is_followed(tmp_path: Path) -> None:
    shared = Board()
    with fleet_with(shared, tmp_path) as a, fleet_with(shared, tmp_path) as b:
        (job,) = a.registry.create_jobs([NewJob("x", "board", JobSpec(["true"]))])
        monitor = b.monitor("board")
        monitor.watch([job.id])
        (seen,) = monitor.poll()
        assert (seen.state, seen.submitted) == (S.UNKNOWN, False)  # being submitted
        shared.board["555"] = NativeStatus(S.COMPLETED, 0)
        a.registry.mark_submitted(job.id, "555")
        (final,) = monitor.wait(timeout_s=30)
    assert (final.state, final.native_id) == (S.COMPLETED, "555")


def test_a_program_that_lost_the_retry_race_follows_the_winner(tmp_path: Path) -> None:
    shared = Board()
    with fleet_with(shared, tmp_path) as a, fleet_with(shared, tmp_path) as b:
        (job,) = submit(a, retries=1)
        end(a, job, S.FAILED, 1)
        a.registry.apply([StatusUpdate(job.id, S.FAILED, exit_code=1)])
        stale = b.registry.get(job.id)  # b saw the failure too
        a.status([job.id])  # a wins the retry
        (seen,) = b.refresh([stale])
    assert (seen.attempt, seen.state) == (2, S.PENDING)
    assert len(shared.submitted) == 2


def test_a_retry_whose_submitter_died_is_submitted_by_the_next_program(fleet: Fleet) -> None:
    (job,) = submit(fleet, retries=1)
    end(fleet, job, S.FAILED, 1)
    fleet.registry.apply([StatusUpdate(job.id, S.FAILED, exit_code=1)])
    dead = dead_owner()
    # It died right after filing attempt 1 away, before submitting attempt 2:
    assert fleet.registry.begin_retry(job.id, 1, SUBMITTING + dead) is not None
    (record,) = fleet.status([job.id])
    assert (record.attempt, record.state, record.submitted) == (2, S.PENDING, True)
    assert [r.name for r in board(fleet).submitted][-1].endswith(f"-{job.id}.2-true")


def test_a_job_whose_submitter_died_but_which_ran_keeps_its_outcome(fleet: Fleet) -> None:
    (job,) = submit(fleet)
    dead = dead_owner()
    fleet.registry._conn.execute(
        "UPDATE jobs SET submitted = 0, native_id = NULL, state = 'unknown', reason = ?"
        " WHERE id = ?",
        (SUBMITTING + dead, int(job.id)),
    )
    board(fleet).found.clear()  # the scheduler has forgotten it
    Path(exit_code_path(job.job_dir, None)).write_text("0\n")
    (record,) = fleet.status([job.id])
    assert (record.state, record.exit_code) == (S.COMPLETED, 0)
    assert "exit-code file" in (record.reason or "")


def test_a_retry_runs_in_its_first_submitters_environment(
    fleet: Fleet, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JF_TEST_WHO", "the submitter")
    (job,) = submit(fleet, retries=1)
    monkeypatch.setenv("JF_TEST_WHO", "whoever retries")
    end(fleet, job, S.FAILED, 1)
    fleet.status([job.id])
    first, second = board(fleet).submitted
    assert first.env["JF_TEST_WHO"] == second.env["JF_TEST_WHO"] == "the submitter"


def test_the_status_table_shows_brackets_in_names_as_written(jf_home: Path) -> None:
    from support.cli import jf

    job_id = jf("submit", "--name", "[x] sweep[3]", "--", "true").stdout.strip()
    jf("wait", job_id, "--timeout", "60")
    out = jf("status", job_id).stdout
    assert "[x] sweep[3]" in out and "completed" in out
