"""Running study files on the local backend: one array per step, resume, reruns."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import wait_for
from jobfleet import Fleet, JobState, load_config
from jobfleet.engine import handover
from jobfleet.registry import SUBMITTING
from jobfleet.studies import load_study, run_study, study_status
from jobfleet.studies.execute import Preview
from jobfleet.studies.outcomes import StudyResult
from jobfleet.studies.state import StudyState
from support.board import dead_owner

GRID = """\
name: grid
command: ["sh", "-c", "echo {a} {b} > out.txt; test {a}{b} != 2y", "point"]
parameters:
  a: [1, 2, 3]
  b: [x, y, z, w]
output: results
"""


def _run(path: Path, fleet: Fleet, **kwargs: object) -> StudyResult:
    result = run_study(load_study(path), fleet=fleet, **kwargs)  # type: ignore[arg-type]
    assert isinstance(result, StudyResult)
    return result


def test_a_grid_runs_as_one_array_and_a_rerun_resumes(fleet: Fleet, tmp_path: Path) -> None:
    study = tmp_path / "grid.yaml"
    study.write_text(GRID)
    first = _run(study, fleet)
    (job_id,) = first.submitted  # ONE array job for the 12 points
    (record,) = fleet.records([job_id])
    assert sorted(record.elements) == list(range(1, 13))
    assert first.counts() == {"completed": 11, "failed": 1}
    assert not first.ok
    (bad,) = first.not_completed()
    assert (bad.params, bad.state, bad.exit_code) == ({"a": 2, "b": "y"}, JobState.FAILED, 1)
    assert bad.log is not None and Path(bad.log).exists()
    out = tmp_path / "results"
    point = out / "0001-a=1,b=y"
    assert (point / "out.txt").read_text() == "1 y\n"  # it ran in its own directory
    params = json.loads((point / "params.json").read_text())
    assert params["params"] == {"a": 1, "b": "y"}
    assert params["command"][:2] == ["sh", "-c"]

    again = _run(study, fleet)  # resume: nothing left that a rerun runs
    assert again.submitted == ()
    assert again.counts() == first.counts()
    retried = _run(study, fleet, rerun="failed")  # only the failed point
    (job_id,) = retried.submitted
    assert len(fleet.records([job_id])[0].elements) == 1
    assert retried.counts() == {"completed": 11, "failed": 1}

    # A changed command is a new point for every point; the status reads it from DIR.
    study.write_text(GRID.replace("test {a}{b} != 2y", "true"))
    fixed = _run(study, fleet)
    assert len(fleet.records([fixed.submitted[0]])[0].elements) == 12
    assert fixed.ok
    status = study_status(out, fleet=fleet)
    assert status.ok and status.counts() == {"completed": 12}


def test_a_dry_run_writes_and_submits_nothing(fleet: Fleet, tmp_path: Path) -> None:
    study = tmp_path / "grid.yaml"
    study.write_text(GRID)
    preview = run_study(load_study(study), fleet=fleet, dry_run=True)
    assert isinstance(preview, Preview)
    assert preview.to_dict()["steps"] == [
        {"name": "main", "points": 12, "run": 12, "keep": 0, "wait": 0, "blocked": 0}
    ]
    assert not (tmp_path / "results").exists()
    assert fleet.recent(5) == []


PIPELINE = """\
name: pipe
output: out
steps:
  prep:
    command: ["sh", "-c", "echo prepared > ../prep.txt"]
  sweep:
    after: prep
    command: ["sh", "-c", "cat ../../prep.txt > got; echo {n} > n; test {n} != 2"]
    parameters:
      n: [1, 2, 3]
  check:
    after: {sweep: each}
    parameters: sweep
    command: ["sh", "-c", "cat ../../sweep/$(ls ../../sweep | grep n={n})/n"]
  aggregate:
    after: sweep
    command: ["sh", "-c", "cat ../sweep/*/n > all"]
"""


def test_prep_sweep_check_and_aggregate(fleet: Fleet, tmp_path: Path) -> None:
    study = tmp_path / "pipe.yaml"
    study.write_text(PIPELINE)
    result = _run(study, fleet)
    states = {(p.step, p.index): p.state_text for p in result.points}
    assert states == {
        ("prep", 0): "completed",
        ("sweep", 0): "completed",
        ("sweep", 1): "failed",
        ("sweep", 2): "completed",
        ("check", 0): "completed",
        ("check", 1): "cancelled",  # its sweep point failed: it ran nothing
        ("check", 2): "completed",
        ("aggregate", 0): "cancelled",  # after all of sweep, which did not all complete
    }
    check = {p.index: p for p in result.points if p.step == "check"}
    assert check[1].reason is not None and "point 1 of step 'sweep' exited 1" in check[1].reason
    assert (tmp_path / "out" / "sweep" / "0000-n=1" / "got").read_text() == "prepared\n"
    assert len(result.submitted) == 4  # one job per step

    # Rerun: the failed sweep point is kept (not run again), so check 1 and aggregate
    # cannot run: not submitted, and they say why.
    again = _run(study, fleet)
    assert again.submitted == ()
    later = {(p.step, p.index): p for p in again.points}
    assert later[("check", 1)].state is JobState.CANCELLED  # as it last ended


SLOW = """\
name: slow
command: ["sh", "-c", "sleep 2; echo {n} >> n"]
parameters:
  n: [1, 2, 3, 4]
output: out
"""


def test_after_kill_9_of_the_client_the_rerun_submits_nothing_twice(
    fleet: Fleet, tmp_path: Path
) -> None:
    study = tmp_path / "slow.yaml"
    study.write_text(SLOW)
    proc = subprocess.Popen(
        [sys.executable, "-m", "jobfleet", "run", str(study)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_for(lambda: fleet.recent(1) != [], timeout_s=60, what="the study's job")
        proc.send_signal(signal.SIGKILL)  # while it waits for the points
    finally:
        proc.wait(timeout=60)
    (first,) = fleet.recent(1)
    again = _run(study, fleet)  # waits for the points still running: submits nothing
    assert again.ok and again.counts() == {"completed": 4}
    (first,) = fleet.records([first.id])
    if first.never_submitted:
        # The kill landed after the job was recorded and before it reached the
        # scheduler (a loaded machine): the rerun found that out, and ran the points.
        assert len(again.submitted) == 1
    else:
        assert again.submitted == ()
    for n in (1, 2, 3, 4):  # each point ran once, whichever way
        assert (tmp_path / "out" / f"{n - 1:04d}-n={n}" / "n").read_text() == f"{n}\n"


@pytest.mark.parametrize("fleet", ["local", "slurm"], indirect=True)
def test_points_whose_job_never_reached_the_scheduler_run_on_the_rerun(
    fleet: Fleet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A client killed after recording its job and before the scheduler had it (the
    kill -9 test above, when it lands early): the rerun waits until that is known
    (on SLURM: until an sbatch of the dead client could no longer be running, its
    command_timeout, shortened here), then runs the points, which never ran; nothing
    runs twice."""
    config = Path(os.environ["JOBFLEET_CONFIG"])
    if config.exists():
        config.write_text(config.read_text().replace("command_timeout: 30s", "command_timeout: 4s"))
    fleet = Fleet(load_config())
    study = tmp_path / "slow.yaml"
    study.write_text(SLOW.replace("sleep 2; ", ""))

    def interrupted(*_: object) -> None:
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(handover, "write_job", interrupted)
        with pytest.raises(KeyboardInterrupt):
            _run(study, fleet)
    (job,) = fleet.recent(1)
    assert job.never_submitted  # interrupted before the backend had it: recorded so
    # As a kill -9 leaves it instead: recorded, being submitted by a process now gone.
    fleet.registry._conn.execute(
        "UPDATE jobs SET state = 'unknown', reason = ?, updated_at = ? WHERE id = ?",
        (SUBMITTING + dead_owner(), time.time(), int(job.id)),
    )
    fleet.registry._conn.execute(
        "UPDATE elements SET state = 'unknown' WHERE job_id = ?", (int(job.id),)
    )
    (unsure,) = fleet.registry.get_many([job.id])
    assert not unsure.submitted and not unsure.settled
    again = _run(study, fleet)
    assert len(again.submitted) == 1 and again.ok
    assert again.counts() == {"completed": 4}
    (job,) = fleet.records([job.id])
    assert job.never_submitted  # the first job: settled as never submitted
    for n in (1, 2, 3, 4):
        assert (tmp_path / "out" / f"{n - 1:04d}-n={n}" / "n").read_text() == f"{n}\n"
    third = _run(study, fleet)  # nothing left to run
    assert third.submitted == () and third.ok
    fleet.close()


def test_a_submission_written_but_not_known_made_is_found_by_name(
    fleet: Fleet, tmp_path: Path
) -> None:
    """Killed between writing the submission and writing its ids: the registry's job
    (recorded before it reached the scheduler) is found by its name; a job the
    registry never recorded was never submitted, and its points run."""
    study = tmp_path / "slow.yaml"
    study.write_text(SLOW.replace("sleep 2; ", ""))
    first = _run(study, fleet)
    state = StudyState.load(tmp_path / "out")
    assert state is not None
    (made,) = state.submissions
    made.job_ids = None  # as if killed before the ids were written
    state.save()
    again = _run(study, fleet)
    assert again.submitted == () and again.ok  # found: nothing submitted twice
    assert StudyState.load(tmp_path / "out").submissions[0].job_ids == list(first.submitted)

    state = StudyState.load(tmp_path / "out")
    assert state is not None
    state.submissions[0].name = "never-recorded"
    state.submissions[0].job_ids = None
    state.save()
    third = _run(study, fleet)
    assert len(third.submitted) == 1 and third.ok  # its points ran (again)
    assert StudyState.load(tmp_path / "out").submissions[0].job_ids == [None]
