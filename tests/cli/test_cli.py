"""The ``jobfleet`` command end to end: every call here is a real, separate process.

So every test also checks that what one process records, the next one sees:
the submitter, the waiter and the reader of the status never share memory.

Every test that runs jobs runs the same body on each backend (the ``backend``
fixture): the local one with the fixture's 2-core configuration, and SLURM and
Grid Engine on their live clusters (each skipped, saying why, when none
answers). Where the right answer depends on the scheduler, the test asserts
that scheduler's answer. The few tests that run on one backend only say why in
a comment.
"""

from __future__ import annotations

import json
import os
import platform
import pwd
import shlex
import subprocess
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from conftest import wait_for
from jobfleet import __version__
from support.cli import PY, jf

BACKENDS = [
    "local",
    pytest.param("slurm", marks=pytest.mark.live_slurm),
    pytest.param("sge", marks=pytest.mark.live_sge),
]


#: The state strings of the ``--json`` contract, and nothing else.
STATES = {
    "pending",
    "running",
    "completed",
    "failed",
    "cancelled",
    "timeout",
    "out_of_memory",
    "lost",
    "unknown",
}
#: Keys every status record must have.
RECORD_KEYS = {"id", "name", "backend", "native_id", "state", "exit_code"}
#: Generous: a slow CI machine must not turn a wait into a failure.
WAIT = ("--timeout", "60")


def submit(*args: str) -> str:
    """Submit (``args`` include ``-- COMMAND``); the id, checked to be all that was printed."""
    proc = jf("submit", *args)
    assert proc.stdout.count("\n") == 1 and proc.stdout.endswith("\n"), repr(proc.stdout)
    job_id = proc.stdout.strip()
    assert job_id and job_id.split() == [job_id], repr(proc.stdout)
    assert proc.stderr == ""
    return job_id


def status(*job_ids: str) -> list[dict[str, Any]]:
    """``status --json`` records, each checked against the JSON contract."""
    records = json.loads(jf("status", "--json", *job_ids).stdout)
    assert isinstance(records, list)
    for record in records:
        assert record.keys() >= RECORD_KEYS, record
        assert record["state"] in STATES
        for element in record.get("elements", {}).values():
            assert element["state"] in STATES
    return records


def one(job_id: str) -> dict[str, Any]:
    (record,) = status(job_id)
    assert record["id"] == job_id
    return record


def usage_error(*args: str) -> str:
    """Run a bad command line: exit 2, nothing on stdout, ONE error line on stderr; that line."""
    proc = jf(*args, expect=2)
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("jobfleet: error: "), lines[0]
    return lines[0]


def runs(line: str, argv: list[str]) -> bool:
    """True if the shell words of ``line`` contain ``argv`` in a row."""
    try:
        words = shlex.split(line, comments=True)
    except ValueError:  # not a line shlex can read, so not the command line
        return False
    n = len(argv)
    return any(words[i : i + n] == argv for i in range(len(words) - n + 1))


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, jf_home: Path) -> str:
    """The backend of the test's configuration: every job of the test runs there."""
    if request.param in ("slurm", "sge"):
        # Skips, saying why, when no such cluster answers.
        request.getfixturevalue(f"{request.param}_home")
    return str(request.param)


def slurm(*argv: str) -> str:
    """The output of a SLURM client command, checked to have succeeded."""
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=True)
    return proc.stdout


def slurm_queue(native_id: str, *fields: str) -> list[str]:
    """squeue's ``fields`` (format codes such as ``%j``) for the SLURM job ``native_id``.

    Asked of the controller, which knows a job from its submission until MinJobAge
    after its end; accounting may show a placeholder ("allocation", no partition)
    for the first seconds.
    """
    out = slurm(
        "squeue",
        "--noheader",
        "--states=all",
        f"--jobs={native_id}",
        f"--format={'|'.join(fields)}",
    )
    (line,) = out.splitlines()
    return line.split("|")


def largest_slurm_node() -> tuple[int, int]:
    """The most CPUs and the most memory (MiB) that any one node has."""
    nodes = [
        line.split()
        for line in slurm("sinfo", "--noheader", "--Node", "--format=%c %m").splitlines()
    ]
    return max(int(c.rstrip("+")) for c, _ in nodes), max(int(m.rstrip("+")) for _, m in nodes)


def sge(*argv: str) -> str:
    """The output of a Grid Engine client command, checked to have succeeded."""
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=True)
    return proc.stdout


def sge_accounting(native_id: str) -> dict[str, str]:
    """qacct's record (key -> value) of the finished Grid Engine job ``native_id``.

    The newest one, should a re-initialised cluster have reused the job number.
    """
    record: dict[str, str] = {}
    for line in sge("qacct", "-j", native_id).splitlines():
        if line.startswith("====="):  # each record starts with such a line
            record = {}
        elif line.strip():
            key, _, value = line.partition(" ")
            record[key] = value.strip()
    return record


def sge_queue_and_project() -> tuple[str, str | None]:
    """A queue and a project (jobfleet's account) of the Grid Engine cluster, if it has one."""
    queues = sge("qconf", "-sql").split()
    queue = "all.q" if "all.q" in queues else queues[0]
    projects = subprocess.run(  # exits 1 with "no project list defined" when there is none
        ["qconf", "-sprjl"], capture_output=True, text=True, timeout=60
    ).stdout.split()
    return queue, (projects[0] if projects else None)


def slurm_queue_and_account() -> tuple[str, str]:
    """The default partition and the submitting user's default account."""
    partitions = slurm("sinfo", "--noheader", "--format=%P").split()
    queue = next((p for p in partitions if p.endswith("*")), partitions[0]).rstrip("*")
    user = pwd.getpwuid(os.getuid()).pw_name
    account = slurm(
        "sacctmgr", "--noheader", "--parsable2", "show", "user", user, "format=DefaultAccount"
    ).strip()
    return queue, account


# -- submit, status, wait -------------------------------------------------------------


def test_version_names_python_and_each_scheduler_found(tmp_path: Path) -> None:
    """A SLURM client whose controller is down (sinfo answers, scontrol ping does not),
    and nothing else on PATH but Python: its version is still printed, with why it
    does not answer."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, body in (
        ("sbatch", "exit 1"),
        ("sinfo", "echo 'slurm 23.11.4'"),
        (
            "scontrol",
            "echo 'slurm_load_ctl_conf error: Unable to contact slurm controller' >&2; exit 1",
        ),
    ):
        (bin_dir / name).write_text(f"#!/bin/sh\n{body}\n")
        (bin_dir / name).chmod(0o755)
    path = f"{bin_dir}{os.pathsep}{Path(PY).parent}"
    lines = jf("--version", env={"PATH": path}).stdout.splitlines()
    assert lines[0] == f"jobfleet {__version__}"
    assert lines[1].startswith(f"Python {platform.python_version()} (") and PY in lines[1]
    assert lines[2] == (
        f"slurm: 23.11.4 ({bin_dir / 'sbatch'}; does not answer: scontrol ping: "
        "slurm_load_ctl_conf error: Unable to contact slurm controller)"
    )
    assert len(lines) == 3
    bare = jf("--version", env={"PATH": str(Path(PY).parent)}).stdout
    assert bare.splitlines()[2:] == [
        "schedulers: none on PATH (the local backend runs jobs on this machine)"
    ]


def test_bare_command_shows_usage_not_an_error() -> None:  # parsing only: no backend
    proc = jf(expect=None)
    assert proc.returncode in (0, 2)  # click < 8.2 exits 0, later versions 2
    assert "Usage: jobfleet" in proc.stdout + proc.stderr
    assert "jobfleet: error" not in proc.stderr


def test_submit_prints_the_id_and_other_processes_see_the_job(backend: str) -> None:
    first = submit("--name", "hello", "--", "true")
    second = submit("--", "sleep", "0.2")
    assert first != second
    record = one(first)  # a new process, knowing only the id
    assert (record["name"], record["backend"]) == ("hello", backend)
    assert record["native_id"]
    if backend == "slurm":  # SLURM's own job id, of a job with jobfleet's unique name
        assert record["native_id"].isdigit()
        (name,) = slurm_queue(record["native_id"], "%j")
        assert name.startswith("jf") and name.endswith(f"-{first}-hello"), name
    if backend == "sge":  # Grid Engine's job number (asked of qacct below, once it ended)
        assert record["native_id"].isdigit()
    assert one(second)["name"] == "sleep"  # defaults to the program's name

    done = jf("wait", first, second, *WAIT)
    assert done.stdout.strip() == "2 completed"
    if backend == "sge":  # of a job with jobfleet's unique name
        name = sge_accounting(record["native_id"])["jobname"]
        assert name.startswith("jf") and name.endswith(f"-{first}-hello"), name
    assert [(r["state"], r["exit_code"]) for r in status(first, second)] == [("completed", 0)] * 2
    assert {first, second} <= {r["id"] for r in status()}  # the recent jobs, without ids
    assert [r["id"] for r in status("--limit", "1")] == [second]


def test_submit_json(backend: str) -> None:
    proc = jf("submit", "--json", "--name", "js", "--", "true")
    record = json.loads(proc.stdout)
    assert {"id", "backend", "native_id", "state"} <= record.keys()
    assert record["backend"] == backend
    assert record["state"] in STATES
    assert one(record["id"])["name"] == "js"
    jf("wait", record["id"], *WAIT)


def test_resource_options_are_accepted(backend: str) -> None:
    # The local backend ignores queue and account; SLURM and Grid Engine refuse names
    # they do not know (Grid Engine's account is a project, qsub -P).
    account: str | None
    if backend == "local":
        queue, account = "q", "a"
    elif backend == "slurm":
        queue, account = slurm_queue_and_account()
    else:
        queue, account = sge_queue_and_project()
    resources = ["--cores", "2", "--memory", "64M", "--walltime", "1h", "--gpus", "0"]
    resources += ["--queue", queue, "--backend", backend]
    if account is not None:
        resources += ["--account", account]
    job = submit(*resources, "--", "true")
    if backend == "slurm":  # and each reached the scheduler
        asked = slurm_queue(one(job)["native_id"], "%P", "%a", "%C", "%m", "%l")
        assert asked == [queue, account, "2", "64M", "1:00:00"]
    jf("wait", job, *WAIT)
    if backend == "sge":  # each reached the scheduler; memory is per slot there (64M / 2)
        acct = sge_accounting(one(job)["native_id"])
        assert (acct["qname"], acct["granted_pe"], acct["slots"]) == (queue, "smp", "2")
        assert acct["project"] == (account or "NONE")
        for request in (f"-q {queue}", "-l h_rt=3600,h_vmem=32M", "-pe smp 2"):
            assert request in acct["category"], acct["category"]
        if account is None:  # a cluster without projects: --account reaches qsub -P all the same
            proc = jf("submit", "--account", "jf-no-such-project", "--", "true", expect=1)
            (line,) = proc.stderr.splitlines()
            assert 'the requested project "jf-no-such-project" does not exist' in line


def test_options_after_the_command_belong_to_it(backend: str) -> None:
    job = submit("echo", "--json", "--name", "x")  # no `--` needed once COMMAND began
    jf("wait", job, *WAIT)
    assert jf("logs", job).stdout == "--json --name x\n"
    assert one(job)["name"] == "echo"


def test_dry_run_shows_the_script_and_records_nothing(
    backend: str, jf_home: Path, tmp_path: Path
) -> None:
    marker = tmp_path / "ran"
    argv = ["touch", str(marker), "a b", "it's", "$HOME", "x;y"]
    out = jf("submit", "--dry-run", "--", *argv).stdout
    assert out.startswith("#!")
    # Some line of the script runs exactly argv, however the script quotes it...
    assert any(runs(line, argv) for line in out.splitlines()), out
    assert "'$HOME'" in out  # ...and in single quotes, so bash expands nothing

    as_json = json.loads(jf("submit", "--dry-run", "--json", "--", *argv).stdout)
    assert as_json["backend"] == backend
    assert str(marker) in as_json["script"]
    (submit_line,) = [line for line in out.splitlines() if line.startswith("# submit:")]
    if backend == "local":  # queued for the local agent: no command is run
        assert as_json["argv"] is None
        assert "no command" in submit_line
    else:  # the very submit command, written so that a shell splits it back the same
        command = as_json["argv"]
        assert shlex.split(submit_line.removeprefix("# submit:")) == command
        assert command[-1].endswith("/job.sh"), command
        if backend == "slurm":
            assert command[0] == "sbatch", command
            assert "#SBATCH --cpus-per-task=1" in out.splitlines()
        else:
            assert command[:2] == ["qsub", "-terse"], command
            assert {"#$ -S /bin/bash", "#$ -V"} <= set(out.splitlines())

    assert status() == []
    jobs = jf_home / "jobs"
    assert not jobs.exists() or list(jobs.iterdir()) == []
    # A real job goes the same way (agent, sbatch or qsub); by its end a dry run that had
    # slipped through would have run too.
    real = submit("--", "true")
    jf("wait", real, *WAIT)
    assert not marker.exists()
    assert [r["id"] for r in status()] == [real]
    if backend == "slurm":  # and SLURM never heard of the dry run's job name
        (name,) = [word.partition("=")[2] for word in command if word.startswith("--job-name=")]
        assert slurm("squeue", "--noheader", "--states=all", f"--name={name}") == ""
        assert slurm("sacct", "--noheader", "--starttime=now-1days", f"--name={name}") == ""
    if backend == "sge":  # nor Grid Engine, in its queue or in its accounting
        name = command[command.index("-N") + 1]
        assert f"<JB_name>{name}</JB_name>" not in sge("qstat", "-xml", "-u", "*")
        proc = subprocess.run(["qacct", "-j", name], capture_output=True, text=True, timeout=60)
        assert (proc.returncode, proc.stdout) == (1, ""), proc.stdout
        assert "not found" in proc.stderr


def test_wait_exit_statuses_and_exit_codes(backend: str) -> None:
    ok = submit("--", "true")
    bad = submit("--", "bash", "-c", "exit 3")
    jf("wait", ok, *WAIT)  # exit 0: all completed
    proc = jf("wait", ok, bad, *WAIT, expect=1)  # exit 1: one did not
    assert "failed" in proc.stdout
    record = one(bad)
    assert (record["state"], record["exit_code"]) == ("failed", 3)


def test_wait_times_out_with_status_3(backend: str) -> None:
    sleeper = submit("--", "sleep", "30")
    started = time.monotonic()
    proc = jf("wait", sleeper, "--timeout", "1", expect=3)
    assert time.monotonic() - started < 20
    (line,) = proc.stderr.splitlines()
    assert line.startswith("jobfleet: error: ") and sleeper in line
    assert one(sleeper)["state"] in {"pending", "running"}  # the job keeps running
    jf("cancel", sleeper)


def test_wait_output_to_a_pipe_has_no_control_sequences(backend: str) -> None:
    job = submit("--", "sleep", "0.5")
    # FORCE_COLOR makes rich treat any stream as a terminal; a pipe still gets no bar.
    proc = jf("wait", job, *WAIT, env={"FORCE_COLOR": "1", "TERM": "xterm-256color"})
    assert "\x1b[" not in proc.stdout + proc.stderr
    assert proc.stdout == "1 completed\n"
    assert proc.stderr == ""


@pytest.mark.waits_on_clock
def test_walltime_ends_in_timeout(backend: str) -> None:
    # SLURM rounds a limit up to whole minutes and enforces it on its own
    # schedule (about 70 s after the start here), so its job gets a longer wait.
    # Grid Engine enforces h_rt within seconds.
    wait_s = 240 if backend == "slurm" else 60
    job = submit("--walltime", "2s", "--", "sleep", "600")
    jf("wait", job, "--timeout", str(wait_s), expect=1, timeout_s=wait_s + 60)
    assert one(job)["state"] == "timeout"


def test_cancel_a_running_job(backend: str) -> None:
    job = submit("--", "sleep", "60")
    wait_for(lambda: one(job)["state"] == "running", timeout_s=60, what="the job to start")
    proc = jf("cancel", job)
    assert proc.stdout.split() == [job, "cancelled"]
    assert one(job)["state"] == "cancelled"
    jf("wait", job, *WAIT, expect=1)  # cancelled is not success


def test_cancel_a_pending_job(backend: str) -> None:
    first = submit("--", "sleep", "60")
    held = submit("--after-any", first, "--", "true")  # pending until `first` ends
    try:
        assert one(held)["state"] == "pending"
        proc = jf("cancel", held)
        # Cancelled at once, on SLURM too: sacct may lag the cancel (still PENDING while
        # squeue says CANCELLED, 22.05/cancel-lag-*), and squeue's word is taken then.
        assert proc.stdout.split() == [held, "cancelled"]
        assert one(held)["state"] == "cancelled"
        assert jf("wait", held, *WAIT, expect=1).stdout == "1 cancelled\n"
        assert one(first)["state"] in {"pending", "running"}  # only the one asked for
    finally:
        jf("cancel", first)  # not left to hold a slot when an assertion failed


#: Says it is ready once its trap is set, and ends cleanly (exit 0) on SIGUSR1.
GRACEFUL = "trap 'echo stopping gracefully; exit 0' USR1; echo ready; sleep 60 & wait"


def test_cancel_with_a_signal(backend: str) -> None:
    job = submit("--", "sh", "-c", GRACEFUL)
    wait_for(
        lambda: jf("logs", job, expect=None).stdout == "ready\n",
        timeout_s=60,
        what="the job to set its trap",
    )
    if backend == "sge":  # Grid Engine cannot send a chosen signal: refused, job untouched
        proc = jf("cancel", "--signal", "USR1", job, expect=1)
        assert proc.stdout == ""
        (line,) = proc.stderr.splitlines()
        assert line.startswith("jobfleet: error: ")
        assert "cannot send a chosen signal" in line and "cancel it instead" in line
        assert one(job)["state"] == "running"
        jf("cancel", job)
        jf("wait", job, *WAIT, expect=1)
        return
    proc = jf("cancel", "--signal", "USR1", job)
    assert proc.stdout.split()[0] == job  # still running, or already stopped
    jf("wait", job, *WAIT)
    assert (one(job)["state"], one(job)["exit_code"]) == ("completed", 0)
    assert jf("logs", job).stdout == "ready\nstopping gracefully\n"


# -- logs and arrays ------------------------------------------------------------------


def test_logs_stdout_and_stderr(backend: str) -> None:
    job = submit("--", "bash", "-c", "echo out; echo err >&2")
    jf("wait", job, *WAIT)
    assert jf("logs", job).stdout == "out\n"
    assert jf("logs", job, "--stderr").stdout == "err\n"


def test_array_elements_and_logs(backend: str) -> None:
    arr = submit("--array", "1-6%2", "--", "bash", "-c", "echo idx=$JOBFLEET_ARRAY_INDEX")
    mixed = submit("--array", "1-3", "--", "bash", "-c", "exit $((JOBFLEET_ARRAY_INDEX == 2))")
    assert jf("wait", arr, *WAIT).stdout.strip() == "6 completed"
    record = one(arr)
    assert record["state"] == "completed"
    assert sorted(record["elements"], key=int) == [str(i) for i in range(1, 7)]
    assert all(
        (e["state"], e["exit_code"]) == ("completed", 0) for e in record["elements"].values()
    )
    assert jf("logs", arr, "--index", "4").stdout == "idx=4\n"
    assert "--index" in usage_error("logs", arr)

    jf("wait", mixed, *WAIT, expect=1)
    elements = one(mixed)["elements"]
    assert (elements["2"]["state"], elements["2"]["exit_code"]) == ("failed", 1)
    assert {elements["1"]["state"], elements["3"]["state"]} == {"completed"}
    # The table counts the elements of ended arrays (read without them: issue 16).
    table = jf("status", mixed, arr, env={"COLUMNS": "200"}).stdout
    rows = {line.split()[0]: line for line in table.splitlines()[1:]}
    assert rows[mixed].rstrip().endswith("2 completed, 1 failed")
    assert rows[arr].rstrip().endswith("6 completed")


def test_array_of_several_ranges(backend: str) -> None:
    args = ["--array", "1-2,5", "--", "bash", "-c", "echo idx=$JOBFLEET_ARRAY_INDEX"]
    if backend == "sge":  # qsub -t takes one range a-b[:step]: refused before anything is recorded
        for dry_run in ([], ["--dry-run"]):
            line = usage_error("submit", *dry_run, *args)
            assert "'1-2,5'" in line and "one range" in line
        assert status() == []
        return
    arr = submit(*args)
    assert jf("wait", arr, *WAIT).stdout == "3 completed\n"
    assert sorted(one(arr)["elements"], key=int) == ["1", "2", "5"]
    assert jf("logs", arr, "--index", "5").stdout == "idx=5\n"


# -- dependencies ---------------------------------------------------------------------


def test_dependencies(backend: str, tmp_path: Path) -> None:
    flag, never = tmp_path / "first-ran", tmp_path / "never"
    first = submit("--", "bash", "-c", f"sleep 0.5; touch '{flag}'")
    also_ok = submit("--", "true")
    then = submit("--after-ok", first, "--after-ok", also_ok, "--", "test", "-e", str(flag))
    failing = submit("--", "bash", "-c", "exit 3")
    blocked = submit("--after-ok", failing, "--", "touch", str(never))
    anyway = submit("--after-any", failing, "--", "true")
    rescue = submit("--after-not-ok", failing, "--", "true")
    ids = [first, also_ok, then, failing, blocked, anyway, rescue]
    jf("wait", *ids, *WAIT, expect=1)
    done = {r["id"]: r for r in status(*ids)}
    assert done[then]["state"] == "completed"  # ran only once the flag existed
    assert done[failing]["state"] == "failed"
    assert done[blocked]["state"] == "cancelled"  # why: the next test
    assert not never.exists()
    assert done[anyway]["state"] == "completed"
    assert done[rescue]["state"] == "completed"


def test_a_dependency_never_met_says_why(backend: str, tmp_path: Path) -> None:
    never = tmp_path / "never"
    failing = submit("--", "bash", "-c", "exit 3")
    blocked = submit("--after-ok", failing, "--", "touch", str(never))
    jf("wait", failing, blocked, *WAIT, expect=1)
    record = one(blocked)
    assert (record["state"], record["exit_code"]) == ("cancelled", None)
    # Every backend says it the same way (docs/states.md): jobfleet itself when the
    # dependency ended before submission, else the backend; on Grid Engine, the job
    # script, which checks after-ok and after-not-ok itself.
    reason = record["reason"] or ""
    assert reason.startswith("cancelled: ") and "can never be met" in reason, record
    assert not never.exists()


# -- what reaches the job -------------------------------------------------------------

SHOW = "import json, os, sys; print(json.dumps([sys.argv[1:], os.getcwd(), os.environ['ODD']]))"


def test_arguments_env_and_workdir_arrive_byte_exact(backend: str, tmp_path: Path) -> None:
    args = ["a b", "it's", '"q"', "$HOME", "x;y", "", "--name", "tab\tx", "back\\slash"]
    args += ["ünï", "*", "`id`", "$(id)", "two\nlines", "-x"]
    odd = "hi \"there\" 'you' $HOME; `id` \\"
    workdir = tmp_path / "work dir; $x"
    workdir.mkdir()
    job = submit("--workdir", str(workdir), "--env", f"ODD={odd}", "--", PY, "-c", SHOW, *args)
    jf("wait", job, *WAIT)
    assert json.loads(jf("logs", job).stdout) == [args, str(workdir), odd]


def test_env_values_and_relative_workdir(backend: str, tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    show = 'printf "%s|%s|%s" "$EQ" "${EMPTY-unset}" "$PWD"'
    env = ["--env", "EQ=a=b", "--env", "EMPTY="]
    proc = jf("submit", "--workdir", "sub", *env, "--", "bash", "-c", show, cwd=tmp_path)
    job = proc.stdout.strip()
    jf("wait", job, *WAIT)
    # Relative to the submitter's directory, not to wherever the job is started from.
    assert jf("logs", job).stdout == f"a=b||{tmp_path / 'sub'}"


# -- bad input ------------------------------------------------------------------------

#: Refused while the command line and the configuration are read, before any backend
#: is asked, so the fixture's local configuration is enough.
BAD_INPUT = [
    (["submit", "--memory", "lots", "--", "true"], ["memory", "lots", "4G"]),
    (["submit", "--walltime", "10:00", "--", "true"], ["walltime", "ambiguous", "HH:MM:SS"]),
    (["submit", "--array", "5-1", "--", "true"], ["--array", "5-1"]),
    (["submit", "--cores", "0", "--", "true"], ["cores", "at least 1"]),
    (["submit", "--env", "NOEQUALS", "--", "true"], ["--env", "NOEQUALS", "KEY=VALUE"]),
    (["submit", "--frobnicate", "--", "true"], ["--frobnicate", "--help"]),
    (["submit"], ["COMMAND", "after --", "jobfleet submit -- echo hi", "--help"]),
    (["submit", "--"], ["COMMAND", "after --", "jobfleet submit -- echo hi", "--help"]),
    (["submit", "--profile", "nope", "--", "true"], ["profile", "nope"]),
    (["status", "--limit", "-5"], ["--limit", "-5", ">=1"]),
    (["status", "--limit", "0"], ["--limit", "0", ">=1"]),
    # The local backend's capacity check; SLURM's equivalents are the test_slurm_* tests.
    (["submit", "--cores", "64", "--", "true"], ["cores", "64", "local.cores"]),
]
#: Ids the registry does not know: refused on every backend alike.
UNKNOWN_IDS = [
    (["submit", "--after-ok", "999999", "--", "true"], ["999999", "dependencies"]),
    (["status", "424242"], ["424242"]),
    (["wait", "424242", *WAIT], ["424242"]),
    (["logs", "424242"], ["424242"]),
]


@pytest.mark.parametrize(
    ("args", "words"), BAD_INPUT, ids=[" ".join(args) for args, _ in BAD_INPUT]
)
def test_bad_input_is_one_line_and_status_2(
    jf_home: Path, args: list[str], words: list[str]
) -> None:
    line = usage_error(*args)
    for word in words:
        assert word in line
    assert status() == []  # nothing was recorded


@pytest.mark.parametrize(
    ("args", "words"), UNKNOWN_IDS, ids=[" ".join(args) for args, _ in UNKNOWN_IDS]
)
def test_unknown_ids_are_one_line_and_status_2(
    backend: str, args: list[str], words: list[str]
) -> None:
    line = usage_error(*args)
    for word in words:
        assert word in line
    assert status() == []  # nothing was recorded


#: Runs its arguments in a directory it has deleted: a child cannot be started in a
#: deleted directory, but a shell can delete its own.
IN_A_DELETED_DIRECTORY = ["bash", "-c", 'mkdir d && cd d && rmdir ../d && exec "$@"', "bash"]


def test_submit_from_a_deleted_directory(backend: str, tmp_path: Path) -> None:
    base = [*IN_A_DELETED_DIRECTORY, PY, "-m", "jobfleet", "submit"]
    for extra, fix in (([], "pass --workdir"), (["--workdir", "rel"], "an absolute --workdir")):
        proc = subprocess.run(
            [*base, *extra, "--", "true"],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            timeout=120,
        )
        assert (proc.returncode, proc.stdout) == (2, ""), proc.stderr
        (line,) = proc.stderr.splitlines()
        assert line.startswith("jobfleet: error: workdir: the current directory no longer exists")
        assert "cd somewhere else" in line and fix in line
    assert status() == []


def test_submit_from_a_deleted_directory_with_an_absolute_workdir(
    backend: str, tmp_path: Path
) -> None:
    submit_pwd = [PY, "-m", "jobfleet", "submit", "--workdir", str(tmp_path), "--", "pwd"]
    proc = subprocess.run(
        [*IN_A_DELETED_DIRECTORY, *submit_pwd],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    job = proc.stdout.strip()
    assert [r["id"] for r in status()] == [job]
    jf("wait", job, *WAIT)
    assert jf("logs", job).stdout == f"{tmp_path}\n"


def test_bad_config_file(jf_home: Path, tmp_path: Path) -> None:
    # Reading a configuration file: no backend is asked (the bad file names its own).
    bad = tmp_path / "bad.yaml"
    bad.write_text("backend: local\nresources:\n  corez: 2\n")
    for args in (
        ["submit", "--config", str(bad), "--", "true"],
        ["config", "show", "--config", str(bad)],
    ):
        line = usage_error(*args)
        assert str(bad) in line
        assert "resources.corez" in line and "'cores'" in line  # the key and the fix
    assert status() == []


def test_dry_run_checks_dependencies(backend: str) -> None:
    line = usage_error("submit", "--dry-run", "--after-ok", "999999", "--", "true")
    assert "999999" in line and "dependencies" in line


# -- what only SLURM can refuse -------------------------------------------------------
# The local backend refuses more cores than the machine has before recording anything
# (BAD_INPUT). Only a SLURM cluster knows its nodes. Here (EnforcePartLimits=NO) sbatch
# refuses more memory than any node has, but accepts more CPUs than any node has: that
# job stays pending with the reason PartitionConfig, which jobfleet must show.

SBATCH_REFUSAL = "Requested node configuration is not available"


@pytest.mark.live_slurm
def test_slurm_refuses_more_memory_than_any_node_has(slurm_home: Path) -> None:
    _, memory_mib = largest_slurm_node()
    proc = jf("submit", "--memory", f"{2 * memory_mib}M", "--", "true", expect=1)
    assert proc.stdout == ""
    assert proc.stderr.startswith("jobfleet: error: ")
    assert SBATCH_REFUSAL in proc.stderr  # sbatch's own words
    (record,) = status()  # recorded as failed, so nobody waits for it
    assert (record["state"], record["native_id"]) == ("failed", None)
    assert SBATCH_REFUSAL in (record["reason"] or "")
    assert jf("wait", record["id"], *WAIT, expect=1).stdout == "1 failed\n"


@pytest.mark.live_slurm
def test_slurm_refusal_is_one_error_line(slurm_home: Path) -> None:
    _, memory_mib = largest_slurm_node()
    proc = jf("submit", "--memory", f"{2 * memory_mib}M", "--", "true", expect=1)
    (line,) = proc.stderr.splitlines()
    assert line.startswith("jobfleet: error: ") and SBATCH_REFUSAL in line


@pytest.mark.live_slurm
def test_slurm_more_cpus_than_any_node_has_pends_and_says_why(slurm_home: Path) -> None:
    cpus, _ = largest_slurm_node()
    # A small --memory, lest the default memory per CPU alone exceed every node.
    job = submit("--cores", str(cpus + 1), "--memory", "100M", "--", "true")
    wait_for(
        lambda: "PartitionConfig" in (one(job)["reason"] or ""),
        timeout_s=60,
        what="SLURM's reason to show",
    )
    record = one(job)
    assert record["state"] == "pending"
    assert "jobfleet cancel" in record["reason"]  # and how to get rid of the job
    jf("wait", job, "--timeout", "1", expect=3)
    assert jf("cancel", job).stdout.split() == [job, "cancelled"]


# -- config show ----------------------------------------------------------------------

PROFILE_CONFIG = textwrap.dedent(
    """\
    backend: local
    local: {cores: 2, cancel_grace: 1s, idle_exit: 3s}
    profiles:
      big: {resources: {cores: 2, memory: 1G}}
      huge: {resources: {cores: 64}}
    """
)


def test_config_show(jf_home: Path, tmp_path: Path) -> None:
    # Configuration layering, which no backend takes part in; its one submission is the
    # local capacity check (SLURM's equivalents: the test_slurm_* tests above).
    config = tmp_path / "profiles.yaml"
    config.write_text(PROFILE_CONFIG)

    default = json.loads(jf("config", "show", "--json").stdout)  # $JOBFLEET_CONFIG
    assert default["file"] == os.environ["JOBFLEET_CONFIG"]
    assert default["values"]["local.cores"] == 2
    assert default["sources"]["local.cores"] == os.environ["JOBFLEET_CONFIG"]

    plain = json.loads(jf("config", "show", "--config", str(config), "--json").stdout)
    assert (plain["values"]["resources.cores"], plain["sources"]["resources.cores"]) == (
        1,
        "default",
    )
    assert plain["profiles"] == ["big", "huge"]

    big = json.loads(
        jf("config", "show", "--config", str(config), "--profile", "big", "--json").stdout
    )
    assert big["profile"] == "big"
    assert big["values"]["resources.cores"] == 2
    assert big["values"]["resources.memory"] == "1G"
    assert "profile big" in big["sources"]["resources.cores"]
    assert str(config) in big["sources"]["resources.cores"]
    assert big["sources"]["backend"] == str(config)
    assert "command line" not in big["sources"].values()

    text = jf("config", "show", "--config", str(config), "--profile", "big").stdout
    (cores_line,) = [line for line in text.splitlines() if line.startswith("resources.cores ")]
    assert "profile big" in cores_line

    # Overrides belong to submit: config show takes none.
    assert "--cores" in usage_error("config", "show", "--cores", "4")
    # The profile reaches submit too: 64 cores on a 2-core machine is refused.
    line = usage_error("submit", "--config", str(config), "--profile", "huge", "--", "true")
    assert "cores" in line
    hint = usage_error("config", "show", "--config", str(config), "--profile", "bgi")
    assert "'big'" in hint  # names the defined profiles


def test_status_for_snakemake_says_one_word_a_job(jf_home: Path) -> None:
    good = submit("--", "true")
    bad = submit("--", "false")
    jf("wait", good, bad, *WAIT, expect=1)
    assert jf("status", good, bad, "--format", "snakemake").stdout == "success\nfailed\n"
    assert jf("status", "--format", "json", good).stdout == jf("status", "--json", good).stdout
    for args in (["--format", "snakemake"], ["--json", "--format", "snakemake", good]):
        line = usage_error("status", *args)
        assert "--format" in line or "--json" in line
