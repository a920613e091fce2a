"""Shared fixtures. Every test gets its own JOBFLEET_HOME so no state leaks."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

#: Configuration for tests of the local backend: a short grace period and an
#: agent that exits soon after the test, so no daemon outlives the suite.
LOCAL_TEST_CONFIG = """\
backend: local
local:
  cores: {cores}
  cancel_grace: 1s
  idle_exit: 3s
wait:
  poll_interval: 0.2s
"""


def stop_agent(home: Path) -> None:
    """Stop the local agent of ``home`` and every job process it left behind."""
    for lock in home.glob("local/*/agent.lock"):
        with contextlib.suppress(OSError, ValueError):
            os.kill(int(lock.read_text().strip()), signal.SIGTERM)
    for marker in (home / "jobs").glob("*/started*"):
        with contextlib.suppress(OSError, ValueError):
            os.killpg(int(marker.read_text().strip()), signal.SIGKILL)


@pytest.fixture
def jf_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh JOBFLEET_HOME and a config file for it, both exported to child processes."""
    home = tmp_path / "jfhome"
    config = tmp_path / "jobfleet.yaml"
    config.write_text(LOCAL_TEST_CONFIG.format(cores=2))
    monkeypatch.setenv("JOBFLEET_HOME", str(home))
    monkeypatch.setenv("JOBFLEET_CONFIG", str(config))
    yield home
    stop_agent(home)


def agent_lock(home: Path) -> Path:
    """The local agent's lock file (holding its pid) for ``home`` on this host."""
    from jobfleet.backends.local import queue_directory

    return queue_directory(home) / "agent.lock"


def wait_for(predicate: object, timeout_s: float = 30.0, what: str = "condition") -> None:
    """Poll ``predicate()`` until true; fail the test with ``what`` after ``timeout_s``."""
    assert callable(predicate)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    pytest.fail(f"timed out after {timeout_s}s waiting for {what}")


SLURM_TEST_CONFIG = """\
backend: slurm
wait:
  poll_interval: 0.5s
  min_gap: 0.2s
slurm:
  command_timeout: 30s
  retry_backoff: 0.5s
"""


def cluster_unavailable(
    submit: str, probe: list[str], usable: str, name: str, up: str
) -> str | None:
    """Why a live cluster's tests cannot run here, or None when it answers.

    Args:
        submit: its submit command, to see whether the client tools are installed.
        probe: a cheap command that lists its nodes or queues.
        usable: text the probe prints when a node or queue can take jobs.
        name: the scheduler's name, for the message.
        up: the script that starts a test cluster.
    """
    import shutil
    import subprocess

    if shutil.which(submit) is None:
        return (
            f"no {name} client tools: scripts/test.sh installs and starts a test cluster "
            f"when run as root ({up})"
        )
    try:
        proc = subprocess.run(probe, capture_output=True, text=True, timeout=15)
    except subprocess.TimeoutExpired:
        return f"{name} did not answer {probe[0]} within 15 s"
    if proc.returncode != 0 or usable not in proc.stdout:
        return f"no usable {name} node or queue ({proc.stdout.strip() or proc.stderr.strip()})"
    return None


def slurm_unavailable() -> str | None:
    return (
        cluster_unavailable(
            "sbatch",
            ["sinfo", "--noheader", "--format=%T"],
            "",
            "SLURM",
            "tests/cluster/slurm-up.sh",
        )
        or _no_slurm_node()
    )


def _no_slurm_node() -> str | None:
    import subprocess

    states = subprocess.run(
        ["sinfo", "--noheader", "--format=%T"], capture_output=True, text=True, timeout=15
    ).stdout.split()
    if not any(s.rstrip("*~#") in ("idle", "mixed", "allocated") for s in states):
        return f"no usable SLURM node (sinfo: {' '.join(states) or 'nothing'})"
    return None


@pytest.fixture(scope="session")
def slurm_cluster() -> None:
    """Skip (saying why) unless a live SLURM cluster answers."""
    reason = slurm_unavailable()
    if reason is not None:
        pytest.skip(reason)


@pytest.fixture
def slurm_home(jf_home: Path, slurm_cluster: None) -> Path:
    """A JOBFLEET_HOME whose configuration sends jobs to the live SLURM cluster."""
    Path(os.environ["JOBFLEET_CONFIG"]).write_text(SLURM_TEST_CONFIG)
    return jf_home


SGE_TEST_CONFIG = """\
backend: sge
wait:
  poll_interval: 0.5s
  min_gap: 0.2s
sge:
  command_timeout: 30s
  retry_backoff: 0.5s
"""


def sge_unavailable() -> str | None:
    return cluster_unavailable(
        "qsub", ["qstat", "-f"], "@", "Grid Engine", "tests/cluster/sge-up.sh"
    )


@pytest.fixture(scope="session")
def sge_cluster() -> None:
    """Skip (saying why) unless a live Grid Engine cluster answers."""
    reason = sge_unavailable()
    if reason is not None:
        pytest.skip(reason)


@pytest.fixture
def sge_home(jf_home: Path, sge_cluster: None) -> Path:
    """A JOBFLEET_HOME whose configuration sends jobs to the live Grid Engine cluster."""
    Path(os.environ["JOBFLEET_CONFIG"]).write_text(SGE_TEST_CONFIG)
    return jf_home
