"""The job side of a study step: staged points, and ``python -m jobfleet.studies.launch``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from jobfleet import Fleet, JobSpec, JobState, load_config, parse_array
from jobfleet.jobdir import exit_code_path, make_element_dirs, never_met_path
from jobfleet.scriptdeps import EXIT_DEPENDENCY_NEVER_MET
from jobfleet.spec import Dependency, DepKind
from jobfleet.studies.pointfile import CHUNK, LaunchPoint, Requirement, read_point, write_points

LAUNCH = [sys.executable, "-m", "jobfleet.studies.launch"]


def test_points_round_trip_across_chunks(tmp_path: Path) -> None:
    points = [
        LaunchPoint(i, f"/out/{i:04d}", ("echo", str(i), "two words")) for i in range(2 * CHUNK + 5)
    ]
    points[CHUNK] = LaunchPoint(CHUNK, "/out/é", shell="echo 'a b' > x")
    write_points(tmp_path, points)
    assert sorted(p.name for p in (tmp_path / "points").iterdir()) == [
        "0.jsonl",
        "1.jsonl",
        "2.jsonl",
    ]  # files grow with points / CHUNK
    for i in (0, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK + 4):
        assert read_point(tmp_path, i) == points[i]
    with pytest.raises(LookupError):
        read_point(tmp_path, 2 * CHUNK + 5)
    with pytest.raises(LookupError):
        read_point(tmp_path, -1)


def test_points_out_of_order_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="point 1 staged at index 0"):
        write_points(tmp_path, [LaunchPoint(1, "/x", ("true",))])


def test_requirements_round_trip(tmp_path: Path) -> None:
    needs = (Requirement("prep", 4, "/j/1/exit_code.5"), Requirement("one", 0, "/j/2/exit_code"))
    write_points(tmp_path, [LaunchPoint(0, "/x", ("true",), requires=needs)])
    assert read_point(tmp_path, 0).requires == needs


def _launch(step: Path, index: int | None, job_dir: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, JOBFLEET_JOB_DIR=str(job_dir))
    env["JOBFLEET_ARRAY_INDEX"] = "" if index is None else str(index + 1)  # from 1
    return subprocess.run([*LAUNCH, str(step)], env=env, capture_output=True, text=True, timeout=60)


def test_an_element_becomes_its_points_command_in_its_directory(tmp_path: Path) -> None:
    step, out, job = tmp_path / "step", tmp_path / "out", tmp_path / "job"
    job.mkdir()
    write_points(
        step,
        [
            LaunchPoint(0, str(out / "p0"), ("sh", "-c", 'pwd; echo "$0 $$"; exit 3', "a b")),
            LaunchPoint(1, str(out / "p1"), shell="printf '%s\\n' 'x y' > made"),
            LaunchPoint(2, str(out / "p2"), ("no-such-program-jobfleet",)),
        ],
    )
    first = _launch(step, 0, job)
    assert first.returncode == 3  # the command's own status: the launcher became it
    where, line = first.stdout.splitlines()
    assert where == str(out / "p0")
    assert line.startswith("a b ")  # one argv element, as rendered
    assert _launch(step, 1, job).returncode == 0
    assert (out / "p1" / "made").read_text() == "x y\n"
    missing = _launch(step, 2, job)
    assert missing.returncode == 127
    assert "cannot run 'no-such-program-jobfleet'" in missing.stderr
    absent = _launch(step, 3, job)
    assert absent.returncode == 2 and "cannot read point 3" in absent.stderr


def test_a_point_whose_predecessor_did_not_complete_runs_nothing(tmp_path: Path) -> None:
    step, prep, job = tmp_path / "step", tmp_path / "prep", tmp_path / "job"
    prep.mkdir()
    job.mkdir()
    marker = tmp_path / "ran"
    # prep's point 0 completed, 1 exited 3, 3 never ran (no exit-code file); point 2
    # requires nothing (it completed in an earlier run of the study).
    exits = {i: exit_code_path(str(prep), i + 1) for i in range(4)}
    make_element_dirs(str(prep), range(1, 5))
    Path(exits[0]).write_text("0\n")
    Path(exits[1]).write_text("3\n")
    points = [
        LaunchPoint(
            i,
            str(tmp_path / f"p{i}"),
            ("touch", f"{marker}{i}"),
            requires=() if i == 2 else (Requirement("prep", i, exits[i]),),
        )
        for i in range(4)
    ]
    write_points(step, points)
    codes = {i: _launch(step, i, job).returncode for i in range(4)}
    assert codes == {0: 0, 1: EXIT_DEPENDENCY_NEVER_MET, 2: 0, 3: EXIT_DEPENDENCY_NEVER_MET}
    assert sorted(p.name for p in tmp_path.glob("ran*")) == ["ran0", "ran2"]
    assert Path(never_met_path(str(job), 2)).read_text() == (  # element 2 ran point 1
        "cancelled: point 1 of step 'prep' exited 3, so this point cannot run\n"
    )
    assert "'prep' did not run" in Path(never_met_path(str(job), 4)).read_text()


def test_a_step_runs_as_one_array_with_points_that_follow_another_step(
    jf_home: Path, tmp_path: Path
) -> None:
    """On the local backend, through the job script: the second step's elements run
    after the first step's array, each only if its own point there completed."""
    out = tmp_path / "out"
    with Fleet(load_config()) as fleet:
        first, second = tmp_path / "first", tmp_path / "second"
        script = "echo {0} > v; exit $(({0} % 2))"
        write_points(
            first,
            [
                LaunchPoint(i, str(out / "first" / str(i)), ("sh", "-c", script.format(i)))
                for i in range(3)
            ],
        )
        prep = fleet.submit(JobSpec([*LAUNCH, str(first)], array=parse_array("1-3")))
        write_points(
            second,
            [
                LaunchPoint(
                    i,
                    str(out / "second" / str(i)),
                    ("cat", str(out / "first" / str(i) / "v")),
                    requires=(Requirement("first", i, exit_code_path(prep.job_dir, i + 1)),),
                )
                for i in range(3)
            ],
        )
        after = (Dependency(DepKind.AFTER_ANY, (prep.id,)),)
        sweep = fleet.submit(
            JobSpec([*LAUNCH, str(second)], array=parse_array("1-3"), dependencies=after)
        )
        done = {r.id: r for r in fleet.wait([prep.id, sweep.id], timeout_s=120)}
    elements = done[sweep.id].elements
    assert [elements[i].state for i in (1, 2, 3)] == [
        JobState.COMPLETED,
        JobState.CANCELLED,
        JobState.COMPLETED,
    ]
    assert elements[2].reason == (
        "cancelled: point 1 of step 'first' exited 1, so this point cannot run"
    )
    assert Path(sweep.job_dir, "0", "stdout.3").read_text() == "2\n"
    assert done[prep.id].elements[2].state is JobState.FAILED
