"""Pipe workers as real processes on one run directory (no scheduler): claims, leases,
fencing, retries, walltime, cancel, retry and add."""

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
from jobfleet.errors import SpecError
from jobfleet.pipe.api import Pipe
from jobfleet.pipe.model import RunState, TaskState
from jobfleet.pipe.worker import DEADLINE_ENV, Worker

S = TaskState


def start_worker(run: Path, **env: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "jobfleet.pipe.worker", str(run)],
        env={**os.environ, **env},
        stderr=subprocess.DEVNULL,
    )


def serve(run: Path, workers: int = 2, **env: str) -> None:
    procs = [start_worker(run, **env) for _ in range(workers)]
    for p in procs:
        assert p.wait(timeout=120) == 0


def test_workers_run_every_task_once_and_keep_each_output(tmp_path: Path) -> None:
    run = tmp_path / "run"
    pipe = Pipe.create(run, [f"echo out-$JOBFLEET_PIPE_TASK; exit $(( {i} % 5 == 3 ))"
                             for i in range(60)], heartbeat=0.2, lease=1, block_size=3)  # fmt: skip
    serve(run, workers=3)
    results = pipe.results()
    assert [r.state for r in results].count(S.FAILED) == 12  # 3, 8, 13, ...
    assert all(r.attempts == 1 for r in results)  # exit 1 is not retried by default
    outputs = pipe.outputs()
    assert all(outputs[r.number] == f"out-{r.number}\n" for r in results)
    assert pipe.logs(3) == "out-3\n"
    status = pipe.status()
    assert status.state is RunState.FAILED and not status.ok
    assert status.counts == {"pending": 0, "running": 0, "completed": 48, "failed": 12,
                             "cancelled": 0}  # fmt: skip
    assert status.live_workers == 0  # they left
    assert [t.number for t in status.failed][:3] == [3, 8, 13]
    assert len(list((run / "out").iterdir())) <= 3  # a file per worker, not per task


def test_retryable_codes_run_again_within_the_budget(tmp_path: Path) -> None:
    run = tmp_path / "run"
    counter = tmp_path / "tries"
    counter.mkdir()
    # Task 0 fails with 75 twice, then succeeds; task 1 always fails with 75; task 2 with 1.
    script = (
        f'n=$(ls {counter} | grep -c "^$JOBFLEET_PIPE_TASK-" || true);'
        f" touch {counter}/$JOBFLEET_PIPE_TASK-$n;"
        ' case $JOBFLEET_PIPE_TASK in 0) [ "$n" -ge 2 ] || exit 75;; 1) exit 75;; 2) exit 1;; esac'
    )
    pipe = Pipe.create(run, [script] * 3, heartbeat=0.2, lease=1, max_attempts=3,
                       retry_exit_codes=[75])  # fmt: skip
    serve(run, workers=1)
    got = {r.number: (r.state, r.exit_code, r.attempts) for r in pipe.results()}
    assert got == {0: (S.COMPLETED, 0, 3), 1: (S.FAILED, 75, 3), 2: (S.FAILED, 1, 1)}


def test_a_worker_killed_mid_task_loses_its_claim_and_another_finishes(tmp_path: Path) -> None:
    run = tmp_path / "run"
    marks = tmp_path / "marks"
    marks.mkdir()
    task = f"touch {marks}/$JOBFLEET_PIPE_TASK.$$; sleep 0.3; echo done"
    pipe = Pipe.create(run, [task] * 6, heartbeat=0.2, lease=1.5, block_size=6)
    first = start_worker(run)
    wait_for(lambda: len(list(marks.iterdir())) >= 2, 30, "the first worker to be running")
    first.kill()  # SIGKILL: no goodbye, its lease just stops being renewed
    first.wait()
    killed = len(list(marks.iterdir()))
    assert pipe.status().counts["completed"] < 6
    serve(run, workers=1)  # takes the block over once the lease expired
    results = pipe.results()
    assert all(r.state is S.COMPLETED for r in results)
    # The task that was running when the worker died ran again: two attempts.
    assert [r.attempts for r in results].count(2) == 1
    assert sum(r.attempts for r in results) == 6 + 1
    assert len(list(marks.iterdir())) == killed + (6 - killed + 1)


def test_a_task_whose_workers_keep_dying_fails_at_its_budget(tmp_path: Path) -> None:
    run = tmp_path / "run"
    pipe = Pipe.create(run, ["kill -9 $PPID; sleep 5"], heartbeat=0.1, lease=0.5, max_attempts=2)
    for _ in range(2):  # each worker is killed by its task
        start_worker(run).wait(timeout=30)
        time.sleep(0.6)  # the lease expires
    serve(run, workers=1)
    (result,) = pipe.results()
    assert (result.state, result.exit_code, result.attempts) == (S.FAILED, None, 2)
    assert result.why == "its worker was lost in each of its 2 attempts"


def test_a_stale_worker_cannot_overwrite_the_new_owners_result(tmp_path: Path) -> None:
    run = tmp_path / "run"
    pipe = Pipe.create(run, ["echo new"], heartbeat=0.1, lease=0.5, block_size=1)
    stale = Worker(run)
    held = stale._claim()
    assert held is not None and held.epoch == 0
    stale.journal.write({"k": "start", "s": 0, "b": 0, "e": 0, "a": 1, "at": time.time()})
    os.utime(pipe.dir.claim_path(0, 0), (1.0, 1.0))  # paused: its lease ran out
    new = Worker(run)
    assert new.serve() == 1  # took the block over and ran the task
    # The stale worker wakes up: it cannot go on, and what it appends does not count.
    assert not pipe.dir.still_ours(0, 0)
    assert stale._run_block(held) is True
    stale.journal.write({"k": "end", "s": 0, "b": 0, "e": 0, "a": 1, "state": "failed",
                         "code": 1, "out": [0, 0], "at": time.time()})  # fmt: skip
    (result,) = Pipe(run).results()
    assert (result.state, result.exit_code, result.worker) == (S.COMPLETED, 0, new.id)
    assert Pipe(run).logs(0) == "new\n"
    assert result.attempts == 2  # the stale start, and the new owner's


def test_a_paused_worker_loses_its_lease_and_its_task_to_a_live_one(tmp_path: Path) -> None:
    run = tmp_path / "run"
    pipe = Pipe.create(run, ["sleep 1.5; echo by $$"], heartbeat=0.2, lease=1, block_size=1)
    stale = start_worker(run)
    wait_for(lambda: pipe.status().counts["running"] == 1, 30, "the task to start")
    stale.send_signal(signal.SIGSTOP)  # a long pause: no heartbeat
    try:
        serve(run, workers=1)  # the new owner takes over after the lease and finishes
    finally:
        stale.send_signal(signal.SIGCONT)
    assert stale.wait(timeout=30) == 0
    (result,) = pipe.results()
    assert result.state is S.COMPLETED and result.attempts == 2
    assert pipe.logs(0).startswith("by ")
    journals = [
        json.loads(x) for p in (run / "journal").iterdir() for x in p.read_text().split("\n") if x
    ]
    ends = [r for r in journals if r["k"] == "end"]
    # The paused worker's heartbeat found its claim gone and killed its task: at most
    # one end was recorded at its epoch, and it is not the one counted.
    assert sum(1 for r in ends if r["e"] == 1 and r["state"] == "completed") == 1


def test_a_worker_does_not_start_what_cannot_end_before_its_allocation(tmp_path: Path) -> None:
    run = tmp_path / "run"
    tasks = [
        '{"shell": "sleep 3; echo first", "estimate": 3}',
        '{"shell": "echo long", "estimate": 14}',  # fits an allocation, not what is left
        '{"shell": "echo quick", "estimate": 0.1}',  # after it: still run
        '{"shell": "echo never", "estimate": 600}',  # longer than any allocation
    ]
    pipe = Pipe.create(run, tasks, heartbeat=0.2, lease=1, block_size=4)
    worker = start_worker(run, **{DEADLINE_ENV: str(time.time() + 20)})
    assert worker.wait(timeout=30) == 0  # left cleanly, long before its deadline
    got = {r.number: (r.state, r.why) for r in pipe.results()}
    assert got[0] == (S.COMPLETED, None) and got[2] == (S.COMPLETED, None)
    assert got[1] == (S.PENDING, None)
    assert got[3][0] is S.FAILED and "longer than a worker's allocation" in str(got[3][1])
    # The block was handed back at once: a worker with time left runs what is left.
    serve(run, workers=1)
    assert [r.state for r in pipe.results()] == [S.COMPLETED] * 3 + [S.FAILED]
    assert pipe.logs(1) == "long\n"


def test_a_retry_that_would_not_end_in_time_is_left_to_another_worker(tmp_path: Path) -> None:
    run = tmp_path / "run"
    marker = tmp_path / "tried"
    # The first attempt takes 3 s and asks for a retry; 3 s more would pass the deadline.
    task = f"if [ -e {marker} ]; then echo again; else touch {marker}; sleep 3; exit 75; fi"
    pipe = Pipe.create(run, [task], heartbeat=0.2, lease=1, retry_exit_codes=[75])
    worker = start_worker(run, **{DEADLINE_ENV: str(time.time() + 10)})
    assert worker.wait(timeout=30) == 0
    (result,) = pipe.results()
    assert (result.state, result.attempts) == (S.PENDING, 1)
    serve(run, workers=1)
    (result,) = pipe.results()
    assert (result.state, result.attempts, pipe.logs(0)) == (S.COMPLETED, 2, "again\n")


def test_cancel_stops_workers_and_what_did_not_end_reads_cancelled(tmp_path: Path) -> None:
    run = tmp_path / "run"
    pipe = Pipe.create(run, ["sleep 0.2"] * 40, heartbeat=0.2, lease=1, block_size=1)
    worker = start_worker(run)
    wait_for(lambda: pipe.status().counts["completed"] >= 2, 30, "some tasks to end")
    pipe.cancel()
    assert worker.wait(timeout=30) == 0
    status = pipe.status()
    assert status.state is RunState.CANCELLED
    assert status.counts["cancelled"] > 0 and status.counts["pending"] == 0
    assert status.counts["completed"] + status.counts["cancelled"] == 40
    with pytest.raises(SpecError, match="cancelled"):
        pipe.add(["echo more"])


def test_retry_failed_and_add_after_the_end(tmp_path: Path) -> None:
    run = tmp_path / "run"
    flag = tmp_path / "fixed"
    pipe = Pipe.create(run, ["echo a", f"test -e {flag}", "echo c"], heartbeat=0.2, lease=1)
    serve(run, workers=1)
    assert pipe.status().state is RunState.FAILED
    flag.touch()
    assert pipe.retry() == 1
    assert pipe.status().counts == {"pending": 1, "running": 0, "completed": 2, "failed": 0,
                                    "cancelled": 0}  # fmt: skip
    first, count = pipe.add(["echo d"])
    assert (first, count) == (4, 1)  # slot 3 is task 1's retry
    serve(run, workers=1)
    status = pipe.status()
    assert status.ok and status.tasks == 4
    assert {r.number: r.state for r in pipe.results()} == dict.fromkeys([0, 1, 2, 4], S.COMPLETED)
    assert pipe.logs(4) == "d\n"


def test_per_task_output_when_asked(tmp_path: Path) -> None:
    run = tmp_path / "run"
    pipe = Pipe.create(run, ["echo one", "echo two >&2; exit 75"], heartbeat=0.2, lease=1,
                       retry_exit_codes=[75], max_attempts=2, per_task_output=True)  # fmt: skip
    serve(run, workers=1)
    names = sorted(p.name for p in (run / "out" / "tasks").iterdir())
    assert names == ["0-1.log", "1-1.log", "1-2.log"]  # an attempt a file
    assert [p.name for p in (run / "out").iterdir()] == ["tasks"]  # no worker file
    assert pipe.logs(0) == "one\n" and pipe.logs(1) == "two\n"
    assert pipe.outputs() == {0: "one\n", 1: "two\n"}


# -- what a review found (each failed before its fix) ------------------------------------


def test_a_stalled_fresh_claimer_does_not_run_a_block_an_orphan_taker_finished(
    tmp_path: Path,
) -> None:
    import threading

    run = tmp_path / "run"
    marks = tmp_path / "marks"
    marks.mkdir()
    pipe = Pipe.create(run, [f"touch {marks}/$JOBFLEET_PIPE_TASK.$$"] * 3, heartbeat=0.1,
                       lease=0.6, block_size=3)  # fmt: skip
    stalled = Worker(run)
    resume = threading.Event()
    take = stalled.run.take_claim

    def slow_take(block: object, epoch: int, worker: str) -> bool:
        resume.wait(30)  # stalled between moving the cursor and taking the lease
        return take(block, epoch, worker)  # type: ignore[arg-type]

    stalled.run.take_claim = slow_take  # type: ignore[method-assign]
    got: list[object] = []
    claimer = threading.Thread(target=lambda: got.append(stalled._claim()))
    claimer.start()
    wait_for(lambda: pipe.dir.cursor() == 3, 10, "the cursor to move")
    other = Worker(run)
    assert other.serve() == 3  # took the orphan after a lease, ran it, done
    resume.set()
    claimer.join(30)
    assert got == [None]  # the stalled claimer let it be
    assert len(list(marks.iterdir())) == 3  # each task ran once
    assert all(r.state is S.COMPLETED for r in pipe.results())


def test_the_heartbeat_survives_a_file_system_error(tmp_path: Path) -> None:
    run = tmp_path / "run"
    pipe = Pipe.create(run, ["sleep 1.5; echo ok"], heartbeat=0.1, lease=1, block_size=1)
    worker = Worker(run)
    renew = worker.run.renew
    failures = iter([OSError(116, "Stale file handle")] * 3)

    def flaky(start: int, epoch: int) -> bool:
        error = next(failures, None)
        if error is not None:
            raise error
        return renew(start, epoch)

    worker.run.renew = flaky  # type: ignore[method-assign]
    import threading

    serving = threading.Thread(target=worker.serve)
    serving.start()
    wait_for(lambda: pipe.status().counts["running"] == 1, 10, "the task to start")
    serve(run, workers=1)  # another worker, who would take a lease left to expire
    serving.join(30)
    (result,) = pipe.results()
    assert (result.state, result.attempts) == (S.COMPLETED, 1)  # not taken, not lost
    assert result.worker == worker.id


@pytest.mark.parametrize(
    ("line", "words"),
    [
        ('{"argv": ["echo", "hi"], "env": {"A=B": "1"}}', "env name 'A=B' is not a variable"),
        ('{"argv": ["echo", "a\\u0000b"]}', "a NUL character"),
        ('{"shell": "echo hi", "cwd": "/tmp/\\u0000"}', "a NUL character"),
    ],
)
def test_values_a_command_cannot_take_are_refused(tmp_path: Path, line: str, words: str) -> None:
    (tmp_path / "t.txt").write_text(line + "\n")
    with pytest.raises(SpecError, match=words):
        Pipe.create(tmp_path / "run", tmp_path / "t.txt")


def test_an_empty_task_file_makes_no_run_and_a_completed_run_is_not_cancelled(
    tmp_path: Path,
) -> None:
    (tmp_path / "t.txt").write_text("# only a comment\n\n")
    with pytest.raises(SpecError, match="no tasks"):
        Pipe.create(tmp_path / "run", tmp_path / "t.txt")
    assert not (tmp_path / "run").exists()
    pipe = Pipe.create(tmp_path / "run", ["true"], heartbeat=0.2, lease=1)
    serve(tmp_path / "run", workers=1)
    with pytest.raises(SpecError, match="cannot go from completed to cancelled"):
        pipe.cancel()
    assert pipe.status().ok
    with pytest.raises(SpecError, match="no tasks"):
        pipe.add([])


def test_a_bad_deadline_is_one_clear_line(tmp_path: Path) -> None:
    Pipe.create(tmp_path / "run", ["true"])
    proc = subprocess.run(
        [sys.executable, "-m", "jobfleet.pipe.worker", str(tmp_path / "run")],
        env={**os.environ, DEADLINE_ENV: "soon"}, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "JOBFLEET_PIPE_DEADLINE: 'soon' is not a Unix time" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_reader_never_counts_an_end_a_takeover_may_not_inherit(tmp_path: Path) -> None:
    run = tmp_path / "run"
    pipe = Pipe.create(run, ["true"], heartbeat=0.1, lease=0.5, block_size=1)
    stale = Worker(run)
    held = stale._claim()
    assert held is not None
    # A takeover has made its lease but not yet written its claim to its journal...
    assert pipe.dir.take_claim(held.block, 1, "taker")
    stale.journal.write({"k": "start", "s": 0, "b": 0, "e": 0, "a": 1, "at": time.time()})
    stale.journal.write({"k": "end", "s": 0, "b": 0, "e": 0, "a": 1, "state": "failed",
                         "code": 1, "out": [0, 0], "at": time.time()})  # fmt: skip
    # ... so the stale worker's end cannot be told to count yet: running, not failed.
    (result,) = Pipe(run).results()
    assert result.state is S.RUNNING


def test_an_idle_worker_looks_at_no_task_to_know_everything_ended(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from jobfleet.pipe.store import RunDir

    run = tmp_path / "run"
    pipe = Pipe.create(run, ["true"] * 20_000, block_size=10)
    lines = []
    for start in range(0, 20_000, 10):
        lines.append(json.dumps({"k": "claim", "b": start, "e": 0, "end": start + 10}))
        lines.append(json.dumps({"k": "done", "b": start, "e": 0}))
    (run / "journal" / "w.jsonl").write_text("\n".join(lines) + "\n")
    (run / "cursor" / "0").rename(run / "cursor" / "20000")
    looked: list[int] = []
    block_at = RunDir.block_at

    def counting(self: RunDir, start: int) -> object:
        looked.append(start)
        return block_at(self, start)

    monkeypatch.setattr(RunDir, "block_at", counting)
    worker = Worker(run)
    assert worker._all_ended()
    assert worker._take_orphan(set()) is None
    assert looked == []  # counted, not walked
    assert pipe.dir.total() == 20_000


def test_a_foreign_journal_line_is_skipped_and_the_records_around_it_count(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Workers write ASCII JSON lines; a line that is not a record (here bytes that are
    not even UTF-8) is skipped with a warning, and the same journal's records count."""
    run = tmp_path / "run"
    Pipe.create(run, ["echo a", "exit 3"], heartbeat=0.2, lease=1)
    serve(run, workers=1)
    [journal] = (run / "journal").iterdir()
    lines = journal.read_bytes().splitlines(keepends=True)
    journal.write_bytes(lines[0] + b"\xff\xfe not json\n" + b"".join(lines[1:]))
    fresh = Pipe(run)
    with caplog.at_level("WARNING"):
        status = fresh.status()
    assert status.counts["completed"] == 1 and status.counts["failed"] == 1, status
    assert [r.exit_code for r in status.failed] == [3]
    assert "a journal line that is not a record; skipped" in caplog.text
