"""The SLURM backend against a live SLURM cluster (skipped, saying why, without one).

scripts/test.sh starts a single-node SLURM 22.05 cluster with slurmdbd
accounting when run as root (tests/cluster/slurm-up.sh). Time-based checks
read timestamps the jobs write themselves, as in test_local_backend.py. What every
backend does is in tests/contract; here what is SLURM's own.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import cast

import pytest

from conftest import wait_for
from jobfleet.backends.slurm import SlurmBackend
from jobfleet.config import load_config
from jobfleet.engine.fleet import Fleet
from jobfleet.runner import CommandResult, Runner
from jobfleet.spec import Dependency, DepKind, JobSpec, Resources, parse_array
from jobfleet.states import JobState
from support.scripts import GRACEFUL

pytestmark = pytest.mark.live_slurm
PY = sys.executable


@pytest.fixture
def fleet(slurm_home: Path) -> Fleet:
    f = Fleet(load_config())
    yield f  # type: ignore[misc]
    f.close()


def min_job_age() -> int:
    out = subprocess.run(["scontrol", "show", "config"], capture_output=True, text=True).stdout
    match = re.search(r"^MinJobAge\s*=\s*(\d+)", out, re.M)
    return int(match[1]) if match else 300


def test_output_environment_and_index_variables(fleet: Fleet, tmp_path: Path) -> None:
    job = fleet.submit(
        JobSpec(
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
    )
    assert fleet.wait([job.id], timeout_s=120)[0].state is JobState.COMPLETED
    assert fleet.log_path(job.id).read_text().strip() == f"hi 'there' ['a b', '$HOME'] {tmp_path}"


def test_cancel_running_job(fleet: Fleet) -> None:
    job = fleet.submit(JobSpec(["sleep", "300"]))
    wait_for(
        lambda: fleet.status([job.id])[0].state is JobState.RUNNING, timeout_s=60, what="running"
    )
    fleet.cancel([job.id])
    done = fleet.wait([job.id], timeout_s=60)[0]
    assert done.state is JobState.CANCELLED
    # sacct says who; a poll that finds squeue's CANCELLED before sacct has the row takes
    # it at once, without the who (22.05/cancel-lag-*).
    assert done.reason in ("cancelled by root", "cancelled (SLURM did not say by whom)")


def test_odd_array_indices(fleet: Fleet) -> None:
    job = fleet.submit(
        JobSpec(["bash", "-c", "echo $JOBFLEET_ARRAY_INDEX"], array=parse_array("1,3-5,9"))
    )
    done = fleet.wait([job.id], timeout_s=120)[0]
    assert sorted(done.elements) == [1, 3, 4, 5, 9]
    assert done.state is JobState.COMPLETED
    assert fleet.log_path(job.id, index=9).read_text() == "9\n"


def test_never_satisfiable_dependency_is_surfaced_when_not_killed(slurm_home: Path) -> None:
    cfg = Path(slurm_home.parent / "jobfleet.yaml")
    cfg.write_text(cfg.read_text() + "  kill_invalid_dependents: false\n")
    with Fleet(load_config(cfg)) as fleet:
        # Still running when the dependent is submitted, so SLURM (not jobfleet) decides.
        failing = fleet.submit(JobSpec(["bash", "-c", "sleep 2; false"]))
        stuck = fleet.submit(
            JobSpec(["true"], dependencies=(Dependency(DepKind.AFTER_OK, (failing.id,)),))
        )
        assert stuck.submitted
        fleet.wait([failing.id], timeout_s=120)
        wait_for(
            lambda: "DependencyNeverSatisfied" in (fleet.status([stuck.id])[0].reason or ""),
            timeout_s=60,
            what="the reason to show",
        )
        record = fleet.status([stuck.id])[0]
        assert record.state is JobState.PENDING
        assert "jobfleet cancel" in (record.reason or "")
        fleet.cancel([stuck.id])
        assert fleet.wait([stuck.id], timeout_s=60)[0].state is JobState.CANCELLED


@pytest.mark.slow
def test_exit_code_survives_min_job_age_with_and_without_accounting(fleet: Fleet) -> None:
    jobs = [fleet.submit(JobSpec(["bash", "-c", "exit 3"])) for _ in range(2)]
    native = [j.native_id for j in jobs]
    # Wait on the scheduler alone, recording nothing, so that jobfleet first
    # looks when the controller has already forgotten the jobs.
    wait_for(
        lambda: (
            not subprocess.run(
                ["squeue", "--noheader", f"--jobs={','.join(n or '' for n in native)}"],
                capture_output=True,
                text=True,
            ).stdout.strip()
        ),
        timeout_s=120,
        what="the jobs to leave the queue",
    )
    # MinJobAge plus the controller's purge interval (17-19 s with MinJobAge 10).
    wait_for(
        lambda: all(
            subprocess.run(["scontrol", "show", "job", n or ""], capture_output=True).returncode
            != 0
            for n in native
        ),
        timeout_s=min_job_age() + 120,
        what="the controller to forget the jobs",
    )
    with_accounting = fleet.status([jobs[0].id])[0]
    assert (with_accounting.state, with_accounting.exit_code) == (JobState.FAILED, 3)

    backend = cast(SlurmBackend, fleet.backend("slurm"))
    backend.accounting = False  # as on a site without slurmdbd: the exit-code file tells
    without = fleet.status([jobs[1].id])[0]
    assert (without.state, without.exit_code) == (JobState.FAILED, 3)
    assert without.reason == "from the job's exit-code file"


def test_queue_and_accounting_cost_one_call_each_per_poll(fleet: Fleet) -> None:
    from jobfleet.backends.base import PollTarget
    from jobfleet.runner import ScriptedRunner, SubprocessRunner

    jobs = fleet.submit_many([JobSpec(["true"]) for _ in range(5)])
    fleet.wait([j.id for j in jobs], timeout_s=120)
    real = SubprocessRunner()
    counting = ScriptedRunner(lambda argv: real.run(argv, timeout_s=60))
    targets = [PollTarget(j.id, j.native_id or "", j.job_dir, j.created_at) for j in jobs]
    statuses = SlurmBackend(counting).poll(targets)
    assert {s.state for s in statuses.values()} == {JobState.COMPLETED}
    assert len(statuses) == 5
    assert counting.count("squeue") == 1
    assert counting.count("sacct") <= 1
    assert len(counting.calls) <= 2


def test_cancel_one_element_and_signal_for_a_graceful_stop(fleet: Fleet) -> None:
    array = fleet.submit(JobSpec(["sleep", "60"], array=parse_array("1-3")))
    wait_for(
        lambda: fleet.status([array.id])[0].elements[3].state is JobState.RUNNING,
        timeout_s=60,
        what="element 3 to run",
    )
    fleet.cancel([array.id], indices=[3])
    wait_for(
        lambda: fleet.status([array.id])[0].elements[3].state is JobState.CANCELLED,
        timeout_s=60,
        what="element 3 to be cancelled",
    )
    assert fleet.status([array.id])[0].elements[1].state is not JobState.CANCELLED
    fleet.cancel([array.id])

    job = fleet.submit(JobSpec(GRACEFUL))
    wait_for(
        lambda: fleet.status([job.id])[0].state is JobState.RUNNING, timeout_s=60, what="running"
    )
    time.sleep(1)  # let the shell install its trap
    fleet.cancel([job.id], signal="USR1")
    done = fleet.wait([job.id], timeout_s=60)[0]
    assert (done.state, done.exit_code) == (JobState.COMPLETED, 0)
    assert fleet.log_path(job.id).read_text() == "stopping gracefully\n"


class _Recording:
    """The backend's own runner, keeping what each program printed last."""

    def __init__(self, real: Runner) -> None:
        self.real = real
        self.last: dict[str, str] = {}

    def run(
        self,
        argv: Sequence[str],
        *,
        timeout_s: float,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
    ) -> CommandResult:
        result = self.real.run(argv, timeout_s=timeout_s, env=env, cwd=cwd)
        self.last[argv[0]] = result.stdout
        return result


def test_a_cancel_reads_cancelled_at_once_while_accounting_lags(fleet: Fleet) -> None:
    """One cancel of 60 held jobs: slurmdbd takes a moment to record it, and sacct may
    still say PENDING while squeue says CANCELLED (22.05/cancel-lag-*: 55 of 60). The
    cancel's own refresh reads every job cancelled, whatever sacct said yet."""
    jobs = fleet.submit_many(
        [JobSpec(["true"], resources=Resources(extra_args=("--hold",))) for _ in range(60)]
    )
    native = [j.native_id or "" for j in jobs]
    listed = ["sacct", "--noheader", "--allocations", "--starttime=now-1days", "--format=JobID"]
    wait_for(  # every job in accounting first: a lagging row, not a missing one
        lambda: (
            len(
                subprocess.run(
                    [*listed, f"--jobs={','.join(native)}"], capture_output=True, text=True
                ).stdout.split()
            )
            == len(native)
        ),
        timeout_s=60,
        what="sacct to list the held jobs",
    )
    backend = cast(SlurmBackend, fleet.backend("slurm"))
    recording = _Recording(backend.runner)
    backend.runner = recording
    records = fleet.cancel([j.id for j in jobs])
    assert {r.state for r in records} == {JobState.CANCELLED}
    # What sacct said in that very poll (informative: the lag comes and goes).
    lagging = [
        line
        for line in recording.last.get("sacct", "").splitlines()
        if line.split("|")[2] in ("PENDING", "RUNNING")
    ]
    print(f"\nsacct still lagging for {len(lagging)} of {len(jobs)} cancelled jobs")


class _InterruptedAfter:
    """The backend's own runner, with a KeyboardInterrupt landing right after the
    ``nth`` sbatch returned: the scheduler has that job, jobfleet has not noted it."""

    def __init__(self, real: Runner, nth: int) -> None:
        self.real = real
        self.nth = nth
        self.sbatch = 0

    def run(
        self,
        argv: Sequence[str],
        *,
        timeout_s: float,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
    ) -> CommandResult:
        result = self.real.run(argv, timeout_s=timeout_s, env=env, cwd=cwd)
        if argv[0] == "sbatch":
            self.sbatch += 1
            if self.sbatch == self.nth:
                raise KeyboardInterrupt
        return result


def test_an_interrupt_half_way_leaves_each_job_recorded_as_far_as_it_got(fleet: Fleet) -> None:
    backend = cast(SlurmBackend, fleet.backend("slurm"))
    real = backend.runner
    backend.runner = _InterruptedAfter(real, 3)
    held = Resources(extra_args=("--hold",))
    with pytest.raises(KeyboardInterrupt):
        fleet.submit_many([JobSpec(["true"], name=f"half-{i}", resources=held) for i in range(5)])
    backend.runner = real
    a, b, c, d, e = sorted(fleet.recent(5), key=lambda r: int(r.id))
    try:
        assert a.submitted and b.submitted and c.state is JobState.UNKNOWN and not c.submitted
        assert d.never_submitted and e.never_submitted
        # On the scheduler: the first three, in the order given, and nothing else.
        queue = subprocess.run(
            ["squeue", "--noheader", "--states=all", "--format=%i %j"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split("\n")
        mine = f"jf{fleet.registry.token}-"
        ours = sorted(
            (int(line.split()[0]), line.split()[1])
            for line in queue
            if line.split()[1:] and line.split()[1].startswith(mine)
        )
        assert [name.rsplit("-", 1)[1] for _, name in ours] == ["0", "1", "2"]
        (c,) = fleet.status([c.id])  # looked for by its name, and found
        assert (c.submitted, c.state) == (True, JobState.PENDING)
        assert [str(n) for n, _ in ours] == [a.native_id, b.native_id, c.native_id]
    finally:
        fleet.cancel([a.id, b.id, c.id])
