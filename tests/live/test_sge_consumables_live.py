"""GPUs on live Grid Engine: a consumable YES is multiplied by the slots (issue 11).

The test cluster has no GPU complex, so each test adds two of its own, under names
no one else uses (``jfcx<pid>y``, consumable YES; ``jfcx<pid>j``, consumable JOB),
with 4 of each on the host, and removes them at the end: other sessions share the
cluster. ``qconf -Mc`` rewrites the whole complex list, so each change re-reads it
just before (what others added meanwhile is kept).
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import SGE_TEST_CONFIG, wait_for
from jobfleet.config import load_config
from jobfleet.engine.fleet import Fleet
from jobfleet.spec import JobSpec, Resources
from jobfleet.states import JobState

pytestmark = pytest.mark.live_sge

PER_SLOT = f"jfcx{os.getpid()}y"
PER_JOB = f"jfcx{os.getpid()}j"
ON_HOST = 4


def qconf(*args: str) -> str:
    done = subprocess.run(["qconf", *args], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    return done.stdout


def set_complexes(tmp_path: Path, add: bool) -> None:
    kept = [
        line
        for line in qconf("-sc").splitlines()
        if line.split()[:1] not in ([PER_SLOT], [PER_JOB])
    ]
    if add:
        kept += [
            f"{PER_SLOT} {PER_SLOT} INT <= YES YES 0 0",
            f"{PER_JOB} {PER_JOB} INT <= YES JOB 0 0",
        ]
    path = tmp_path / "complexes"
    path.write_text("\n".join(kept) + "\n")
    qconf("-Mc", str(path))


@pytest.fixture
def host(sge_home: Path, tmp_path: Path) -> Iterator[str]:
    """The execution host, with ON_HOST of each test complex."""
    (name,) = qconf("-sel").split()
    set_complexes(tmp_path, add=True)
    try:
        for complex_name in (PER_SLOT, PER_JOB):
            qconf("-aattr", "exechost", "complex_values", f"{complex_name}={ON_HOST}", name)
        yield name
    finally:
        for complex_name in (PER_SLOT, PER_JOB):
            subprocess.run(
                ["qconf", "-dattr", "exechost", "complex_values", complex_name, name],
                capture_output=True,
                timeout=30,
            )
        set_complexes(tmp_path, add=False)


def left(host: str, complex_name: str) -> float | None:
    """How much of a host's consumable is not taken (qhost -F), None if not shown."""
    out = subprocess.run(
        ["qhost", "-F", complex_name, "-h", host], capture_output=True, text=True, timeout=30
    ).stdout
    match = re.search(rf"hc:{complex_name}=([0-9.]+)", out)
    return float(match[1]) if match else None


def test_grid_engine_multiplies_a_consumable_yes_by_the_slots(host: str) -> None:
    qsub = ["qsub", "-terse", "-w", "e", "-b", "y", "-o", "/dev/null", "-j", "y", "-h"]
    # 3 slots x 2 = 6 of the 4 the host has: no queue could ever take it.
    refused = subprocess.run(
        [*qsub, "-pe", "smp", "3", "-l", f"{PER_SLOT}=2", "true"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert refused.returncode != 0 and "no suitable queues" in refused.stderr
    # JOB: 2 for the whole job, whatever its slots.
    taken = subprocess.run(
        [*qsub, "-pe", "smp", "3", "-l", f"{PER_JOB}=2", "true"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert taken.returncode == 0, taken.stderr
    subprocess.run(["qdel", taken.stdout.strip()], capture_output=True, timeout=30)


@pytest.mark.parametrize(("resource", "setting"), [(PER_SLOT, "YES"), (PER_JOB, "JOB")])
def test_a_job_takes_the_gpus_it_asked_for_not_times_its_slots(
    host: str, tmp_path: Path, resource: str, setting: str
) -> None:
    per_job = f"  gpu_consumable: {setting}\n" if setting == "JOB" else ""  # YES: the default
    Path(os.environ["JOBFLEET_CONFIG"]).write_text(
        SGE_TEST_CONFIG + f"  gpu_resource: {resource}\n" + per_job
    )
    go = tmp_path / "go"
    wait = f"while [ ! -e {go} ]; do sleep 0.2; done"
    with Fleet(load_config()) as fleet:
        job = fleet.submit(JobSpec(["sh", "-c", wait], resources=Resources(cores=2, gpus=2)))
        try:
            wait_for(
                lambda: fleet.status([job.id])[0].state is JobState.RUNNING,
                timeout_s=60,
                what="the job to run",
            )
            assert left(host, resource) == ON_HOST - 2  # 2 GPUs taken, not 2 x 2 slots
        finally:
            go.write_text("")
        assert fleet.wait([job.id], timeout_s=120)[0].state is JobState.COMPLETED
