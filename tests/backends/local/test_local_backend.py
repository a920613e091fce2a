"""The local backend with real processes: every job here really runs.

Time-based checks read timestamps the jobs write themselves: a job's recorded
interval lies inside its real one, so a measured overlap can only understate
a real one, and a limit seen exceeded was really exceeded.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import cast

import pytest

from conftest import LOCAL_TEST_CONFIG, agent_lock, stop_agent, wait_for
from jobfleet.backends.local import LocalBackend
from jobfleet.config import load_config
from jobfleet.engine.fleet import Fleet
from jobfleet.errors import SpecError
from jobfleet.spec import JobSpec, Resources, parse_array
from jobfleet.states import JobState
from support.scripts import GRACEFUL

PY = sys.executable

#: A job that appends "start"/"end" events with its index and cores to a log.
INTERVAL_JOB = textwrap.dedent(
    """
    import json, os, sys, time
    log, cores, pause = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    tag = os.environ.get("JOBFLEET_ARRAY_INDEX") or os.environ["JOBFLEET_JOB_ID"]
    def event(kind):
        with open(log, "a") as fh:
            fh.write(json.dumps([kind, tag, cores, time.time()]) + "\\n")
    event("start")
    time.sleep(pause)
    event("end")
    sys.exit(int(sys.argv[4]) if len(sys.argv) > 4 and tag == sys.argv[5] else 0)
    """
)


def max_in_use(log: Path) -> tuple[int, int]:
    """(peak cores in use, peak jobs running) from an interval log."""
    events = [json.loads(line) for line in log.read_text().splitlines()]
    # At equal times, count ends before starts: touching intervals do not overlap.
    events.sort(key=lambda e: (e[3], e[0] == "start"))
    cores = jobs = peak_cores = peak_jobs = 0
    for kind, _, n, _ in events:
        sign = 1 if kind == "start" else -1
        cores += sign * n
        jobs += sign
        peak_cores, peak_jobs = max(peak_cores, cores), max(peak_jobs, jobs)
    return peak_cores, peak_jobs


def guard_pid(path: Path) -> int | None:
    """The pid a local job's once-guard (its exit-code file) holds while it runs."""
    try:
        text = path.read_text()
    except OSError:
        return None
    return int(text[4:]) if text.startswith("pid ") and text.endswith("\n") else None


def live_members(pgid: int) -> list[int]:
    """Processes of a process group that are alive (zombies do not count)."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        fields = text[text.rfind(")") + 2 :].split()
        if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            members.append(int(stat.parent.name))
    return members


@pytest.fixture
def fleet(jf_home: Path) -> Fleet:
    f = Fleet(load_config())
    yield f  # type: ignore[misc]
    f.close()


def write_config(jf_home: Path, cores: int) -> None:
    Path(os.environ["JOBFLEET_CONFIG"]).write_text(LOCAL_TEST_CONFIG.format(cores=cores))


def test_exit_codes_and_states(fleet: Fleet) -> None:
    ok = fleet.submit(JobSpec(["true"]))
    bad = fleet.submit(JobSpec(["bash", "-c", "exit 3"]))
    killed = fleet.submit(JobSpec(["bash", "-c", "kill -9 $$"]))
    done = {r.id: r for r in fleet.wait([ok.id, bad.id, killed.id], timeout_s=60)}
    assert (done[ok.id].state, done[ok.id].exit_code) == (JobState.COMPLETED, 0)
    assert (done[bad.id].state, done[bad.id].exit_code) == (JobState.FAILED, 3)
    assert done[killed.id].state is JobState.FAILED
    assert done[killed.id].exit_code == 128 + 9
    assert Path(done[bad.id].job_dir, "exit_code").read_text().strip() == "3"


def test_output_and_environment_reach_the_job(fleet: Fleet, tmp_path: Path) -> None:
    spec = JobSpec(
        [
            PY,
            "-c",
            "import os,sys; print(os.environ['GREETING'], sys.argv[1:], os.getcwd())",
            "a b",
            "$HOME",
        ],
        env={"GREETING": "hi 'there'"},
        workdir=str(tmp_path),
    )
    job = fleet.submit(spec)
    assert fleet.wait([job.id], timeout_s=60)[0].state is JobState.COMPLETED
    out = fleet.log_path(job.id).read_text()
    assert out.strip() == f"hi 'there' ['a b', '$HOME'] {tmp_path}"


def test_array_with_max_concurrent_and_per_element_outcomes(jf_home: Path, tmp_path: Path) -> None:
    write_config(jf_home, cores=4)
    log = tmp_path / "intervals.log"
    with Fleet(load_config()) as fleet:
        spec = JobSpec(
            [PY, "-c", INTERVAL_JOB, str(log), "1", "0.4", "7", "5"],
            array=parse_array("1-8%2"),
        )
        job = fleet.submit(spec)
        done = fleet.wait([job.id], timeout_s=120)[0]
    assert sorted(done.elements) == list(range(1, 9))
    assert done.elements[5].state is JobState.FAILED and done.elements[5].exit_code == 7
    others = [e for i, e in done.elements.items() if i != 5]
    assert all(e.state is JobState.COMPLETED and e.exit_code == 0 for e in others)
    assert done.state is JobState.FAILED and done.exit_code == 7
    _, peak_jobs = max_in_use(log)
    assert peak_jobs <= 2, "the array ran more elements at once than %2 allows"
    assert peak_jobs == 2, "with 4 free cores the throttle, not the cores, should limit"


def test_cores_are_never_oversubscribed(fleet: Fleet, tmp_path: Path) -> None:
    log = tmp_path / "intervals.log"
    specs = [
        JobSpec(
            [PY, "-c", INTERVAL_JOB, str(log), str(cores), "0.3"],
            resources=Resources(cores=cores),
        )
        for cores in (1, 2, 1, 1, 2, 1, 1, 2)
    ]
    jobs = fleet.submit_many(specs)
    done = fleet.wait([j.id for j in jobs], timeout_s=120)
    assert all(r.state is JobState.COMPLETED for r in done)
    peak_cores, _ = max_in_use(log)
    assert peak_cores <= 2


def test_job_asking_for_more_than_the_machine_is_refused(fleet: Fleet) -> None:
    with pytest.raises(SpecError, match=r"resources\.cores.*local\.cores"):
        fleet.submit(JobSpec(["true"], resources=Resources(cores=64)))


def test_cancel_running_and_pending(fleet: Fleet) -> None:
    running = fleet.submit(JobSpec(["sleep", "60"], resources=Resources(cores=2)))
    pending = fleet.submit(JobSpec(["sleep", "60"], resources=Resources(cores=2)))
    guard = Path(running.job_dir, "exit_code")  # the once-guard: "pid N" while it runs
    wait_for(lambda: guard_pid(guard) is not None, what="the first job to start")
    pid = guard_pid(guard)
    records = {r.id: r for r in fleet.cancel([running.id, pending.id])}
    assert records[running.id].state is JobState.CANCELLED
    assert records[pending.id].state is JobState.CANCELLED
    assert not Path(pending.job_dir, "exit_code").exists()
    assert live_members(pid) == [], "every process of the cancelled job is gone"


def test_walltime_kills_and_reports_timeout(fleet: Fleet) -> None:
    job = fleet.submit(JobSpec(["sleep", "60"], resources=Resources.of(walltime="2s")))
    done = fleet.wait([job.id], timeout_s=60)[0]
    # The same words as on every backend; the script outlived the SIGTERM and recorded
    # what its command would show a shell.
    assert (done.state, done.exit_code) == (JobState.TIMEOUT, 143)
    assert done.reason == "walltime limit exceeded (00:00:02)"


SUBMIT_AND_LEAVE = """
import sys
from jobfleet.engine.fleet import Fleet
from jobfleet.spec import JobSpec
with Fleet() as fleet:
    job = fleet.submit(JobSpec(["bash", "-c", "sleep 1.5; echo survived > " + sys.argv[1]]))
print(job.id)
"""


def test_job_outlives_its_submitter_and_another_process_sees_it(
    jf_home: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    proc = subprocess.run(
        [PY, "-c", SUBMIT_AND_LEAVE, str(out)], capture_output=True, text=True, check=True
    )
    job_id = proc.stdout.strip()
    assert not out.exists(), "the submitter should exit before the job ends"
    with Fleet(load_config()) as fleet:  # a second process, knowing only the id
        done = fleet.wait([job_id], timeout_s=60)[0]
    assert done.state is JobState.COMPLETED
    assert out.read_text() == "survived\n"


def test_agent_killed_mid_job_is_replaced_and_outcome_kept(fleet: Fleet, jf_home: Path) -> None:
    job = fleet.submit(JobSpec(["bash", "-c", "sleep 1.5; exit 4"]))
    wait_for(Path(job.job_dir, "exit_code").exists, what="the job to start")
    agent_pid = int(agent_lock(jf_home).read_text())
    os.kill(agent_pid, signal.SIGKILL)
    done = fleet.wait([job.id], timeout_s=60)[0]  # polling restarts the agent
    assert (done.state, done.exit_code) == (JobState.FAILED, 4)
    new_pid = int(agent_lock(jf_home).read_text())
    assert new_pid != agent_pid


def test_no_job_starts_twice_across_agent_crashes(
    fleet: Fleet, jf_home: Path, tmp_path: Path
) -> None:
    ledger = tmp_path / "ledger"
    specs = [JobSpec(["bash", "-c", f"echo {i} >> '{ledger}'; sleep 0.05"]) for i in range(40)]
    jobs = fleet.submit_many(specs)
    lock = agent_lock(jf_home)
    backend = cast(LocalBackend, fleet.backend())
    for round_ in range(1, 4):
        wait_for(
            lambda n=round_: ledger.exists() and len(ledger.read_text().split()) >= 8 * n,
            what="progress",
        )
        os.kill(int(lock.read_text()), signal.SIGKILL)  # mid-stream, jobs running
        wait_for(lambda: not backend.agent_running(), what="the killed agent to let go")
        backend.ensure_agent()  # what the next client call does
    done = fleet.wait([j.id for j in jobs], timeout_s=120)
    assert all(r.state is JobState.COMPLETED for r in done), [r.state for r in done]
    lines = sorted(int(x) for x in ledger.read_text().split())
    assert lines == list(range(40)), "every job ran exactly once"


def test_agent_exits_when_idle(jf_home: Path) -> None:
    with Fleet(load_config()) as fleet:
        job = fleet.submit(JobSpec(["true"]))
        fleet.wait([job.id], timeout_s=60)
        backend = cast(LocalBackend, fleet.backend())
        assert backend.agent_running()
        wait_for(lambda: not backend.agent_running(), timeout_s=20, what="the idle agent to exit")
    stop_agent(jf_home)


def restart_agent(fleet: Fleet, home: Path) -> None:
    """Kill the agent with SIGKILL (as a crash would) and start a new one."""
    backend = cast(LocalBackend, fleet.backend())
    os.kill(int(agent_lock(home).read_text()), signal.SIGKILL)
    wait_for(lambda: not backend.agent_running(), what="the killed agent to let go")
    backend.ensure_agent()


IGNORES_TERM = ["sh", "-c", "trap '' TERM; sleep 30 & wait; sleep 30"]


def test_cancel_holds_resources_until_every_process_is_gone(fleet: Fleet) -> None:
    job = fleet.submit(JobSpec(IGNORES_TERM, resources=Resources(cores=2)))
    wait_for(lambda: guard_pid(Path(job.job_dir, "exit_code")) is not None, what="a start")
    pgid = guard_pid(Path(job.job_dir, "exit_code"))
    assert pgid is not None
    wait_for(lambda: len(live_members(pgid)) >= 2, what="the job's processes")
    record = fleet.cancel([job.id])[0]
    assert record.state is JobState.CANCELLED
    assert live_members(pgid) == [], "cancelled is reported only once nothing is left"


def test_adoption_never_trusts_a_reused_pid(fleet: Fleet, jf_home: Path) -> None:
    job = fleet.submit(JobSpec(["sleep", "1"]))
    guard = Path(job.job_dir, "exit_code")  # the once-guard: "pid N", then the code
    wait_for(lambda: guard_pid(guard) is not None, what="the job to start")
    os.kill(int(agent_lock(jf_home).read_text()), signal.SIGKILL)
    wait_for(lambda: guard.read_text() == "0\n", what="the job to end")
    # As if the script had died before recording its code, and its pid now
    # "belonged" to an unrelated process in its own session.
    stranger = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        guard.write_text(f"pid {stranger.pid}\n")
        done = fleet.wait([job.id], timeout_s=60)[0]  # polling starts a new agent
        assert done.state is JobState.LOST, done  # its outcome is unknown: not adopted
        assert stranger.poll() is None, "an unrelated process must never be signalled"
    finally:
        stranger.kill()
        stranger.wait()


def test_gpus_stay_assigned_across_an_agent_restart(jf_home: Path, tmp_path: Path) -> None:
    Path(os.environ["JOBFLEET_CONFIG"]).write_text(
        LOCAL_TEST_CONFIG.format(cores=4).replace(
            "  idle_exit: 3s\n", "  idle_exit: 3s\n  gpus: 2\n"
        )
    )
    show = ["sh", "-c", 'echo "[$CUDA_VISIBLE_DEVICES]"; sleep "$0"']
    with Fleet(load_config()) as fleet:
        first = fleet.submit(JobSpec([*show, "3"], resources=Resources(gpus=1)))
        wait_for(Path(first.job_dir, "exit_code").exists, what="the first job to start")
        restart_agent(fleet, jf_home)
        second = fleet.submit(JobSpec([*show, "0"], resources=Resources(gpus=1)))
        none = fleet.submit(JobSpec([*show, "0"]))
        fleet.wait([first.id, second.id, none.id], timeout_s=60)
        seen = [fleet.log_path(j.id).read_text().strip() for j in (first, second, none)]
    assert sorted(seen[:2]) == ["[0]", "[1]"], "two running jobs never share a GPU"
    assert seen[2] == "[]", "a job that asked for no GPU sees none"


def test_capacity_change_reaches_a_running_agent(jf_home: Path) -> None:
    config = Path(os.environ["JOBFLEET_CONFIG"])
    config.write_text(LOCAL_TEST_CONFIG.format(cores=1))
    with Fleet(load_config()) as small:
        small.wait([small.submit(JobSpec(["true"])).id], timeout_s=60)  # the agent now runs
    config.write_text(LOCAL_TEST_CONFIG.format(cores=2))
    with Fleet(load_config()) as bigger:
        job = bigger.submit(JobSpec(["true"], resources=Resources(cores=2)))
        assert bigger.wait([job.id], timeout_s=60)[0].state is JobState.COMPLETED


def test_timeout_decision_survives_an_agent_crash(jf_home: Path) -> None:
    Path(os.environ["JOBFLEET_CONFIG"]).write_text(
        LOCAL_TEST_CONFIG.format(cores=2).replace("cancel_grace: 1s", "cancel_grace: 4s")
    )
    with Fleet(load_config()) as fleet:
        job = fleet.submit(JobSpec(IGNORES_TERM, resources=Resources.of(walltime="1s")))
        backend = cast(LocalBackend, fleet.backend())

        def decided() -> bool:
            rows = backend.store.read(
                "SELECT ending FROM tasks WHERE job = ?", (int(job.native_id or 0),)
            )
            return bool(rows) and rows[0][0] == "timeout"

        wait_for(decided, what="the agent to decide on a timeout")
        restart_agent(fleet, jf_home)  # before its SIGKILL was due
        done = fleet.wait([job.id], timeout_s=60)[0]
    assert done.state is JobState.TIMEOUT


def test_a_reused_queue_id_never_reports_another_jobs_outcome(jf_home: Path) -> None:
    with Fleet(load_config()) as fleet:
        old = fleet.submit(JobSpec(["sleep", "30"]))
        # The agent records "running" just after the job's first line (its marker).
        wait_for(lambda: fleet.status([old.id])[0].state is JobState.RUNNING, what="the job to run")
        backend = cast(LocalBackend, fleet.backend())
        stop_agent(jf_home)
        wait_for(lambda: not backend.agent_running(), what="the agent to stop")
        shutil.rmtree(backend.directory)  # the queue is gone; its ids start again
    with Fleet(load_config()) as fleet:
        new = fleet.submit(JobSpec(["true"]))
        assert new.native_id == old.native_id
        fleet.wait([new.id], timeout_s=60)
        record = fleet.status([old.id])[0]
    assert record.state is JobState.RUNNING, "the old job keeps its last known state"


#: Ends cleanly (exit 0, saying so) when it gets SIGUSR1.


def test_cancel_one_element_and_signal_for_a_graceful_stop(fleet: Fleet) -> None:
    array = fleet.submit(JobSpec(["sleep", "30"], array=parse_array("1-3")))
    wait_for(lambda: Path(array.job_dir, "0", "exit_code.1").exists(), what="element 1 to start")
    record = fleet.cancel([array.id], indices=[3])[0]
    assert record.elements[3].state is JobState.CANCELLED
    assert record.elements[1].state is not JobState.CANCELLED
    fleet.cancel([array.id])

    job = fleet.submit(JobSpec(GRACEFUL))
    wait_for(lambda: fleet.status([job.id])[0].state is JobState.RUNNING, what="running")
    time.sleep(0.3)  # let the shell install its trap
    # A signal is no cancel: the job runs on, or has already ended of its own accord
    # (the refresh after the signal may come after its clean exit).
    after = fleet.cancel([job.id], signal="USR1")[0].state
    assert after in (JobState.RUNNING, JobState.COMPLETED), after
    done = fleet.wait([job.id], timeout_s=30)[0]
    assert (done.state, done.exit_code) == (JobState.COMPLETED, 0)
    assert fleet.log_path(job.id).read_text() == "stopping gracefully\n"
