"""What a job used, on the live SLURM and Grid Engine clusters (each skipped, saying
why, without its cluster): a job and an array allocating ~200 MB show a peak memory in
that range, and their recorded start and end bracket their run.

SLURM samples memory (JobAcctGatherFrequency=task=1 here): MaxRSS may come a poll or two
after the end; the poll asks again (Capabilities.usage_settles_s) and the test waits
for it, within a bound.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from jobfleet.config import load_config
from jobfleet.engine.fleet import Fleet
from jobfleet.spec import JobSpec, Resources, parse_array
from jobfleet.states import JobRecord, JobState
from jobfleet.usage import Usage

#: Holds ~200 MiB for 3 s; prints when it held it (Unix time), to be bracketed.
ALLOC = (
    "import time; b = bytearray(200 * 1024 * 1024); print(time.time(), flush=True); "
    "time.sleep(3); print(time.time())"
)


@pytest.fixture(
    params=[
        pytest.param("slurm", marks=pytest.mark.live_slurm),
        pytest.param("sge", marks=pytest.mark.live_sge),
    ]
)
def fleet(request: pytest.FixtureRequest) -> Iterator[Fleet]:
    request.getfixturevalue(f"{request.param}_home")  # skips, saying why, without one
    f = Fleet(load_config())
    yield f
    f.close()


def settled_usage(fleet: Fleet, job_id: str, bound_s: float = 60.0) -> JobRecord:
    """The job once it ended and its peak memory is known (polling again, as a monitor
    does, within ``bound_s``)."""
    record = fleet.wait([job_id], timeout_s=180)[0]
    deadline = time.monotonic() + bound_s
    while not _known(record) and time.monotonic() < deadline:
        time.sleep(1.0)
        (record,) = fleet.refresh([record])
    return record


def _known(record: JobRecord) -> bool:
    used = [e.usage for e in record.elements.values()] if record.elements else [record.usage]
    return all(u.max_memory_bytes is not None and u.ended_at is not None for u in used)


def _check(usage: Usage, held: tuple[float, float], before: float, after: float) -> None:
    assert usage.max_memory_bytes is not None
    assert 200 * 2**20 <= usage.max_memory_bytes <= 400 * 2**20, usage
    assert usage.submitted_at is not None and usage.started_at is not None
    assert usage.ended_at is not None
    # Schedulers keep whole seconds: a second of slack each way.
    assert before - 1 <= usage.submitted_at <= usage.started_at <= held[0] + 1
    assert held[1] - 1 <= usage.ended_at <= after + 1
    assert usage.wall_time_s is not None and usage.wall_time_s >= 2
    assert usage.cpu_time_s is not None and usage.cpu_time_s >= 0
    assert usage.hosts and all(usage.hosts)


def test_a_200_mb_job_and_array_record_what_they_used(fleet: Fleet, tmp_path: Path) -> None:
    before = time.time()
    spec = JobSpec([sys.executable, "-c", ALLOC], workdir=str(tmp_path))
    job = fleet.submit(spec)
    arr = fleet.submit(
        JobSpec(
            [sys.executable, "-c", ALLOC],
            workdir=str(tmp_path),
            array=parse_array("1-2"),
            resources=Resources.of(memory="2G", walltime="10m"),
        )
    )
    done = settled_usage(fleet, job.id)
    array = settled_usage(fleet, arr.id)
    after = time.time()
    assert done.state is JobState.COMPLETED and array.state is JobState.COMPLETED

    def held(job_id: str, index: int | None = None) -> tuple[float, float]:
        first, last = fleet.log_path(job_id, index=index).read_text().split()
        return float(first), float(last)

    _check(done.usage, held(job.id), before, after)
    for index, element in array.elements.items():
        _check(element.usage, held(arr.id, index), before, after)
    # In the registry, for the next process too.
    assert fleet.registry.get(job.id).usage == done.usage
