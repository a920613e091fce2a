"""``launcher: mpirun | mpiexec`` run for real (issue 11): Open MPI on the local backend, the
live SLURM cluster and the live Grid Engine cluster, a 2-task job started once per rank; on
the local backend, ranks kept on the CPUs the agent pinned the job to, and more ranks than
this machine has cores when local.cores says so.

Skipped, saying why, without Open MPI (tests/cluster/mpi-up.sh) or without the cluster
(tests/cluster/slurm-up.sh, sge-up.sh).

Open MPI refuses to start as root unless told; these tests run as root, so they tell it in
the job's own environment (OMPI_ALLOW_RUN_AS_ROOT and its confirmation), never through
jobfleet's script (docs/job-model.md, the launcher).
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import LOCAL_TEST_CONFIG
from jobfleet.config import load_config
from jobfleet.engine.fleet import Fleet
from jobfleet.spec import JobSpec, Resources
from jobfleet.states import JobState

needs_mpi = pytest.mark.skipif(
    shutil.which("mpirun") is None or shutil.which("mpiexec") is None,
    reason="no mpirun/mpiexec (Open MPI): run tests/cluster/mpi-up.sh as root "
    "(scripts/test.sh does)",
)
pytestmark = [needs_mpi, pytest.mark.slow]

BACKENDS = [
    pytest.param("jf_home", id="local"),
    pytest.param("slurm_home", marks=pytest.mark.live_slurm, id="slurm"),
    pytest.param("sge_home", marks=pytest.mark.live_sge, id="sge"),
]
#: Open MPI names the rank OMPI_COMM_WORLD_RANK, MPICH and Intel MPI PMI_RANK.
RANK = "${OMPI_COMM_WORLD_RANK-${PMI_RANK-}}"
SIZE = "${OMPI_COMM_WORLD_SIZE-${PMI_SIZE-}}"
#: Each rank prints its rank and writes it to a file of its own, named by its rank.
SHOW = f'echo "rank {RANK} of {SIZE}"; echo "$$" >"rank-{RANK}"'
#: Rank 1 fails with 3, rank 0 succeeds.
FAIL_ONE = f'echo "rank {RANK}"; [ "{RANK}" != 1 ] || exit 3'


def _as_root_env() -> dict[str, str]:
    """What a job needs for Open MPI to start as root; nothing for anyone else."""
    if os.geteuid() != 0:
        return {}
    return {"OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1"}


@pytest.fixture(params=BACKENDS)
def fleet(request: pytest.FixtureRequest) -> Iterator[Fleet]:
    request.getfixturevalue(request.param)
    with Fleet(load_config()) as f:
        yield f


def _spec(script: str, launcher: str, workdir: Path) -> JobSpec:
    return JobSpec(
        ["sh", "-c", script],
        workdir=str(workdir),
        env=_as_root_env(),
        resources=Resources(tasks=2, cores=1, launcher=launcher),
    )


@pytest.mark.parametrize("launcher", ["mpirun", "mpiexec"])
def test_two_ranks_then_a_failing_rank(fleet: Fleet, launcher: str, tmp_path: Path) -> None:
    good_dir, bad_dir = tmp_path / "good", tmp_path / "bad"
    good_dir.mkdir()
    bad_dir.mkdir()
    good = fleet.submit(_spec(SHOW, launcher, good_dir))
    bad = fleet.submit(_spec(FAIL_ONE, launcher, bad_dir))
    done, failed = fleet.wait([good.id, bad.id], timeout_s=180)

    err = fleet.log_path(good.id, stream="stderr").read_text()
    assert (done.state, done.exit_code) == (JobState.COMPLETED, 0), err
    lines = sorted(fleet.log_path(good.id).read_text().splitlines())
    assert lines == ["rank 0 of 2", "rank 1 of 2"], err
    # Two processes, not one printing twice.
    pids = {(good_dir / f"rank-{r}").read_text() for r in (0, 1)}
    assert len(pids) == 2

    err = fleet.log_path(bad.id, stream="stderr").read_text()
    assert failed.state is JobState.FAILED, (failed, err)
    assert failed.exit_code not in (None, 0), (failed, err)
    assert sorted(fleet.log_path(bad.id).read_text().splitlines()) == ["rank 0", "rank 1"], err


CPUS = len(os.sched_getaffinity(0))
#: Each rank: the job's CPUs (from the agent) and the CPUs it may run on.
AFFINITY = (
    "import os, time; time.sleep(2); "
    "print(os.environ.get('JOBFLEET_CPUS'), ','.join(map(str, sorted(os.sched_getaffinity(0)))))"
)


@pytest.mark.skipif(CPUS < 2, reason="needs 2 CPUs, for two jobs pinned to one each")
def test_local_ranks_stay_on_the_cpus_the_job_was_pinned_to(jf_home: Path) -> None:
    # Open MPI binds rank 0 of every job to core 0 unless told not to: of two 1-core jobs
    # (pinned to a CPU each by the agent), one ran on the other's CPU.
    spec = JobSpec(
        [sys.executable, "-c", AFFINITY],
        env=_as_root_env(),
        resources=Resources(tasks=1, cores=1, launcher="mpirun"),
    )
    with Fleet(load_config()) as fleet:
        jobs = [fleet.submit(spec), fleet.submit(spec)]
        results = fleet.wait([j.id for j in jobs], timeout_s=120)
        seen = [fleet.log_path(j.id).read_text().split() for j in jobs]
    assert all(r.state is JobState.COMPLETED for r in results), results
    assert {cpus for cpus, _ in seen} == {"0", "1"}  # both ran at once, on a CPU each
    assert all(allowed == cpus for cpus, allowed in seen), seen


def test_local_more_ranks_than_this_machine_has_cores(jf_home: Path) -> None:
    # local.cores above the CPUs oversubscribes on purpose (and pins nothing); Open MPI,
    # counting this machine's cores, refused the ranks ("not enough slots") unless told.
    ranks = CPUS + 1
    Path(os.environ["JOBFLEET_CONFIG"]).write_text(LOCAL_TEST_CONFIG.format(cores=ranks))
    with Fleet(load_config()) as fleet:
        job = fleet.submit(
            JobSpec(
                ["sh", "-c", f'echo "rank {RANK} of {SIZE}"'],
                env=_as_root_env(),
                resources=Resources(tasks=ranks, cores=1, launcher="mpiexec"),
            )
        )
        (done,) = fleet.wait([job.id], timeout_s=120)
        err = fleet.log_path(job.id, stream="stderr").read_text()
        lines = sorted(fleet.log_path(job.id).read_text().splitlines())
    assert (done.state, done.exit_code) == (JobState.COMPLETED, 0), err
    assert lines == sorted(f"rank {r} of {ranks}" for r in range(ranks))
