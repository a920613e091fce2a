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
    tasks = ['{"shell": "echo quick", "estimate": 0.1}', '{"shell": "echo long", "estimate": 600}']
    pipe = Pipe.create(run, tasks, heartbeat=0.2, lease=1, block_size=2)
    worker = start_worker(run, **{DEADLINE_ENV: str(time.time() + 60)})
    assert worker.wait(timeout=30) == 0  # left cleanly, long before its deadline
    got = {r.number: r.state for r in pipe.results()}
    assert got == {0: S.COMPLETED, 1: S.PENDING}
    # The block was handed back at once: a worker with time left takes it.
    serve(run, workers=1)
    assert [r.state for r in pipe.results()] == [S.COMPLETED, S.COMPLETED]


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
