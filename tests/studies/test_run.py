"""Running study files on the local backend: one array per step, resume, reruns."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from jobfleet import Fleet, JobState, load_config
from jobfleet.studies import load_study, run_study, study_status
from jobfleet.studies.execute import Preview
from jobfleet.studies.outcomes import StudyResult

GRID = """\
name: grid
command: ["sh", "-c", "echo {a} {b} > out.txt; test {a}{b} != 2y", "point"]
parameters:
  a: [1, 2, 3]
  b: [x, y, z, w]
output: results
"""


@pytest.fixture
def fleet(jf_home: Path) -> Fleet:
    with Fleet(load_config()) as f:
        yield f


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
