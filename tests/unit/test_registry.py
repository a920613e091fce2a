"""The persistent job registry: round trips, state rules, persistence, concurrency, errors."""

from __future__ import annotations

import logging
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from jobfleet import owner
from jobfleet.errors import RegistryError, UnknownJobError
from jobfleet.registry import (
    SCHEMA_VERSION,
    SUBMITTING,
    NewJob,
    Registry,
    StatusUpdate,
    default_home,
)
from jobfleet.spec import JobSpec, Resources, parse_array, spec_from_dict
from jobfleet.states import JobState

S = JobState


@pytest.fixture
def reg(tmp_path: Path) -> Iterator[Registry]:
    with Registry(tmp_path / "home") as registry:
        registry.create_jobs([])  # a write: makes the database file, as the first submit does
        yield registry


def single(name: str = "job", backend: str = "local") -> NewJob:
    return NewJob(name, backend, JobSpec(["python", "run.py"], name=name))


def array(indices: str, name: str = "arr", backend: str = "slurm") -> NewJob:
    return NewJob(name, backend, JobSpec(["run"], name=name, array=parse_array(indices)))


def test_default_home_order() -> None:
    assert default_home({"JOBFLEET_HOME": "/x/jf", "XDG_DATA_HOME": "/xdg"}) == Path("/x/jf")
    assert default_home({"XDG_DATA_HOME": "/xdg", "HOME": "/h"}) == Path("/xdg/jobfleet")
    # The XDG spec says relative values are to be ignored.
    assert default_home({"XDG_DATA_HOME": "rel", "HOME": "/h"}) == Path("/h/.local/share/jobfleet")
    assert default_home({"HOME": "/h"}) == Path("/h/.local/share/jobfleet")


def test_registry_uses_jobfleet_home_and_makes_it_at_the_first_write(jf_home: Path) -> None:
    with Registry() as registry:
        assert registry.home == jf_home
        # Reading no registry reads an empty one and creates nothing.
        assert registry.recent() == [] and registry.unfinished() == []
        with pytest.raises(UnknownJobError):
            registry.get("1")
        assert not jf_home.exists()
        registry.create_jobs([single()])
        assert (jf_home / "registry.db").is_file()
        assert (jf_home / "jobs").is_dir()
        # Made whole under another name, then linked into place: no leftovers.
        assert sorted(p.name for p in jf_home.iterdir()) == [
            "jobs",
            "registry.db",
            "registry.db-shm",
            "registry.db-wal",
        ]


def test_create_and_get_round_trip(reg: Registry) -> None:
    spec = JobSpec(
        ["python", "train.py", "--lr", "0.1"],
        name="train",
        env={"SEED": "1"},
        resources=Resources.of(cores=4, memory="8G", walltime="2h", extra_args=["--x"]),
    )
    before = time.time()
    created = reg.create_jobs([NewJob("train", "slurm", spec), array("1-5%2")])
    assert [r.id for r in created] == ["1", "2"]
    job, arr = created
    assert (job.name, job.backend, job.state, job.submitted) == ("train", "slurm", S.UNKNOWN, False)
    assert job.native_id is None and job.exit_code is None
    assert job.reason == SUBMITTING + owner.current()  # who submits it, if it must be found
    assert before <= job.created_at == job.updated_at <= time.time()
    assert job.job_dir == str(reg.home / "jobs" / "0xxx" / "1") and Path(job.job_dir).is_dir()
    assert Path(arr.job_dir).is_dir()
    assert spec_from_dict(job.spec) == spec
    assert spec_from_dict(arr.spec).array == parse_array("1-5%2")
    assert job.elements == {} and not job.is_array
    assert sorted(arr.elements) == [1, 2, 3, 4, 5]
    assert {e.state for e in arr.elements.values()} == {S.UNKNOWN}
    assert reg.get("1") == job
    assert reg.get("2") == arr


def test_ids_increase_and_are_never_reused(reg: Registry) -> None:
    first = reg.create_jobs([single("a"), single("b"), single("c")])
    with sqlite3.connect(reg.home / "registry.db") as raw:
        raw.execute("DELETE FROM events WHERE job_id = 3")
        raw.execute("DELETE FROM jobs WHERE id = 3")
    raw.close()
    later = reg.create_jobs([single("d")]) + reg.create_jobs([single("e")])
    ids = [int(r.id) for r in first + later]
    assert ids == [1, 2, 3, 4, 5]


def test_create_nothing_is_fine(reg: Registry) -> None:
    assert reg.create_jobs([]) == []
    assert reg.recent() == []


def test_get_many_keeps_order_and_reports_first_missing(reg: Registry) -> None:
    reg.create_jobs([single("a"), single("b"), array("0-2")])
    assert [r.name for r in reg.get_many(["3", "1", "2", "1"])] == ["arr", "a", "b", "a"]
    with pytest.raises(UnknownJobError) as info:
        reg.get_many(["1", "99", "x"])
    assert info.value.job_id == "99"
    for bad in ("42", "01", "x", "", "-1", "1.0"):
        with pytest.raises(UnknownJobError):
            reg.get(bad)


def test_recent_unfinished_and_find_native(reg: Registry) -> None:
    _, b, c, _ = reg.create_jobs(
        [single("a"), single("b", "slurm"), single("c", "slurm"), single("d")]
    )
    reg.mark_submitted(b.id, "100")
    reg.mark_submitted(c.id, "100")  # schedulers reuse ids: the newest job wins
    reg.apply([StatusUpdate(b.id, S.COMPLETED, exit_code=0)])
    assert [r.name for r in reg.recent(limit=3)] == ["d", "c", "b"]
    assert [r.name for r in reg.recent()] == ["d", "c", "b", "a"]
    assert [r.name for r in reg.unfinished()] == ["a", "c", "d"]
    assert [r.name for r in reg.unfinished(backend="slurm")] == ["c"]
    assert [r.name for r in reg.unfinished(backend="pbs")] == []
    found = reg.find_native("slurm", "100")
    assert found is not None and found.id == c.id
    assert reg.find_native("local", "100") is None
    assert reg.find_native("slurm", "101") is None


def test_mark_submitted(reg: Registry) -> None:
    job, arr = reg.create_jobs([single(), array("1-3")])
    reg.apply([StatusUpdate(arr.id, elements={2: (S.CANCELLED, None, "by user")})])
    record = reg.mark_submitted(job.id, "4242")
    assert (record.state, record.submitted, record.native_id) == (S.PENDING, True, "4242")
    assert record == reg.get(job.id)
    arr_record = reg.mark_submitted(arr.id, "77")
    states = {i: e.state for i, e in arr_record.elements.items()}
    assert states == {1: S.PENDING, 2: S.CANCELLED, 3: S.PENDING}
    assert arr_record.state is S.PENDING


def test_mark_submitted_does_not_roll_back_a_seen_state(reg: Registry) -> None:
    (job,) = reg.create_jobs([single()])
    reg.apply([StatusUpdate(job.id, S.RUNNING)])
    record = reg.mark_submitted(job.id, "9")
    assert (record.state, record.submitted) == (S.RUNNING, True)


def test_mark_submit_failed(reg: Registry) -> None:
    job, arr = reg.create_jobs([single(), array("0-1")])
    record = reg.mark_submit_failed(job.id, "sbatch: invalid partition")
    assert record.state is S.FAILED and not record.submitted
    assert record.reason == "submission failed: sbatch: invalid partition"
    arr_record = reg.mark_submit_failed(arr.id, "no")
    assert {e.state for e in arr_record.elements.values()} == {S.FAILED}
    assert arr_record.state is S.FAILED and arr_record.reason == "submission failed: no"
    assert reg.unfinished() == []


def test_apply_single_job_transitions(reg: Registry) -> None:
    (job,) = reg.create_jobs([single()])
    reg.mark_submitted(job.id, "1")
    (pending,) = reg.apply([StatusUpdate(job.id, S.PENDING, reason="Priority")])
    assert (pending.state, pending.reason) == (S.PENDING, "Priority")
    # A report with no news changes nothing, not even updated_at.
    assert reg.apply([StatusUpdate(job.id, S.PENDING)]) == []
    assert reg.apply([StatusUpdate(job.id)]) == []
    assert reg.get(job.id).updated_at == pending.updated_at
    (running,) = reg.apply([StatusUpdate(job.id, S.RUNNING)])
    assert (running.state, running.reason) == (S.RUNNING, None)  # a reason belongs to a state
    assert running.updated_at >= pending.updated_at
    (done,) = reg.apply([StatusUpdate(job.id, S.COMPLETED, exit_code=0)])
    assert (done.state, done.exit_code, done.succeeded) == (S.COMPLETED, 0, True)


def test_terminal_is_final_but_missing_details_fill_in(
    reg: Registry, caplog: pytest.LogCaptureFixture
) -> None:
    (job,) = reg.create_jobs([single()])
    reg.apply([StatusUpdate(job.id, S.COMPLETED)])
    with caplog.at_level(logging.WARNING, logger="jobfleet.registry"):
        (filled,) = reg.apply([StatusUpdate(job.id, S.RUNNING, exit_code=0, reason="done")])
    assert (filled.state, filled.exit_code, filled.reason) == (S.COMPLETED, 0, "done")
    assert f"job {job.id}:" in caplog.text and "already completed" in caplog.text
    # Once known, exit code and reason are not overwritten.
    assert reg.apply([StatusUpdate(job.id, S.FAILED, exit_code=3, reason="late")]) == []
    record = reg.get(job.id)
    assert (record.state, record.exit_code, record.reason) == (S.COMPLETED, 0, "done")


def test_array_aggregation_and_exit_codes(reg: Registry) -> None:
    (arr,) = reg.create_jobs([array("1-3")])
    reg.mark_submitted(arr.id, "50")

    def elements(**by_index: tuple[JobState, int | None]) -> StatusUpdate:
        changes = {int(k[1:]): (s, code, None) for k, (s, code) in by_index.items()}
        return StatusUpdate(arr.id, elements=changes)

    (rec,) = reg.apply([elements(i1=(S.RUNNING, None))])
    assert (rec.state, rec.exit_code) == (S.RUNNING, None)
    (rec,) = reg.apply([elements(i1=(S.COMPLETED, 0), i2=(S.FAILED, 3))])
    assert (rec.state, rec.exit_code) == (S.PENDING, None)  # element 3 still waits
    (rec,) = reg.apply([elements(i3=(S.RUNNING, None))])
    assert (rec.state, rec.exit_code) == (S.RUNNING, None)
    (rec,) = reg.apply([elements(i3=(S.FAILED, 7))])
    assert (rec.state, rec.exit_code) == (S.FAILED, 7)  # the largest non-zero code
    assert {i: e.exit_code for i, e in rec.elements.items()} == {1: 0, 2: 3, 3: 7}

    (ok,) = reg.create_jobs([array("0-1")])
    (rec,) = reg.apply(
        [StatusUpdate(ok.id, elements={0: (S.COMPLETED, 0, None), 1: (S.COMPLETED, None, None)})]
    )
    assert (rec.state, rec.exit_code, rec.succeeded) == (S.COMPLETED, 0, True)

    (unknown_code,) = reg.create_jobs([array("0-1")])
    (rec,) = reg.apply(
        [
            StatusUpdate(
                unknown_code.id, elements={0: (S.COMPLETED, 0, None), 1: (S.LOST, None, None)}
            )
        ]
    )
    assert (rec.state, rec.exit_code) == (S.LOST, None)


def test_array_job_level_state_applies_to_unfinished_elements(reg: Registry) -> None:
    (arr,) = reg.create_jobs([array("1-4")])
    reg.apply([StatusUpdate(arr.id, elements={1: (S.COMPLETED, 0, None)})])
    (rec,) = reg.apply([StatusUpdate(arr.id, S.CANCELLED, elements={2: (S.FAILED, 9, "oom-ish")})])
    states = {i: e.state for i, e in rec.elements.items()}
    assert states == {1: S.COMPLETED, 2: S.FAILED, 3: S.CANCELLED, 4: S.CANCELLED}
    assert (rec.state, rec.exit_code) == (S.FAILED, 9)


def test_array_elements_are_final_too(reg: Registry, caplog: pytest.LogCaptureFixture) -> None:
    (arr,) = reg.create_jobs([array("1-2")])
    reg.apply([StatusUpdate(arr.id, elements={1: (S.TIMEOUT, None, None)})])
    with caplog.at_level(logging.WARNING, logger="jobfleet.registry"):
        (rec,) = reg.apply([StatusUpdate(arr.id, elements={1: (S.RUNNING, 140, None)})])
    assert (rec.elements[1].state, rec.elements[1].exit_code) == (S.TIMEOUT, 140)
    assert "element 1 already timeout" in caplog.text


def test_unknown_element_and_element_update_for_single_job_are_ignored(
    reg: Registry, caplog: pytest.LogCaptureFixture
) -> None:
    arr, job = reg.create_jobs([array("1-2"), single()])
    with caplog.at_level(logging.WARNING, logger="jobfleet.registry"):
        changed = reg.apply(
            [
                StatusUpdate(arr.id, elements={9: (S.RUNNING, None, None)}),
                StatusUpdate(job.id, elements={0: (S.RUNNING, None, None)}),
            ]
        )
    assert changed == []
    assert sorted(reg.get(arr.id).elements) == [1, 2]
    assert f"job {arr.id}: no array element 9" in caplog.text
    assert f"job {job.id}: not an array" in caplog.text


def test_apply_returns_only_changed_records(reg: Registry) -> None:
    a, b, c = reg.create_jobs([single("a"), single("b"), array("0-1")])
    reg.apply([StatusUpdate(b.id, S.RUNNING)])
    changed = reg.apply(
        [
            StatusUpdate(a.id, S.RUNNING),
            StatusUpdate(b.id, S.RUNNING),  # no news
            StatusUpdate(c.id, elements={0: (S.UNKNOWN, None, None)}),  # no news
            StatusUpdate(a.id, S.COMPLETED, exit_code=0),  # same job twice: listed once
        ]
    )
    assert [(r.id, r.state) for r in changed] == [(a.id, S.COMPLETED)]


def test_apply_with_an_unknown_job_applies_nothing(reg: Registry) -> None:
    (job,) = reg.create_jobs([single()])
    with pytest.raises(UnknownJobError):
        reg.apply([StatusUpdate(job.id, S.RUNNING), StatusUpdate("404", S.RUNNING)])
    assert reg.get(job.id).state is S.UNKNOWN


def test_events_record_the_history(reg: Registry) -> None:
    job, arr = reg.create_jobs([single(), array("1-2")])
    reg.mark_submitted(job.id, "1")
    reg.apply([StatusUpdate(job.id, S.RUNNING)])
    reg.apply([StatusUpdate(job.id, S.FAILED, exit_code=2, reason="NonZeroExitCode")])
    history = [
        (e["old_state"], e["new_state"], e["exit_code"], e["reason"]) for e in reg.events(job.id)
    ]
    assert history == [
        (None, "unknown", None, SUBMITTING + owner.current()),
        ("unknown", "pending", None, None),
        ("pending", "running", None, None),
        ("running", "failed", 2, "NonZeroExitCode"),
    ]
    events = reg.events(job.id)
    assert all(e["job_id"] == job.id and e["idx"] is None for e in events)
    assert [e["at"] for e in events] == sorted(e["at"] for e in events)

    reg.apply([StatusUpdate(arr.id, elements={2: (S.RUNNING, None, None)})])
    arr_events = [(e["idx"], e["old_state"], e["new_state"]) for e in reg.events(arr.id)]
    assert arr_events == [
        (None, None, "unknown"),
        (2, "unknown", "running"),
        (None, "unknown", "running"),
    ]
    with pytest.raises(UnknownJobError):
        reg.events("404")


def test_a_second_registry_sees_what_the_first_wrote(tmp_path: Path) -> None:
    with Registry(tmp_path) as first, Registry(tmp_path) as second:
        (job,) = first.create_jobs([single()])
        first.mark_submitted(job.id, "12")
        assert second.get(job.id).native_id == "12"
        second.apply([StatusUpdate(job.id, S.RUNNING)])
        assert first.get(job.id).state is S.RUNNING
        assert [r.id for r in first.unfinished()] == [job.id]
    with Registry(tmp_path) as reopened:
        assert reopened.get(job.id).state is S.RUNNING


def test_changes_are_committed_before_apply_returns(reg: Registry) -> None:
    (job,) = reg.create_jobs([single()])
    reg.apply([StatusUpdate(job.id, S.COMPLETED, exit_code=0)])
    raw = sqlite3.connect(reg.home / "registry.db")
    try:
        row = raw.execute(
            "SELECT state, exit_code FROM jobs WHERE id = ?", (int(job.id),)
        ).fetchone()
    finally:
        raw.close()
    assert row == ("completed", 0)


def test_database_settings(reg: Registry) -> None:
    raw = sqlite3.connect(reg.home / "registry.db")
    try:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert raw.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        plan = raw.execute(
            "EXPLAIN QUERY PLAN SELECT id FROM jobs WHERE backend = 'x' AND native_id = 'y'"
        ).fetchall()
    finally:
        raw.close()
    assert "INDEX" in str(plan)


def test_one_registry_shared_by_threads(reg: Registry) -> None:
    def work(n: int) -> None:
        jobs = reg.create_jobs([single(f"t{n}-{i}") for i in range(25)])
        reg.apply([StatusUpdate(r.id, S.RUNNING) for r in jobs])

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    records = reg.recent(limit=1000)
    assert len(records) == 200 and len({r.id for r in records}) == 200
    assert {r.state for r in records} == {S.RUNNING}


_WORKER = """
import sys, time
from jobfleet.registry import NewJob, Registry, StatusUpdate
from jobfleet.spec import JobSpec
from jobfleet.states import JobState

home, worker, start = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
while time.time() < start:
    time.sleep(0.001)
with Registry(home) as reg:
    for batch in range(10):
        new = [NewJob(f"w{worker}-{batch}-{i}", "local", JobSpec(["true"])) for i in range(10)]
        jobs = reg.create_jobs(new)
        for job in jobs:
            reg.mark_submitted(job.id, f"native-{job.name}")
        reg.apply([StatusUpdate(job.id, JobState.RUNNING) for job in jobs])
        reg.apply(
            [StatusUpdate(j.id, JobState.FAILED, exit_code=worker + 1, reason=j.name) for j in jobs]
        )
"""


def test_concurrent_processes_lose_nothing(tmp_path: Path) -> None:
    home = tmp_path / "shared"  # created by the racing workers themselves
    start = time.time() + 1.5
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WORKER, str(home), str(n), str(start)],
            stderr=subprocess.PIPE,
            text=True,
            env=dict(os.environ),
        )
        for n in range(4)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, err
    with Registry(home) as reg:
        records = reg.recent(limit=10_000)
        assert len(records) == 400
        assert len({r.id for r in records}) == 400
        assert sorted(int(r.id) for r in records) == list(range(1, 401))
        for r in records:
            worker = int(r.name[1 : r.name.index("-")])
            assert (r.state, r.exit_code, r.reason) == (S.FAILED, worker + 1, r.name)
            assert (r.native_id, r.submitted) == (f"native-{r.name}", True)
        sample = records[::37]
        for r in sample:
            assert [e["new_state"] for e in reg.events(r.id)] == [
                "unknown",
                "pending",
                "running",
                "failed",
            ]
    raw = sqlite3.connect(home / "registry.db")
    try:
        assert raw.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert raw.execute("SELECT count(*) FROM events").fetchone()[0] == 400 * 4
    finally:
        raw.close()


def test_corrupt_database_is_a_registry_error(tmp_path: Path) -> None:
    tmp_path.joinpath("registry.db").write_bytes(b"this is not sqlite at all " * 200)
    with pytest.raises(RegistryError) as info:
        Registry(tmp_path)
    assert not isinstance(info.value, sqlite3.Error)
    assert str(tmp_path / "registry.db") in str(info.value)
    assert "damaged" in str(info.value)


def test_unusable_home_is_a_registry_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(RegistryError) as info:
        Registry(blocker / "home")
    assert str(blocker / "home") in str(info.value)

    db_is_a_dir = tmp_path / "home2"
    (db_is_a_dir / "registry.db").mkdir(parents=True)
    with pytest.raises(RegistryError) as info:
        Registry(db_is_a_dir)
    assert str(db_is_a_dir / "registry.db") in str(info.value)


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write to read-only directories")
def test_read_only_home_is_a_registry_error(tmp_path: Path) -> None:
    home = tmp_path / "ro"
    (home / "jobs").mkdir(parents=True)
    home.chmod(0o500)
    try:
        with Registry(home) as registry:
            assert registry.recent() == []  # no registry: reading it creates nothing
            with pytest.raises(RegistryError) as info:
                registry.create_jobs([single()])
        assert f"{home} is not writable" in str(info.value)
    finally:
        home.chmod(0o700)


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    with Registry(tmp_path) as registry:
        registry.create_jobs([])  # makes it
    raw = sqlite3.connect(tmp_path / "registry.db")
    raw.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    raw.close()
    with pytest.raises(RegistryError, match="newer jobfleet"):
        Registry(tmp_path)


def test_closed_registry_raises_registry_error(tmp_path: Path) -> None:
    registry = Registry(tmp_path)
    registry.close()
    with pytest.raises(RegistryError):
        registry.recent()


def test_mark_submitted_many(reg: Registry) -> None:
    a, b = reg.create_jobs([single("a"), array("0-1")])
    records = reg.mark_submitted_many([(b.id, "20_[0-1]"), (a.id, "19")])
    assert [(r.id, r.native_id, r.state) for r in records] == [
        (b.id, "20_[0-1]", S.PENDING),
        (a.id, "19", S.PENDING),
    ]
    assert reg.mark_submitted_many([]) == []
    with pytest.raises(UnknownJobError):
        reg.mark_submitted_many([(a.id, "21"), ("404", "22")])
    assert reg.get(a.id).native_id == "19"  # all or nothing


def test_loading_many_arrays_takes_two_queries(reg: Registry) -> None:
    reg.create_jobs([array("1-50", name=f"a{i}") for i in range(30)] + [single()])
    statements: list[str] = []
    reg._conn.set_trace_callback(statements.append)
    try:
        records = reg.recent(limit=100)
    finally:
        reg._conn.set_trace_callback(None)
    assert len(records) == 31 and sum(len(r.elements) for r in records) == 30 * 50
    assert [s.split()[0] for s in statements] == ["BEGIN", "SELECT", "SELECT", "COMMIT"]


def test_large_array(reg: Registry) -> None:
    (big,) = reg.create_jobs([array("0-99999")])
    reg.mark_submitted(big.id, "7")
    running = {i: (S.RUNNING, None, None) for i in range(0, 100_000, 2)}
    (rec,) = reg.apply([StatusUpdate(big.id, elements=running)])
    assert rec.state is S.RUNNING and len(rec.elements) == 100_000
    (rec,) = reg.apply([StatusUpdate(big.id, S.COMPLETED)])
    assert (rec.state, rec.exit_code) == (S.COMPLETED, 0)
    assert {e.state for e in reg.get(big.id).elements.values()} == {S.COMPLETED}


def test_mark_submit_failed_many(reg: Registry) -> None:
    a, b, c = reg.create_jobs([single("a"), array("0-1"), single("c")])
    records = reg.mark_submit_failed_many([(b.id, "no"), (a.id, "nope")])
    assert [(r.id, r.state, r.reason) for r in records] == [
        (b.id, S.FAILED, "submission failed: no"),
        (a.id, S.FAILED, "submission failed: nope"),
    ]
    assert reg.get(c.id).state is S.UNKNOWN
    with pytest.raises(UnknownJobError):
        reg.mark_submit_failed_many([(c.id, "x"), ("404", "y")])
    assert reg.get(c.id).state is S.UNKNOWN  # all or nothing


def test_job_directories_are_never_reused(tmp_path: Path) -> None:
    # As after registry.db was moved aside: ids start at 1 again, old job dirs remain.
    old = tmp_path / "jobs" / "0xxx" / "1"
    old.mkdir(parents=True)
    (old / "exit_code").write_text("0\n")
    with Registry(tmp_path) as registry:
        first, second = registry.create_jobs([single("a"), single("b")])
        assert first.id == "1"
        assert Path(first.job_dir) != old
        assert Path(first.job_dir).parent == old.parent, "in its shard all the same"
        assert Path(first.job_dir).name.startswith("1-")
        assert Path(first.job_dir).is_dir() and list(Path(first.job_dir).iterdir()) == []
        assert (old / "exit_code").read_text() == "0\n"  # the old job's files are left alone
        assert second.job_dir == str(tmp_path / "jobs" / "0xxx" / "2")
        # A retry whose directory is taken falls back the same way, beside the job.
        taken = old.parent / "2.2"
        taken.mkdir()
        registry.mark_submitted(second.id, "n2")
        registry.apply([StatusUpdate(second.id, S.FAILED, exit_code=1)])
        again = registry.begin_retry(second.id, 1, "retry")
        assert again is not None and Path(again.job_dir).parent == old.parent
        assert Path(again.job_dir).name.startswith("2.2-") and Path(again.job_dir).is_dir()
        assert list(taken.iterdir()) == []


def test_jobs_go_in_a_shard_of_their_thousand(tmp_path: Path) -> None:
    """``jobs/<id // 1000>xxx/<id>``, retries beside the job; an older home's flat
    ``jobs/<id>`` directories, even one named like a new shard's number, are left as they
    are and never hold a new job."""
    flat = tmp_path / "jobs" / "1"  # an older jobfleet's job 1: also "shard 1" were it numeric
    flat.mkdir(parents=True)
    (flat / "exit_code").write_text("3\n")
    with Registry(tmp_path) as registry:
        (one,) = registry.create_jobs([single("j")])
        assert one.job_dir == str(tmp_path / "jobs" / "0xxx" / "1")
        registry._conn.execute("UPDATE sqlite_sequence SET seq = 998 WHERE name = 'jobs'")
        made = registry.create_jobs([single(f"j{i}") for i in range(3)])
        assert [r.id for r in made] == ["999", "1000", "1001"]
        assert [str(Path(r.job_dir).relative_to(tmp_path)) for r in made] == [
            "jobs/0xxx/999",
            "jobs/1xxx/1000",
            "jobs/1xxx/1001",
        ]
        registry.mark_submitted("1000", "n")
        registry.apply([StatusUpdate("1000", S.FAILED, exit_code=1)])
        again = registry.begin_retry("1000", 1, "retry")
        assert again is not None and again.job_dir == str(tmp_path / "jobs" / "1xxx" / "1000.2")
    assert sorted(p.name for p in (tmp_path / "jobs").iterdir()) == ["0xxx", "1", "1xxx"]
    assert [p.name for p in flat.iterdir()] == ["exit_code"]
    modes = {p.stat().st_mode & 0o777 for p in (tmp_path / "jobs").glob("*xxx")}
    assert modes == {0o700}


def test_files_doctests() -> None:
    import doctest

    from jobfleet.registry import files

    result = doctest.testmod(files)
    assert result.failed == 0 and result.attempted >= 2


def test_a_shard_removed_by_hand_is_made_again(tmp_path: Path) -> None:
    with Registry(tmp_path) as registry:
        (first,) = registry.create_jobs([single()])
        shard = Path(first.job_dir).parent
        Path(first.job_dir).rmdir()
        shard.rmdir()
        (second,) = registry.create_jobs([single()])
        assert Path(second.job_dir).parent == shard and Path(second.job_dir).is_dir()
        (shard.parent).rename(tmp_path / "jobs.gone")  # jobs/ itself too
        (third,) = registry.create_jobs([single()])
        assert third.job_dir == str(tmp_path / "jobs" / "0xxx" / "3")
    assert (tmp_path / "jobs").stat().st_mode & 0o777 == 0o700


def test_a_jobs_folder_removed_by_hand_is_made_again_private(tmp_path: Path) -> None:
    with Registry(tmp_path) as registry:
        registry.create_jobs([single("a")])
        shutil.rmtree(tmp_path / "jobs")
        (job,) = registry.create_jobs([single("b")])
    assert job.job_dir == str(tmp_path / "jobs" / "0xxx" / "2") and Path(job.job_dir).is_dir()
    for made in (tmp_path / "jobs", tmp_path / "jobs" / "0xxx"):
        assert made.stat().st_mode & 0o777 == 0o700


def test_a_fresh_home_is_private(tmp_path: Path) -> None:
    home = tmp_path / "new" / "home"
    with Registry(home) as registry:
        (job,) = registry.create_jobs([single()])
    shard = Path(job.job_dir).parent
    mode = {p: p.stat().st_mode & 0o777 for p in (home, home / "jobs", shard, Path(job.job_dir))}
    assert mode == {home: 0o700, home / "jobs": 0o700, shard: 0o700, Path(job.job_dir): 0o700}
    assert (home / "registry.db").stat().st_mode & 0o777 == 0o600


def test_an_existing_home_keeps_its_mode(tmp_path: Path) -> None:
    home = tmp_path / "mine"
    home.mkdir()
    home.chmod(0o755)
    with Registry(home) as registry:
        registry.create_jobs([])  # the first write makes the registry
    assert home.stat().st_mode & 0o777 == 0o755
    assert (home / "jobs").stat().st_mode & 0o777 == 0o700


def test_states_from_a_newer_jobfleet_read_as_unknown(
    reg: Registry, caplog: pytest.LogCaptureFixture
) -> None:
    job, arr = reg.create_jobs([single(), array("1-3")])
    reg.mark_submitted_many([(job.id, "7"), (arr.id, "8")])
    with sqlite3.connect(reg.home / "registry.db") as raw:
        raw.execute("UPDATE jobs SET state = 'suspended'")
        raw.execute("UPDATE elements SET state = 'suspended' WHERE idx != 1")
        raw.execute("UPDATE events SET new_state = 'suspended' WHERE old_state IS NOT NULL")
    raw.close()
    with caplog.at_level(logging.WARNING, logger="jobfleet.registry"):
        record, arr_record = reg.get_many([job.id, arr.id])
        history = reg.events(job.id)
    assert record.state is S.UNKNOWN
    assert arr_record.state is S.UNKNOWN
    assert {i: e.state for i, e in arr_record.elements.items()} == {
        1: S.PENDING,
        2: S.UNKNOWN,
        3: S.UNKNOWN,
    }
    assert [(e["old_state"], e["new_state"]) for e in history] == [
        (None, "unknown"),
        ("unknown", "unknown"),
    ]
    assert f"job {job.id}: unknown state 'suspended'" in caplog.text
    assert f"job {arr.id}: unknown state 'suspended' of elements" in caplog.text
    assert caplog.text.count(f"job {arr.id}: unknown state 'suspended' of elements") == 1
    # Polls still update such jobs.
    reg.apply(
        [
            StatusUpdate(job.id, S.COMPLETED, exit_code=0),
            StatusUpdate(arr.id, elements={2: (S.RUNNING, None, None)}),
        ]
    )
    assert reg.get(job.id).state is S.COMPLETED
    assert reg.get(arr.id).elements[2].state is S.RUNNING


def test_each_registry_has_its_own_lasting_token(tmp_path: Path) -> None:
    with Registry(tmp_path / "a") as first:
        first.create_jobs([])  # the registry's life starts with its first write
        token = first.token
    with Registry(tmp_path / "a") as again:
        assert again.token == token  # fixed for the registry's life
    (tmp_path / "a" / "registry.db").rename(tmp_path / "old.db")
    with Registry(tmp_path / "a") as replaced:
        replaced.create_jobs([])
        # Same place, new registry: its job 1 must never be taken for the old job 1.
        assert replaced.token != token and len(replaced.token) == 8
