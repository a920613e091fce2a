"""The backend contract: what every backend does, the same way, end to end.

Each test runs once per backend of :data:`conftest.BACKENDS` (``local``, live
``slurm`` and ``sge``, the fake SLURM of tests/shims with its ``slurmd``, the fake
HTCondor with its schedd),
through the public API and the ``jobfleet`` command only. Outcomes are proved
by what the jobs leave behind (marker files, timestamps), never by timings.
"""

from __future__ import annotations

import collections
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from conftest import wait_for
from jobfleet import (
    Dependency,
    DepKind,
    Fleet,
    JobRecord,
    JobSpec,
    JobState,
    Resources,
    load_config,
    parse_array,
)
from jobfleet.usage import Usage

from .conftest import BackendUnderTest

S = JobState
PY = sys.executable
#: Generous: the live clusters are small and shared with other test runs.
WAIT_S = 240
SUBMITTER = Path(__file__).with_name("submitter.py")


def jobfleet(*args: str, check_rc: int | None = 0) -> subprocess.CompletedProcess[str]:
    """The ``jobfleet`` command in a process of its own (same JOBFLEET_HOME and config)."""
    proc = subprocess.run(
        [PY, "-m", "jobfleet", *args], capture_output=True, text=True, timeout=WAIT_S + 60
    )
    if check_rc is not None:
        assert proc.returncode == check_rc, (proc.returncode, proc.stdout, proc.stderr)
    return proc


def outcome(record: Any) -> tuple[JobState, int | None]:
    return record.state, record.exit_code


def element_outcomes(record: Any) -> dict[int, tuple[JobState, int | None]]:
    return {i: outcome(e) for i, e in sorted(record.elements.items())}


def after(kind: DepKind, job_id: str) -> tuple[Dependency, ...]:
    return (Dependency(kind, (job_id,)),)


def most_at_once(log: Path) -> int:
    """The largest number of intervals of ``log`` (lines ``start end``) that overlap."""
    events = []
    for line in log.read_text().splitlines():
        start, end = map(float, line.split())
        events += [(start, 1), (end, -1)]
    now = peak = 0
    for _, step in sorted(events):  # an end sorts before a start at the same time
        now += step
        peak = max(peak, now)
    return peak


# -- 1. exit codes ---------------------------------------------------------------------


def test_exit_codes(fleet: Fleet, backend: BackendUnderTest) -> None:
    limits = Resources.of(memory="100M", walltime="5m")
    ok = fleet.submit(JobSpec(["true"], name="ok", resources=limits))
    bad = fleet.submit(JobSpec(["sh", "-c", "exit 3"], name="bad"))
    assert re.fullmatch(backend.native_id, ok.native_id or ""), ok.native_id
    done = fleet.wait([ok.id, bad.id], timeout_s=WAIT_S)
    assert [outcome(r) for r in done] == [(S.COMPLETED, 0), (S.FAILED, 3)]
    assert [r.succeeded for r in done] == [True, False]
    stored = fleet.status([ok.id, bad.id])
    assert [outcome(r) for r in stored] == [(S.COMPLETED, 0), (S.FAILED, 3)]


# -- 2. arrays ---------------------------------------------------------------------------

#: An element: appends "start end" (its own clock readings) to the log, exits its
#: index when odd, 0 when even.
ELEMENT = """
import os, sys, time
i = int(os.environ["JOBFLEET_ARRAY_INDEX"])
start = time.time()
time.sleep(1.0)
with open(sys.argv[1], "a") as log:
    log.write(f"{start} {time.time()}\\n")
sys.exit(i if i % 2 else 0)
"""


def test_array_with_max_concurrency_and_element_outcomes(fleet: Fleet, tmp_path: Path) -> None:
    log = tmp_path / "intervals"
    job = fleet.submit(JobSpec([PY, "-c", ELEMENT, str(log)], array=parse_array("1-6%2")))
    done = fleet.wait([job.id], timeout_s=WAIT_S)[0]
    assert element_outcomes(done) == {
        1: (S.FAILED, 1),
        2: (S.COMPLETED, 0),
        3: (S.FAILED, 3),
        4: (S.COMPLETED, 0),
        5: (S.FAILED, 5),
        6: (S.COMPLETED, 0),
    }
    assert done.state is S.FAILED
    assert len(log.read_text().splitlines()) == 6, "every element ran once"
    assert most_at_once(log) <= 2, "more elements ran at once than %2 allows"
    assert fleet.log_path(job.id, index=6).exists()
    assert fleet.status([job.id])[0].elements[5].exit_code == 5


# -- 3. dependencies ---------------------------------------------------------------------

#: kind -> does the dependent of a success run, does the dependent of a failure run.
RUNS_AFTER = {
    DepKind.AFTER_OK: (True, False),
    DepKind.AFTER_ANY: (True, True),
    DepKind.AFTER_NOT_OK: (False, True),
}


@pytest.mark.parametrize("kind", list(RUNS_AFTER), ids=lambda k: k.value)
def test_dependency_kind(fleet: Fleet, tmp_path: Path, kind: DepKind) -> None:
    # Still running when the dependents are submitted: the scheduler decides.
    jobs = {}
    for upstream, code in (("success", 0), ("failure", 3)):
        done = tmp_path / f"{upstream}.done"
        jobs[upstream] = fleet.submit(
            JobSpec(["sh", "-c", f"sleep 2; touch '{done}'; exit {code}"], name=upstream)
        )
    dependents = {}
    for upstream, record in jobs.items():
        # It runs only once its upstream job has ended, or it fails.
        check = f"test -e '{tmp_path / upstream}.done' && touch '{tmp_path / upstream}.ran'"
        dependents[upstream] = fleet.submit(
            JobSpec(
                ["sh", "-c", check], name=f"after-{upstream}", dependencies=after(kind, record.id)
            )
        )
    ids = [r.id for r in [*jobs.values(), *dependents.values()]]
    done = {r.id: r for r in fleet.wait(ids, timeout_s=WAIT_S)}
    assert outcome(done[jobs["success"].id]) == (S.COMPLETED, 0)
    assert outcome(done[jobs["failure"].id]) == (S.FAILED, 3)
    for upstream, runs in zip(("success", "failure"), RUNS_AFTER[kind], strict=True):
        dependent = done[dependents[upstream].id]
        ran = (tmp_path / f"{upstream}.ran").exists()
        if runs:
            assert outcome(dependent) == (S.COMPLETED, 0), dependent
            assert ran
        else:
            assert outcome(dependent) == (S.CANCELLED, None), dependent
            # The same words on every backend (docs/states.md).
            reason = dependent.reason or ""
            assert reason.startswith("cancelled: ") and "can never be met" in reason, reason
            assert not ran, f"the dependent of the {upstream} ran its command"


# -- 4. cancel ---------------------------------------------------------------------------


def test_cancel_running_job(fleet: Fleet, tmp_path: Path) -> None:
    after_sleep = tmp_path / "slept"
    # `&&`: a scheduler that signals the job's processes one by one (SLURM's slurmstepd)
    # may reach sh after sleep died; with `;` sh would run touch in that moment.
    job = fleet.submit(JobSpec(["sh", "-c", f"sleep 300 && touch '{after_sleep}'"]))
    wait_for(lambda: fleet.status([job.id])[0].state is S.RUNNING, timeout_s=WAIT_S, what="running")
    (reported,) = fleet.cancel([job.id])
    done = fleet.wait([job.id], timeout_s=WAIT_S)[0]
    assert done.state is S.CANCELLED
    assert not after_sleep.exists()
    _reported_as_it_ended(reported, done)
    # docs/states.md: "cancelled by <user>", or "cancelled (...)" saying who cannot be told;
    # the exit code is the signal's (or null), never a success's 0.
    assert re.match(r"cancelled( by \S+|\b)", done.reason or ""), done.reason
    assert done.exit_code != 0, done


def _reported_as_it_ended(reported: JobRecord, done: JobRecord) -> None:
    """A cancel's own report is how the job ended, or says it is still being stopped
    (``running``): never final before its exit code is recorded (SLURM has sacct's final
    row while squeue still shows COMPLETING; the cancel asks again for a few seconds, and
    a loaded cluster may take longer to stop a job)."""
    if reported.state.is_terminal:
        assert (reported.state, reported.exit_code) == (done.state, done.exit_code), reported
    else:
        assert reported.state is S.RUNNING, reported


def test_a_cancel_reports_the_code_a_command_slow_to_stop_ends_with(
    fleet: Fleet, tmp_path: Path
) -> None:
    # The command takes a moment to stop after SIGTERM (a clean-up): its job script
    # records the code only then, and a scheduler may show the job as ended before
    # (SLURM: sacct's final row while squeue shows COMPLETING). The cancel's report
    # waits for it, and the code is recorded (not null, as it read before).
    ready = tmp_path / "ready"
    slow = f"trap 'sleep 1; exit 7' TERM; touch '{ready}'; sleep 300 & wait"
    job = fleet.submit(JobSpec(["sh", "-c", slow]))
    wait_for(ready.exists, timeout_s=WAIT_S, what="the command's trap to be set")
    (reported,) = fleet.cancel([job.id])
    done = fleet.wait([job.id], timeout_s=WAIT_S)[0]
    assert done.state is S.CANCELLED
    assert done.exit_code not in (None, 0), done
    _reported_as_it_ended(reported, done)


def test_cancel_one_array_element(fleet: Fleet) -> None:
    command = 'if [ "$JOBFLEET_ARRAY_INDEX" = 2 ]; then sleep 300; else sleep 1; fi'
    array = fleet.submit(JobSpec(["sh", "-c", command], array=parse_array("1-3")))
    wait_for(
        lambda: fleet.status([array.id])[0].elements[2].state is S.RUNNING,
        timeout_s=WAIT_S,
        what="element 2 to run",
    )
    fleet.cancel([array.id], indices=[2])
    done = fleet.wait([array.id], timeout_s=WAIT_S)[0]
    assert {i: e.state for i, e in done.elements.items()} == {
        1: S.COMPLETED,
        2: S.CANCELLED,
        3: S.COMPLETED,
    }
    assert done.elements[1].exit_code == done.elements[3].exit_code == 0


# -- 5. walltime -------------------------------------------------------------------------


@pytest.mark.waits_on_clock
@pytest.mark.slow
def test_walltime_gives_timeout(fleet: Fleet, backend: BackendUnderTest, tmp_path: Path) -> None:
    after_sleep = tmp_path / "slept"
    job = fleet.submit(
        JobSpec(
            ["sh", "-c", f"sleep 300 && touch '{after_sleep}'"],
            resources=Resources.of(walltime=backend.walltime),
        )
    )
    done = fleet.wait([job.id], timeout_s=WAIT_S)[0]
    assert done.state is S.TIMEOUT, done
    assert not after_sleep.exists()
    assert (done.reason or "").startswith("walltime limit exceeded"), done.reason
    assert done.exit_code != 0, done


#: Holds about 64 MiB resident for a minute: more than the 16M asked for.
HOG = "import time; b = bytearray(64 * 1024 * 1024); time.sleep(60)"


def test_fakecondor_memory_hold_ends_out_of_memory(fakecondor_home: Path) -> None:
    """HTCondor holds (code 34) a job over its request_memory rather than ending it;
    jobfleet's periodic_remove ends it, and it reads out_of_memory: wait returns, and a
    dependent does not wait for ever (its afterok can never be met)."""
    with Fleet(load_config()) as fleet:
        hog = fleet.submit(JobSpec([PY, "-c", HOG], resources=Resources.of(memory="16M")))
        then = fleet.submit(JobSpec(["true"], dependencies=after(DepKind.AFTER_OK, hog.id)))
        done = {r.id: r for r in fleet.wait([hog.id, then.id], timeout_s=WAIT_S)}
    assert outcome(done[hog.id]) == (S.OUT_OF_MEMORY, None), done[hog.id]
    reason = done[hog.id].reason or ""
    assert reason.startswith("memory limit exceeded (Error from slot1_1@fakecondor: Job has")
    assert "over cgroup memory limit of 16 megabytes" in reason
    assert outcome(done[then.id]) == (S.CANCELLED, None), done[then.id]


# -- 6. a second process ------------------------------------------------------------------


def test_second_process_sees_and_waits(fleet: Fleet) -> None:
    job = fleet.submit(JobSpec(["sh", "-c", "sleep 2; exit 5"], name="elsewhere"))
    waited = jobfleet("wait", job.id, "--json", check_rc=1)  # 1: not every job succeeded
    [record] = json.loads(waited.stdout)
    assert (record["id"], record["state"], record["exit_code"]) == (job.id, "failed", 5)
    assert record["backend"] == fleet.config.backend
    shown = json.loads(jobfleet("status", job.id, "--json").stdout)
    assert [(r["id"], r["name"], r["state"], r["exit_code"]) for r in shown] == [
        (job.id, "elsewhere", "failed", 5)
    ]
    assert outcome(fleet.status([job.id])[0]) == (S.FAILED, 5)


# -- 7. a killed submitter ----------------------------------------------------------------

JOBS, DIE_IN = 8, 5


def true_outcome(name: str) -> tuple[str, int]:
    return ("failed", 3) if int(name.removeprefix("contract-")) % 3 == 0 else ("completed", 0)


def submitter(tmp_path: Path, *die_in: int) -> subprocess.CompletedProcess[str]:
    argv = [PY, str(SUBMITTER), str(tmp_path), str(JOBS), *map(str, die_in)]
    return subprocess.run(argv, capture_output=True, text=True, timeout=WAIT_S)


def check_each_once(records: Sequence[dict[str, Any]], ran: Path, names: Sequence[str]) -> None:
    """Each of ``names`` recorded once, ended with its true outcome, ran once."""
    counts = collections.Counter(r["name"] for r in records)
    assert sorted(counts) == sorted(names) and set(counts.values()) == {1}, counts
    for r in records:
        assert (r["state"], r["exit_code"]) == true_outcome(r["name"]), r
    runs = collections.Counter(ran.read_text().split())
    assert sorted(runs) == sorted(names) and set(runs.values()) == {1}, runs


def test_killed_submitter_is_reconciled(backend: BackendUnderTest, tmp_path: Path) -> None:
    killed = submitter(tmp_path, DIE_IN)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert killed.stdout.count("submitted ") == DIE_IN - 1
    first = [f"contract-{i}" for i in range(DIE_IN)]

    # A fresh process finds the job whose submission it never recorded, and waits.
    waited = json.loads(jobfleet("wait", "--all", "--json", check_rc=1).stdout)
    check_each_once(waited, tmp_path / "ran", first)

    # The submitter, run again, submits only what the registry does not hold.
    again = submitter(tmp_path)
    assert again.returncode == 0, again.stderr
    assert again.stdout.count("submitted ") == JOBS - DIE_IN
    jobfleet("wait", "--all", check_rc=1)
    shown = json.loads(jobfleet("status", "--json", "--limit", "100").stdout)
    check_each_once(shown, tmp_path / "ran", [f"contract-{i}" for i in range(JOBS)])


# -- 8. dry run ---------------------------------------------------------------------------


def snapshot(fleet: Fleet, name: str) -> tuple[object, ...]:
    """What a submission would change: the registry, the job directories, the queue."""
    home = Path(os.environ["JOBFLEET_HOME"])
    queued = json.loads(jobfleet("queue", "--json").stdout)
    return (
        [(r.id, r.state) for r in fleet.status(limit=100)],
        sorted(p.relative_to(home) for p in (home / "jobs").rglob("*")) if home.exists() else [],
        [e for e in queued if name in e["name"]],
    )


def test_dry_run_writes_nothing(fleet: Fleet, backend: BackendUnderTest, tmp_path: Path) -> None:
    fleet.wait([fleet.submit(JobSpec(["true"], name="before")).id], timeout_s=WAIT_S)
    marker, cli_marker = tmp_path / "ran", tmp_path / "ran-cli"
    spec = JobSpec(["sh", "-c", f"touch '{marker}'; sleep 60"], name="dry-run-probe")
    before = snapshot(fleet, "dry-run-probe")

    plan = fleet.dry_run(spec)
    cli = json.loads(
        jobfleet(
            *("submit", "--dry-run", "--json", "--name", "dry-run-probe"),
            *("--", "sh", "-c", f"touch '{cli_marker}'; sleep 60"),
        ).stdout
    )
    assert plan.backend == cli["backend"] == fleet.config.backend
    assert str(marker) in plan.script and str(cli_marker) in cli["script"]
    if backend.submit_command is None:
        assert plan.argv is None and cli["argv"] is None
    else:
        assert plan.argv and plan.argv[0] == cli["argv"][0] == backend.submit_command
    # Any file besides the script a submission writes (HTCondor's submit description)
    # is shown, and is the very file the submit command is given.
    assert cli["files"] == {
        p: t.replace(str(marker), str(cli_marker)) for p, t in plan.files.items()
    }
    for path in plan.files:
        assert plan.argv is not None and path in plan.argv
    assert bool(plan.files) == (backend.submit_command == "condor_submit")

    assert snapshot(fleet, "dry-run-probe") == before
    assert not marker.exists() and not cli_marker.exists()


# -- times -------------------------------------------------------------------------------


#: Appends "start end" (its own clock readings) to the log after a one-second sleep.
TIMED = ELEMENT.replace('int(os.environ["JOBFLEET_ARRAY_INDEX"])', "0")


#: Appends "start end" (its own clock readings) to the log after a one-second sleep.
TIMED = ELEMENT.replace('int(os.environ["JOBFLEET_ARRAY_INDEX"])', "0")


def test_every_job_and_element_has_its_submit_start_and_end_times(
    fleet: Fleet, backend: BackendUnderTest, tmp_path: Path
) -> None:
    """From accounting where the scheduler keeps it, else from the job's own files: each
    ended job and element says when it was submitted, started and ended, in that order,
    bracketing what its command saw, to the backend's resolution (accounting may tell a
    poll or two after the end: the times are asked for until they are known)."""
    log = tmp_path / "intervals"
    before = time.time()
    single = fleet.submit(JobSpec([PY, "-c", TIMED, str(log)]))
    array = fleet.submit(JobSpec([PY, "-c", TIMED, str(log)], array=parse_array("1-3")))
    fleet.wait([single.id, array.id], timeout_s=WAIT_S)
    after = time.time()

    def usages() -> list[Usage]:
        one, many = fleet.status([single.id, array.id])
        return [one.usage] + [e.usage for e in many.elements.values()]

    def timed() -> bool:
        return all(None not in (u.submitted_at, u.started_at, u.ended_at) for u in usages())

    wait_for(timed, WAIT_S, "every job and element to have its times")
    seen = [tuple(map(float, line.split())) for line in log.read_text().splitlines()]
    assert len(seen) == 4
    slack = backend.time_resolution_s + 1
    for u in usages():
        assert u.submitted_at is not None and u.started_at is not None
        assert u.ended_at is not None
        assert before - slack <= u.submitted_at <= u.started_at <= u.ended_at <= after + 1, u
        # Some command ran inside [started, ended] for at least its one-second sleep.
        assert any(u.started_at - slack <= s and e <= u.ended_at + slack for s, e in seen), (
            u,
            seen,
        )
