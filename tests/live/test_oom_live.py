"""Jobs that outgrow their memory request end ``out_of_memory``: live SLURM and Grid Engine.

Skipped, saying why, without a cluster, and on a SLURM cluster that does not enforce
memory requests. What each scheduler records was captured in the ``oom-*`` fixtures
(tests/backends/slurm/fixtures/capture-22.05-oom.sh,
tests/backends/sge/fixtures/capture-8.1.9-oom.sh):

* SLURM enforces ``--mem`` only with ``JobAcctGatherParams=OverMemoryKill`` (polling, every
  ``JobAcctGatherFrequency`` seconds) or with ``TaskPlugin=task/cgroup`` and
  ``ConstrainRAMSpace=yes``. tests/cluster/slurm-up.sh has neither (no cgroups in the
  container) unless it sets OverMemoryKill. OverMemoryKill's kill is recorded as FAILED
  0:9 with the batch step "CANCELLED by <uid>", never as OUT_OF_MEMORY.
* Grid Engine's h_vmem is each process's RLIMIT_AS *and* a limit execd enforces on the
  sum over the job's processes. One process that asks for more is refused the memory
  and fails by itself (``failed 0``: nothing tells it was memory); a job whose processes
  together pass it is killed (``failed 37``, maxvmem above the limit).

Every outcome is read once the job has left the queue (squeue, qstat), so it comes from
accounting; ``wait`` because sacct may still say RUNNING for a few seconds.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from conftest import wait_for
from jobfleet.config import load_config
from jobfleet.engine.fleet import Fleet
from jobfleet.spec import JobSpec, Resources, parse_array
from jobfleet.states import JobState

PY = sys.executable


def eat(mib: int, seconds: float = 30) -> list[str]:
    """A command that holds ``mib`` MiB (written, so resident) for ``seconds``."""
    return [PY, "-c", f"x = bytearray({mib} * 2**20); import time; time.sleep({seconds})"]


# -- SLURM -----------------------------------------------------------------------------------


def slurm_does_not_enforce_memory() -> str | None:
    """Why this SLURM cluster would let a job outgrow ``--mem``, or None if it enforces it."""
    config = subprocess.run(
        ["scontrol", "show", "config"], capture_output=True, text=True, timeout=30
    ).stdout
    setting = dict(re.findall(r"^(\w+)\s*=\s*(.*?)\s*$", config, re.M))
    if "OverMemoryKill" in setting.get("JobAcctGatherParams", ""):
        return None
    if "task/cgroup" in setting.get("TaskPlugin", "") and setting.get(
        "ConstrainRAMSpace", ""
    ).lower().startswith("yes"):
        return None
    return (
        "this SLURM cluster does not enforce memory requests (no "
        "JobAcctGatherParams=OverMemoryKill, no task/cgroup with ConstrainRAMSpace=yes; "
        f"TaskPlugin={setting.get('TaskPlugin')}): see tests/cluster/slurm-up.sh"
    )


@pytest.fixture
def slurm_fleet(slurm_home: Path) -> Iterator[Fleet]:
    reason = slurm_does_not_enforce_memory()
    if reason is not None:
        pytest.skip(reason)
    with Fleet(load_config()) as fleet:
        yield fleet


def wait_out_of_squeue(native_ids: Sequence[str | None], timeout_s: float = 120) -> None:
    """Until squeue lists none of the jobs as pending or running (without --states)."""
    ids = ",".join(n or "" for n in native_ids)
    wait_for(
        lambda: (
            not subprocess.run(
                ["squeue", "--noheader", "--array", f"--jobs={ids}", "--format=%i"],
                capture_output=True,
                text=True,
            ).stdout.strip()
        ),
        timeout_s=timeout_s,
        what=f"jobs {ids} to leave the queue",
    )


@pytest.mark.live_slurm
def test_slurm_job_over_its_memory_is_out_of_memory(slurm_fleet: Fleet) -> None:
    over = slurm_fleet.submit(JobSpec(eat(400), resources=Resources.of(memory="50M")))
    within = slurm_fleet.submit(JobSpec(eat(10, 2), resources=Resources.of(memory="50M")))
    wait_out_of_squeue([over.native_id, within.native_id])
    done = {r.id: r for r in slurm_fleet.wait([over.id, within.id], timeout_s=60)}
    assert done[over.id].state is JobState.OUT_OF_MEMORY, done[over.id]
    assert "memory" in (done[over.id].reason or "")
    assert (done[within.id].state, done[within.id].exit_code) == (JobState.COMPLETED, 0)


@pytest.mark.live_slurm
def test_slurm_array_element_over_its_memory(slurm_fleet: Fleet) -> None:
    grow = "import os, time; x = bytearray((400 if os.environ['JOBFLEET_ARRAY_INDEX'] == '2' else 10) * 2**20); time.sleep(3)"  # noqa: E501
    array = slurm_fleet.submit(
        JobSpec([PY, "-c", grow], array=parse_array("1-2"), resources=Resources.of(memory="50M"))
    )
    wait_out_of_squeue([array.native_id])
    done = slurm_fleet.wait([array.id], timeout_s=60)[0]
    assert done.elements[1].state is JobState.COMPLETED
    assert done.elements[2].state is JobState.OUT_OF_MEMORY
    assert done.state is JobState.OUT_OF_MEMORY


@pytest.mark.live_slurm
def test_slurm_sigkill_from_elsewhere_is_not_out_of_memory(slurm_fleet: Fleet) -> None:
    # Killed by SIGKILL like a memory kill (FAILED 0:9), but not by OverMemoryKill.
    job = slurm_fleet.submit(JobSpec(eat(10, 120), resources=Resources.of(memory="50M")))
    wait_for(
        lambda: slurm_fleet.status([job.id])[0].state is JobState.RUNNING,
        timeout_s=60,
        what="running",
    )
    subprocess.run(["scancel", "--batch", "--signal=KILL", job.native_id or ""], check=True)
    wait_out_of_squeue([job.native_id])
    done = slurm_fleet.wait([job.id], timeout_s=60)[0]
    assert (done.state, done.exit_code) == (JobState.FAILED, 137)


# -- Grid Engine -------------------------------------------------------------------------------


@pytest.fixture
def sge_fleet(sge_home: Path) -> Iterator[Fleet]:
    with Fleet(load_config()) as fleet:
        yield fleet


def wait_out_of_qstat(native_ids: Sequence[str | None], timeout_s: float = 120) -> None:
    wanted = {n for n in native_ids if n}

    def gone() -> bool:
        out = subprocess.run(["qstat", "-u", "*"], capture_output=True, text=True).stdout
        return not wanted & {line.split()[0] for line in out.splitlines()[2:] if line.strip()}

    wait_for(gone, timeout_s=timeout_s, what=f"jobs {sorted(wanted)} to leave qstat")


def processes(n: int, mib: int) -> list[str]:
    """``n`` processes of ``mib`` MiB each, at the same time."""
    one = " ".join(f"'{a}'" for a in eat(mib))
    return ["bash", "-c", f"for i in $(seq {n}); do {one} & done; wait"]


@pytest.mark.live_sge
def test_sge_job_over_its_h_vmem_is_out_of_memory(sge_fleet: Fleet) -> None:
    # Each process (about 60 MiB of virtual memory) fits the 100M; the four together
    # do not: execd kills the job (failed 37, maxvmem above 100 MiB).
    over = sge_fleet.submit(JobSpec(processes(4, 50), resources=Resources.of(memory="100M")))
    per_slot = sge_fleet.submit(
        JobSpec(processes(4, 40), resources=Resources.of(memory="100M", cores=2))
    )  # h_vmem=50M per slot: 100 MiB for the job
    wait_out_of_qstat([over.native_id, per_slot.native_id])
    done = {r.id: r for r in sge_fleet.wait([over.id, per_slot.id], timeout_s=60)}
    for record in done.values():
        assert record.state is JobState.OUT_OF_MEMORY, record
        assert "h_vmem" in (record.reason or "")


@pytest.mark.live_sge
def test_sge_refused_allocation_is_failed_not_out_of_memory(sge_fleet: Fleet) -> None:
    # One process asking for 400 MiB under h_vmem=100M is refused it (RLIMIT_AS): Python
    # raises MemoryError and exits 1. Grid Engine killed nothing (failed 0), so
    # jobfleet reports the program's own failure: it cannot tell more.
    job = sge_fleet.submit(JobSpec(eat(400), resources=Resources.of(memory="100M")))
    wait_out_of_qstat([job.native_id])
    done = sge_fleet.wait([job.id], timeout_s=60)[0]
    assert (done.state, done.exit_code) == (JobState.FAILED, 1)
    assert "MemoryError" in sge_fleet.log_path(job.id, stream="stderr").read_text()


@pytest.mark.live_sge
@pytest.mark.slow
def test_sge_crash_near_its_h_vmem_is_not_out_of_memory(sge_fleet: Fleet, tmp_path: Path) -> None:
    # Most of its memory in use for long enough to be sampled (maxvmem near the limit),
    # then a crash of its own: no false out_of_memory (and no core file left behind).
    crash = (
        "import os, resource, signal, time; resource.setrlimit(resource.RLIMIT_CORE, (0, 0)); "
        "x = bytearray(60 * 2**20); time.sleep(12); os.kill(os.getpid(), signal.SIGSEGV)"
    )
    spec = JobSpec([PY, "-c", crash], workdir=str(tmp_path), resources=Resources.of(memory="100M"))
    job = sge_fleet.submit(spec)
    wait_out_of_qstat([job.native_id])
    done = sge_fleet.wait([job.id], timeout_s=60)[0]
    assert (done.state, done.exit_code) == (JobState.FAILED, 139)
