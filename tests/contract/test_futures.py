"""Python functions as jobs, on every backend of the contract suite.

The executor's promises end to end (issue "Python functions as jobs"): ``map`` is
one array whose results come back in order, an exception keeps its type and its
remote traceback, a timed-out call raises JobFailedError, a waiting call can be
cancelled, a function of a script's ``__main__`` runs (pickled by value), and a
second process reattaches to a call after the first one was killed.
"""

from __future__ import annotations

import concurrent.futures
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from conftest import wait_for
from jobfleet import Executor, Fleet, JobFailedError, JobState
from jobfleet.futures.payload import Call
from jobfleet.units import parse_walltime

from .conftest import BackendUnderTest

PY = sys.executable
WAIT_S = 240
TESTS = Path(__file__).parent.parent


class Refused(ValueError):
    """An exception of the caller's own type."""


def refuse(value: int) -> None:
    raise Refused(f"refused {value}")


class Resumable:
    """Runs until its walltime ends it, unless it was resumed from a checkpoint: a first
    attempt cannot finish, whenever the scheduler enforces the limit (Grid Engine's
    h_rt is seconds late); the attempt after it runs the call its checkpoint returned."""

    def __init__(self, log: str, checkpoints: int = 0) -> None:
        self.log = log
        self.checkpoints = checkpoints

    def __call__(self, answer: int) -> str:
        while not self.checkpoints:
            time.sleep(0.5)
        return f"{answer} after {self.checkpoints} checkpoint(s)"

    def checkpoint(self, answer: int) -> Call:
        with open(self.log, "a") as log:
            log.write(f"checkpoint {self.checkpoints}\n")
        # A copy: this attempt goes on as it was until its walltime ends it.
        return Call.of(Resumable(self.log, self.checkpoints + 1), answer)


@pytest.fixture(autouse=True)
def importable_tests(monkeypatch: pytest.MonkeyPatch) -> None:
    """Jobs import this module by name (functions pickle by reference), as a user's
    job imports the user's library."""
    monkeypatch.setenv("PYTHONPATH", str(TESTS))


def test_map_is_one_array_with_results_in_order(fleet: Fleet) -> None:
    with Executor(fleet=fleet) as ex:
        before = {r.id for r in fleet.recent(100)}
        results = list(ex.map(pow, range(50), [2] * 50, timeout=WAIT_S))
    assert results == [i * i for i in range(50)]
    made = [r for r in fleet.recent(100) if r.id not in before]
    assert len(made) == 1, "one array job, not one job per call"
    assert len(made[0].elements) == 50


def test_map_as_pipe_tasks_is_one_array_of_workers(fleet: Fleet) -> None:
    """Executor(workers=N): the calls are pipe tasks served by N workers, ONE array job."""
    with Executor(fleet=fleet, workers=2) as ex:
        before = {r.id for r in fleet.recent(100)}
        results = list(ex.map(pow, range(40), [2] * 40, timeout=WAIT_S))
        failing = ex.map(refuse, [3], timeout=WAIT_S)
        with pytest.raises(Refused, match="refused 3"):
            next(failing)
    assert results == [i * i for i in range(40)]
    made = [r for r in fleet.recent(100) if r.id not in before]
    # Two workers as one array job, then one worker as a single job: never a job per call.
    assert sorted(len(r.elements) for r in made) == [0, 2], made


def test_an_exception_keeps_its_type_and_remote_traceback(fleet: Fleet) -> None:
    with Executor(fleet=fleet) as ex:
        future = ex.submit(refuse, 7)
        with pytest.raises(Refused, match="refused 7") as caught:
            future.result(timeout=WAIT_S)
    notes = "\n".join(getattr(caught.value, "__notes__", [])) or str(caught.value.__cause__)
    assert "Remote traceback" in notes or "jobfleet job" in notes
    assert 'raise Refused(f"refused {value}")' in notes, notes
    assert future.record().state is JobState.FAILED


@pytest.mark.waits_on_clock
@pytest.mark.slow
def test_a_timed_out_call_raises_job_failed(fleet: Fleet, backend: BackendUnderTest) -> None:
    with Executor(fleet=fleet, resources={"walltime": backend.walltime}) as ex:
        future = ex.submit(time.sleep, 300)
        with pytest.raises(JobFailedError) as caught:
            future.result(timeout=WAIT_S)
    assert caught.value.state == "timeout", caught.value
    assert caught.value.job_id == future.job_id
    assert caught.value.stdout.endswith("stdout") or caught.value.stdout


@pytest.mark.waits_on_clock
@pytest.mark.slow
def test_a_checkpointed_call_goes_on_after_its_walltime(
    fleet: Fleet, backend: BackendUnderTest, tmp_path: Path
) -> None:
    walltime = max(parse_walltime(backend.walltime, "walltime"), 10)
    log = tmp_path / "checkpoints"
    with Executor(fleet=fleet, resources={"walltime": f"{walltime}s"}) as ex:
        future = ex.submit(Resumable(str(log)), 42)
        assert future.result(timeout=WAIT_S * 2) == "42 after 1 checkpoint(s)"
    record = future.record()
    assert (record.state, record.attempt) == (JobState.COMPLETED, 2), record
    assert log.read_text().splitlines()[0] == "checkpoint 0"


def test_cancel_a_waiting_call_and_a_running_one(fleet: Fleet) -> None:
    ex = Executor(fleet=fleet, max_concurrent=1)
    with ex.batch():
        running = ex.submit(time.sleep, 300)
        waiting = ex.submit(pow, 2, 10)
    assert running.job_id == waiting.job_id, "one array"
    wait_for(running.running, timeout_s=WAIT_S, what="the first call to run")
    assert not waiting.running()
    assert waiting.cancel() is True, fleet.status([str(waiting.job_id)])[0]
    assert waiting.cancelled()
    with pytest.raises(concurrent.futures.CancelledError):
        waiting.result(timeout=1)
    assert running.cancel() is True, fleet.status([str(running.job_id)])[0].elements
    ex.shutdown(wait=True)
    done = fleet.wait([str(running.job_id)], timeout_s=WAIT_S)[0]
    assert {i: e.state for i, e in done.elements.items()} == {
        1: JobState.CANCELLED,
        2: JobState.CANCELLED,
    }


SCRIPT = """
import sys
from jobfleet import Executor

class Point:
    def __init__(self, x):
        self.x = x

def scale(p, k):
    return Point(p.x * k)

if __name__ == "__main__":
    with Executor() as ex:
        print(ex.submit(scale, Point(3), 7).result(timeout=240).x)
"""


def test_a_function_of_a_scripts_main_runs(fleet: Fleet, tmp_path: Path) -> None:
    script = tmp_path / "study.py"
    script.write_text(textwrap.dedent(SCRIPT))
    proc = subprocess.run([PY, str(script)], capture_output=True, text=True, timeout=WAIT_S + 30)
    assert (proc.returncode, proc.stdout) == (0, "21\n"), proc.stderr


CRASHER = """
import os, signal, time
from jobfleet import Executor

def slow_answer():
    time.sleep(3)
    return 42

ex = Executor()
print(ex.submit(slow_answer).job_id, flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_second_process_reattaches_after_a_crash(fleet: Fleet, tmp_path: Path) -> None:
    script = tmp_path / "crasher.py"
    script.write_text(textwrap.dedent(CRASHER))
    proc = subprocess.run([PY, str(script)], capture_output=True, text=True, timeout=WAIT_S)
    assert proc.returncode == -9, proc.stderr
    job_id = proc.stdout.strip()
    future = Executor.attach(job_id, fleet=fleet)
    assert future.result(timeout=WAIT_S) == 42
    assert Path(future.record().job_dir).exists()


def test_fakecondor_cancel_of_an_element_not_materialized_says_false(
    fakecondor_home: Path,
) -> None:
    """HTCondor cannot remove an element its factory has not made yet: cancel() says
    False (and logs why) instead of raising; the call then runs and returns."""
    with Fleet() as fleet:
        ex = Executor(fleet=fleet, max_concurrent=1)
        with ex.batch():
            first = ex.submit(time.sleep, 2)
            second = ex.submit(pow, 2, 10)
        assert second.cancel() is False
        assert second.result(timeout=WAIT_S) == 1024
        assert first.result(timeout=WAIT_S) is None
        ex.shutdown()
