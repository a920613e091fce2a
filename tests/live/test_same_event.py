"""The same event reads the same on every backend: local, live SLURM, live Grid Engine.

Each backend (skipped, saying why, when its cluster is not up) runs one job per event
at once, and every job must end in the same (state, exit code, reason) as on the
others (docs/states.md). Where the backends differ it is because the schedulers do:
SLURM and the local agent end a cancelled or timed-out job with SIGTERM (its command
shows 143), Grid Engine a cancelled one with SIGKILL (137) and a timed-out one with
s_rt's SIGUSR1 (138) before h_rt's SIGKILL. About 2 minutes in all, most of it
SLURM's one-minute walltime, which it enforces up to 30 s late.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import LOCAL_TEST_CONFIG, wait_for
from jobfleet.config import load_config
from jobfleet.engine.fleet import Fleet
from jobfleet.owner import user_name
from jobfleet.spec import Dependency, DepKind, JobSpec, Resources
from jobfleet.states import JobRecord, JobState
from jobfleet.units import format_walltime, parse_walltime

#: backend -> (the fixture giving it a JOBFLEET_HOME, its shortest walltime, the signal
#: that ends a job cancelled while running, the one that ends it at its walltime).
BACKENDS = {
    "local": ("jf_home", "3s", signal.SIGTERM, signal.SIGTERM),
    "slurm": ("slurm_home", "1m", signal.SIGTERM, signal.SIGTERM),  # SIGKILL after KillWait
    # qdel: SIGKILL at once. The walltime: s_rt's SIGUSR1 a tenth of it (at most
    # sge.walltime_grace) before h_rt's SIGKILL, so that the job script records it.
    "sge": ("sge_home", "10s", signal.SIGKILL, signal.SIGUSR1),
}


@pytest.fixture(params=list(BACKENDS), ids=str)
def backend(request: pytest.FixtureRequest) -> str:
    request.applymarker(pytest.mark.slow)
    request.getfixturevalue(BACKENDS[request.param][0])  # skips, saying why
    if request.param == "local":
        # Every job of the test at once, as on the clusters.
        Path(os.environ["JOBFLEET_CONFIG"]).write_text(LOCAL_TEST_CONFIG.format(cores=8))
    return str(request.param)


@pytest.fixture
def fleet(backend: str) -> Iterator[Fleet]:
    with Fleet(load_config()) as f:
        yield f


@pytest.mark.waits_on_clock
def test_same_event_same_report(fleet: Fleet, backend: str) -> None:
    _, walltime, ending, timed_out = BACKENDS[backend]
    killed = 128 + ending
    me = user_name()
    sleep = ["sleep", "300"]
    jobs = {
        "ok": fleet.submit(JobSpec(["true"])),
        "exit 3": fleet.submit(JobSpec(["sh", "-c", "exit 3"])),
        "kill -9 itself": fleet.submit(JobSpec(["sh", "-c", "kill -9 $$"])),
        # Says so once it runs, so that the cancel comes after the job script has set
        # its traps: a SIGTERM before that (a scheduler shows a job running before its
        # script starts) leaves no exit code to record.
        "cancelled running": fleet.submit(JobSpec(["sh", "-c", "echo ready; exec sleep 300"])),
        "blocker": fleet.submit(JobSpec(sleep)),
        "walltime": fleet.submit(JobSpec(sleep, resources=Resources.of(walltime=walltime))),
    }
    after_blocker = (Dependency(DepKind.AFTER_OK, (jobs["blocker"].id,)),)
    jobs["cancelled pending"] = fleet.submit(JobSpec(sleep, dependencies=after_blocker))
    running = jobs["cancelled running"].id
    log = fleet.log_path(running)
    wait_for(lambda: log.exists() and log.read_text() == "ready\n", timeout_s=60, what="running")
    fleet.cancel([running, jobs["cancelled pending"].id])
    waited = [j.id for key, j in jobs.items() if key != "blocker"]
    by_id = {r.id: r for r in fleet.wait(waited, timeout_s=150)}
    fleet.cancel([jobs["blocker"].id])
    ended = {key: by_id[j.id] for key, j in jobs.items() if key != "blocker"}

    limit = format_walltime(parse_walltime(walltime))
    assert {key: _report(record) for key, record in ended.items()} == {
        "ok": (JobState.COMPLETED, 0, None),
        "exit 3": (JobState.FAILED, 3, None),
        "kill -9 itself": (JobState.FAILED, 137, None),
        "cancelled running": (JobState.CANCELLED, killed, "cancelled"),
        "cancelled pending": (JobState.CANCELLED, None, "cancelled"),
        "walltime": (JobState.TIMEOUT, 128 + timed_out, f"walltime limit exceeded ({limit})"),
    }
    # Who cancelled: this user, as far as the scheduler tells (SLURM's accounting may not
    # have the row of a job cancelled while it waited when scontrol already says so).
    pending = ended["cancelled pending"].reason or ""
    assert pending.startswith(f"cancelled by {me}") or (
        backend == "slurm" and pending.endswith("(SLURM did not say by whom)")
    ), pending
    reason = ended["cancelled running"].reason or ""
    if backend == "sge":
        assert "does not record by whom" in reason, reason  # qacct has no "deleted by"
    else:
        assert reason == f"cancelled by {me}"


def _report(record: JobRecord) -> tuple[JobState, int | None, str | None]:
    """(state, exit code, reason), a cancel's reason cut to its first word: what must
    read the same on every backend."""
    reason = record.reason
    if reason is not None and reason.startswith("cancelled"):
        reason = "cancelled"
    return record.state, record.exit_code, reason
