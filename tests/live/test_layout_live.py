"""A 2-task layout as the job sees it, on live SLURM and Grid Engine (issue 11).

Skipped, saying why, without the cluster (tests/cluster/slurm-up.sh, sge-up.sh).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from jobfleet.config import load_config
from jobfleet.engine.fleet import Fleet
from jobfleet.spec import JobSpec, Resources
from jobfleet.states import JobState

SHOW = 'echo "task ${SLURM_PROCID-} of ${SLURM_NTASKS-} slots ${NSLOTS-} cpus $(nproc)"'


@pytest.fixture
def slurm_fleet(slurm_home: Path) -> Iterator[Fleet]:
    with Fleet(load_config()) as f:
        yield f


@pytest.fixture
def sge_fleet(sge_home: Path) -> Iterator[Fleet]:
    with Fleet(load_config()) as f:
        yield f


def run(fleet: Fleet, resources: Resources) -> list[str]:
    job = fleet.submit(JobSpec(["bash", "-c", SHOW], resources=resources))
    done = fleet.wait([job.id], timeout_s=120)[0]
    assert done.state is JobState.COMPLETED, done
    return sorted(fleet.log_path(job.id).read_text().splitlines())


@pytest.mark.live_slurm
def test_slurm_job_sees_two_tasks(slurm_fleet: Fleet) -> None:
    (line,) = run(slurm_fleet, Resources(tasks=2))
    assert line.startswith("task 0 of 2 slots  cpus ")  # one batch step, SLURM_NTASKS=2


@pytest.mark.live_slurm
def test_slurm_srun_runs_the_command_once_per_task_with_its_cores(slurm_fleet: Fleet) -> None:
    lines = run(slurm_fleet, Resources(tasks=2, cores=2, launcher="srun"))
    # Each task with its 2 cores (srun gets --cpus-per-task from the script).
    assert lines == ["task 0 of 2 slots  cpus 2", "task 1 of 2 slots  cpus 2"]


@pytest.mark.live_sge
def test_sge_job_gets_two_slots(sge_fleet: Fleet) -> None:
    (line,) = run(sge_fleet, Resources(tasks=2))
    assert line.startswith("task  of  slots 2 cpus ")
