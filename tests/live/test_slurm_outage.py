"""A SLURM controller outage on the live cluster: nothing is concluded while slurmctld
is down, and polling recovers by itself when it is back (skipped without a cluster).

slurmctld alone is stopped (tests/cluster/slurmctld-restart.sh, which stops it as
slurm-down.sh does and starts it as slurm-up.sh does); slurmd and slurmdbd keep
running, so the jobs keep running and one ends during the outage. The controller is
always started again, even when the test fails, so later tests have a cluster.

JOBFLEET_OUTAGE_S sets the outage (default 120 s, the length this test was proven
with); shorten it locally. SLURM_CI_STATE and SLURM_CONF select the cluster, as for
slurm-up.sh: set both to run this against a private cluster and leave a shared one alone.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from conftest import wait_for
from jobfleet.config import load_config
from jobfleet.engine.fleet import Fleet
from jobfleet.errors import CommandError
from jobfleet.jobdir import exit_code_path
from jobfleet.spec import JobSpec, Resources
from jobfleet.states import JobRecord, JobState
from support.cli import jf

OUTAGE_S = float(os.environ.get("JOBFLEET_OUTAGE_S", "120"))
RESTART = Path(__file__).resolve().parents[1] / "cluster" / "slurmctld-restart.sh"
CI_STATE = Path(os.environ.get("SLURM_CI_STATE", "/tmp/slurm-ci"))
#: What a job may look like while nobody can ask the controller.
UNDECIDED = {JobState.PENDING, JobState.RUNNING, JobState.UNKNOWN}

pytestmark = [
    pytest.mark.live_slurm,
    pytest.mark.slow,
    pytest.mark.timeout(int(OUTAGE_S) + 360),
]


def controller(action: str) -> str:
    """Stop or start slurmctld of the cluster in $SLURM_CI_STATE; its one-line summary."""
    proc = subprocess.run(
        ["bash", str(RESTART), action],
        capture_output=True,
        text=True,
        timeout=240,
        cwd="/",  # slurmctld keeps the directory it was started in
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"slurmctld-restart.sh {action} failed: {proc.stderr.strip()}")
    return proc.stdout.strip()


def own_controller() -> str | None:
    """Why this test cannot stop and start the cluster's slurmctld, or None."""
    if os.geteuid() != 0:
        return "stopping and starting slurmctld needs root"
    pid_file = CI_STATE / "run" / "slurmctld.pid"
    try:
        pid = int(pid_file.read_text().strip())
        exe = str(Path(f"/proc/{pid}/exe").readlink()).removesuffix(" (deleted)")
    except (OSError, ValueError):
        return f"no slurmctld started by tests/cluster/slurm-up.sh ({pid_file})"
    if exe != os.path.realpath("/usr/sbin/slurmctld"):
        return f"{pid_file} names pid {pid}, which is not slurmctld"
    return None


@pytest.fixture
def fleet(slurm_home: Path) -> Iterator[Fleet]:
    reason = own_controller()
    if reason is not None:
        pytest.skip(reason)
    # Two runs of this test on one cluster (two suites at once) would end each other's
    # outage early: the second waits for the first.
    with open(CI_STATE / "jobfleet-outage-test.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        with Fleet(load_config()) as f:
            yield f


def during_outage(
    ids: list[str], local_id: str, short_id: str, note: Callable[[str], None]
) -> None:
    """What a user sees while slurmctld is down: status shows every job as last known
    (the local one refreshed) within wait.status_timeout and exits 0; queue lists the
    local queue and names slurm; wait times out (exit 3), never failing a job."""
    started = time.monotonic()
    proc = jf("status", "--json", *ids, local_id, timeout_s=60)
    note(f"status --json: {time.monotonic() - started:.1f}s")
    shown = {row["id"]: row for row in json.loads(proc.stdout)}
    assert (shown[local_id]["state"], shown[local_id]["refreshed"]) == ("running", True)
    for job_id in ids:
        row = shown[job_id]
        assert row["state"] == "running" and row["exit_code"] is None, row
        assert row["refreshed"] is False and row["not_refreshed_because"], row
    assert proc.stderr.startswith("jobfleet: warning: slurm did not answer"), proc.stderr
    table = jf("status", *ids, timeout_s=60).stdout
    assert table.count("running (last known)") == len(ids), table

    started = time.monotonic()
    proc = jf("queue", "--json", expect=1, timeout_s=60)
    note(f"queue --json: {time.monotonic() - started:.1f}s, exit 1")
    assert [(row["backend"], row["id"]) for row in json.loads(proc.stdout)] == [("local", local_id)]
    assert "slurm did not answer" in proc.stderr and "not listed" in proc.stderr

    proc = jf("wait", short_id, "--timeout", "5", expect=3, timeout_s=120)  # not failed (1)
    note("wait --timeout 5: exit 3")


def test_polling_concludes_nothing_during_a_controller_outage_and_recovers(
    fleet: Fleet,
) -> None:
    short_s = max(2, min(20, int(OUTAGE_S / 2)))  # ends while the controller is down
    long_s = int(OUTAGE_S) + 80  # still running well after it is back
    walltime = f"{max(600, long_s + 300)}s"
    longs = fleet.submit_many(
        [
            JobSpec(
                ["sleep", str(long_s)], name=f"long{i}", resources=Resources.of(walltime=walltime)
            )
            for i in range(3)
        ]
    )
    short = fleet.submit(
        JobSpec(["sleep", str(short_s)], name="short", resources=Resources.of(walltime=walltime))
    )
    ids = [r.id for r in (*longs, short)]
    native = [r.native_id or "" for r in (*longs, short)]
    timeline: list[str] = []
    t0 = time.monotonic()
    waited: dict[str, object] = {}
    stop = threading.Event()

    def note(event: str) -> None:
        timeline.append(f"{time.monotonic() - t0:7.1f}s {event}")

    local_id = ""
    try:
        wait_for(
            lambda: {r.state for r in fleet.status(ids)} == {JobState.RUNNING},
            timeout_s=60,
            what="all four jobs to run",
        )
        note("all four running")

        # A second waiter, with its own Fleet: Fleet.wait on the short job, through the outage.
        def stop_waiting(records: list[JobRecord]) -> None:
            if stop.is_set():
                raise RuntimeError("the test is over")

        def wait_on_short() -> None:
            try:
                with Fleet(load_config()) as other:
                    waited["records"] = other.wait(
                        [short.id], timeout_s=OUTAGE_S + 240, on_update=stop_waiting
                    )
            except BaseException as exc:
                waited["error"] = exc
            waited["at"] = time.monotonic()

        waiter = threading.Thread(target=wait_on_short, name="wait-on-short", daemon=True)
        waiter.start()

        # A local job alongside: its backend answers all through the outage.
        local = jf("submit", "--backend", "local", "--name", "beside", "--", "sleep", "900")
        local_id = local.stdout.strip()
        try:
            note(controller("stop"))
            down_at = time.monotonic()
            during_outage(ids, local_id, short.id, note)
            errors = answers = 0
            records = fleet.registry.get_many(ids)
            while time.monotonic() - down_at < OUTAGE_S:
                started = time.monotonic()
                try:
                    fresh = fleet.refresh(records)
                except CommandError as exc:
                    assert exc.transient, f"not marked transient: {exc}"
                    errors += 1
                    note(f"poll: {exc} ({time.monotonic() - started:.1f}s)")
                else:
                    answers += 1
                    note(f"poll answered: {[r.state.value for r in fresh]}")
                    assert all(r.state in UNDECIDED for r in fresh), fresh
                    records = fresh
                stored = fleet.registry.get_many(ids)
                assert all(r.state in UNDECIDED for r in stored), stored
                assert all(r.exit_code is None for r in stored), stored
                time.sleep(1)
            assert errors >= 1, "the controller was down: some poll must have failed"
            assert waiter.is_alive(), f"Fleet.wait returned during the outage: {waited}"
            # The short job really ended meanwhile: its script recorded exit 0.
            assert Path(exit_code_path(short.job_dir, None)).read_text() == "0\n"
        finally:
            start_at = time.monotonic()
            note(controller("start"))  # always: later tests need the cluster

        def short_done() -> bool:
            try:
                return fleet.status([short.id])[0].state.is_terminal
            except CommandError:
                return False  # the controller may take a moment to answer everything

        wait_for(short_done, timeout_s=180, what="the short job's outcome after the outage")
        final = {r.id: r for r in fleet.status(ids)}
        settled = final[short.id]
        note(f"short job {settled.state.value}, exit {settled.exit_code} ({settled.reason})")
        assert (final[short.id].state, final[short.id].exit_code) == (JobState.COMPLETED, 0)
        assert [final[r.id].state for r in longs] == [JobState.RUNNING] * 3

        waiter.join(timeout=120)
        assert not waiter.is_alive(), "Fleet.wait did not return after the outage"
        assert "error" not in waited, waited["error"]
        assert isinstance(waited["at"], float) and waited["at"] > start_at
        waited_records = waited["records"]
        assert isinstance(waited_records, list)
        short_seen: JobRecord = waited_records[0]
        assert (short_seen.state, short_seen.exit_code) == (JobState.COMPLETED, 0)

        fleet.cancel([*(r.id for r in longs), local_id])
        cancelled = fleet.wait([r.id for r in longs], timeout_s=120)
        assert [r.state for r in cancelled] == [JobState.CANCELLED] * 3
        note("long jobs cancelled")
    finally:
        stop.set()
        print("\n".join(["", *timeline]))
        if local_id:
            jf("cancel", local_id, expect=None)
        # Never leave sleepers behind on a shared cluster (no-op for ended jobs).
        subprocess.run(["scancel", *native], capture_output=True, timeout=60, check=False)
