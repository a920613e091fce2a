"""A cancel or a time-out reaches the job's command on the fake pool, whose starter
sends SIGTERM to the job's main process only (the job script) and hard-kills the whole
family only after the vacate time (tests/shims/fakecondor_schedd.py): the job script
must pass the signal on, or the command runs on until the hard kill."""

from __future__ import annotations

import getpass
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import wait_for
from jobfleet import Fleet, JobSpec, JobState, Resources, load_config

S = JobState
SHIMS = Path(__file__).parents[2] / "shims"
#: The fake starter's vacate time here: far longer than any of these tests may take.
VACATE_S = 60
CONFIG = """\
backend: htcondor
wait:
  poll_interval: 0.3s
  min_gap: 0.1s
htcondor:
  command_timeout: 30s
  retry_backoff: 0.5s
"""

pytestmark = pytest.mark.slow


@pytest.fixture
def pool(jf_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The fake tools on PATH and their schedd running, with a long vacate time."""
    Path(os.environ["JOBFLEET_CONFIG"]).write_text(CONFIG)
    monkeypatch.setenv("PATH", f"{SHIMS / 'condor_bin'}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKECONDOR_STATE", str(tmp_path / "pool.json"))
    monkeypatch.setenv("FAKECONDOR_PYTHON", sys.executable)
    monkeypatch.setenv("FAKECONDOR_MAX_VACATE_TIME", str(VACATE_S))
    with (tmp_path / "schedd.log").open("w") as log:
        schedd = subprocess.Popen(
            [sys.executable, str(SHIMS / "fakecondor.py"), "schedd"],
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
    yield tmp_path
    schedd.send_signal(signal.SIGTERM)
    schedd.wait(timeout=30)


def test_a_cancelled_command_dies_of_the_sigterm(pool: Path) -> None:
    marker = pool / "slept"
    with Fleet(load_config()) as fleet:
        job = fleet.submit(JobSpec(["sh", "-c", f"sleep 5 && touch '{marker}'"]))
        wait_for(lambda: fleet.status([job.id])[0].state is S.RUNNING, 30, "running")
        cancelled = time.monotonic()
        fleet.cancel([job.id])
        done = fleet.wait([job.id], timeout_s=VACATE_S)[0]
    took = time.monotonic() - cancelled
    assert (done.state, done.exit_code) == (S.CANCELLED, 143), done
    assert done.reason == f"cancelled by {getpass.getuser()}"
    assert took < VACATE_S / 3, f"ended by the hard kill after {took:.0f} s, not the SIGTERM"
    time.sleep(6)
    assert not marker.exists(), "the command outlived the cancel"


def test_a_timed_out_command_dies_of_the_sigterm(pool: Path) -> None:
    marker = pool / "slept"
    spec = JobSpec(
        ["sh", "-c", f"sleep 8 && touch '{marker}'"], resources=Resources.of(walltime="2s")
    )
    with Fleet(load_config()) as fleet:
        job = fleet.submit(spec)
        done = fleet.wait([job.id], timeout_s=VACATE_S)[0]
    assert (done.state, done.exit_code) == (S.TIMEOUT, 143), done
    assert done.reason == "walltime limit exceeded (00:00:02)"
    time.sleep(8)
    assert not marker.exists(), "the command outlived the time-out"
