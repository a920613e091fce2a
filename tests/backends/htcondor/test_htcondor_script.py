"""The HTCondor job script passes the signals it gets on to the command: HTCondor's
starter signals the job's main process only (os_proc.cpp, ``kill(JobPid, sig)``), so
a signal the script kept for itself would never reach the command."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from conftest import wait_for
from jobfleet import JobSpec
from jobfleet.backends.htcondor import HTCONDOR
from jobfleet.jobdir import exit_code_path, read_exit_code
from jobfleet.script import render_script

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")


def start(tmp_path: Path, command: str) -> subprocess.Popen[bytes]:
    """The job script of ``sh -c command``, started as the starter does (a session of
    its own), once the command is running (it touches ``running``)."""
    script = tmp_path / "job.sh"
    spec = JobSpec(["sh", "-c", f"touch running; {command}"], workdir=str(tmp_path))
    script.write_text(render_script(spec, HTCONDOR, job_id="1", job_dir=str(tmp_path)))
    script.chmod(0o755)
    proc = subprocess.Popen([str(script)], cwd=tmp_path, start_new_session=True)
    wait_for((tmp_path / "running").exists, 10, "the command to start")
    return proc


def family(sid: int) -> list[int]:
    """The processes left in the job's session."""
    out = []
    for entry in Path("/proc").iterdir():
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if entry.name.isdigit() and int(fields[3]) == sid and fields[0] != "Z":
            out.append(int(entry.name))
    return out


def test_sigterm_to_the_script_alone_ends_the_command(tmp_path: Path) -> None:
    proc = start(tmp_path, f"sleep 30 && touch '{tmp_path}/slept'")
    os.kill(proc.pid, signal.SIGTERM)  # the main process only, as the starter
    assert proc.wait(timeout=10) == 143
    assert read_exit_code(exit_code_path(str(tmp_path), None)) == 143
    assert family(proc.pid) == [], "the command's processes outlived the SIGTERM"
    assert not (tmp_path / "slept").exists()


def test_a_command_that_handles_the_signal_ends_as_it_chooses(tmp_path: Path) -> None:
    # USR1 is the command's to handle: it goes on, then exits with its own status.
    handled = "trap 'touch got_usr1' USR1; i=0; while [ ! -e got_usr1 ] && [ $i -lt 100 ]; "
    handled += "do sleep 0.1; i=$((i+1)); done; sleep 0.5; exit 3"
    proc = start(tmp_path, handled)
    time.sleep(0.3)
    os.kill(proc.pid, signal.SIGUSR1)
    assert proc.wait(timeout=20) == 3
    assert (tmp_path / "got_usr1").exists()
    assert read_exit_code(exit_code_path(str(tmp_path), None)) == 3


def test_a_command_that_stops_cleanly_on_sigterm_records_its_own_status(tmp_path: Path) -> None:
    proc = start(tmp_path, "trap 'exit 0' TERM; while :; do sleep 0.1; done")
    os.kill(proc.pid, signal.SIGTERM)
    assert proc.wait(timeout=10) == 0
    assert read_exit_code(exit_code_path(str(tmp_path), None)) == 0


@pytest.mark.parametrize(
    ("written", "read"),
    [("NO", "NO"), ("YES", "YES"), ("'NO'", "NO"), ("IF_NEEDED", "IF_NEEDED"), ("no", "NO")],
)
def test_should_transfer_files_as_htcondor_md_writes_it(
    tmp_path: Path, written: str, read: str
) -> None:
    """YAML reads an unquoted YES or NO (or no) as true or false: the setting takes the
    word it meant; anything else is refused with the choices."""
    from jobfleet.config import load_config

    path = tmp_path / "jobfleet.yaml"
    path.write_text(f"htcondor:\n  should_transfer_files: {written}\n")
    assert load_config(path).htcondor.should_transfer_files == read


@pytest.mark.parametrize("written", ["maybe", "1", "[NO]", "{a: 1}"])
def test_should_transfer_files_refuses_other_values(tmp_path: Path, written: str) -> None:
    from jobfleet.config import load_config
    from jobfleet.errors import ConfigError

    path = tmp_path / "jobfleet.yaml"
    path.write_text(f"htcondor:\n  should_transfer_files: {written}\n")
    with pytest.raises(
        ConfigError, match="should_transfer_files: choose one of NO, IF_NEEDED, YES"
    ):
        load_config(path)
