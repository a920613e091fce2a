"""The Grid Engine backend against a live Son of Grid Engine cluster (skipped, saying why,
without one). scripts/test.sh starts a single-node SGE 8.1.9 when run as root
(tests/cluster/sge-up.sh). What every backend does is in tests/contract; here what is
Grid Engine's own.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import wait_for
from jobfleet.backends.base import PollTarget
from jobfleet.backends.sge import SgeBackend
from jobfleet.config import load_config
from jobfleet.engine.fleet import Fleet
from jobfleet.errors import SpecError
from jobfleet.runner import ScriptedRunner, SubprocessRunner
from jobfleet.spec import Dependency, DepKind, JobSpec, Resources, parse_array
from jobfleet.states import JobState

pytestmark = pytest.mark.live_sge
PY = sys.executable


@pytest.fixture
def fleet(sge_home: Path) -> Iterator[Fleet]:
    with Fleet(load_config()) as f:
        yield f


def after(kind: DepKind, job_id: str) -> tuple[Dependency, ...]:
    return (Dependency(kind, (job_id,)),)


def test_output_environment_and_cores(fleet: Fleet, tmp_path: Path) -> None:
    show = (
        "import os,sys;"
        " print(os.environ['GREETING'], sys.argv[1:], os.getcwd(), os.environ['NSLOTS'])"
    )
    job = fleet.submit(
        JobSpec(
            [PY, "-c", show, "a b", "$HOME"],
            env={"GREETING": "hi 'there'"},
            workdir=str(tmp_path),
            resources=Resources(cores=2),  # through the smp parallel environment
        )
    )
    assert fleet.wait([job.id], timeout_s=120)[0].state is JobState.COMPLETED
    assert fleet.log_path(job.id).read_text().strip() == f"hi 'there' ['a b', '$HOME'] {tmp_path} 2"


def test_cancel_running_job_and_one_element(fleet: Fleet) -> None:
    job = fleet.submit(JobSpec(["sleep", "300"]))
    wait_for(
        lambda: fleet.status([job.id])[0].state is JobState.RUNNING, timeout_s=60, what="running"
    )
    fleet.cancel([job.id])
    done = fleet.wait([job.id], timeout_s=60)[0]
    assert done.state is JobState.CANCELLED

    array = fleet.submit(JobSpec(["sleep", "60"], array=parse_array("1-6%2")))
    wait_for(
        lambda: fleet.status([array.id])[0].elements[2].state is JobState.RUNNING,
        timeout_s=60,
        what="element 2 to run",
    )
    fleet.cancel([array.id], indices=[2])
    wait_for(
        lambda: fleet.status([array.id])[0].elements[2].state is JobState.CANCELLED,
        timeout_s=60,
        what="element 2 to be cancelled",
    )
    assert fleet.status([array.id])[0].elements[1].state is not JobState.CANCELLED
    # The rest, running and waiting tasks alike: every one ends cancelled (the
    # waiting ones leave no accounting record; qdel's answer says they went).
    fleet.cancel([array.id])
    done = fleet.wait([array.id], timeout_s=60)[0]
    assert {e.state for e in done.elements.values()} == {JobState.CANCELLED}


def test_stepped_array_and_the_arrays_it_cannot_express(fleet: Fleet) -> None:
    job = fleet.submit(
        JobSpec(["bash", "-c", "echo $JOBFLEET_ARRAY_INDEX"], array=parse_array("1-9:2"))
    )
    done = fleet.wait([job.id], timeout_s=120)[0]
    assert sorted(done.elements) == [1, 3, 5, 7, 9]
    assert fleet.log_path(job.id, index=7).read_text() == "7\n"
    with pytest.raises(SpecError, match="one range"):
        fleet.submit(JobSpec(["true"], array=parse_array("1,3-5,9")))


def test_dependencies_mean_what_they_say(fleet: Fleet, tmp_path: Path) -> None:
    flag, never = tmp_path / "first", tmp_path / "never"
    # Long enough to be still running when the last dependent is submitted, even on a
    # loaded machine (each qsub takes its time): a job already ended is judged by jobfleet.
    first = fleet.submit(JobSpec(["bash", "-c", f"sleep 8; touch '{flag}'"]))
    then = fleet.submit(
        JobSpec(["test", "-e", str(flag)], dependencies=after(DepKind.AFTER_OK, first.id))
    )
    # Still running when its dependents are submitted: the script decides, not jobfleet.
    failing = fleet.submit(JobSpec(["bash", "-c", "sleep 10; exit 3"]))
    blocked = fleet.submit(
        JobSpec(["touch", str(never)], dependencies=after(DepKind.AFTER_OK, failing.id))
    )
    rescue = fleet.submit(JobSpec(["true"], dependencies=after(DepKind.AFTER_NOT_OK, failing.id)))
    anyway = fleet.submit(JobSpec(["true"], dependencies=after(DepKind.AFTER_ANY, failing.id)))
    not_needed = fleet.submit(JobSpec(["true"], dependencies=after(DepKind.AFTER_NOT_OK, first.id)))
    ids = [first.id, then.id, failing.id, blocked.id, rescue.id, anyway.id, not_needed.id]
    assert all(fleet.registry.get(i).submitted for i in ids)
    done = {r.id: r for r in fleet.wait(ids, timeout_s=240)}
    assert done[then.id].state is JobState.COMPLETED
    assert done[failing.id].state is JobState.FAILED
    assert done[blocked.id].state is JobState.CANCELLED
    assert (
        done[blocked.id].reason
        == f"cancelled: after_ok dependency on job {failing.id} can never be met"
    )
    assert not never.exists(), "the dependent's command must never run"
    assert done[rescue.id].state is JobState.COMPLETED
    assert done[anyway.id].state is JobState.COMPLETED
    assert done[not_needed.id].state is JobState.CANCELLED


def test_one_qstat_and_one_qacct_call_per_poll(fleet: Fleet) -> None:
    jobs = fleet.submit_many([JobSpec(["true"]) for _ in range(5)])
    fleet.wait([j.id for j in jobs], timeout_s=120)
    real = SubprocessRunner()
    counting = ScriptedRunner(lambda argv: real.run(argv, timeout_s=60))
    token = fleet.registry.token
    from jobfleet.naming import scheduler_name

    targets = [
        PollTarget(
            j.id,
            j.native_id or "",
            j.job_dir,
            j.created_at,
            None,
            scheduler_name(token, j.id, j.name),
        )
        for j in jobs
    ]
    statuses = SgeBackend(counting).poll(targets)
    assert {s.state for s in statuses.values()} == {JobState.COMPLETED}
    assert len(statuses) == 5
    assert counting.count("qstat") == 1
    assert counting.count("qacct") == 1


def test_exit_codes_grid_engine_reserves_are_reported_as_the_commands(fleet: Fleet) -> None:
    # Left as they are, 99 makes Grid Engine run the job again and 100 parks it in
    # an error state: the script exits 1 and keeps the command's code in its file.
    ran = [fleet.submit(JobSpec(["bash", "-c", f"echo once; exit {code}"])) for code in (99, 100)]
    done = fleet.wait([j.id for j in ran], timeout_s=120)
    assert [(r.state, r.exit_code) for r in done] == [(JobState.FAILED, 99), (JobState.FAILED, 100)]
    assert [fleet.log_path(j.id).read_text() for j in ran] == ["once\n", "once\n"]
