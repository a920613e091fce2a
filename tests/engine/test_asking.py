"""Asking several backends at once, within a bound: one scheduler that is slow to
answer (a controller that is down) neither delays the others nor hides its jobs."""

from __future__ import annotations

import dataclasses
import sys
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from engine.test_fleet_views import ME, QueueBackend
from jobfleet.backends.base import NativeStatus, PollTarget, QueueEntry
from jobfleet.config import load_config
from jobfleet.engine.fleet import Fleet
from jobfleet.errors import CommandError, WaitTimeout
from jobfleet.registry import NewJob, StatusUpdate
from jobfleet.runner import SubprocessRunner
from jobfleet.spec import JobSpec
from jobfleet.states import JobRecord, JobState

R, C = JobState.RUNNING, JobState.COMPLETED


class Quick(QueueBackend):
    """Answers at once that every job completed, and says it was asked."""

    name = "quick"

    def __init__(self) -> None:
        super().__init__([QueueEntry("7", None, "7", "by-hand", ME, R, "RUNNING")])
        self.asked = threading.Event()

    def poll(self, targets: Sequence[PollTarget]) -> dict[str, NativeStatus]:
        self.asked.set()
        return {t.native_id: NativeStatus(C, 0) for t in targets}


class Slow(QueueBackend):
    """Answers only once ``quick`` has been asked (asking one after the other, in
    this order, would make it give up), or runs a command that never ends."""

    name = "slow"

    def __init__(self, quick: Quick, *, hang: bool = False) -> None:
        super().__init__()
        self.quick = quick
        self.hang = hang

    def _wait(self) -> None:
        if self.hang:  # a client retrying a controller that is down, for ever
            SubprocessRunner().run(
                [sys.executable, "-c", "import time; time.sleep(600)"], timeout_s=600
            )
        if not self.quick.asked.wait(20):
            raise CommandError(("slow",), "was asked before quick: not at once")

    def poll(self, targets: Sequence[PollTarget]) -> dict[str, NativeStatus]:
        self._wait()
        return {t.native_id: NativeStatus(C, 0) for t in targets}

    def list_queue(self, all_users: bool = False) -> list[QueueEntry]:
        self._wait()
        return [QueueEntry("9", None, "9", "slow-one", ME, R, "RUNNING")]


class Broken(Quick):
    name = "broken"

    def poll(self, targets: Sequence[PollTarget]) -> dict[str, NativeStatus]:
        raise ZeroDivisionError("a bug, not an outage")


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[Fleet]:
    # Pinned: `auto` would pick a scheduler this machine may have.
    config = load_config(env={"HOME": str(tmp_path)}, cwd=tmp_path, overrides={"backend": "local"})
    with Fleet(config, home=tmp_path / "home") as f:
        yield f


def running(fleet: Fleet, backend: str, native_id: str) -> JobRecord:
    (job,) = fleet.registry.create_jobs(
        [NewJob(backend, backend, JobSpec(["true"], name=backend))], [native_id]
    )
    (job,) = fleet.registry.apply([StatusUpdate(job.id, R, native_id=job.native_id)])
    return job


def test_backends_are_asked_at_once(fleet: Fleet) -> None:
    quick = Quick()
    slow = Slow(quick)
    fleet.use_backend(quick)
    fleet.use_backend(slow)
    # The slow one first: asked one after the other, it would give up waiting.
    jobs = [running(fleet, "slow", "1"), running(fleet, "quick", "2")]
    report = fleet.look(jobs)
    assert report.unanswered == {}
    assert [(r.backend, r.state) for r in report.records] == [("slow", C), ("quick", C)]


def test_a_backend_still_asking_at_the_bound_is_not_answering_and_concludes_nothing(
    fleet: Fleet,
) -> None:
    quick = Quick()
    fleet.use_backend(quick)
    fleet.use_backend(Slow(quick, hang=True))
    jobs = [running(fleet, "slow", "1"), running(fleet, "quick", "2")]
    report = fleet.look(jobs, within_s=1)
    assert list(report.unanswered) == ["slow"]
    assert "did not answer within 1s" in report.unanswered["slow"]
    states = {r.backend: (r.state, report.refreshed(r)) for r in report.records}
    assert states == {"slow": (R, False), "quick": (C, True)}
    assert fleet.registry.get(jobs[0].id).state is R  # nothing concluded, nothing lost


def test_status_report_within_the_configured_bound_and_without_asking(fleet: Fleet) -> None:
    quick = Quick()
    fleet.use_backend(quick)
    fleet.use_backend(Slow(quick, hang=True))
    jobs = [running(fleet, "slow", "1"), running(fleet, "quick", "2")]
    ids = [j.id for j in jobs]
    report = fleet.status_report(ids, ask=False)
    assert not quick.asked.is_set()
    assert report.unanswered == {"quick": "not asked", "slow": "not asked"}
    assert [r.state for r in report.records] == [R, R]
    assert fleet.config.wait.status_timeout_s == 5.0  # the default bound of status
    report = fleet.status_report(ids, within_s=0.5)
    assert list(report.unanswered) == ["slow"]


def test_a_bug_in_one_backend_is_raised_not_taken_for_an_outage(fleet: Fleet) -> None:
    fleet.use_backend(Broken())
    fleet.use_backend(Quick())
    jobs = [running(fleet, "broken", "1"), running(fleet, "quick", "2")]
    with pytest.raises(ZeroDivisionError):
        fleet.look(jobs)


def test_queues_lists_what_answered_and_names_what_did_not(fleet: Fleet) -> None:
    quick = Quick()
    fleet.use_backend(quick)
    fleet.use_backend(Slow(quick, hang=True))
    report = fleet.queues(["slow", "quick"], within_s=1)
    assert report.asked == ["slow", "quick"]
    assert [(r.backend, r.entry.native_id) for r in report.rows] == [("quick", "7")]
    assert list(report.unanswered) == ["slow"]


def test_queues_asks_the_configured_backend_and_those_of_unfinished_jobs(fleet: Fleet) -> None:
    quick = Quick()
    fleet.use_backend(quick)
    fleet.use_backend(Slow(quick))
    quick.asked.set()  # the slow one answers at once here
    running(fleet, "slow", "1")
    report = fleet.queues()
    assert report.asked == [fleet.config.backend, "slow"]
    assert ("slow", "9") in [(r.backend, r.entry.native_id) for r in report.rows]
    assert "quick" not in report.asked  # no job there, not configured


def test_wait_with_a_time_out_is_not_held_up_by_a_scheduler_that_does_not_answer(
    fleet: Fleet,
) -> None:
    quick = Quick()
    fleet.use_backend(quick)
    fleet.use_backend(Slow(quick, hang=True))  # its command would run for ten minutes
    job = running(fleet, "slow", "1")
    fleet.config = dataclasses.replace(
        fleet.config, wait=dataclasses.replace(fleet.config.wait, status_timeout_s=0.5)
    )
    with pytest.raises(WaitTimeout) as raised:
        fleet.wait([job.id], timeout_s=0.5)
    assert raised.value.pending == [job.id]
    assert fleet.registry.get(job.id).state is R  # nothing concluded


def test_work_outside_the_runner_is_not_waited_for_past_the_bound(fleet: Fleet) -> None:
    class Stuck(Quick):
        """Its poll blocks without running a command (an agent starting, a hung mount)."""

        name = "stuck"
        release = threading.Event()

        def poll(self, targets: Sequence[PollTarget]) -> dict[str, NativeStatus]:
            self.release.wait(60)
            return {}

    quick = Quick()
    fleet.use_backend(quick)
    fleet.use_backend(Stuck())
    jobs = [running(fleet, "stuck", "1"), running(fleet, "quick", "2")]
    try:
        report = fleet.look(jobs, within_s=0.5)
    finally:
        Stuck.release.set()
    assert report.unanswered == {"stuck": "stuck did not answer within 0.5s"}
    assert {r.backend: r.state for r in report.records} == {"stuck": R, "quick": C}


def test_a_backend_error_is_that_backend_not_answering(fleet: Fleet) -> None:
    from jobfleet.errors import BackendError

    class Locked(Quick):
        name = "locked"

        def poll(self, targets: Sequence[PollTarget]) -> dict[str, NativeStatus]:
            raise BackendError("its queue is locked by another process")

    fleet.use_backend(Locked())
    fleet.use_backend(Quick())
    jobs = [running(fleet, "locked", "1"), running(fleet, "quick", "2")]
    report = fleet.look(jobs)
    assert report.unanswered == {"locked": "its queue is locked by another process"}
    assert {r.backend: r.state for r in report.records} == {"locked": R, "quick": C}


def test_a_signal_is_sent_to_nobody_when_one_backend_cannot_send_it(fleet: Fleet) -> None:
    import dataclasses as dc

    from jobfleet.errors import BackendError

    sent: list[str] = []

    class Signals(Quick):
        name = "signals"

        def cancel(self, native_ids, *, indices=None, signal=None):  # type: ignore[no-untyped-def]
            sent.extend(native_ids)
            return {}

    class NoSignals(Signals):
        name = "nosignals"
        capabilities = dc.replace(Quick.capabilities, signals=False)

    fleet.use_backend(Signals())
    fleet.use_backend(NoSignals())
    jobs = [running(fleet, "signals", "1"), running(fleet, "nosignals", "2")]
    with pytest.raises(BackendError, match="nosignals backend cannot send a chosen signal"):
        fleet.cancel([j.id for j in jobs], signal="USR1")
    assert sent == []


def test_a_cancel_that_did_not_reach_the_scheduler_keeps_the_jobs_retries(fleet: Fleet) -> None:
    class Down(Quick):
        name = "down"

        def cancel(self, native_ids, *, indices=None, signal=None):  # type: ignore[no-untyped-def]
            raise CommandError(("scancel",), "scancel did not answer within 60s", transient=True)

    fleet.use_backend(Down())
    (job,) = fleet.registry.create_jobs(
        [NewJob("down", "down", JobSpec(["true"], name="down", retries=2))], ["1"]
    )
    fleet.registry.apply([StatusUpdate(job.id, R, native_id="1")])
    report = fleet.cancel_report([job.id])
    assert list(report.unanswered) == ["down"]
    kept = fleet.registry.get(job.id)
    assert (kept.state, kept.spec["retries"]) == (R, 2)  # still running, still retried
