"""``jobfleet clean`` end to end on the local backend: every call a separate process.

On the local backend only: which jobs' files go is the registry's business (their
recorded states), the same on every backend; the files are those of the job
directory every backend shares.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import textwrap
from pathlib import Path
from typing import Any

import pytest

from conftest import wait_for
from jobfleet import Executor, Fleet, JobSpec
from jobfleet.errors import FilesRemovedError
from support.cli import PY, jf

WAIT = ("--timeout", "60")


def submit(*argv: str) -> str:
    return jf("submit", "--", *argv).stdout.strip()


def record(job_id: str) -> dict[str, Any]:
    (found,) = json.loads(jf("status", "--json", job_id).stdout)
    return dict(found)


def jobdir(home: Path, job_id: str) -> Path:
    """Where a job's directory is: in the shard of its thousand."""
    return home / "jobs" / f"{int(job_id) // 1000}xxx" / job_id


def files(home: Path, job_id: str) -> list[str]:
    return sorted(p.name for p in jobdir(home, job_id).iterdir())


def cleaned(*args: str) -> dict[str, Any]:
    return dict(json.loads(jf("clean", "--json", *args).stdout))


def test_ended_jobs_lose_their_files_and_running_ones_never(jf_home: Path) -> None:
    done, failed = submit("echo", "hello"), submit("false")
    running, to_cancel = submit("sleep", "60"), submit("sleep", "60")
    jf("wait", done, failed, *WAIT, expect=1)
    jf("cancel", to_cancel)
    wait_for(lambda: record(running)["state"] == "running", 60, "the job to start")
    kept = {j: files(jf_home, j) for j in (done, failed, running, to_cancel)}
    assert "stdout" in kept[done] and "exit_code" in kept[failed]

    dry = jf("clean", "--dry-run").stdout.splitlines()
    assert [line.split()[:3] for line in dry[:-1]] == [
        [done, "would", "remove"],
        [failed, "would", "remove"],
        [to_cancel, "would", "remove"],
    ]
    assert dry[-1].startswith("would remove the files of 3 job(s), ")
    assert dry[-1].endswith(" (dry run: nothing removed)")
    assert {j: files(jf_home, j) for j in kept} == kept, "a dry run leaves every file"
    as_json = cleaned("--dry-run")
    assert as_json["dry_run"] is True and as_json["skipped"] == []
    assert [(r["id"], r["path"]) for r in as_json["removed"]] == [
        (j, str(jobdir(jf_home, j))) for j in (done, failed, to_cancel)
    ]
    assert as_json["bytes_freed"] == sum(r["bytes"] for r in as_json["removed"]) > 0

    assert cleaned("--older-than", "1h")["removed"] == [], "they ended just now"
    only_failed = cleaned("--state", "failed")
    assert (only_failed["dry_run"], [r["id"] for r in only_failed["removed"]]) == (False, [failed])
    assert not jobdir(jf_home, failed).exists() and files(jf_home, done) == kept[done]

    out = jf("clean").stdout.splitlines()
    assert [line.split()[:2] for line in out[:-1]] == [[done, "removed"], [to_cancel, "removed"]]
    assert out[-1].startswith("removed the files of 2 job(s), freed ")
    for job_id in (done, failed, to_cancel):
        assert not jobdir(jf_home, job_id).exists()
    assert files(jf_home, running) == kept[running], "a running job is never touched"

    # The records stay, marked; their logs say where they went.
    assert (record(done)["state"], record(done)["exit_code"]) == ("completed", 0)
    assert record(done)["cleaned_at"] is not None and record(running)["cleaned_at"] is None
    logs = jf("logs", done, expect=1)
    assert logs.stdout == ""
    assert logs.stderr.startswith(f"jobfleet: error: job {done}: its files were removed by ")
    assert "removed by jobfleet clean on " in logs.stderr
    assert f"(its stdout was {jobdir(jf_home, done) / 'stdout'})" in logs.stderr
    shown = jf("show", done).stdout
    assert "  state:      completed" in shown
    assert f"  directory:  {jobdir(jf_home, done)} (removed by jobfleet clean, 20" in shown
    assert cleaned()["removed"] == [], "nothing is removed twice"
    jf("cancel", running)


def test_a_log_the_user_named_outside_the_job_directory_stays(
    jf_home: Path, tmp_path: Path
) -> None:
    log = tmp_path / "mine.log"
    with Fleet() as fleet:  # a spec's own output path (the Python API's JobSpec.stdout)
        job = fleet.submit(JobSpec(["echo", "mine"], stdout=str(log))).id
    jf("wait", job, *WAIT)
    assert [r["id"] for r in cleaned()["removed"]] == [job]
    assert log.read_text() == "mine\n"
    assert jf("logs", job).stdout == "mine\n"


CALL = """
from jobfleet import Executor

with Executor() as ex:
    future = ex.submit(pow, 2, 10)
    assert future.result(timeout=60) == 1024
print(future.job_id)
"""


def test_a_python_calls_payload_goes_and_result_says_so(jf_home: Path, tmp_path: Path) -> None:
    script = tmp_path / "call.py"
    script.write_text(textwrap.dedent(CALL))
    made = subprocess.run([PY, str(script)], capture_output=True, text=True, timeout=240)
    assert made.returncode == 0, made.stderr
    job = made.stdout.strip()
    assert jf("result", job).stdout == "1024\n"
    (shard,) = (jf_home / "futures").iterdir()  # futures/<ab>/<ab...>: 256 shards
    (payload,) = shard.iterdir()
    assert payload.name.startswith(shard.name)
    report = cleaned()
    assert [(r["id"], r["path"]) for r in report["removed"]] == [
        (job, str(jobdir(jf_home, job))),
        (job, str(payload)),
    ]
    assert not payload.exists() and shard.is_dir()
    result = jf("result", job, expect=1)
    assert result.stdout == ""
    assert result.stderr.startswith(f"jobfleet: error: job {job}: its files were removed by ")
    assert "(its results went with them)" in result.stderr
    with pytest.raises(FilesRemovedError, match=rf"^job {job}: its files were removed by jobfl"):
        Executor.attach(job)


def test_bad_options_are_one_line_and_status_2(jf_home: Path) -> None:
    state = jf("clean", "--state", "runing", expect=2)
    assert state.stdout == "" and state.stderr == (
        "jobfleet: error: --state: 'runing' is no job state; choose among completed, failed,"
        " cancelled, timeout, out_of_memory, lost\n"
    )
    running = jf("clean", "--state", "running", expect=2).stderr
    assert running.startswith("jobfleet: error: --state: running jobs have not ended")
    older = jf("clean", "--older-than", "soon", expect=2).stderr
    assert older.startswith("jobfleet: error: --older-than: cannot read 'soon' as a duration")


def test_a_directory_that_cannot_be_removed_is_an_error_line_and_status_1(
    jf_home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # In this process (root ignores permissions): the removal refuses as a file system would.
    from jobfleet.cli.main import main
    from jobfleet.engine import cleanup

    stuck, fine = submit("true"), submit("true")
    jf("wait", stuck, fine, *WAIT)
    real_rmtree = cleanup.shutil.rmtree

    def refusing(path: str, **handler: Any) -> None:
        if path != str(jobdir(jf_home, stuck)):
            real_rmtree(path, **handler)
            return
        denied = PermissionError(13, "Permission denied")
        if "onexc" in handler:
            handler["onexc"](os.rmdir, path, denied)
        else:
            handler["onerror"](os.rmdir, path, (PermissionError, denied, None))

    monkeypatch.setattr(cleanup.shutil, "rmtree", refusing)
    with pytest.raises(SystemExit) as exited:
        main(["clean"])
    assert exited.value.code == 1
    out, err = capsys.readouterr()
    assert out.splitlines()[0].startswith(f"{fine} removed ")
    assert out.splitlines()[-1].startswith("removed the files of 1 job(s), freed ")
    assert err == (
        f"jobfleet: error: job {stuck}: could not remove {jobdir(jf_home, stuck)}: "
        "Permission denied (the next clean tries again)\n"
    )
    assert jobdir(jf_home, stuck).is_dir() and record(stuck)["cleaned_at"] is None


def test_a_job_an_older_jobfleet_made_flat_is_read_and_cleaned_there(jf_home: Path) -> None:
    old, new = submit("echo", "from before"), submit("echo", "now")
    jf("wait", old, new, *WAIT)
    # Where an older jobfleet put it, and recorded it: jobs/<id>, no shard.
    flat = jf_home / "jobs" / old
    jobdir(jf_home, old).rename(flat)
    with sqlite3.connect(jf_home / "registry.db") as db:
        db.execute("UPDATE jobs SET job_dir = ? WHERE id = ?", (str(flat), int(old)))
    db.close()
    assert jf("logs", old).stdout == "from before\n"
    assert f"  directory:  {flat}\n" in jf("show", old).stdout
    report = cleaned()
    assert [(r["id"], r["path"]) for r in report["removed"]] == [
        (old, str(flat)),
        (new, str(jobdir(jf_home, new))),
    ]
    assert not flat.exists() and not jobdir(jf_home, new).exists()
    assert sorted(p.name for p in (jf_home / "jobs").iterdir()) == ["0xxx"]
