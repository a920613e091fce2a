"""``launcher: mpirun | mpiexec`` run for real (issue 11): Open MPI on the local backend, the
live SLURM cluster and the live Grid Engine cluster, a 2-task job started once per rank.

Skipped, saying why, without Open MPI (tests/cluster/mpi-up.sh) or without the cluster
(tests/cluster/slurm-up.sh, sge-up.sh).

Open MPI refuses to start as root unless told; these tests run as root, so they tell it in
the job's own environment (OMPI_ALLOW_RUN_AS_ROOT and its confirmation), never through
jobfleet's script (docs/job-model.md, the launcher).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

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
