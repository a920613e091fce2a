"""Where a study's points run: flat below 10,000 points, in shards of a thousand from
there (``<output>/<index // 1000>xxx/<point>``), and a step keeps the layout it began
with. On the local backend, with the thresholds made small (the layout is the same
code whatever the numbers)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from jobfleet import Fleet, JobState, load_config
from jobfleet.studies import load_study, run_study, runner, study_status
from jobfleet.studies import points as points_module
from jobfleet.studies.outcomes import StudyResult, read_step_points

GRID = """\
name: grid
command: ["sh", "-c", "echo {a} {b} > out.txt; test {a}{b} != 2y", "point"]
parameters:
  a: [1, 2, 3]
  b: [x, y, z, w]
output: results
"""

PIPELINE = """\
name: pipe
output: out
steps:
  prep:
    command: ["sh", "-c", "echo prepared > ../prep.txt"]
  sweep:
    after: prep
    command: ["sh", "-c", "cat ../../../prep.txt > got; echo {n} > n"]
    parameters:
      n: [1, 2, 3, 4, 5, 6, 7]
  check:
    after: {sweep: each}
    parameters: sweep
    shell: 'cat ../../../sweep/"$(basename "$(dirname "$PWD")")"/"$(basename "$PWD")"/n'
"""


@pytest.fixture
def fleet(jf_home: Path) -> Iterator[Fleet]:
    with Fleet(load_config()) as f:
        yield f


@pytest.fixture
def small(monkeypatch: pytest.MonkeyPatch) -> None:
    """Shards from 6 points, of 5 points each (10,000 and 1,000 really)."""
    monkeypatch.setattr(runner, "SHARDED_FROM", 6)
    monkeypatch.setattr(points_module, "POINT_SHARD", 5)


def _run(path: Path, fleet: Fleet, **kwargs: object) -> StudyResult:
    result = run_study(load_study(path), fleet=fleet, **kwargs)  # type: ignore[arg-type]
    assert isinstance(result, StudyResult)
    return result


def _entries(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def test_a_step_of_many_points_runs_them_in_shards_and_keeps_them_there(
    fleet: Fleet, tmp_path: Path, small: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    study = tmp_path / "grid.yaml"
    study.write_text(GRID)
    first = _run(study, fleet)
    assert first.counts() == {"completed": 11, "failed": 1}
    out = tmp_path / "results"
    assert _entries(out) == [".jobfleet", "0xxx", "1xxx", "2xxx"]
    assert _entries(out / "0xxx") == [
        "0000-a=1,b=x",
        "0001-a=1,b=y",
        "0002-a=1,b=z",
        "0003-a=1,b=w",
        "0004-a=2,b=x",
    ]
    assert _entries(out / "2xxx") == ["0010-a=3,b=z", "0011-a=3,b=w"]
    point = out / "1xxx" / "0005-a=2,b=y"
    assert (point / "out.txt").read_text() == "2 y\n"  # it ran in its own directory
    assert json.loads((point / "params.json").read_text())["params"] == {"a": 2, "b": "y"}
    (bad,) = first.not_completed()
    assert (bad.index, bad.directory) == (5, str(point))
    status = study_status(out, fleet=fleet)
    assert [p.directory for p in status.points] == [
        str(out / f"{i // 5}xxx" / p.dirname)
        for i, p in enumerate(load_study(study).steps[0].points)
    ]
    # Reruns keep the step's layout, whatever its number of points says now.
    monkeypatch.setattr(runner, "SHARDED_FROM", 10_000)
    study.write_text(GRID.replace("test {a}{b} != 2y", "true"))  # every point is new
    fixed = _run(study, fleet)
    assert fixed.ok and len(fixed.submitted) == 1
    assert _entries(out) == [".jobfleet", "0xxx", "1xxx", "2xxx"]
    assert (point / "out.txt").read_text() == "2 y\n" and fixed.points[5].directory == str(point)
    assert all(p.sharded for p in read_step_points(out, "main"))


def test_a_step_begun_flat_stays_flat_however_many_points_it_gets(
    fleet: Fleet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    study = tmp_path / "grid.yaml"
    study.write_text(GRID.replace("a: [1, 2, 3]", "a: [1]"))  # 4 points: flat
    assert _run(study, fleet).counts() == {"completed": 4}
    out = tmp_path / "results"
    assert _entries(out) == [
        ".jobfleet",
        "0000-a=1,b=x",
        "0001-a=1,b=y",
        "0002-a=1,b=z",
        "0003-a=1,b=w",
    ]
    # The grid grows past the threshold: its points stay beside the first ones.
    monkeypatch.setattr(runner, "SHARDED_FROM", 6)
    study.write_text(GRID)
    grown = _run(study, fleet)
    assert grown.counts() == {"completed": 11, "failed": 1}
    assert len(_entries(out)) == 13 and (out / "0011-a=3,b=w" / "out.txt").read_text() == "3 w\n"
    assert not any(p.sharded for p in read_step_points(out, "main"))
    assert [p.directory for p in grown.points] == [
        str(out / p.dirname) for p in load_study(study).steps[0].points
    ]


def test_steps_shard_each_by_its_own_count_and_relative_paths_reach_one_level_up(
    fleet: Fleet, tmp_path: Path, small: None
) -> None:
    study = tmp_path / "pipe.yaml"
    study.write_text(PIPELINE)
    result = _run(study, fleet)
    assert result.ok, [(p.step, p.index, p.reason) for p in result.not_completed()]
    out = tmp_path / "out"
    assert _entries(out) == [".jobfleet", "check", "prep", "prep.txt", "sweep"]
    assert _entries(out / "prep") == ["params.json"]  # runs once: in its step's directory
    assert _entries(out / "sweep") == ["0xxx", "1xxx"]
    assert (out / "sweep" / "1xxx" / "0006-n=7" / "got").read_text() == "prepared\n"
    assert _entries(out / "check") == ["0xxx", "1xxx"]
    assert len(result.submitted) == 3
    checks = [p for p in result.points if p.step == "check"]
    assert [Path(p.directory).relative_to(out).parts[:2] for p in checks] == [
        ("check", "0xxx")
    ] * 5 + [("check", "1xxx")] * 2
    assert {p.state for p in checks} == {JobState.COMPLETED}
