"""The fake HTCondor tools refuse what condor_submit refuses, and the backend turns a
refusal into a SubmitError carrying the scheduler's words, never a job."""

from __future__ import annotations

import getpass
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from jobfleet import JobSpec, Resources
from jobfleet.backends.base import SubmitRequest
from jobfleet.backends.htcondor.backend import HTCondorBackend
from jobfleet.backends.htcondor.submitfile import HTCONDOR
from jobfleet.errors import SubmitError
from jobfleet.script import render_script

BIN = Path(__file__).parents[2] / "shims" / "condor_bin"


@pytest.fixture
def pool(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PATH", f"{BIN}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKECONDOR_STATE", str(tmp_path / "pool.json"))
    monkeypatch.setenv("FAKECONDOR_PYTHON", sys.executable)
    return tmp_path


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=60)


def test_condor_submit_refuses_a_file_without_queue_or_executable(pool: Path) -> None:
    sub = pool / "x.sub"
    sub.write_text("executable = /bin/true\n")
    proc = run("condor_submit", str(sub))
    assert proc.returncode == 1 and 'doesn\'t contain any "queue" commands' in proc.stderr
    sub.write_text(f"executable = {pool}/missing\nqueue\n")
    proc = run("condor_submit", str(sub))
    assert proc.returncode == 1 and "Can't access executable file" in proc.stderr
    assert run("condor_q", "-json", "-attributes", "ClusterId").stdout == "", "no job made"


def test_a_refused_submission_is_a_submit_error_never_a_job(pool: Path) -> None:
    spec = JobSpec(["true"], resources=Resources.of(extra_directives=["not a command"]))
    script = pool / "job.sh"
    script.write_text(render_script(spec, HTCONDOR, job_dir=str(pool)))
    request = SubmitRequest("1", "jfab-1-x", spec, str(script), str(pool))
    with pytest.raises(SubmitError) as info:
        HTCondorBackend().submit(request)
    assert "ERROR" in str(info.value) and "not a command" in str(info.value)
    assert run("condor_q", "-json", "-attributes", "ClusterId").stdout == ""


def test_submitted_jobs_are_listed_with_the_attributes_asked_for(pool: Path) -> None:
    spec = JobSpec(["true"])
    script = pool / "job.sh"
    script.write_text(render_script(spec, HTCONDOR, job_dir=str(pool)))
    backend = HTCondorBackend()
    native = backend.submit(SubmitRequest("1", "jfab-1-x", spec, str(script), str(pool)))
    assert backend.find_submitted("jfab-1-x", "1") == native
    assert backend.find_submitted("jfab-2-y", "2") is None
    [row] = backend.list_queue()
    assert (row.native_id, row.display_id, row.native_state) == (native, f"{native}.0", "I")


def test_condor_rm_records_the_remove_reason_as_the_schedd_words_it(pool: Path) -> None:
    script = pool / "job.sh"
    script.write_text(render_script(JobSpec(["true"]), HTCONDOR, job_dir=str(pool)))
    sub = pool / "x.sub"
    sub.write_text(f"executable = {script}\nqueue 2\n")
    assert run("condor_submit", str(sub)).returncode == 0
    assert run("condor_rm", "1.0").returncode == 0
    assert run("condor_rm", "-reason", "no longer needed", "1.1").returncode == 0
    assert run("condor_rm", "-reason").returncode == 1
    shown = run("condor_history", "-json", "-attributes", "ProcId,RemoveReason", "1").stdout
    user = getpass.getuser()
    assert {ad["ProcId"]: ad["RemoveReason"] for ad in json.loads(shown)} == {
        0: f"via condor_rm (by user {user})",
        1: f"no longer needed (by user {user})",
    }
