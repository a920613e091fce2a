"""The SLURM backend end to end against fake SLURM programs on PATH (tests/shims/).

No cluster: ``sbatch``, ``squeue``, ``sacct``, ``scontrol`` and ``scancel`` are
the fakes of tests/shims/, run by the real :class:`~jobfleet.runner.SubprocessRunner`
through :class:`~jobfleet.engine.fleet.Fleet`. The test moves jobs between states by
editing the fakes' queue, and reads from their call log what each poll cost:
ONE squeue call for every tracked job, and at most ONE sacct call for those that
left the queue (README, "SLURM"). A command that fails concludes nothing.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from conftest import SLURM_TEST_CONFIG
from jobfleet.config import load_config
from jobfleet.engine.fleet import Fleet
from jobfleet.errors import CommandError, WaitTimeout
from jobfleet.jobdir import exit_code_path
from jobfleet.naming import scheduler_name
from jobfleet.spec import JobSpec
from jobfleet.states import JobRecord, JobState
from shims.fakeslurm import FakeSlurm

SHIMS = Path(__file__).resolve().parents[2] / "shims"
S = JobState
#: What jobfleet must never conclude about a job nobody knows any more.
CONCLUSIONS = {S.COMPLETED, S.FAILED, S.CANCELLED}


class CallLog:
    """The fakes' call log: one line per invocation, program and arguments tab-separated."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def all(self) -> list[list[str]]:
        if not self.path.exists():
            return []
        return [line.split("\t") for line in self.path.read_text().splitlines()]

    def mark(self) -> int:
        return len(self.all())

    def since(self, mark: int) -> list[list[str]]:
        return self.all()[mark:]


@pytest.fixture
def fake(jf_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeSlurm:
    """A fake SLURM cluster first on PATH and a configuration using it."""
    if shutil.which("flock") is None:
        pytest.skip("the fake sbatch needs flock(1) (util-linux)")
    Path(os.environ["JOBFLEET_CONFIG"]).write_text(SLURM_TEST_CONFIG)
    monkeypatch.setenv("PATH", f"{SHIMS / 'bin'}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKESLURM_STATE", str(tmp_path / "fakeslurm" / "state.json"))
    monkeypatch.setenv("FAKESLURM_CALLS", str(tmp_path / "fakeslurm" / "calls.log"))
    monkeypatch.setenv("FAKESLURM_PYTHON", sys.executable)
    (tmp_path / "fakeslurm").mkdir()
    return FakeSlurm(tmp_path / "fakeslurm" / "state.json")


@pytest.fixture
def calls(tmp_path: Path, fake: FakeSlurm) -> CallLog:
    return CallLog(tmp_path / "fakeslurm" / "calls.log")


@pytest.fixture
def fleet(fake: FakeSlurm) -> Iterator[Fleet]:
    with Fleet(load_config()) as f:
        assert f.config.backend == "slurm"
        yield f


def option(argv: Sequence[str], name: str) -> str | None:
    """The value of ``--name=value`` in ``argv``; "" for a bare ``--name``."""
    for arg in argv:
        key, _, value = arg.partition("=")
        if key == f"--{name}":
            return value
    return None


def ids_of(argv: Sequence[str]) -> list[str]:
    return (option(argv, "jobs") or "").split(",")


def check_one_poll(
    new_calls: list[list[str]], tracked: set[str], jobs: dict[str, dict[str, object]]
) -> None:
    """One poll of ``tracked``: one squeue for all of them, one sacct exactly for
    those the queue no longer shows running or pending (none: no sacct), which lists
    their steps too: never a second sacct for the batch steps of those that ended
    FAILED 0:9 (killed by SIGKILL, perhaps for their memory)."""
    programs = [c[0] for c in new_calls]
    squeues = [c for c in new_calls if c[0] == "squeue"]
    saccts = [c for c in new_calls if c[0] == "sacct"]
    assert len(squeues) == 1, f"one squeue per poll, got {programs}"
    assert sorted(ids_of(squeues[0])) == sorted(tracked), "squeue must ask for every tracked job"
    assert option(squeues[0], "states") == "all"
    assert len(saccts) <= 1, f"at most one sacct per poll, got {programs}"
    left = {
        n
        for n in tracked
        if not jobs[n]["queue"] or str(jobs[n]["state"]).split()[0] not in ("PENDING", "RUNNING")
    }
    if left:
        assert len(saccts) == 1, f"the jobs that left the queue need sacct: {programs}"
        assert sorted(ids_of(saccts[0])) == sorted(left)
        assert option(saccts[0], "starttime"), "sacct needs an explicit --starttime"
        assert "--allocations" not in saccts[0], "the steps tell a memory kill"
    else:
        assert not saccts, "nothing left the queue: no sacct"
    assert set(programs) <= {"squeue", "sacct", "scontrol"}


def poll(
    fleet: Fleet, fake: FakeSlurm, calls: CallLog, records: Sequence[JobRecord]
) -> list[JobRecord]:
    """Fleet.refresh over ``records``, checking what it cost."""
    tracked = {r.native_id or "" for r in records if not r.state.is_terminal}
    jobs = fake.jobs()
    mark = calls.mark()
    fresh = fleet.refresh(records)
    new = calls.since(mark)
    assert not any(c[0] == "scontrol" for c in new), "sacct knew every job: no scontrol"
    check_one_poll(new, tracked, jobs)
    return fresh


def by_native(records: Sequence[JobRecord]) -> dict[str, JobRecord]:
    return {r.native_id or "": r for r in records}


#: An exit code the test does not check.
ANY = -1


def outcome(record: JobRecord, expected: tuple[JobState, int | None] | None = None) -> object:
    """(state, exit code), the exit code left out where ``expected`` says ANY."""
    if expected is not None and expected[1] == ANY:
        return record.state, ANY
    return record.state, record.exit_code


N = 1000
#: How the first 800 of the 1,000 jobs end: (SLURM state, ExitCode) -> (state, exit code).
ENDINGS: list[tuple[range, str, str, tuple[JobState, int | None]]] = [
    (range(0, 500), "COMPLETED", "0:0", (S.COMPLETED, 0)),
    (range(500, 650), "FAILED", "1:0", (S.FAILED, 1)),
    (range(650, 750), "FAILED", "3:0", (S.FAILED, 3)),
    (range(750, 760), "FAILED", "0:9", (S.FAILED, 137)),  # killed by SIGKILL (see MEMORY_KILLED)
    (range(760, 761), "TIMEOUT", "0:0", (S.TIMEOUT, None)),
    # SLURM's "0:125" is no real signal: which exit code to report is not pinned here.
    (range(761, 762), "OUT_OF_MEMORY", "0:125", (S.OUT_OF_MEMORY, ANY)),
    (range(762, 763), "CANCELLED by 0", "0:0", (S.CANCELLED, None)),
    (range(763, 765), "NODE_FAIL", "0:0", (S.FAILED, None)),
    (range(765, 800), "COMPLETED", "0:0", (S.COMPLETED, 0)),
]
#: Of the jobs killed by SIGKILL, these were killed by OverMemoryKill: their batch
#: steps are "CANCELLED by 0" (tests/backends/slurm/fixtures/22.05/oom-sacct-batch-steps.out).
MEMORY_KILLED = range(756, 760)


def test_thousand_jobs_cost_one_squeue_and_one_sacct_per_poll(
    fleet: Fleet, fake: FakeSlurm, calls: CallLog
) -> None:
    start = time.monotonic()
    records = fleet.submit_many([JobSpec(["true"], name=f"job{i}") for i in range(N)])
    submit_s = time.monotonic() - start
    print(f"\nsubmit_many of {N} jobs through the fake sbatch: {submit_s:.1f}s")

    # One sbatch per job, each with the job's unique name, and every job recorded.
    sbatches = [c for c in calls.all() if c[0] == "sbatch"]
    assert len(sbatches) == N
    names = [scheduler_name(fleet.registry.token, r.id, r.name) for r in records]
    assert [option(c, "job-name") for c in sbatches] == names
    assert all(option(c, "parsable") == "" for c in sbatches)
    assert all(r.submitted and r.state is S.PENDING for r in records)
    native = [r.native_id or "" for r in records]
    assert len(set(native)) == N
    jobs = fake.jobs()
    assert [jobs[n]["name"] for n in native] == names

    records = poll(fleet, fake, calls, records)
    assert {r.state for r in records} == {S.PENDING}
    fake.set(native, state="RUNNING")
    records = poll(fleet, fake, calls, records)
    assert {r.state for r in records} == {S.RUNNING}

    # 800 end, in every way; half leave the queue at once, half stay in it for a
    # while (MinJobAge) with their final state but no exit code: both need sacct.
    expected: dict[str, tuple[JobState, int | None]] = {}
    for span, state, exit_text, result in ENDINGS:
        ended = [native[i] for i in span]
        fake.set(ended[0::2], state=state, exit=exit_text, queue=False)
        fake.set(ended[1::2], state=state, exit=exit_text)
        expected.update(dict.fromkeys(ended, result))
    killed = [native[i] for i in MEMORY_KILLED]
    fake.set(killed, batch="CANCELLED by 0")
    expected.update(dict.fromkeys(killed, (S.OUT_OF_MEMORY, 137)))
    records = poll(fleet, fake, calls, records)
    got = by_native(records)
    for n, result in expected.items():
        assert outcome(got[n], result) == result, f"job {got[n].id} (native {n})"
    assert got[native[762]].reason == "cancelled by root"  # uid 0, named
    assert [got[n].state for n in native[800:]] == [S.RUNNING] * 200

    # Later polls ask only about the 200 still running: one squeue, no sacct.
    for _ in range(3):
        records = poll(fleet, fake, calls, records)
    assert sum(not r.state.is_terminal for r in records) == 200

    # Ten cancelled through jobfleet: one scancel for all, then one poll.
    to_cancel = records[990:]
    mark = calls.mark()
    fleet.cancel([r.id for r in to_cancel])
    cancels = [c for c in calls.since(mark) if c[0] == "scancel"]
    assert len(cancels) == 1 and sorted(cancels[0][1:]) == sorted(native[990:])
    expected.update(dict.fromkeys(native[990:], (S.CANCELLED, None)))

    # The rest end in two waves while Fleet.wait polls; each of its polls is checked.
    first_wave, second_wave = native[800:900], native[900:990]
    fake.set(first_wave, state="COMPLETED", exit="0:0", queue=False)
    expected.update(dict.fromkeys(first_wave, (S.COMPLETED, 0)))
    expected.update(dict.fromkeys(second_wave, (S.FAILED, 2)))
    seen: list[tuple[int, dict[str, dict[str, object]]]] = []
    tracked_before = {r.native_id or "" for r in records if not r.state.is_terminal}
    tracked_before -= set(native[990:])
    jobs_before = fake.jobs()
    mark = calls.mark()

    def on_update(now: list[JobRecord]) -> None:
        # After the first poll, the second wave ends; each entry keeps the state the
        # next poll will see.
        if not seen:
            fake.set(second_wave, state="FAILED", exit="2:0", queue=False)
        seen.append((calls.mark(), fake.jobs()))

    done = fleet.wait([r.id for r in records], timeout_s=60, on_update=on_update)
    assert len(seen) >= 2
    # Each poll of the wait: one squeue for what was still tracked, at most one sacct.
    marks = [mark] + [m for m, _ in seen]
    states_then = [jobs_before] + [jobs for _, jobs in seen]
    tracked = tracked_before
    for i in range(len(seen)):
        window = calls.all()[marks[i] : marks[i + 1]]
        check_one_poll(window, tracked, states_then[i])
        tracked = {
            n
            for n in tracked
            if states_then[i][n]["queue"]
            and str(states_then[i][n]["state"]).split()[0] in ("PENDING", "RUNNING")
        }

    got = by_native(done)
    assert len(got) == N
    for n, result in expected.items():
        assert outcome(got[n], result) == result, f"job {got[n].id} (native {n})"
    assert all(r.state.is_terminal for r in done)
    programs = [c[0] for c in calls.all()]
    assert programs.count("sbatch") == N and programs.count("scancel") == 1
    assert "scontrol" not in programs


def test_job_gone_from_queue_and_accounting_is_not_concluded(
    fleet: Fleet, fake: FakeSlurm, calls: CallLog
) -> None:
    gone, late_file, lagging, steady = fleet.submit_many(
        [JobSpec(["true"], name=n) for n in ("gone", "late-file", "lagging", "steady")]
    )
    native = {r.id: r.native_id or "" for r in (gone, late_file, lagging, steady)}
    fake.set(native.values(), state="RUNNING")
    records = fleet.refresh([gone, late_file, lagging, steady])
    assert {r.state for r in records} == {S.RUNNING}

    # Gone from squeue, absent from sacct (and from scontrol), no exit-code file.
    fake.set([native[gone.id], native[late_file.id]], queue=False, acct=False)
    # Ended, still held by the controller, not yet in accounting (slurmdbd lags).
    fake.set([native[lagging.id]], state="FAILED", exit="3:0", acct=False)
    mark = calls.mark()
    records = fleet.refresh(records)
    new = calls.since(mark)
    programs = [c[0] for c in new]
    assert programs.count("squeue") == 1 and programs.count("sacct") == 1, programs
    assert programs.count("scontrol") <= 1, programs
    now = {r.id: r for r in records}
    assert not now[gone.id].state.is_terminal, now[gone.id]
    assert not now[late_file.id].state.is_terminal, now[late_file.id]
    assert outcome(now[lagging.id]) == (S.FAILED, 3)  # from the controller's memory
    assert now[steady.id].state is S.RUNNING

    # The exit-code file the job script writes settles a job nobody remembers.
    Path(exit_code_path(late_file.job_dir, None)).write_text("0\n")
    for _ in range(3):
        records = fleet.refresh(records)
        now = {r.id: r for r in records}
        assert now[gone.id].state not in CONCLUSIONS, now[gone.id]
        stored = fleet.registry.get(gone.id)
        assert stored.state not in CONCLUSIONS and stored.exit_code is None, stored
    assert outcome(now[late_file.id]) == (S.COMPLETED, 0)
    assert now[late_file.id].reason == "from the job's exit-code file"

    # Alone in a poll, its squeue says "Invalid job id specified" (rc 1): still nothing.
    mark = calls.mark()
    alone = fleet.refresh([fleet.registry.get(gone.id)])[0]
    squeues = [c for c in calls.since(mark) if c[0] == "squeue"]
    assert len(squeues) == 1 and ids_of(squeues[0]) == [native[gone.id]]
    assert alone.state not in CONCLUSIONS and alone.exit_code is None, alone


@pytest.mark.parametrize(
    "complaint",
    [
        "slurm_load_jobs error: Socket timed out on send/recv operation",
        "slurm_load_jobs error: Unable to contact slurm controller (connect failure)",
    ],
)
def test_failing_squeue_or_sacct_changes_nothing_until_they_recover(
    fleet: Fleet, fake: FakeSlurm, calls: CallLog, complaint: str
) -> None:
    records = fleet.submit_many([JobSpec(["true"], name=f"job{i}") for i in range(20)])
    ids = [r.id for r in records]
    native = [r.native_id or "" for r in records]
    fake.set(native, state="RUNNING")
    records = fleet.refresh(records)
    assert {r.state for r in records} == {S.RUNNING}

    # The controller does not answer; meanwhile every job ends and leaves the queue.
    fake.fail("squeue", 1, complaint)
    fake.set(native[:10], state="COMPLETED", exit="0:0", queue=False)
    fake.set(native[10:15], state="FAILED", exit="2:0", queue=False)
    fake.set(native[15:], state="TIMEOUT", exit="0:0", queue=False)

    def unchanged() -> None:
        stored = fleet.registry.get_many(ids)
        assert [(r.state, r.exit_code) for r in stored] == [(S.RUNNING, None)] * 20

    with pytest.raises(CommandError) as failed:
        fleet.refresh(records)
    assert failed.value.transient
    unchanged()
    mark = calls.mark()
    with pytest.raises(WaitTimeout) as timed_out:
        fleet.wait(ids, timeout_s=1.0)
    assert sorted(timed_out.value.pending) == sorted(ids)
    assert [c[0] for c in calls.since(mark)].count("squeue") >= 2, "wait kept polling"
    unchanged()

    # The controller is back but accounting (slurmdbd) is not: still nothing concluded.
    fake.recover("squeue")
    fake.fail("sacct", 1, "sacct: error: Problem talking to the database: Connection refused")
    with pytest.raises(CommandError) as failed:
        fleet.refresh(records)
    assert failed.value.transient
    with pytest.raises(WaitTimeout):
        fleet.wait(ids, timeout_s=1.0)
    unchanged()

    # Both answer again: the true outcomes, without anything else being done.
    fake.recover("sacct")
    done = fleet.wait(ids, timeout_s=30)
    assert [outcome(r) for r in done] == (
        [(S.COMPLETED, 0)] * 10 + [(S.FAILED, 2)] * 5 + [(S.TIMEOUT, None)] * 5
    )


def test_status_during_an_outage_shows_last_known_states_and_says_so(
    fleet: Fleet, fake: FakeSlurm, tmp_path: Path
) -> None:
    import json

    from support.cli import jf

    records = fleet.submit_many([JobSpec(["true"], name=f"job{i}") for i in range(3)])
    native = [r.native_id or "" for r in records]
    fake.set(native, state="RUNNING")
    fleet.refresh(records)
    local = jf("submit", "--backend", "local", "--", "true").stdout.strip()
    jf("wait", local, "--timeout", "60")

    fake.fail("squeue", 1, "squeue: error: Unable to contact slurm controller (connect failure)")
    fake.set(native, state="COMPLETED", exit="0:0", queue=False)  # unseen while it is down
    proc = jf("status", "--json")  # no ids: the recent jobs of every backend, exit 0
    shown = {r["id"]: r for r in json.loads(proc.stdout)}
    assert shown[local]["state"] == "completed" and shown[local]["refreshed"] is True
    assert shown[local]["not_refreshed_because"] is None
    for record in records:
        row = shown[record.id]
        assert (row["state"], row["refreshed"]) == ("running", False)  # as last known
        assert "Unable to contact slurm controller" in row["not_refreshed_because"]
    (warning,) = proc.stderr.splitlines()
    assert warning.startswith("jobfleet: warning: slurm did not answer")
    table = jf("status", *[r.id for r in records]).stdout
    assert table.count("running (last known)") == 3
    stored = fleet.registry.get_many([r.id for r in records])
    assert {r.state for r in stored} == {S.RUNNING}  # nothing concluded from the outage

    fake.recover("squeue")  # back: the next status tells the truth
    rows = json.loads(jf("status", "--json", *[r.id for r in records]).stdout)
    assert {(r["state"], r["refreshed"]) for r in rows} == {("completed", True)}


def test_status_and_queue_do_not_wait_for_a_controller_that_is_down(
    fleet: Fleet, fake: FakeSlurm, calls: CallLog
) -> None:
    import json

    from support.cli import jf

    records = fleet.submit_many([JobSpec(["true"], name=f"job{i}") for i in range(2)])
    ids = [r.id for r in records]
    fake.set([r.native_id or "" for r in records], state="RUNNING")
    fleet.refresh(records)
    local = jf("submit", "--backend", "local", "--", "sleep", "300").stdout.strip()

    # As squeue does while slurmctld is down: it retries (here for a minute) and then fails.
    down = "squeue: error: Unable to contact slurm controller (connect failure)"
    fake.fail("squeue", 1, down, after_s=60)
    proc = jf("status", "--json", "--timeout", "1", *ids, local, timeout_s=40)
    shown = {r["id"]: r for r in json.loads(proc.stdout)}
    assert (shown[local]["state"], shown[local]["refreshed"]) == ("running", True)
    for job_id in ids:
        assert (shown[job_id]["state"], shown[job_id]["refreshed"]) == ("running", False)
        assert shown[job_id]["not_refreshed_because"] == "squeue did not answer within 1s"
    assert proc.stderr.startswith("jobfleet: warning: slurm did not answer (squeue did not")

    # --no-refresh: the recorded states, nobody asked.
    mark = calls.mark()
    rows = json.loads(jf("status", "--json", "--no-refresh", *ids, local).stdout)
    assert calls.since(mark) == []
    assert {(r["state"], r["refreshed"]) for r in rows} == {("running", False)}
    assert {r["not_refreshed_because"] for r in rows} == {"not asked"}
    jf("status", "--no-refresh", "--timeout", "3", expect=2)

    # queue: the local queue is listed, slurm is named as not answering, exit 1.
    config = Path(os.environ["JOBFLEET_CONFIG"])
    config.write_text(config.read_text().replace("wait:\n", "wait:\n  status_timeout: 1s\n"))
    proc = jf("queue", "--json", expect=1, timeout_s=40)
    listed = json.loads(proc.stdout)
    assert [(r["backend"], r["id"]) for r in listed] == [("local", local)]
    assert proc.stderr.splitlines() == [
        "jobfleet: warning: slurm did not answer (squeue did not answer within 1s); "
        "its jobs are not listed"
    ]
    table = jf("queue", expect=1, timeout_s=40).stdout
    assert "BACKEND" in table and "local" in table
    proc = jf("queue", "--backend", "slurm", expect=1, timeout_s=40)  # nothing answered
    assert proc.stderr.splitlines() == ["jobfleet: error: squeue did not answer within 1s"]
    assert {r.state for r in fleet.registry.get_many(ids)} == {S.RUNNING}  # nothing concluded
    jf("cancel", local)


def test_a_cancel_reads_cancelled_at_once_while_sacct_still_shows_the_jobs_waiting(
    fleet: Fleet, fake: FakeSlurm, calls: CallLog
) -> None:
    """As on the live cluster (22.05/cancel-lag-*): squeue shows the cancel at once,
    sacct still shows the jobs PENDING or RUNNING. The cancel's own refresh reads them
    cancelled, and nothing reads them pending or running again once sacct caught up."""
    records = fleet.submit_many([JobSpec(["true"], name=f"job{i}") for i in range(6)])
    native = [r.native_id or "" for r in records]
    fake.set(native[3:], state="RUNNING")
    fake.set(native[:3], reason="JobHeldUser")
    records = fleet.refresh(records)
    assert [r.state for r in records] == [S.PENDING] * 3 + [S.RUNNING] * 3
    fake.set(native[:3], acct_lag="PENDING")
    fake.set(native[3:], acct_lag="RUNNING")
    mark = calls.mark()
    cancelled = fleet.cancel([r.id for r in records])
    assert [c[0] for c in calls.since(mark)] == ["scancel", "squeue", "sacct"]  # no scontrol
    assert {r.state for r in cancelled} == {S.CANCELLED}
    assert {r.reason for r in cancelled[:3]} == {
        "cancelled while waiting (JobHeldUser) (SLURM did not say by whom)"
    }
    assert {r.reason for r in cancelled[3:]} == {"cancelled (SLURM did not say by whom)"}
    fake.set(native, acct_lag="")  # sacct caught up: CANCELLED by 0
    assert {r.state for r in fleet.status([r.id for r in records])} == {S.CANCELLED}
