"""A study step as pipe tasks (``workers: N``) on the local backend: one job of
workers, outcomes per point, resume, a failing point, steps after it."""

from __future__ import annotations

import json
from pathlib import Path

from jobfleet import Fleet, JobState
from jobfleet.pipe.api import Pipe
from jobfleet.studies import load_study, run_study, study_status
from jobfleet.studies.outcomes import StudyResult

PIPED = """\
name: piped
steps:
  prep:
    command: ["sh", "-c", "echo ready > ../ready.txt"]
  sweep:
    shell: "cat ../../ready.txt > /dev/null && echo {a} {b} > out.txt; test {a}{b} != 2y"
    parameters:
      a: [1, 2, 3]
      b: [x, y, z, w]
    workers: 2
    after: prep
  check:
    shell: 'cat ../../sweep/"$(basename "$PWD")"/out.txt'
    parameters: sweep
    after: {sweep: each}
  aggregate:
    command: ["sh", "-c", "echo all"]
    after: sweep
output: results
"""


def _run(path: Path, fleet: Fleet, **kwargs: object) -> StudyResult:
    result = run_study(load_study(path), fleet=fleet, **kwargs)  # type: ignore[arg-type]
    assert isinstance(result, StudyResult)
    return result


def test_a_piped_step_runs_its_points_as_tasks_of_one_worker_job(
    fleet: Fleet, tmp_path: Path
) -> None:
    study = tmp_path / "piped.yaml"
    study.write_text(PIPED)
    first = _run(study, fleet)
    sweep = [p for p in first.points if p.step == "sweep"]
    assert len(sweep) == 12
    assert {p.job_id for p in sweep} == {sweep[0].job_id}  # one job: the workers
    (workers,) = fleet.records([str(sweep[0].job_id)])
    assert sorted(workers.elements) == [1, 2]  # two workers, not twelve elements
    assert first.counts("sweep") == {"completed": 11, "failed": 1}
    (bad,) = [p for p in sweep if p.state is not JobState.COMPLETED]
    assert (bad.params, bad.state, bad.exit_code) == ({"a": 2, "b": "y"}, JobState.FAILED, 1)
    assert bad.log is not None and Path(bad.log).exists()
    point = tmp_path / "results" / "sweep" / "0001-a=1,b=y"
    assert (point / "out.txt").read_text() == "1 y\n"
    assert json.loads((point / "params.json").read_text())["params"] == {"a": 1, "b": "y"}
    # After the piped step: point by point (its failed point's successor blocked),
    # and the fan-in blocked by the failure.
    check = {p.index: p for p in first.points if p.step == "check"}
    assert check[bad.index].state is None
    assert "did not complete" in str(check[bad.index].reason)
    assert sum(p.state is JobState.COMPLETED for p in check.values()) == 11
    (aggregate,) = [p for p in first.points if p.step == "aggregate"]
    assert aggregate.state is None and "did not complete" in str(aggregate.reason)

    again = _run(study, fleet)  # resume: nothing to run
    assert again.submitted == ()
    assert again.counts() == first.counts()
    status = study_status(tmp_path / "results", fleet=fleet)
    assert status.counts("sweep") == {"completed": 11, "failed": 1}

    study.write_text(PIPED.replace("; test {a}{b} != 2y", ""))
    fixed = _run(study, fleet)  # a changed command: every sweep point is new
    assert fixed.ok, fixed.not_completed()
    runs = {p.step: p.job_id for p in fixed.points}
    (pipe_dir,) = {
        s["pipe"]
        for s in json.loads((tmp_path / "results" / ".jobfleet" / "study.json").read_text())[
            "submissions"
        ]
        if s.get("pipe") and s["job_ids"] == [runs["sweep"]]
    }
    assert Pipe(pipe_dir).status().ok


def test_without_waiting_steps_after_a_piped_step_wait_for_a_rerun(
    fleet: Fleet, tmp_path: Path
) -> None:
    study = tmp_path / "piped.yaml"
    study.write_text(PIPED.replace("; test {a}{b} != 2y", ""))
    first = _run(study, fleet, wait=False)
    # prep was submitted; the piped sweep waits for it, and the rest for the sweep.
    assert len(first.submitted) == 1
    sweep = [p for p in first.points if p.step == "sweep"]
    assert all(p.state is None and "run the study again" in str(p.reason) for p in sweep)
    later = [p for p in first.points if p.step in ("check", "aggregate")]
    assert all(p.state is None and "cannot run" in str(p.reason) for p in later), later
    done = _run(study, fleet)  # the rerun waits for each in turn
    assert done.ok, done.not_completed()
