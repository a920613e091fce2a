"""The batch controller on the local backend: directories and data, typed results in
order, failures, the clobber policies (error, overwrite, skip = resume), post_run
errors, restart jobs, and a submission that partly failed."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from jobfleet.backends.base import SubmitRequest
from jobfleet.config import load_config
from jobfleet.engine.fleet import Fleet
from jobfleet.errors import SpecError, SubmitError
from jobfleet.states import JobState
from jobfleet.studies.batch import BatchController, BatchError, Job, JobPaths, JobResult

S = JobState
WAIT_S = 120.0

# Reads its parameter file (argv[1]), writes out.txt in its working directory.
SQUARE = (
    "import sys; a = int(open(sys.argv[1]).read()); print('a is', a);"
    " open('out.txt', 'w').write(str(a * a)); sys.exit(a if a > 10 else 0)"
)


class Square(Job):
    """Writes ``a`` to data/a.txt; its command squares it (and exits ``a`` when a > 10)."""

    def __init__(self, a: int, *, prefix: str | None = None, **kw: object) -> None:
        super().__init__(f"a={a}" if prefix is None else prefix, **kw)  # type: ignore[arg-type]
        self.a = a
        self.seen: list[JobResult] = []

    def write_data(self, paths: JobPaths) -> None:
        (paths.data_dir / "a.txt").write_text(str(self.a))

    def command(self, paths: JobPaths) -> Sequence[str]:
        return [sys.executable, "-c", SQUARE, str(paths.data_dir / "a.txt")]

    def post_run(self, result: JobResult) -> None:
        self.seen.append(result)


class Sleeper(Job):
    def command(self, paths: JobPaths) -> Sequence[str]:
        return [sys.executable, "-c", "import time; time.sleep(30)"]


class Counter(Job):
    """Adds one to output/count.txt each run: it restarts from its own output."""

    def command(self, paths: JobPaths) -> Sequence[str]:
        code = (
            "import os; n = int(open('count.txt').read()) if os.path.exists('count.txt') else 0;"
            " open('count.txt', 'w').write(str(n + 1))"
        )
        return [sys.executable, "-c", code]


@pytest.fixture
def fleet(jf_home: Path) -> Iterator[Fleet]:
    with Fleet(load_config()) as f:
        yield f


def controller(fleet: Fleet, jobs: Sequence[Job], base: Path, **kw: object) -> BatchController:
    return BatchController(jobs, base_path=base, experiment="exp", fleet=fleet, **kw)  # type: ignore[arg-type]


def count(fleet: Fleet) -> int:
    return len(fleet.recent(1000))


def test_setup_writes_directories_and_data_and_submits_nothing(
    fleet: Fleet, tmp_path: Path
) -> None:
    paths = controller(fleet, [Square(2), Square(3)], tmp_path).setup()
    assert [p.job_dir for p in paths] == [tmp_path / "exp" / "a=2", tmp_path / "exp" / "a=3"]
    for p, a in zip(paths, (2, 3), strict=True):
        assert (p.data_dir / "a.txt").read_text() == str(a)
        assert p.output_dir.is_dir() and p.log_dir.is_dir()
        assert p.stdout == p.log_dir / "stdout.log"
        assert not p.marker.exists()
    assert count(fleet) == 0


def test_run_returns_typed_results_in_the_order_of_the_jobs(fleet: Fleet, tmp_path: Path) -> None:
    jobs = [Square(4), Square(2), Square(3)]
    results = controller(fleet, jobs, tmp_path).run(timeout_s=WAIT_S)
    assert [r.prefix for r in results] == ["a=4", "a=2", "a=3"]
    for job, result in zip(jobs, results, strict=True):
        assert result.state is S.COMPLETED and result.exit_code == 0 and result.ok
        assert result.job_id is not None and result.native_id and result.attempt == 1
        assert not result.resumed and result.post_run_error is None
        # It ran in its output directory, its output went to its log.
        assert (result.paths.output_dir / "out.txt").read_text() == str(job.a**2)
        assert result.paths.stdout.read_text() == f"a is {job.a}\n"
        assert job.seen == [result]
        marker = json.loads(result.paths.marker.read_text())
        assert marker["job_id"] == result.job_id and marker["registry"] == fleet.registry.token
    records = fleet.records([r.job_id or "" for r in results])
    assert [r.name for r in records] == ["exp/a=4", "exp/a=2", "exp/a=3"]
    assert count(fleet) == 3


def test_a_failing_job_fails_with_its_exit_code_and_the_others_complete(
    fleet: Fleet, tmp_path: Path
) -> None:
    jobs = [Square(2), Square(13), Square(3)]
    results = controller(fleet, jobs, tmp_path).run(timeout_s=WAIT_S)
    assert [r.state for r in results] == [S.COMPLETED, S.FAILED, S.COMPLETED]
    assert [r.exit_code for r in results] == [0, 13, 0]
    assert [r.ok for r in results] == [True, False, True]
    assert jobs[1].seen == [results[1]]  # post_run is called however it ended


def test_clobber_error_names_the_directory_and_the_other_choices(
    fleet: Fleet, tmp_path: Path
) -> None:
    controller(fleet, [Square(2)], tmp_path).run(timeout_s=WAIT_S)
    again = controller(fleet, [Square(5), Square(2)], tmp_path)
    with pytest.raises(BatchError) as info:
        again.run()
    message = str(info.value)
    assert str(tmp_path / "exp" / "a=2") in message
    assert "clobber='overwrite'" in message and "clobber='skip'" in message
    assert not (tmp_path / "exp" / "a=5").exists()  # refused before anything was touched
    assert count(fleet) == 1


def test_clobber_overwrite_removes_the_directory_and_runs_again(
    fleet: Fleet, tmp_path: Path
) -> None:
    (first,) = controller(fleet, [Square(2)], tmp_path).run(timeout_s=WAIT_S)
    stale = first.paths.output_dir / "stale.txt"
    stale.write_text("old")
    (second,) = controller(fleet, [Square(2)], tmp_path, clobber="overwrite").run(timeout_s=WAIT_S)
    assert second.state is S.COMPLETED and second.job_id != first.job_id
    assert not stale.exists()
    assert count(fleet) == 2


def test_clobber_skip_keeps_what_completed_and_reruns_what_failed(
    fleet: Fleet, tmp_path: Path
) -> None:
    first = controller(fleet, [Square(2), Square(13)], tmp_path).run(timeout_s=WAIT_S)
    assert [r.state for r in first] == [S.COMPLETED, S.FAILED]
    (first[1].paths.output_dir / "partial.txt").write_text("half done")
    jobs = [Square(2), Square(13), Square(3)]
    second = controller(fleet, jobs, tmp_path, clobber="skip").run(timeout_s=WAIT_S)
    # The completed job was not submitted again: 2 first, then only a=13 and a=3.
    assert count(fleet) == 4
    assert second[0].resumed and second[0].job_id == first[0].job_id
    assert second[0].state is S.COMPLETED and second[0].ok
    assert not second[1].resumed and second[1].job_id != first[1].job_id
    assert second[1].state is S.FAILED and second[1].exit_code == 13
    assert not (second[1].paths.output_dir / "partial.txt").exists()  # a fresh directory
    assert second[2].state is S.COMPLETED and not second[2].resumed
    assert [len(j.seen) for j in jobs] == [1, 1, 1]  # post_run for the resumed job too


def test_clobber_skip_waits_for_a_job_still_running_instead_of_running_it_twice(
    fleet: Fleet, tmp_path: Path
) -> None:
    (first,) = controller(fleet, [Sleeper("nap")], tmp_path).run(wait=False)
    assert first.job_id is not None and not first.state.is_terminal
    # Even when its submitter died before writing the marker, the job is found.
    first.paths.marker.unlink()
    (second,) = controller(fleet, [Sleeper("nap")], tmp_path, clobber="skip").run(wait=False)
    assert second.resumed and second.job_id == first.job_id
    assert count(fleet) == 1
    fleet.cancel([first.job_id])


def test_clobber_overwrite_refuses_to_remove_a_job_still_running(
    fleet: Fleet, tmp_path: Path
) -> None:
    (first,) = controller(fleet, [Sleeper("nap")], tmp_path).run(wait=False)
    assert first.job_id is not None
    with pytest.raises(BatchError) as info:
        controller(fleet, [Sleeper("nap")], tmp_path, clobber="overwrite").run()
    message = str(info.value)
    assert f"jobfleet id {first.job_id}" in message and f"jobfleet cancel {first.job_id}" in message
    assert first.paths.job_dir.is_dir() and count(fleet) == 1
    fleet.cancel([first.job_id])


def test_a_post_run_that_raises_is_reported_for_its_job_only(fleet: Fleet, tmp_path: Path) -> None:
    class Picky(Square):
        def post_run(self, result: JobResult) -> None:
            super().post_run(result)
            raise ValueError(f"cannot read {self.a}")

    jobs = [Square(2), Picky(3), Square(4)]
    results = controller(fleet, jobs, tmp_path).run(timeout_s=WAIT_S)
    assert [r.state for r in results] == [S.COMPLETED] * 3
    assert results[1].post_run_error == "ValueError: cannot read 3" and not results[1].ok
    assert results[0].ok and results[2].ok
    assert [len(j.seen) for j in jobs] == [1, 1, 1]


def test_a_restart_job_keeps_its_output_and_always_runs(fleet: Fleet, tmp_path: Path) -> None:
    runs = [
        ("error", False, "1"),
        ("error", False, "2"),  # its directory exists: no error for a restart job
        ("skip", True, "3"),
        ("skip", True, "4"),  # it completed, and runs again all the same
        ("overwrite", False, "5"),  # its output is kept
    ]
    for clobber, with_square, expected in runs:
        jobs: list[Job] = [Counter("count", restart=True)]
        jobs += [Square(2)] if with_square else []
        results = controller(fleet, jobs, tmp_path, clobber=clobber).run(timeout_s=WAIT_S)
        assert results[0].state is S.COMPLETED and not results[0].resumed
        assert (results[0].paths.output_dir / "count.txt").read_text() == expected
        if with_square:  # a=2 runs the first time only
            assert results[1].state is S.COMPLETED and results[1].resumed == (expected == "4")
    assert count(fleet) == 5 + 1


def test_run_without_waiting_then_wait(fleet: Fleet, tmp_path: Path) -> None:
    job = Square(3)
    batch = controller(fleet, [job], tmp_path)
    with pytest.raises(BatchError, match="call run"):
        batch.wait()
    (pending,) = batch.run(wait=False)
    assert not pending.state.is_terminal and job.seen == []
    (done,) = batch.wait(timeout_s=WAIT_S)
    assert done.state is S.COMPLETED and done.job_id == pending.job_id
    assert batch.wait(timeout_s=WAIT_S) == [done] and job.seen == [done]  # post_run once


def test_setup_then_run_submits_what_was_set_up(fleet: Fleet, tmp_path: Path) -> None:
    batch = controller(fleet, [Square(2)], tmp_path)
    (paths,) = batch.setup()
    (paths.data_dir / "a.txt").write_text("5")  # changed by hand after setup
    (result,) = batch.run(timeout_s=WAIT_S)
    assert (result.paths.output_dir / "out.txt").read_text() == "25"


@pytest.mark.parametrize(
    ("jobs", "field", "words"),
    [
        ([Square(1, prefix="x"), Square(2, prefix="x")], "jobs[1].prefix", "also the prefix"),
        ([Square(1, prefix="../up")], "jobs[0].prefix", "cannot name a directory"),
        ([Square(1, prefix="")], "jobs[0].prefix", "cannot name a directory"),
        ([Job("plain")], "jobs[0].command", "does not define command"),
        (["not a job"], "jobs[0]", "expected a Job"),
    ],
)
def test_bad_jobs_are_refused_before_anything_is_done(
    jf_home: Path, tmp_path: Path, jobs: list[Job], field: str, words: str
) -> None:
    with pytest.raises(SpecError) as info:
        BatchController(jobs, base_path=tmp_path, experiment="exp")
    assert info.value.field == field and words in info.value.message
    assert not (tmp_path / "exp").exists()


def test_bad_clobber_experiment_and_base_path_are_refused(jf_home: Path, tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="choose one of error, overwrite, skip"):
        BatchController([Square(1)], base_path=tmp_path, experiment="e", clobber="keep")  # type: ignore[arg-type]
    with pytest.raises(SpecError, match="experiment: 'a/b' cannot name a directory"):
        BatchController([Square(1)], base_path=tmp_path, experiment="a/b")
    with pytest.raises(SpecError, match=r"base_path: .* would be replaced in its log paths"):
        BatchController([Square(1)], base_path=tmp_path / "{job_id}", experiment="e")


def test_a_job_directory_that_cannot_be_made_is_named(fleet: Fleet, tmp_path: Path) -> None:
    (tmp_path / "exp").mkdir()
    (tmp_path / "exp" / "a=2").write_text("a file where the directory goes")
    with pytest.raises(BatchError, match=r"cannot prepare .*a=2.*nothing was submitted"):
        controller(fleet, [Square(2)], tmp_path, clobber="overwrite").run()
    assert count(fleet) == 0


def test_a_marker_that_cannot_be_written_loses_no_result(
    fleet: Fleet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import jobfleet.studies.batch

    def disk_full(*args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(jobfleet.studies.batch, "write_marker", disk_full)
    (result,) = controller(fleet, [Square(2)], tmp_path).run(timeout_s=WAIT_S)
    assert result.state is S.COMPLETED and result.ok
    assert "No space left on device" in caplog.text and "a=2" in caplog.text


def test_a_command_that_cannot_run_names_its_job_and_submits_nothing(
    fleet: Fleet, tmp_path: Path
) -> None:
    class Empty(Job):
        def command(self, paths: JobPaths) -> Sequence[str]:
            return []

    class Shell(Job):
        def command(self, paths: JobPaths) -> Sequence[str]:
            return "echo hi"

    class Raising(Job):
        def command(self, paths: JobPaths) -> Sequence[str]:
            raise KeyError("solver")

    with pytest.raises(SpecError, match="job 'e': command: must not be empty"):
        controller(fleet, [Square(2), Empty("e")], tmp_path).run()
    with pytest.raises(SpecError, match="job 's': command: give the command as a list"):
        controller(fleet, [Shell("s")], tmp_path / "2").run()
    with pytest.raises(BatchError, match="job 'r': command raised KeyError: 'solver'"):
        controller(fleet, [Raising("r")], tmp_path / "3").run()
    with pytest.raises(SpecError, match="job 'v': env"):
        controller(fleet, [Square(1, prefix="v", env={"1BAD": "x"})], tmp_path / "4").run()
    assert count(fleet) == 0


def test_a_write_data_that_raises_stops_the_batch_before_any_submission(
    fleet: Fleet, tmp_path: Path
) -> None:
    class Broken(Square):
        def write_data(self, paths: JobPaths) -> None:
            raise OSError("disk full")

    with pytest.raises(BatchError, match="job 'a=3': write_data raised OSError: disk full"):
        controller(fleet, [Square(2), Broken(3)], tmp_path).run()
    assert count(fleet) == 0


def test_a_marker_of_another_registry_is_refused(fleet: Fleet, tmp_path: Path) -> None:
    (result,) = controller(fleet, [Square(2)], tmp_path).run(timeout_s=WAIT_S)
    marker = json.loads(result.paths.marker.read_text())
    result.paths.marker.write_text(json.dumps({**marker, "registry": "0badc0de"}))
    with pytest.raises(BatchError, match="another jobfleet registry"):
        controller(fleet, [Square(2)], tmp_path, clobber="skip").run()
    result.paths.marker.write_text("{not json")
    with pytest.raises(BatchError, match=r"jobfleet-job\.json is damaged"):
        controller(fleet, [Square(2)], tmp_path, clobber="skip").run()
    assert count(fleet) == 1


def test_a_batch_partly_refused_goes_on_with_the_jobs_submitted(
    fleet: Fleet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    local = fleet.backend("local")
    take = local.submit_many

    def first_only(requests: Sequence[SubmitRequest]) -> list[str | SubmitError]:
        return take(requests[:1]) + [SubmitError(r.name, "queue full") for r in requests[1:]]

    monkeypatch.setattr(local, "submit_many", first_only)
    results = controller(fleet, [Square(2), Square(3)], tmp_path).run(timeout_s=WAIT_S)
    assert results[0].state is S.COMPLETED and results[0].paths.marker.exists()
    assert results[1].state is S.FAILED and results[1].job_id is not None
    assert results[1].reason is not None and "queue full" in results[1].reason
    assert results[1].exit_code is None
    # Marked too: a rerun with skip knows it failed, and runs it again.
    assert json.loads(results[1].paths.marker.read_text())["job_id"] == results[1].job_id


def test_doctests() -> None:
    import doctest

    import jobfleet.studies.batchdirs

    result = doctest.testmod(jobfleet.studies.batchdirs)
    assert result.attempted and not result.failed
