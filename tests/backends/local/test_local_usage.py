"""What local jobs used: the agent's own measurement (wait4 of the job script), real jobs."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from jobfleet.config import load_config
from jobfleet.engine.fleet import Fleet
from jobfleet.spec import JobSpec, parse_array
from jobfleet.states import JobState

ALLOC_200M = "b = bytearray(200 * 1024 * 1024); import time; time.sleep(2)"


@pytest.fixture
def fleet(jf_home: Path) -> Iterator[Fleet]:
    f = Fleet(load_config())
    yield f
    f.close()


def test_a_200_mb_job_shows_its_peak_and_times_that_bracket_its_run(fleet: Fleet) -> None:
    before = time.time()
    job = fleet.submit(JobSpec(["python3", "-c", ALLOC_200M], name="alloc"))
    done = fleet.wait([job.id], timeout_s=120)[0]
    after = time.time()
    assert done.state is JobState.COMPLETED
    used = done.usage
    assert used.max_memory_bytes is not None
    assert 200 * 2**20 <= used.max_memory_bytes <= 320 * 2**20
    assert used.submitted_at is not None and used.started_at is not None
    assert used.ended_at is not None
    assert before <= used.submitted_at <= used.started_at < used.ended_at <= after
    assert used.ended_at - used.started_at >= 2  # it slept 2 s
    assert used.wall_time_s == pytest.approx(used.ended_at - used.started_at, abs=1e-3)
    assert used.cpu_time_s is not None and 0 < used.cpu_time_s < used.wall_time_s
    assert used.hosts == (socket.gethostname().split(".")[0],)
    # Recorded: a fresh read of the registry has it too, and --json spells it.
    again = fleet.registry.get(job.id)
    assert again.usage == used
    assert again.to_dict()["max_memory_bytes"] == used.max_memory_bytes


def test_each_array_element_has_its_own_usage(fleet: Fleet) -> None:
    # Element i holds i * 100 MiB.
    code = "import os, time; b = bytearray(int(os.environ['JOBFLEET_ARRAY_INDEX']) * 100 * 2**20)"
    spec = JobSpec(
        ["python3", "-c", code + "; time.sleep(1)"], name="arr", array=parse_array("1-2")
    )
    job = fleet.submit(spec)
    done = fleet.wait([job.id], timeout_s=120)[0]
    assert done.state is JobState.COMPLETED, done.elements
    peaks = {i: e.usage.max_memory_bytes for i, e in done.elements.items()}
    assert peaks[1] is not None and peaks[2] is not None
    assert 100 * 2**20 <= peaks[1] < 200 * 2**20 <= peaks[2] < 300 * 2**20
    assert done.usage.max_memory_bytes is None  # the array as a whole: per element only
