"""``jobfleet cancel --name PATTERN`` and ``--all [--backend NAME]``, each call a real
process, on the local backend (jobs running or waiting for one of its 2 cores), and
with jobs of the fake SLURM on PATH (tests/shims/) next to local ones."""

from __future__ import annotations

import json
import os
import pty
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from conftest import SLURM_TEST_CONFIG, wait_for
from shims.fakeslurm import FakeSlurm
from support.cli import PY, jf

SHIMS = Path(__file__).resolve().parents[1] / "shims"
UNFINISHED = {"pending", "running"}


def submit(name: str, *args: str, command: tuple[str, ...] = ("sleep", "60")) -> str:
    return jf("submit", "--name", name, *args, "--", *command).stdout.strip()


def states(*job_ids: str) -> dict[str, str]:
    return {r["id"]: r["state"] for r in json.loads(jf("status", "--json", *job_ids).stdout)}


def usage_error(*args: str) -> str:
    """Exit 2, nothing on stdout, one error line; that line."""
    proc = jf(*args, expect=2)
    assert proc.stdout == ""
    (line,) = proc.stderr.splitlines()
    assert line.startswith("jobfleet: error: ")
    return line


def finished(name: str) -> str:
    job = submit(name, command=("true",))
    jf("wait", job, "--timeout", "60")
    return job


def test_a_glob_cancels_only_the_unfinished_jobs_it_matches(jf_home: Path) -> None:
    done = finished("train-done")
    a, b = submit("train-a"), submit("train-b")
    others = [submit("trainee"), submit("Train-c")]

    proc = jf("cancel", "--name", "train-*")

    assert proc.stdout.splitlines() == [f"{a} cancelled", f"{b} cancelled", "cancelled 2 job(s)"]
    assert proc.stderr == ""
    now = states(done, a, b, *others)
    assert (now[done], now[a], now[b]) == ("completed", "cancelled", "cancelled")
    assert {now[o] for o in others} <= UNFINISHED


def test_several_names_cancel_the_jobs_of_any(jf_home: Path) -> None:
    a, b, e = submit("train-a"), submit("train-b"), submit("eval-1")
    proc = jf("cancel", "--name", "train-a", "--name", "eval-*", "--name", "train-[a]")
    assert proc.stdout.splitlines() == [f"{a} cancelled", f"{e} cancelled", "cancelled 2 job(s)"]
    now = states(a, b, e)
    assert (now[a], now[e]) == ("cancelled", "cancelled")
    assert now[b] in UNFINISHED


def test_all_cancels_every_unfinished_job_and_json_is_the_list(jf_home: Path) -> None:
    done = finished("done")
    jobs = [submit(f"job-{i}") for i in range(3)]
    records = json.loads(jf("cancel", "--all", "--json").stdout)
    assert [r["id"] for r in records] == jobs  # len() is the count
    assert {r["state"] for r in records} == {"cancelled"}
    assert states(done)[done] == "completed"  # a finished job is untouched
    assert json.loads(jf("cancel", "--all", "--json").stdout) == []


def test_an_array_is_cancelled_whole(jf_home: Path) -> None:
    array = submit("sweep", "--array", "1-4")
    assert jf("cancel", "--name", "sweep").stdout.splitlines()[-1] == "cancelled 1 job(s)"
    (record,) = json.loads(jf("status", "--json", array).stdout)
    assert record["state"] == "cancelled"
    assert {e["state"] for e in record["elements"].values()} == {"cancelled"}
    assert len(record["elements"]) == 4


def test_a_dry_run_lists_and_cancels_nothing(jf_home: Path) -> None:
    a, b = submit("train-a"), submit("train-b")
    proc = jf("cancel", "--name", "train-*", "--dry-run")
    assert proc.stdout.splitlines()[-1] == "would cancel 2 job(s) (dry run: nothing done)"
    assert a in proc.stdout and b in proc.stdout and "train-b" in proc.stdout
    listed = json.loads(jf("cancel", "--all", "--dry-run", "--json").stdout)
    assert [r["id"] for r in listed] == [a, b]
    assert set(states(a, b).values()) <= UNFINISHED


def test_nothing_to_cancel_is_no_failure(jf_home: Path) -> None:
    keep = submit("keep")
    proc = jf("cancel", "--name", "train-*", "--name", "x?")
    assert proc.stdout == "no unfinished jobs match --name 'train-*' --name 'x?'\n"
    proc = jf("cancel", "--all", "--backend", "slurm")
    assert proc.stdout == "no unfinished jobs match --all --backend 'slurm'\n"
    assert json.loads(jf("cancel", "--name", "nope", "--json").stdout) == []
    assert states(keep)[keep] in UNFINISHED


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["cancel"], ["job", "--name", "--all"]),
        (["cancel", "1", "--name", "a*"], ["ids", "--name/--all", "not both"]),
        (["cancel", "1", "--all"], ["ids", "--name/--all", "not both"]),
        (["cancel", "--name", "a*", "--all"], ["--name", "--all"]),
        (["cancel", "1", "--backend", "local"], ["--backend", "--name", "--all"]),
        (["cancel", "--backend", "local"], ["--backend", "--name", "--all"]),
        (["cancel", "--all", "--index", "2"], ["--index", "--name/--all"]),
        (["cancel", "1", "--dry-run"], ["--dry-run", "--name", "--all"]),
        (
            ["cancel", "--all", "--backend", "nope"],
            ["--backend", "'nope'", "htcondor, local, lsf, pbs, sge, slurm, torque"],
        ),
        (["cancel", "--name", ""], ["empty pattern"]),
        (["cancel", "--all", "--signal", "NOPE"], ["signal", "'NOPE'"]),
    ],
)
def test_options_that_do_not_go_together_are_one_usage_line(
    jf_home: Path, argv: list[str], words: list[str]
) -> None:
    job = submit("a-job")
    line = usage_error(*argv)
    assert all(w in line for w in words), line
    assert states(job)[job] in UNFINISHED  # nothing was cancelled


def test_a_signal_goes_to_the_chosen_jobs(jf_home: Path) -> None:
    graceful = "trap 'echo stopping; exit 0' USR1; echo ready; sleep 60 & wait"
    job = submit("graceful", command=("sh", "-c", graceful))
    other = submit("other")
    wait_for(
        lambda: jf("logs", job, expect=None).stdout == "ready\n",
        timeout_s=60,
        what="the job to set its trap",
    )
    proc = jf("cancel", "--name", "grace*", "--signal", "usr1")
    assert proc.stdout.splitlines()[-1] == "signalled 1 job(s) with USR1"
    jf("wait", job, "--timeout", "60")  # ended by its trap: completed
    assert jf("logs", job).stdout == "ready\nstopping\n"
    assert states(other)[other] in UNFINISHED


# -- on a terminal: asked first ------------------------------------------------------


def on_terminal(args: list[str], answer: str | None) -> tuple[int, str]:
    """Run ``jobfleet ARGS`` on a pseudo-terminal (stdin, stdout and stderr); type
    ``answer`` when asked (None: expect no question). Returns (exit status, output)."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [PY, "-m", "jobfleet", *args],
        stdin=follower,
        stdout=follower,
        stderr=follower,
        env=os.environ.copy(),
        cwd=Path(os.environ["JOBFLEET_HOME"]).parent,
    )
    os.close(follower)
    seen = b""
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(leader, 4096)
                except OSError:  # the child closed the terminal
                    break
                if not chunk:
                    break
                seen += chunk
                if answer is not None and b"[y/N]" in seen:
                    os.write(leader, answer.encode() + b"\n")
                    answer = None
            elif proc.poll() is not None:
                break
        status = proc.wait(timeout=60)
    finally:
        os.close(leader)
        if proc.poll() is None:  # pragma: no cover - only when the test fails
            proc.kill()
    output = seen.decode(errors="replace")
    assert "Traceback" not in output, output
    return status, output


def test_on_a_terminal_no_means_nothing_cancelled(jf_home: Path) -> None:
    a, b = submit("train-a"), submit("train-b")
    status, shown = on_terminal(["cancel", "--name", "train-*"], "n")
    assert status == 1, shown
    assert f"would cancel 2 job(s): {a} train-a, {b} train-b" in shown
    assert "Cancel them? [y/N]" in shown
    assert shown.splitlines()[-1] == "jobfleet: error: nothing cancelled"
    assert set(states(a, b).values()) <= UNFINISHED


def test_on_a_terminal_yes_cancels(jf_home: Path) -> None:
    a = submit("train-a")
    status, shown = on_terminal(["cancel", "--name", "train-*"], "y")
    assert status == 0, shown
    assert "cancelled 1 job(s)" in shown
    assert states(a)[a] == "cancelled"


def test_on_a_terminal_yes_flag_does_not_ask(jf_home: Path) -> None:
    a = submit("train-a")
    status, shown = on_terminal(["cancel", "--all", "-y"], None)
    assert status == 0, shown
    assert "[y/N]" not in shown and "cancelled 1 job(s)" in shown
    assert states(a)[a] == "cancelled"


# -- local and fake SLURM jobs in one registry ---------------------------------------


@pytest.fixture
def fake(jf_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeSlurm:
    """The fake SLURM first on PATH; the local backend stays the default."""
    if shutil.which("flock") is None:
        pytest.skip("the fake sbatch needs flock(1) (util-linux)")
    config = Path(os.environ["JOBFLEET_CONFIG"])
    slurm = SLURM_TEST_CONFIG.split("slurm:", 1)[1]
    config.write_text(config.read_text() + "slurm:" + slurm)
    monkeypatch.setenv("PATH", f"{SHIMS / 'bin'}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKESLURM_STATE", str(tmp_path / "fakeslurm" / "state.json"))
    monkeypatch.setenv("FAKESLURM_PYTHON", sys.executable)
    (tmp_path / "fakeslurm").mkdir()
    return FakeSlurm(tmp_path / "fakeslurm" / "state.json")


def native_state(fake: FakeSlurm, record: dict[str, Any]) -> str:
    return str(fake.jobs()[record["native_id"]]["state"])


def test_backend_restricts_the_choice(fake: FakeSlurm) -> None:
    local = submit("train-local")
    remote = submit("train-slurm", "--backend", "slurm")
    proc = jf("cancel", "--name", "train-*", "--backend", "local")
    assert proc.stdout.splitlines() == [f"{local} cancelled", "cancelled 1 job(s)"]
    (record,) = json.loads(jf("status", "--json", remote).stdout)
    assert record["backend"] == "slurm" and record["state"] == "pending"
    assert native_state(fake, record) == "PENDING"  # scancel was never run

    proc = jf("cancel", "--all", "--backend", "slurm")
    assert proc.stdout.splitlines()[-1] == "cancelled 1 job(s)"
    assert native_state(fake, record).startswith("CANCELLED")


def test_a_backend_that_does_not_answer_leaves_the_others_cancelled(fake: FakeSlurm) -> None:
    local = submit("train-local")
    remote = submit("train-slurm", "--backend", "slurm")
    fake.fail("scancel", 1, "scancel: error: Unable to contact slurm controller (connect failure)")

    proc = jf("cancel", "--all", expect=1)

    assert proc.stdout.splitlines() == [f"{local} cancelled", "cancelled 1 job(s)"]
    (line,) = proc.stderr.splitlines()
    assert line.startswith("jobfleet: error: slurm did not answer")
    assert "Unable to contact slurm controller" in line and "1 job(s) may not be cancelled" in line
    (record,) = json.loads(jf("status", "--json", remote).stdout)
    assert record["state"] == "pending" and native_state(fake, record) == "PENDING"
