"""``jobfleet clean``'s library part (jobfleet.engine.cleanup) over a real registry:
which jobs' files go, which stay and why, and that nothing outside the home's
``jobs/`` and ``futures/`` is ever removed."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from jobfleet.engine import cleanup
from jobfleet.engine.cleanup import clean, ended_at, parse_states
from jobfleet.errors import FilesRemovedError, SpecError
from jobfleet.futures.layout import RUN_MODULE, new_call_directory
from jobfleet.registry import NewJob, Registry, StatusUpdate
from jobfleet.spec import Dependency, DepKind, JobSpec
from jobfleet.states import JobState
from jobfleet.usage import Usage

S = JobState
NOW = time.time() + 60.0  # the jobs of a test end just before it
DAY = 86400.0


@pytest.fixture
def reg(tmp_path: Path) -> Iterator[Registry]:
    with Registry(tmp_path / "home") as registry:
        yield registry


def job(reg: Registry, state: JobState | None, spec: JobSpec | None = None, **update: Any) -> str:
    """A submitted job, moved to ``state`` (None: left unsubmitted), with a script and a
    log of known sizes in its directory."""
    (record,) = reg.create_jobs([NewJob("t", "local", spec or JobSpec(["true"]))])
    (Path(record.job_dir) / "job.sh").write_bytes(b"x" * 100)
    (Path(record.job_dir) / "stdout").write_bytes(b"y" * 23)
    if state is not None:
        reg.mark_submitted(record.id, f"n{record.id}")
        reg.apply([StatusUpdate(record.id, state, **update)])
    return record.id


def directory(reg: Registry, job_id: str) -> Path:
    return Path(reg.get(job_id).job_dir)


def test_ended_jobs_lose_their_files_and_keep_their_records(reg: Registry) -> None:
    done, failed, cancelled = (job(reg, s) for s in (S.COMPLETED, S.FAILED, S.CANCELLED))
    running, waiting, unsubmitted = job(reg, S.RUNNING), job(reg, S.PENDING), job(reg, None)
    report = clean(reg)
    assert [(r.job_id, r.bytes) for r in report.removed] == [
        (done, 123),
        (failed, 123),
        (cancelled, 123),
    ]
    assert report.bytes_freed == 369 and report.skipped == [] and not report.dry_run
    for job_id in (done, failed, cancelled):
        record = reg.get(job_id)
        assert not Path(record.job_dir).exists()
        assert record.cleaned_at is not None and record.state.is_terminal
    for job_id in (running, waiting, unsubmitted):
        assert (directory(reg, job_id) / "stdout").read_bytes() == b"y" * 23
        assert reg.get(job_id).cleaned_at is None
    assert reg.get(failed).state is S.FAILED  # the record as it was
    assert clean(reg).removed == [], "a second clean finds nothing more"


def test_a_dry_run_removes_and_marks_nothing(reg: Registry) -> None:
    done = job(reg, S.COMPLETED)
    dry = clean(reg, dry_run=True)
    assert dry.dry_run and [(r.job_id, r.path, r.bytes) for r in dry.removed] == [
        (done, str(directory(reg, done)), 123)
    ]
    assert sorted(p.name for p in directory(reg, done).iterdir()) == ["job.sh", "stdout"]
    assert reg.get(done).cleaned_at is None
    assert clean(reg).removed == dry.removed  # what it said is what a real one removes
    assert dry.to_dict() == {
        "dry_run": True,
        "removed": [{"id": done, "path": str(directory(reg, done)), "bytes": 123}],
        "skipped": [],
        "bytes_freed": 123,
    }


def test_states_choose_and_are_checked(reg: Registry) -> None:
    done, failed, lost = job(reg, S.COMPLETED), job(reg, S.FAILED), job(reg, S.LOST)
    assert clean(reg, states=["failed", S.LOST]).job_ids == [failed, lost]
    assert directory(reg, done).exists()
    with pytest.raises(SpecError, match=r"'runnin' is no job state; choose among completed, fa"):
        parse_states(["runnin"])
    with pytest.raises(SpecError, match="running jobs have not ended and are never cleaned"):
        clean(reg, states=["running"])
    assert parse_states(None) == frozenset(
        {S.COMPLETED, S.FAILED, S.CANCELLED, S.TIMEOUT, S.OUT_OF_MEMORY, S.LOST}
    )


def test_older_than_compares_with_when_the_job_ended(reg: Registry) -> None:
    old = job(reg, S.COMPLETED, usage=Usage(ended_at=NOW - 8 * DAY))
    recent = job(reg, S.COMPLETED, usage=Usage(ended_at=NOW - 6 * DAY))
    unknown_end = job(reg, S.FAILED)  # its end is when the registry recorded it: now
    assert ended_at(reg.get(unknown_end)) == reg.get(unknown_end).updated_at
    report = clean(reg, older_than_s=7 * DAY, now=NOW)
    assert report.job_ids == [old]
    assert directory(reg, recent).exists() and directory(reg, unknown_end).exists()
    assert clean(reg, older_than_s=5 * DAY, now=NOW).job_ids == [recent]


def test_a_job_with_a_retry_due_or_depended_on_is_kept_saying_why(reg: Registry) -> None:
    due = job(reg, S.FAILED, JobSpec(["false"], retries=1))
    needed = job(reg, S.COMPLETED)
    waiter = job(
        reg, S.PENDING, JobSpec(["true"], dependencies=(Dependency(DepKind.AFTER_OK, (needed,)),))
    )
    report = clean(reg)
    assert report.removed == []
    assert [(s.job_id, s.reason, s.failed) for s in report.skipped] == [
        (
            due,
            "a retry is due (attempt 1 ended failed); it is submitted again at the next status",
            False,
        ),
        (needed, f"unfinished job {waiter} depends on it", False),
    ]
    assert directory(reg, due).exists() and directory(reg, needed).exists()
    reg.apply([StatusUpdate(waiter, S.COMPLETED)])
    assert clean(reg).job_ids == [needed, waiter]


def test_every_attempt_goes_and_a_retry_clears_the_mark(reg: Registry) -> None:
    retried = job(reg, S.FAILED, JobSpec(["false"], retries=1))
    first = directory(reg, retried)
    again = reg.begin_retry(retried, 1, "retry 1 of 1: failed")
    assert again is not None
    (Path(again.job_dir) / "stdout").write_bytes(b"z" * 7)
    reg.mark_submitted(retried, "n2")
    reg.apply([StatusUpdate(retried, S.FAILED, exit_code=1)])
    report = clean(reg)
    assert [(r.path, r.bytes) for r in report.removed] == [(str(first), 123), (again.job_dir, 7)]
    assert not first.exists() and not Path(again.job_dir).exists()
    # Were its retries given back (a cancel that failed), a retry starts afresh, unmarked.
    reg.restore_retries({retried: 2})
    third = reg.begin_retry(retried, 2, "retry 2 of 2: failed")
    assert third is not None and third.cleaned_at is None and Path(third.job_dir).is_dir()


def test_a_python_calls_payload_goes_with_its_job(reg: Registry) -> None:
    payload = reg.home / "futures" / "0123abcd"
    payload.mkdir(parents=True)
    (payload / "call.in").write_bytes(b"p" * 50)
    (payload / "call.out").write_bytes(b"o" * 5)
    call = job(reg, S.COMPLETED, JobSpec([sys.executable, "-m", RUN_MODULE, str(payload)]))
    report = clean(reg)
    assert [(r.path, r.bytes) for r in report.removed] == [
        (str(directory(reg, call)), 123),
        (str(payload), 55),
    ]
    assert not payload.exists() and (reg.home / "futures").is_dir()
    # A payload another, unfinished job runs too (submitted again by hand) stays.
    shared = reg.home / "futures" / "4567cdef"
    shared.mkdir()
    command = [sys.executable, "-m", RUN_MODULE, str(shared)]
    ended, running = job(reg, S.FAILED, JobSpec(command)), job(reg, S.RUNNING, JobSpec(command))
    assert [(s.job_id, s.reason) for s in clean(reg).skipped] == [
        (ended, f"unfinished job {running} runs the same call ({shared})")
    ]
    assert shared.is_dir()
    from jobfleet.futures.results import call_results

    with pytest.raises(
        FilesRemovedError, match=rf"job {call}: its files were removed by jobfleet clean on "
    ):
        call_results(reg.get(call))


def test_a_payload_in_a_shard_of_futures_goes_and_the_shard_stays(reg: Registry) -> None:
    """Payload directories are made in 256 shards (futures/<ab>/<name>): clean removes
    one there (and an older home's flat one), never a shard, never one a level deeper."""
    payload = new_call_directory(reg.home)
    assert payload.parent.parent == reg.home / "futures" and payload.parent.name == payload.name[:2]
    payload.mkdir(parents=True)
    (payload / "call.in").write_bytes(b"p" * 10)
    call = job(reg, S.COMPLETED, JobSpec([sys.executable, "-m", RUN_MODULE, str(payload)]))
    shard_itself = job(reg, S.COMPLETED, JobSpec(["py", "-m", RUN_MODULE, str(payload.parent)]))
    deeper = payload.parent / payload.name / "inner"
    too_deep = job(reg, S.COMPLETED, JobSpec(["py", "-m", RUN_MODULE, str(deeper)]))
    report = clean(reg)
    assert report.job_ids == [call]
    assert not payload.exists() and payload.parent.is_dir()
    futures = (reg.home / "futures").resolve()
    assert [(s.job_id, s.reason) for s in report.skipped] == [
        (
            shard_itself,
            f"{payload.parent} is named as a shard of {futures}, not as a job's directory:"
            " left alone",
        ),
        (too_deep, f"{deeper} is not directly in {futures} nor in a shard of it: left alone"),
    ]


def test_nothing_outside_the_jobs_directory_is_removed(reg: Registry, tmp_path: Path) -> None:
    outside = tmp_path / "mine"
    outside.mkdir()
    (outside / "precious").write_text("keep me")
    user_log = tmp_path / "user.log"
    # A spec's own output path: never the job directory's, never removed.
    named = job(reg, S.COMPLETED, JobSpec(["true"], stdout=str(user_log)))
    user_log.write_text("the user's")
    # A job directory that became a link to the user's directory.
    linked = job(reg, S.COMPLETED)
    for path in directory(reg, linked).iterdir():
        path.unlink()
    directory(reg, linked).rmdir()
    directory(reg, linked).symlink_to(outside)
    # A link inside a job directory: the link goes, not what it points to.
    inner = job(reg, S.COMPLETED)
    (directory(reg, inner) / "data").symlink_to(outside)
    # A recorded directory elsewhere (a home moved, a registry edited by hand).
    moved = job(reg, S.COMPLETED)
    reg._conn.execute("UPDATE jobs SET job_dir = ? WHERE id = ?", (str(outside), int(moved)))
    dotdot = job(reg, S.COMPLETED)
    reg._conn.execute(
        "UPDATE jobs SET job_dir = ? WHERE id = ?", (str(reg.home / "jobs" / ".."), int(dotdot))
    )
    payload_elsewhere = job(reg, S.COMPLETED, JobSpec(["py", "-m", RUN_MODULE, str(outside)]))
    report = clean(reg)
    assert report.job_ids == [named, inner]
    jobs = (reg.home / "jobs").resolve()
    assert [(s.job_id, s.reason) for s in report.skipped] == [
        (linked, f"{directory(reg, linked)} is a symbolic link: left alone"),
        (moved, f"{outside} is not directly in {jobs} nor in a shard of it: left alone"),
        (dotdot, f"{reg.home / 'jobs' / '..'} is not a job's directory: left alone"),
        (
            payload_elsewhere,
            f"{outside} is not directly in {(reg.home / 'futures').resolve()} nor in a shard"
            " of it: left alone",
        ),
    ]
    assert (outside / "precious").read_text() == "keep me" and user_log.read_text() == "the user's"
    assert directory(reg, payload_elsewhere).exists(), "nothing of a job with a bad path goes"
    assert (reg.home / "registry.db").exists()


def test_a_directory_already_gone_is_no_error(reg: Registry) -> None:
    gone = job(reg, S.COMPLETED)
    for path in directory(reg, gone).iterdir():
        path.unlink()
    directory(reg, gone).rmdir()
    report = clean(reg)
    assert [(r.job_id, r.bytes) for r in report.removed] == [(gone, 0)]
    assert reg.get(gone).cleaned_at is not None


def test_a_directory_that_cannot_be_removed_is_reported_for_its_job(
    reg: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    stuck, fine = job(reg, S.FAILED), job(reg, S.COMPLETED)
    real_rmtree = cleanup.shutil.rmtree

    def refusing(path: str, **handler: Any) -> None:
        if path != str(directory(reg, stuck)):
            real_rmtree(path, **handler)
            return
        denied = PermissionError(13, "Permission denied", f"{path}/stdout")
        if "onexc" in handler:
            handler["onexc"](os.unlink, f"{path}/stdout", denied)
        else:
            handler["onerror"](os.unlink, f"{path}/stdout", (PermissionError, denied, None))

    monkeypatch.setattr(cleanup.shutil, "rmtree", refusing)
    report = clean(reg)
    assert report.job_ids == [fine]
    assert [(s.job_id, s.reason, s.failed) for s in report.failed] == [
        (stuck, f"could not remove {directory(reg, stuck)}/stdout: Permission denied", True)
    ]
    assert reg.get(stuck).cleaned_at is None, "not marked: its files are still there"
    assert reg.get(fine).cleaned_at is not None


def test_an_array_ended_when_its_last_element_did(reg: Registry) -> None:
    from jobfleet.spec import parse_array

    (record,) = reg.create_jobs([NewJob("a", "local", JobSpec(["true"], array=parse_array("1-2")))])
    reg.mark_submitted(record.id, "n")
    ends = {1: Usage(ended_at=NOW - 3 * DAY), 2: Usage(ended_at=NOW - DAY)}
    reg.apply(
        [
            StatusUpdate(
                record.id,
                elements={1: (S.COMPLETED, 0, None), 2: (S.FAILED, 1, None)},
                element_usage=ends,
            )
        ]
    )
    assert ended_at(reg.get(record.id)) == NOW - DAY
    assert clean(reg, older_than_s=2 * DAY, now=NOW).removed == []
    assert clean(reg, older_than_s=DAY, now=NOW).job_ids == [record.id]


def test_two_cleans_and_a_reader_at_once_do_no_harm(reg: Registry) -> None:
    import threading

    ended = [job(reg, S.COMPLETED) for _ in range(30)]
    ended_dirs = [directory(reg, j) for j in ended]
    running = job(reg, S.RUNNING)
    reports: list[cleanup.CleanReport] = []
    errors: list[BaseException] = []

    def one_clean() -> None:
        try:
            with Registry(reg.home) as mine:  # another process's connection
                reports.append(clean(mine))
        except BaseException as exc:  # pragma: no cover - the failure the test looks for
            errors.append(exc)

    def reader() -> None:
        try:
            with Registry(reg.home) as mine:
                for _ in range(20):
                    assert len(mine.recent(100)) == 31
        except BaseException as exc:  # pragma: no cover
            errors.append(exc)

    threads = [threading.Thread(target=f) for f in (one_clean, one_clean, reader)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert all(r.failed == [] for r in reports)
    assert set(reports[0].job_ids) | set(reports[1].job_ids) == set(ended)
    assert all(reg.get(j).cleaned_at is not None for j in ended)
    assert all(d.parent == reg.home / "jobs" / "0xxx" for d in ended_dirs)
    assert not any(d.exists() for d in ended_dirs)
    assert directory(reg, running).is_dir() and reg.get(running).cleaned_at is None


def flatten(reg: Registry, job_id: str, attempt_dirs: tuple[str, ...] = ()) -> Path:
    """Move a job's directory (and those of its earlier attempts) to where an older
    jobfleet made them, ``jobs/<name>`` flat, and record it there as that one did."""
    flat = reg.home / "jobs" / directory(reg, job_id).name
    directory(reg, job_id).rename(flat)
    reg._conn.execute("UPDATE jobs SET job_dir = ? WHERE id = ?", (str(flat), int(job_id)))
    for old in attempt_dirs:
        moved = reg.home / "jobs" / Path(old).name
        Path(old).rename(moved)
        reg._conn.execute("UPDATE attempts SET job_dir = ? WHERE job_dir = ?", (str(moved), old))
    return flat


def test_an_older_homes_flat_job_directories_are_cleaned_where_they_are(
    reg: Registry,
) -> None:
    retried = job(reg, S.FAILED, JobSpec(["false"], retries=1))
    first = directory(reg, retried)
    again = reg.begin_retry(retried, 1, "retry 1 of 1: failed")
    assert again is not None and Path(again.job_dir).parent == first.parent
    reg.mark_submitted(retried, "n2")
    reg.apply([StatusUpdate(retried, S.FAILED, exit_code=1)])
    flat = flatten(reg, retried, (str(first),))
    flat_first = reg.home / "jobs" / retried
    assert flat == reg.home / "jobs" / f"{retried}.2" and flat_first.is_dir()
    assert list(first.parent.iterdir()) == []
    sharded = job(reg, S.COMPLETED)
    report = clean(reg)
    assert [(r.job_id, r.path, r.bytes) for r in report.removed] == [
        (retried, str(flat_first), 123),
        (retried, str(flat), 0),
        (sharded, str(reg.home / "jobs" / "0xxx" / sharded), 123),
    ]
    assert report.skipped == [] and not flat.exists() and not flat_first.exists()
    assert [p.name for p in (reg.home / "jobs").iterdir()] == ["0xxx"]


def test_a_shard_is_never_removed_nor_anything_beside_or_below_a_job(
    reg: Registry, tmp_path: Path
) -> None:
    keep, gone = job(reg, S.RUNNING), job(reg, S.COMPLETED)
    shard = reg.home / "jobs" / "0xxx"
    assert directory(reg, keep).parent == shard
    # Records edited by hand (or damaged): the shard itself, a directory inside a job's
    # directory (an element's shard: jobs/0xxx/<id>/0), a shard that links elsewhere.
    as_shard, below, via_link = (job(reg, S.COMPLETED) for _ in range(3))
    (directory(reg, keep) / "0").mkdir()
    outside = tmp_path / "elsewhere"
    (outside / "7001").mkdir(parents=True)
    (outside / "7001" / "precious").write_text("keep me")
    (reg.home / "jobs" / "7xxx").symlink_to(outside)
    for job_id, path in (
        (as_shard, shard),
        (below, directory(reg, keep) / "0"),
        (via_link, reg.home / "jobs" / "7xxx" / "7001"),
    ):
        reg._conn.execute("UPDATE jobs SET job_dir = ? WHERE id = ?", (str(path), int(job_id)))
    report = clean(reg)
    jobs = (reg.home / "jobs").resolve()
    assert report.job_ids == [gone]
    assert [(s.job_id, s.reason) for s in report.skipped] == [
        (as_shard, f"{shard} is named as a shard of {jobs}, not as a job's directory"
         ": left alone"),
        (below, f"{directory(reg, keep) / '0'} is not directly in {jobs} nor in a shard of it"
         ": left alone"),
        (via_link, f"{reg.home / 'jobs' / '7xxx' / '7001'} is not directly in {jobs} nor in a"
         " shard of it: left alone"),
    ]  # fmt: skip
    assert (directory(reg, keep) / "0").is_dir() and (directory(reg, keep) / "stdout").exists()
    assert (outside / "7001" / "precious").read_text() == "keep me"


def test_a_shard_emptied_by_clean_stays_and_takes_new_jobs(reg: Registry) -> None:
    ended = [job(reg, S.COMPLETED) for _ in range(3)]
    shard = directory(reg, ended[0]).parent
    assert clean(reg).job_ids == ended
    assert shard.is_dir() and list(shard.iterdir()) == []
    later = job(reg, S.COMPLETED)
    assert directory(reg, later).parent == shard and directory(reg, later).is_dir()
