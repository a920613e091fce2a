"""What the local backend may hand out, and who may change it.

A client's own CPU affinity (a pinned local job, or ``taskset``) and its own
``CUDA_VISIBLE_DEVICES`` say what that process may use, not what the machine
offers: they must never shrink the capacity other queued jobs rely on.
"""

from __future__ import annotations

import os
import sys
import textwrap
from pathlib import Path

import pytest

from conftest import wait_for
from jobfleet.backends.local import LocalBackend, detect_capacity, queue_directory
from jobfleet.backends.local.queue import CAPACITY_KEY, QueueStore
from jobfleet.config import load_config
from jobfleet.engine.fleet import Fleet
from jobfleet.spec import JobSpec, Resources
from jobfleet.states import JobState

PY = sys.executable
CPUS = sorted(os.sched_getaffinity(0))

#: Cores and pinning detected (auto), as a user without a local: section has them.
AUTO_CONFIG = """\
backend: local
local:
  cancel_grace: 1s
  idle_exit: 3s
wait:
  poll_interval: 0.2s
"""

needs_two_cpus = pytest.mark.skipif(len(CPUS) < 2, reason="needs 2 CPUs to pin a 1-core job")


@needs_two_cpus
def test_a_pinned_job_submitting_a_follow_up_never_shrinks_the_backend(
    jf_home: Path, tmp_path: Path
) -> None:
    Path(os.environ["JOBFLEET_CONFIG"]).write_text(AUTO_CONFIG)
    go = tmp_path / "go"
    # A 1-core job (pinned to one CPU) that submits a follow-up once told to.
    submitter = textwrap.dedent(
        f"""
        import os, subprocess, sys, time
        while not os.path.exists({str(go)!r}):
            time.sleep(0.05)
        print(os.environ.get("JOBFLEET_CPUS"))
        sys.exit(subprocess.run([{PY!r}, "-m", "jobfleet", "submit", "--", "true"]).returncode)
        """
    )
    with Fleet(load_config()) as fleet:
        first = fleet.submit(JobSpec([PY, "-c", submitter]))
        wait_for(Path(first.job_dir, "exit_code").exists, what="the submitting job to start")
        wide = fleet.submit(JobSpec([PY, "-c", "pass"], resources=Resources(cores=len(CPUS))))
        go.write_text("")
        done = fleet.wait([first.id], timeout_s=60)[0]
        assert done.state is JobState.COMPLETED, fleet.log_path(first.id).read_text()
        pinned_to = fleet.log_path(first.id).read_text().split("\n")[0]
        assert pinned_to.isdigit(), "the submitting job runs pinned to one CPU"
        record = fleet.wait([wide.id], timeout_s=60)[0]
    assert record.state is JobState.COMPLETED, record.reason
    stored = QueueStore(queue_directory(jf_home)).setting(CAPACITY_KEY)
    assert stored is not None and stored["cores"] == len(CPUS)


@needs_two_cpus
def test_a_client_under_taskset_detects_the_whole_machine() -> None:
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {CPUS[0]})
    try:
        capacity = detect_capacity()
    finally:
        os.sched_setaffinity(0, before)
    assert capacity.cores == len(CPUS)
    assert capacity.cpu_ids == tuple(CPUS)
    assert os.sched_getaffinity(0) == before


def test_a_client_inside_a_job_keeps_the_stored_capacity(
    jf_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = queue_directory(jf_home)
    directory.mkdir(parents=True)
    outside = LocalBackend(directory, detect_capacity(cores=4, memory_bytes=8 << 30, gpus=2))
    outside.store.set_setting(CAPACITY_KEY, outside.capacity.to_setting())
    outside.close()
    monkeypatch.setenv("JOBFLEET_JOB_ID", "17")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")  # a job that asked for no GPU
    inside = LocalBackend(directory, detect_capacity(memory_bytes=8 << 30))
    try:
        assert (inside.capacity.cores, inside.capacity.gpus) == (4, 2)
        inside.ensure_agent()
        stored = inside.store.setting(CAPACITY_KEY)
    finally:
        inside.close()
    assert stored is not None
    assert (stored["cores"], stored["gpu_ids"]) == (4, ["0", "1"])


def test_a_job_that_no_longer_fits_is_held_not_failed(jf_home: Path, tmp_path: Path) -> None:
    config = Path(os.environ["JOBFLEET_CONFIG"])
    go = tmp_path / "go"
    wait_go = [PY, "-c", f"import os, time\nwhile not os.path.exists({str(go)!r}): time.sleep(0.1)"]
    with Fleet(load_config()) as fleet:  # 2 cores
        first = fleet.submit(JobSpec(wait_go))
        wait_for(Path(first.job_dir, "exit_code").exists, what="the first job to start")
        wide = fleet.submit(JobSpec(["true"], resources=Resources(cores=2)))
        config.write_text(config.read_text().replace("cores: 2", "cores: 1"))
        with Fleet(load_config()) as smaller:
            smaller.submit(JobSpec(["true"]))

        def held() -> bool:
            (record,) = fleet.refresh(fleet.records([wide.id]))
            return record.state is JobState.PENDING and "held" in (record.reason or "")

        wait_for(held, what="the 2-core job to be held with a reason")
        (record,) = fleet.refresh(fleet.records([wide.id]))
        assert "local.cores" in (record.reason or "")
        config.write_text(config.read_text().replace("cores: 1", "cores: 2"))
        with Fleet(load_config()) as restored:
            restored.submit(JobSpec(["true"]))
        go.write_text("")
        done = fleet.wait([first.id, wide.id], timeout_s=60)
    assert [r.state for r in done] == [JobState.COMPLETED, JobState.COMPLETED]
