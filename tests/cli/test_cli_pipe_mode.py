"""``jobfleet pipe ...`` end to end on the local backend, and its errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

PY = sys.executable


def jf(*args: str, cwd: Path, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PY, "-m", "jobfleet", *args], capture_output=True, text=True, timeout=timeout, cwd=cwd
    )


def test_create_submit_wait_status_logs_retry(jf_home: Path, tmp_path: Path) -> None:
    flag = tmp_path / "fixed"
    tasks = tmp_path / "tasks.txt"
    tasks.write_text(
        "# a sweep\n"
        + "".join(f"echo value {n}\n" for n in range(10))
        + json.dumps({"shell": f"test -e {flag} && echo fixed", "id": "needs-flag"})
        + "\n"
    )
    made = jf("pipe", "create", "run", "--tasks", str(tasks), "--heartbeat", "0.2",
              "--lease", "1", cwd=tmp_path)  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert made.stdout.strip().endswith("run: 11 tasks")
    submitted = jf("pipe", "submit", "run", "--workers", "2", "--json", cwd=tmp_path)
    assert submitted.returncode == 0, submitted.stderr
    job = json.loads(submitted.stdout)
    assert job["workers"] == 2
    waited = jf("pipe", "wait", "run", cwd=tmp_path)
    assert waited.returncode == 1, waited.stderr  # one task failed
    assert "failed: 11 tasks (10 completed, 1 failed)" in waited.stdout
    assert "needs-flag" in waited.stdout
    status = jf("pipe", "status", "run", "--json", cwd=tmp_path)
    doc = json.loads(status.stdout)
    assert doc["state"] == "failed" and doc["counts"]["completed"] == 10
    assert doc["failed"][0]["id"] == "needs-flag" and doc["failed"][0]["exit_code"] == 1
    logs = jf("pipe", "logs", "run", "7", cwd=tmp_path)
    assert (logs.returncode, logs.stdout) == (0, "value 7\n")
    # The whole array job was one job of two elements (its jobfleet status says so).
    record = json.loads(jf("status", job["job_id"], "--json", cwd=tmp_path).stdout)
    assert len(record[0]["elements"]) == 2

    flag.touch()
    retried = jf("pipe", "retry", "run", "--failed", cwd=tmp_path)
    assert retried.stdout.strip() == "1 failed tasks will run again"
    again = jf("pipe", "submit", "run", "--workers", "1", "--keep-alive", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert jf("pipe", "logs", "run", "needs-flag", cwd=tmp_path).stdout == "fixed\n"
    assert "completed: 11 tasks (11 completed)" in jf("pipe", "status", "run", cwd=tmp_path).stdout


def test_cancel_ends_the_run_for_good(jf_home: Path, tmp_path: Path) -> None:
    tasks = tmp_path / "tasks.txt"
    tasks.write_text("sleep 30\n" * 4)
    assert jf("pipe", "create", "run", "--tasks", str(tasks), cwd=tmp_path).returncode == 0
    assert jf("pipe", "submit", "run", "--workers", "2", cwd=tmp_path).returncode == 0
    cancelled = jf("pipe", "cancel", "run", cwd=tmp_path)
    assert cancelled.returncode == 0, cancelled.stderr
    waited = jf("pipe", "wait", "run", "--json", cwd=tmp_path)
    assert waited.returncode == 1
    doc = json.loads(waited.stdout)
    assert doc["state"] == "cancelled" and doc["counts"]["cancelled"] == 4
    refused = jf("pipe", "add", "run", "--tasks", str(tasks), cwd=tmp_path)
    assert refused.returncode == 2
    assert "the run was cancelled; make a new one" in refused.stderr


def test_bad_input_is_one_clear_line(jf_home: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_text('echo fine\n{"argv": ["ls"], "retries": 3}\n')
    made = jf("pipe", "create", "run", "--tasks", str(bad), cwd=tmp_path)
    assert made.returncode == 2
    assert made.stderr.startswith("jobfleet: error: ")
    assert "bad.txt, line 2: unknown key 'retries'" in made.stderr
    assert "Traceback" not in made.stderr
    assert not (tmp_path / "run").exists()  # nothing made
    missing = jf("pipe", "status", "nowhere", cwd=tmp_path)
    assert missing.returncode == 2 and "jobfleet pipe create" in missing.stderr
    nofile = jf("pipe", "create", "run", "--tasks", "absent.txt", cwd=tmp_path)
    assert nofile.returncode == 2 and "absent.txt: cannot be read" in nofile.stderr
    (tmp_path / "ok.txt").write_text("echo hi\n")
    assert jf("pipe", "create", "run", "--tasks", "ok.txt", cwd=tmp_path).returncode == 0
    twice = jf("pipe", "create", "run", "--tasks", "ok.txt", cwd=tmp_path)
    assert twice.returncode == 2 and "already holds a pipe run" in twice.stderr
    lease = jf("pipe", "create", "r2", "--tasks", "ok.txt", "--lease", "5", cwd=tmp_path)
    assert lease.returncode == 2 and "twice the heartbeat" in lease.stderr
    unknown = jf("pipe", "logs", "run", "99", cwd=tmp_path)
    assert unknown.returncode == 2 and "no task '99'" in unknown.stderr
    early = jf("pipe", "logs", "run", "0", cwd=tmp_path)
    assert early.returncode == 2 and "no output recorded yet (it is pending)" in early.stderr
