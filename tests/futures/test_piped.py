"""Executor(workers=N) on the local backend: calls as pipe tasks, a killed worker, a
cancelled run, a call's output."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from conftest import wait_for
from jobfleet import Executor, Fleet, JobState, load_config
from jobfleet.errors import SpecError
from jobfleet.futures import piped
from jobfleet.pipe.api import Pipe


def slow_square(x: int) -> int:
    time.sleep(0.2)
    print(f"squaring {x}")
    return x * x


@pytest.fixture
def fleet(jf_home: Path, monkeypatch: pytest.MonkeyPatch) -> Fleet:
    monkeypatch.setitem(piped.SETTINGS, "lease", 1.0)
    monkeypatch.setitem(piped.SETTINGS, "heartbeat", 0.2)
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).parent.parent))
    return Fleet(load_config())


def test_a_killed_worker_is_replaced_and_every_call_completes(fleet: Fleet) -> None:
    with Executor(fleet=fleet, workers=1) as ex:
        futures = [ex.submit(slow_square, 0)]  # a job of its own (not in a batch)
        results = ex.map(slow_square, range(30), timeout=120)
        first = next(results)
        (pipe_dir,) = {f.pipe for f in ex._dispatcher.pending()}
        assert pipe_dir is not None
        pipe = Pipe(pipe_dir)
        wait_for(lambda: pipe.dir.worker_pids(), 30, "the worker to run")
        ((_, pid),) = pipe.dir.worker_pids().values()
        os.kill(pid, signal.SIGKILL)  # the only worker: the executor submits another
        rest = list(results)
        assert futures[0].result(timeout=60) == 0 and futures[0].pipe is None
    assert [first, *rest] == [x * x for x in range(30)]
    assert len(pipe.submissions()) >= 2  # topped up
    assert sum(r.attempts for r in pipe.results()) >= 30


def test_a_calls_output_and_shutdown_cancelling_the_run(fleet: Fleet) -> None:
    ex = Executor(fleet=fleet, workers=1)
    with ex.batch():
        done = ex.submit(slow_square, 3)
    assert done.result(timeout=60) == 9
    assert done.stdout() == "squaring 3\n" and done.stderr() == ""
    assert not done.cancel()  # it ended
    with ex.batch():
        waiting = [ex.submit(time.sleep, 30) for _ in range(3)]
    assert not waiting[0].cancel()  # a task is not taken out of its run alone
    ex.shutdown(wait=True, cancel_futures=True)
    assert all(f.cancelled() for f in waiting)
    (pipe_dir,) = {f.pipe for f in waiting}
    assert pipe_dir is not None and Pipe(pipe_dir).status().state.value == "cancelled"
    record = fleet.records([str(waiting[0].job_id)])[0]
    assert record.state in (JobState.CANCELLED, JobState.COMPLETED, JobState.FAILED)


def test_workers_must_be_a_whole_number(jf_home: Path) -> None:
    for bad in (0, -1, 1.5, True):
        with pytest.raises(SpecError, match="workers: must be a whole number >= 1"):
            Executor(workers=bad)  # type: ignore[arg-type]
