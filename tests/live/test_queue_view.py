"""The queue view (``jobfleet queue``, ``Backend.list_queue``) and ``jobfleet top``.

Parsers are driven by output recorded on the live clusters
(``tests/backends/slurm/fixtures/22.05/squeue-list*``,
``tests/backends/sge/fixtures/8.1.9/qstat-list*``;
how they were made: ``capture-22.05-queue.sh`` and ``capture-8.1.9-queue.sh``, the job
ids in ``queue-jobs.env`` next to them). The command-line tests run ``jobfleet`` as a
child process: on the local backend always, on SLURM and Grid Engine when their live
clusters answer (the ``slurm_home`` and ``sge_home`` fixtures skip otherwise).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import pty
import pwd
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import wait_for
from jobfleet.backends.base import QueueEntry
from jobfleet.backends.local import queue_entries
from jobfleet.backends.local.queue import TaskRow
from jobfleet.backends.sge import SgeBackend
from jobfleet.backends.sge import backend as sge_backend
from jobfleet.backends.slurm import STATE_MAP, SlurmBackend
from jobfleet.errors import BackendError, CommandError
from jobfleet.runner import CommandResult, ScriptedRunner
from jobfleet.states import JobState

BACKENDS = Path(__file__).resolve().parents[1] / "backends"
SLURM_DIR = BACKENDS / "slurm" / "fixtures" / "22.05"
SGE_DIR = BACKENDS / "sge" / "fixtures" / "8.1.9"
PY = sys.executable
P, R = JobState.PENDING, JobState.RUNNING
#: Keys of every ``queue --json`` object: the documented contract.
QUEUE_KEYS = {
    "id",
    "backend",
    "native_id",
    "tasks",
    "display_id",
    "name",
    "user",
    "state",
    "native_state",
    "elapsed_s",
    "nodes",
    "queue",
    "reason",
}


def load(directory: Path, name: str) -> CommandResult:
    """The recorded command ``NAME`` as the runner would have returned it."""
    meta = json.loads((directory / f"{name}.meta.json").read_text(encoding="utf-8"))
    stdout = (directory / f"{name}.out").read_text(encoding="utf-8")
    return CommandResult(
        tuple(meta["argv"]), meta["returncode"], stdout, meta["stderr"], meta["elapsed_s"]
    )


def job_ids(directory: Path) -> dict[str, str]:
    """The ids of the jobs the capture script submitted (``queue-jobs.env``)."""
    pairs = (line.split("=", 1) for line in (directory / "queue-jobs.env").read_text().split())
    return {key: value for key, value in pairs}


def by_display(entries: list[QueueEntry]) -> dict[str, QueueEntry]:
    shown = {e.display_id: e for e in entries}
    assert len(shown) == len(entries), "a display id was listed twice"
    return shown


# -- SLURM: squeue --------------------------------------------------------------------------


def test_slurm_argv_is_the_recorded_one() -> None:
    from jobfleet.backends.slurm import queue_list_argv

    assert queue_list_argv(False) == list(load(SLURM_DIR, "squeue-list").argv)
    assert queue_list_argv(True) == list(load(SLURM_DIR, "squeue-list-all").argv)
    assert "--me" in queue_list_argv(False) and "--me" not in queue_list_argv(True)


def test_slurm_rows_of_this_user() -> None:
    from jobfleet.backends.slurm import parse_queue_list

    ids = job_ids(SLURM_DIR)
    rows = by_display(parse_queue_list(load(SLURM_DIR, "squeue-list")))
    run, arr = ids["run"], ids["arr"]
    assert rows[run] == QueueEntry(
        native_id=run,
        tasks=None,
        display_id=run,
        name="q-running",
        user="root",
        state=R,
        native_state="RUNNING",
        elapsed_s=3,  # squeue's 0:03
        nodes="vm",
        queue="debug",
        reason=None,
    )
    # Started elements are rows of their own, keyed to the array's id.
    for index in ("1", "2"):
        element = rows[f"{arr}_{index}"]
        assert (element.native_id, element.tasks, element.state) == (arr, index, R)
        assert element.name == "q-array|pipe name"  # a separator in the name stays in it
    # The waiting elements are one row, in SLURM's notation.
    waiting = rows[f"{arr}_[3-6%2]"]
    assert (waiting.native_id, waiting.tasks, waiting.state) == (arr, "3-6%2", P)
    assert (waiting.elapsed_s, waiting.nodes, waiting.reason) == (None, None, "JobArrayTaskLimit")
    assert (rows[ids["held"]].state, rows[ids["held"]].reason) == (P, "JobHeldUser")
    assert (rows[ids["dep"]].state, rows[ids["dep"]].reason) == (P, "Dependency")
    suspended = rows[ids["susp"]]
    assert (suspended.state, suspended.native_state, suspended.nodes) == (R, "SUSPENDED", "vm")
    # The other user's jobs are not this user's.
    assert ids["other_run"] not in rows and ids["other_held"] not in rows
    # Every state comes from the backend's one table.
    assert all(e.state is STATE_MAP[e.native_state] for e in rows.values())


def test_slurm_rows_of_all_users() -> None:
    from jobfleet.backends.slurm import parse_queue_list

    ids = job_ids(SLURM_DIR)
    mine = parse_queue_list(load(SLURM_DIR, "squeue-list"))
    rows = by_display(parse_queue_list(load(SLURM_DIR, "squeue-list-all")))
    other, held = rows[ids["other_run"]], rows[ids["other_held"]]
    assert (other.user, other.state, other.name) == ("jfother", R, "q-other-running")
    assert (held.user, held.state, held.reason) == ("jfother", P, "JobHeldUser")
    assert {e.display_id for e in mine} < set(rows)


def test_slurm_expanded_array_and_empty_queue() -> None:
    from jobfleet.backends.slurm import parse_queue_list

    arr = job_ids(SLURM_DIR)["arr"]
    rows = by_display(parse_queue_list(load(SLURM_DIR, "squeue-list-array-expanded")))
    assert {rows[f"{arr}_{i}"].tasks for i in range(3, 7)} == {"3", "4", "5", "6"}
    assert parse_queue_list(load(SLURM_DIR, "squeue-list-after-cancel")) == []


def test_slurm_unknown_state_is_unknown_not_a_crash(caplog: pytest.LogCaptureFixture) -> None:
    from jobfleet.backends.slurm import parse_queue_list

    recorded = load(SLURM_DIR, "squeue-list")
    line = next(x for x in recorded.stdout.splitlines() if "\x1fRUNNING\x1f" in x)
    changed = CommandResult(recorded.argv, 0, line.replace("RUNNING", "HIBERNATING") + "\n", "")
    with caplog.at_level(logging.WARNING):
        (entry,) = parse_queue_list(changed)
    assert (entry.state, entry.native_state) == (JobState.UNKNOWN, "HIBERNATING")
    assert "HIBERNATING" in caplog.text


def test_slurm_list_queue_is_one_squeue_call() -> None:
    recorded = load(SLURM_DIR, "squeue-list")
    runner = ScriptedRunner(lambda argv: recorded)
    entries = SlurmBackend(runner=runner).list_queue()
    assert runner.calls == [recorded.argv]
    assert len(entries) == len(recorded.stdout.splitlines())


def test_slurm_controller_down_is_a_command_error() -> None:
    down = load(SLURM_DIR, "ctld-down-squeue")
    backend = SlurmBackend(runner=ScriptedRunner(lambda argv: down))
    with pytest.raises(CommandError, match="Unable to contact slurm controller"):
        backend.list_queue(all_users=True)


# -- Grid Engine: qstat -xml ----------------------------------------------------------------


def started(directory: Path, name: str, number: str) -> float:
    """Unix time of the recorded JAT_start_time of job ``number`` (local time, as qstat)."""
    import xml.etree.ElementTree as ET

    root = ET.fromstring(load(directory, name).stdout)
    for job in root.iter("job_list"):
        if job.findtext("JB_job_number") == number and job.findtext("JAT_start_time"):
            return dt.datetime.fromisoformat(job.findtext("JAT_start_time") or "").timestamp()
    raise AssertionError(f"job {number} has no start time in {name}")


def test_sge_argv_is_the_recorded_one() -> None:
    from jobfleet.backends.sge import queue_list_argv

    assert queue_list_argv("root") == list(load(SGE_DIR, "qstat-list").argv)
    assert queue_list_argv(None) == list(load(SGE_DIR, "qstat-list-all").argv)


def test_sge_rows_of_this_user() -> None:
    from jobfleet.backends.sge import parse_queue_list

    ids = job_ids(SGE_DIR)
    run, arr = ids["run"], ids["arr"]
    now = started(SGE_DIR, "qstat-list", run) + 7
    rows = by_display(parse_queue_list(load(SGE_DIR, "qstat-list"), now))
    assert rows[run] == QueueEntry(
        native_id=run,
        tasks=None,
        display_id=run,
        name="q-running",
        user="root",
        state=R,
        native_state="r",
        elapsed_s=7,
        nodes="vm",
        queue="all.q",
        reason=None,
    )
    for index in ("1", "2"):
        element = rows[f"{arr}.{index}"]
        assert (element.native_id, element.tasks, element.state) == (arr, index, R)
        assert element.name == "q-array|pipe"
    waiting = rows[f"{arr}.3-6:1"]
    assert (waiting.native_id, waiting.tasks, waiting.state, waiting.native_state) == (
        arr,
        "3-6:1",
        P,
        "qw",
    )
    assert (waiting.elapsed_s, waiting.nodes, waiting.queue) == (None, None, None)
    assert (rows[ids["held"]].state, rows[ids["held"]].reason) == (P, "held")
    assert (rows[ids["dep"]].native_state, rows[ids["dep"]].reason) == ("hqw", "held")
    suspended = rows[ids["susp"]]
    assert (suspended.state, suspended.native_state, suspended.reason) == (R, "s", "suspended")
    error = rows[ids["eqw"]]
    assert (error.state, error.native_state) == (P, "Eqw")
    assert f"qstat -j {ids['eqw']}" in (error.reason or "")
    assert f"qmod -cj {ids['eqw']}" in (error.reason or "")
    assert ids["other_run"] not in rows and ids["other_held"] not in rows


def test_sge_rows_of_all_users_and_jobs_being_deleted() -> None:
    from jobfleet.backends.sge import parse_queue_list

    ids = job_ids(SGE_DIR)
    rows = by_display(parse_queue_list(load(SGE_DIR, "qstat-list-all"), time.time()))
    other, held = rows[ids["other_run"]], rows[ids["other_held"]]
    assert (other.user, other.state, other.nodes) == ("jfother", R, "vm")
    assert (held.user, held.state, held.native_state) == ("jfother", P, "hqw")
    deleting = parse_queue_list(load(SGE_DIR, "qstat-list-deleting"), time.time())
    assert {e.native_state for e in deleting} == {"dr", "ds"}
    assert all(e.state is R and e.reason == "being deleted" for e in deleting)


def test_sge_list_queue_asks_for_this_user_or_everybody(monkeypatch: pytest.MonkeyPatch) -> None:
    recorded = load(SGE_DIR, "qstat-list-all")
    runner = ScriptedRunner(lambda argv: recorded)
    backend = SgeBackend(runner=runner)
    backend.list_queue()
    backend.list_queue(all_users=True)
    me = pwd.getpwuid(os.geteuid()).pw_name
    assert runner.calls == [("qstat", "-xml", "-u", me), ("qstat", "-xml", "-u", "*")]
    monkeypatch.setattr(sge_backend, "user_name", lambda: None)
    with pytest.raises(BackendError, match="--all-users"):
        backend.list_queue()
    assert len(runner.calls) == 2  # nothing was asked without a user name


def test_sge_qmaster_down_is_a_command_error() -> None:
    down = load(SGE_DIR, "qmaster-down-qstat-xml")
    backend = SgeBackend(runner=ScriptedRunner(lambda argv: down))
    with pytest.raises(CommandError, match="unable to send message to qmaster"):
        backend.list_queue(all_users=True)


# -- local: rows from the local queue's tasks ---------------------------------------------


def task(job: int, idx: int, state: str, started_at: float | None = None) -> TaskRow:
    return TaskRow(
        job=job,
        idx=idx,
        state=state,
        pid=None,
        started_at=started_at,
        exit_code=None,
        reason=None,
        cancel_requested=False,
        gpus=None,
        ending=None,
        jf_id="9",
        name=f"jfabc-9-job{job}",
        script="job.sh",
        job_dir="/nowhere",
        cores=1,
        memory=0,
        gpu_count=0,
        walltime=None,
        max_concurrent=2 if idx >= 0 else None,
        deps=[],
        env={},
        submitted_at=0.0,
    )


def test_local_rows_fold_waiting_elements_as_slurm_does() -> None:
    tasks = [
        task(3, -1, "running", 100.0),
        task(4, 1, "running", 90.0),
        task(4, 2, "pending"),
        task(4, 3, "pending"),
        task(4, 5, "pending"),
        task(5, -1, "pending"),
    ]
    rows = by_display(queue_entries(tasks, 130.0, "ann", "node1"))
    assert list(rows) == ["3", "4_1", "4_[2-3,5%2]", "5"]
    assert (rows["3"].state, rows["3"].elapsed_s, rows["3"].nodes) == (R, 30, "node1")
    assert (rows["4_1"].native_id, rows["4_1"].tasks, rows["4_1"].elapsed_s) == ("4", "1", 40)
    waiting = rows["4_[2-3,5%2]"]
    assert (waiting.native_id, waiting.tasks, waiting.state) == ("4", "2-3,5%2", P)
    assert (rows["5"].state, rows["5"].elapsed_s, rows["5"].nodes) == (P, None, None)
    assert {e.user for e in rows.values()} == {"ann"}


# -- the command line ---------------------------------------------------------------------


def jf(
    *args: str, expect: int | None = 0, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``jobfleet ARGS`` in a child process; check its exit status unless None."""
    proc = subprocess.run(
        [PY, "-m", "jobfleet", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
        cwd=Path(os.environ["JOBFLEET_HOME"]).parent,
        timeout=120,
    )
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stdout + proc.stderr
    if expect is not None:
        assert proc.returncode == expect, (proc.returncode, proc.stdout, proc.stderr)
    return proc


def submit(*args: str) -> str:
    return jf("submit", *args).stdout.strip()


def state_of(job_id: str) -> str:
    (record,) = json.loads(jf("status", "--json", job_id).stdout)
    return str(record["state"])


def queue_json(*args: str) -> list[dict[str, Any]]:
    rows = json.loads(jf("queue", "--json", *args).stdout)
    assert isinstance(rows, list)
    for row in rows:
        assert set(row) == QUEUE_KEYS, row
        assert row["state"] in {s.value for s in JobState}
    return rows


def rows_of(rows: list[dict[str, Any]], native_id: str) -> dict[str, dict[str, Any]]:
    """The rows of one job (or array), by display id."""
    return {r["display_id"]: r for r in rows if r["native_id"] == native_id}


def native_of(job_id: str) -> str:
    (record,) = json.loads(jf("status", "--json", job_id).stdout)
    return str(record["native_id"])


@pytest.fixture
def cancel_after(jf_home: Path) -> Iterator[list[str]]:
    """Jobfleet ids to cancel when the test ends, however it ends."""
    ids: list[str] = []
    yield ids
    if ids:
        jf("cancel", *ids, expect=None)


def test_local_queue_lists_jobs_with_their_ids(jf_home: Path, cancel_after: list[str]) -> None:
    single = submit("--name", "single", "--", "sleep", "60")
    array = submit("--name", "arr", "--array", "1-4%1", "--", "sleep", "60")
    cancel_after += [single, array]
    wait_for(lambda: state_of(single) == "running" and state_of(array) == "running", 30, "start")
    rows = queue_json()
    # The local queue only ever has this user's jobs (elapsed times move on meanwhile).
    everybody = queue_json("--all-users")
    assert [{**r, "elapsed_s": 0} for r in rows] == [{**r, "elapsed_s": 0} for r in everybody]
    mine = rows_of(rows, native_of(single))
    assert list(mine) == [native_of(single)]
    (row,) = mine.values()
    assert (row["id"], row["state"], row["native_state"], row["backend"]) == (
        single,
        "running",
        "running",
        "local",
    )
    assert row["user"] == pwd.getpwuid(os.geteuid()).pw_name and row["nodes"]
    elements = rows_of(rows, native_of(array))
    base = native_of(array)
    assert set(elements) == {f"{base}_1", f"{base}_[2-4%1]"}
    assert elements[f"{base}_1"]["state"] == "running"
    assert elements[f"{base}_[2-4%1]"]["state"] == "pending"
    assert {r["id"] for r in elements.values()} == {array}
    table = jf("queue").stdout
    assert f"{base}_[2-4%1]" in table and "running" in table  # no markup eaten


def test_queue_errors_are_one_line(jf_home: Path, tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    down = load(SLURM_DIR, "ctld-down-squeue")
    fake = bin_dir / "squeue"
    fake.write_text(f"#!/bin/sh\nprintf '%s' '{down.stderr.strip()}' >&2\nexit 1\n")
    fake.chmod(0o755)
    proc = jf("queue", "--backend", "slurm", expect=1, env={"PATH": str(bin_dir)})
    assert proc.stdout == ""
    assert proc.stderr.splitlines() == ["jobfleet: error: squeue exited 1: " + down.stderr.strip()]
    proc = jf("queue", "--backend", "nope", expect=2)
    assert len(proc.stderr.splitlines()) == 1 and "unknown backend 'nope'" in proc.stderr


# -- live clusters ------------------------------------------------------------------------


def hand_script(tmp_path: Path) -> Path:
    script = tmp_path / "hand.sh"
    script.write_text("#!/bin/sh\nsleep 300\n")
    script.chmod(0o755)
    return script


def check_live_queue(backend: str, hand_id: str, cancel_after: list[str], sep: str) -> None:
    """Submit through jobfleet; the queue view must show each job with its id and state."""
    first = submit("--name", "q-first", "--", "sleep", "300")
    cancel_after.append(first)
    after = submit("--name", "q-after", "--after-ok", first, "--", "sleep", "300")
    array = submit("--name", "q-arr", "--array", "1-3%1", "--", "sleep", "300")
    cancel_after += [after, array]

    def started() -> bool:
        rows = queue_json()
        return any(r["id"] == first and r["state"] == "running" for r in rows) and any(
            r["id"] == array and r["state"] == "running" for r in rows
        )

    wait_for(started, 90, "the jobs to start")
    rows = queue_json()
    (mine,) = rows_of(rows, native_of(first)).values()
    assert (mine["id"], mine["backend"], mine["state"], mine["nodes"] is not None) == (
        first,
        backend,
        "running",
        True,
    )
    (waiting,) = rows_of(rows, native_of(after)).values()
    assert (waiting["id"], waiting["state"], waiting["elapsed_s"]) == (after, "pending", None)
    assert waiting["reason"] in ("Dependency", "held")
    base = native_of(array)
    elements = rows_of(rows, base)
    assert elements[f"{base}{sep}1"]["state"] == "running"
    pending = [r for r in elements.values() if r["state"] == "pending"]
    # SLURM writes 2-3%1; Grid Engine 2-3:1 or, for two tasks, sometimes 2,3.
    assert len(pending) == 1 and pending[0]["tasks"] in ("2-3%1", "2-3:1", "2,3")
    assert {r["id"] for r in elements.values()} == {array}
    (hand,) = [r for r in rows if r["native_id"] == hand_id]
    assert hand["id"] is None and hand["name"] == "jf-queue-by-hand"
    assert hand["user"] == pwd.getpwuid(os.geteuid()).pw_name
    assert any(r["native_id"] == hand_id for r in queue_json("--all-users"))


def test_slurm_queue_live(slurm_home: Path, cancel_after: list[str], tmp_path: Path) -> None:
    script = str(hand_script(tmp_path))
    hand_id = subprocess.run(
        ["sbatch", "--parsable", "--job-name=jf-queue-by-hand", "--output=/dev/null", script],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.strip()
    try:
        check_live_queue("slurm", hand_id, cancel_after, "_")
    finally:
        subprocess.run(["scancel", hand_id], check=False, timeout=60)


def test_sge_queue_live(sge_home: Path, cancel_after: list[str], tmp_path: Path) -> None:
    script = str(hand_script(tmp_path))
    hand_id = subprocess.run(
        ["qsub", "-terse", "-N", "jf-queue-by-hand", "-o", "/dev/null", "-j", "y", script],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.strip()
    try:
        check_live_queue("sge", hand_id, cancel_after, ".")
    finally:
        subprocess.run(["qdel", hand_id], check=False, capture_output=True, timeout=60)


OTHER_USER = "jfother"


def other_user() -> str:
    """The second local user the live --all-users tests submit as (skip without one)."""
    if os.geteuid() != 0:
        pytest.skip("submitting as another user needs root")
    try:
        pwd.getpwnam(OTHER_USER)
    except KeyError:
        pytest.skip(f"no second local user: `useradd -m {OTHER_USER}` enables this test")
    return OTHER_USER


def as_other(argv: list[str], user: str) -> str:
    home = pwd.getpwnam(user).pw_dir
    proc = subprocess.run(
        ["runuser", "-u", user, "--", *argv],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        cwd=home,
    )
    return proc.stdout.strip()


@pytest.mark.parametrize("scheduler", ["slurm", "sge"])
def test_all_users_shows_another_users_job(scheduler: str, request: pytest.FixtureRequest) -> None:
    request.getfixturevalue(f"{scheduler}_home")  # skips without the live cluster
    user = other_user()
    if scheduler == "slurm":
        native = as_other(
            ["sbatch", "--parsable", "--output=/dev/null", "--hold", "--wrap", "sleep 300"], user
        )
    else:
        native = as_other(
            ["qsub", "-terse", "-h", "-o", "/dev/null", "-j", "y", "-b", "y", "sleep", "300"],
            user,
        )
    try:
        everybody = [r for r in queue_json("--all-users") if r["native_id"] == native]
        assert [(r["user"], r["state"], r["id"]) for r in everybody] == [(user, "pending", None)]
        assert not any(r["native_id"] == native for r in queue_json())
    finally:
        cancel = ["scancel", native] if scheduler == "slurm" else ["qdel", native]
        subprocess.run(cancel, check=False, capture_output=True, timeout=60)


# -- top ------------------------------------------------------------------------------------


def row_words(output: str, job_id: str) -> list[list[str]]:
    """The words of every table row of job ``job_id`` in ``output``."""
    return [line.split() for line in output.splitlines() if line.split()[:1] == [job_id]]


def test_top_prints_one_table_per_refresh_when_not_a_terminal(
    jf_home: Path, cancel_after: list[str]
) -> None:
    done = submit("--name", "quick", "--", "true")
    jf("wait", done, "--timeout", "60")
    running = submit("--name", "slow", "--", "sleep", "60")
    array = submit("--name", "arr", "--array", "1-4%1", "--", "sleep", "60")
    cancel_after += [running, array]
    wait_for(lambda: state_of(running) == "running" and state_of(array) == "running", 30, "start")
    out = jf("top", "--iterations", "2", "--interval", "0.2").stdout
    assert "\x1b[" not in out  # no colours, no cursor movement into a pipe
    headers = [line for line in out.splitlines() if " 3 jobs: " in line]
    assert len(headers) == 2, out
    assert all("1 completed" in h and "2 running" in h for h in headers), headers
    assert len(row_words(out, running)) == 2 and len(row_words(out, done)) == 2
    assert row_words(out, running)[0][1:4] == ["slow", "local", "running"]
    assert row_words(out, done)[0][1:4] + row_words(out, done)[0][5:6] == [
        "quick",
        "local",
        "completed",
        "0",
    ]
    assert "3 pending, 1 running" in " ".join(row_words(out, array)[0])
    # --all --limit 1: only the newest job, whatever its state.
    out = jf("top", "--iterations", "1", "--all", "--limit", "1").stdout
    assert row_words(out, array) and not row_words(out, running) and not row_words(out, done)


def test_top_redraws_in_place_on_a_terminal(jf_home: Path, cancel_after: list[str]) -> None:
    job = submit("--name", "slow", "--", "sleep", "60")
    cancel_after.append(job)
    main, child = pty.openpty()
    proc = subprocess.Popen(
        [PY, "-m", "jobfleet", "top", "--iterations", "2", "--interval", "0.2"],
        stdout=child,
        stderr=subprocess.PIPE,
        env={**os.environ, "TERM": "xterm-256color", "COLUMNS": "160"},
        cwd=jf_home.parent,
    )
    os.close(child)
    chunks: list[bytes] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([main], [], [], 0.5)
        if ready:
            try:
                data = os.read(main, 65536)
            except OSError:  # the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        elif proc.poll() is not None:
            break
    os.close(main)
    assert proc.wait(timeout=30) == 0, proc.stderr.read() if proc.stderr else ""
    out = b"".join(chunks).decode("utf-8", "replace")
    assert "\x1b[" in out  # drawn with terminal control sequences: redrawn in place
    assert job in out and "Ctrl-C quits" in out


def test_top_ctrl_c_exits_cleanly(jf_home: Path, cancel_after: list[str]) -> None:
    job = submit("--name", "slow", "--", "sleep", "60")
    cancel_after.append(job)
    proc = subprocess.Popen(
        [PY, "-m", "jobfleet", "top", "--interval", "0.2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=jf_home.parent,
    )
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], 60)
    if not ready:
        proc.kill()
        pytest.fail("top printed nothing within 60 s")
    first = proc.stdout.readline()  # the first header: top is running
    assert " 1 job: " in first, first
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "Traceback" not in out + err and err == ""
