"""The ``jobfleet`` command end to end: every call here is a real, separate process.

So every test also checks that what one process records, the next one sees:
the submitter, the waiter and the reader of the status never share memory.
Jobs run on the local backend with the fixture's 2-core configuration.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from conftest import wait_for
from jobfleet import __version__

PY = sys.executable

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


def jf(
    *args: str,
    expect: int | None = 0,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``jobfleet ARGS`` as a child process; check its exit status unless ``expect`` is None.

    No output of the command may ever contain a traceback.
    """
    if cwd is None and "JOBFLEET_HOME" in os.environ:
        cwd = Path(os.environ["JOBFLEET_HOME"]).parent  # jobs run where they were submitted
    proc = subprocess.run(
        [PY, "-m", "jobfleet", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        cwd=cwd,
        timeout=120,
    )
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stdout + proc.stderr
    if expect is not None:
        assert proc.returncode == expect, (
            f"jobfleet {shlex.join(args)}: exit {proc.returncode}, expected {expect}\n"
            f"stdout: {proc.stdout}\nstderr: {proc.stderr}"
        )
    return proc


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


# -- submit, status, wait -------------------------------------------------------------


def test_version() -> None:
    proc = jf("--version")
    assert __version__ in proc.stdout
    assert proc.stdout.count("\n") == 1


def test_bare_command_shows_usage_not_an_error() -> None:
    proc = jf(expect=None)
    assert proc.returncode in (0, 2)  # click < 8.2 exits 0, later versions 2
    assert "Usage: jobfleet" in proc.stdout + proc.stderr
    assert "jobfleet: error" not in proc.stderr


def test_submit_prints_the_id_and_other_processes_see_the_job(jf_home: Path) -> None:
    first = submit("--name", "hello", "--", "true")
    second = submit("--", "sleep", "0.2")
    assert first != second
    record = one(first)  # a new process, knowing only the id
    assert (record["name"], record["backend"]) == ("hello", "local")
    assert record["native_id"]
    assert one(second)["name"] == "sleep"  # defaults to the program's name

    done = jf("wait", first, second, *WAIT)
    assert done.stdout.strip() == "2 completed"
    assert [(r["state"], r["exit_code"]) for r in status(first, second)] == [("completed", 0)] * 2
    assert {first, second} <= {r["id"] for r in status()}  # the recent jobs, without ids
    assert [r["id"] for r in status("--limit", "1")] == [second]


def test_submit_json(jf_home: Path) -> None:
    proc = jf("submit", "--json", "--name", "js", "--", "true")
    record = json.loads(proc.stdout)
    assert {"id", "backend", "native_id", "state"} <= record.keys()
    assert record["backend"] == "local"
    assert record["state"] in STATES
    assert one(record["id"])["name"] == "js"
    jf("wait", record["id"], *WAIT)


def test_resource_options_are_accepted(jf_home: Path) -> None:
    resources = ["--cores", "2", "--memory", "64M", "--walltime", "1h", "--gpus", "0"]
    resources += ["--queue", "q", "--account", "a", "--backend", "local"]
    job = submit(*resources, "--", "true")
    jf("wait", job, *WAIT)


def test_options_after_the_command_belong_to_it(jf_home: Path) -> None:
    job = submit("echo", "--json", "--name", "x")  # no `--` needed once COMMAND began
    jf("wait", job, *WAIT)
    assert jf("logs", job).stdout == "--json --name x\n"
    assert one(job)["name"] == "echo"


def test_dry_run_shows_the_script_and_records_nothing(jf_home: Path, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    argv = ["touch", str(marker), "a b", "it's", "$HOME", "x;y"]
    out = jf("submit", "--dry-run", "--", *argv).stdout
    assert out.startswith("#!")
    assert "# submit:" in out
    # Some line of the script runs exactly argv, however the script quotes it...
    assert any(runs(line, argv) for line in out.splitlines()), out
    assert "'$HOME'" in out  # ...and in single quotes, so bash expands nothing

    as_json = json.loads(jf("submit", "--dry-run", "--json", "--", *argv).stdout)
    assert as_json["backend"] == "local"
    assert str(marker) in as_json["script"]

    assert status() == []
    jobs = jf_home / "jobs"
    assert not jobs.exists() or list(jobs.iterdir()) == []
    # A real job runs through the same agent; by its end a queued dry run would have run too.
    real = submit("--", "true")
    jf("wait", real, *WAIT)
    assert not marker.exists()
    assert [r["id"] for r in status()] == [real]


def test_wait_exit_statuses_and_exit_codes(jf_home: Path) -> None:
    ok = submit("--", "true")
    bad = submit("--", "bash", "-c", "exit 3")
    jf("wait", ok, *WAIT)  # exit 0: all completed
    proc = jf("wait", ok, bad, *WAIT, expect=1)  # exit 1: one did not
    assert "failed" in proc.stdout
    record = one(bad)
    assert (record["state"], record["exit_code"]) == ("failed", 3)


def test_wait_times_out_with_status_3(jf_home: Path) -> None:
    sleeper = submit("--", "sleep", "30")
    started = time.monotonic()
    proc = jf("wait", sleeper, "--timeout", "1", expect=3)
    assert time.monotonic() - started < 20
    (line,) = proc.stderr.splitlines()
    assert line.startswith("jobfleet: error: ") and sleeper in line
    assert one(sleeper)["state"] in {"pending", "running"}  # the job keeps running
    jf("cancel", sleeper)


def test_wait_output_to_a_pipe_has_no_control_sequences(jf_home: Path) -> None:
    job = submit("--", "sleep", "0.5")
    # FORCE_COLOR makes rich treat any stream as a terminal; a pipe still gets no bar.
    proc = jf("wait", job, *WAIT, env={"FORCE_COLOR": "1", "TERM": "xterm-256color"})
    assert "\x1b[" not in proc.stdout + proc.stderr
    assert proc.stdout == "1 completed\n"
    assert proc.stderr == ""


def test_walltime_ends_in_timeout(jf_home: Path) -> None:
    job = submit("--walltime", "2s", "--", "sleep", "30")
    jf("wait", job, *WAIT, expect=1)
    assert one(job)["state"] == "timeout"


def test_cancel_a_running_job(jf_home: Path) -> None:
    job = submit("--", "sleep", "60")
    wait_for(lambda: one(job)["state"] == "running", what="the job to start")
    proc = jf("cancel", job)
    assert proc.stdout.split() == [job, "cancelled"]
    assert one(job)["state"] == "cancelled"
    jf("wait", job, *WAIT, expect=1)  # cancelled is not success


# -- logs and arrays ------------------------------------------------------------------


def test_logs_stdout_and_stderr(jf_home: Path) -> None:
    job = submit("--", "bash", "-c", "echo out; echo err >&2")
    jf("wait", job, *WAIT)
    assert jf("logs", job).stdout == "out\n"
    assert jf("logs", job, "--stderr").stdout == "err\n"


def test_array_elements_and_logs(jf_home: Path) -> None:
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


# -- dependencies ---------------------------------------------------------------------


def test_dependencies(jf_home: Path, tmp_path: Path) -> None:
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
    assert done[blocked]["state"] == "cancelled"
    assert "never be met" in (done[blocked]["reason"] or "")
    assert not never.exists()
    assert done[anyway]["state"] == "completed"
    assert done[rescue]["state"] == "completed"


# -- what reaches the job -------------------------------------------------------------

SHOW = "import json, os, sys; print(json.dumps([sys.argv[1:], os.getcwd(), os.environ['ODD']]))"


def test_arguments_env_and_workdir_arrive_byte_exact(jf_home: Path, tmp_path: Path) -> None:
    args = ["a b", "it's", '"q"', "$HOME", "x;y", "", "--name", "tab\tx", "back\\slash"]
    args += ["ünï", "*", "`id`", "$(id)", "two\nlines", "-x"]
    odd = "hi \"there\" 'you' $HOME; `id` \\"
    workdir = tmp_path / "work dir; $x"
    workdir.mkdir()
    job = submit("--workdir", str(workdir), "--env", f"ODD={odd}", "--", PY, "-c", SHOW, *args)
    jf("wait", job, *WAIT)
    assert json.loads(jf("logs", job).stdout) == [args, str(workdir), odd]


def test_env_values_and_relative_workdir(jf_home: Path, tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    show = 'printf "%s|%s|%s" "$EQ" "${EMPTY-unset}" "$PWD"'
    env = ["--env", "EQ=a=b", "--env", "EMPTY="]
    proc = jf("submit", "--workdir", "sub", *env, "--", "bash", "-c", show, cwd=tmp_path)
    job = proc.stdout.strip()
    jf("wait", job, *WAIT)
    # Relative to the submitter's directory, not to wherever the job is started from.
    assert jf("logs", job).stdout == f"a=b||{tmp_path / 'sub'}"


# -- bad input ------------------------------------------------------------------------

BAD_INPUT = [
    (["submit", "--memory", "lots", "--", "true"], ["memory", "lots", "4G"]),
    (["submit", "--walltime", "10:00", "--", "true"], ["walltime", "ambiguous", "HH:MM:SS"]),
    (["submit", "--array", "5-1", "--", "true"], ["--array", "5-1"]),
    (["submit", "--cores", "0", "--", "true"], ["cores", "at least 1"]),
    (["submit", "--env", "NOEQUALS", "--", "true"], ["--env", "NOEQUALS", "KEY=VALUE"]),
    (["submit", "--frobnicate", "--", "true"], ["--frobnicate", "--help"]),
    (["submit"], ["COMMAND", "after --", "jobfleet submit -- echo hi", "--help"]),
    (["submit", "--"], ["COMMAND", "after --", "jobfleet submit -- echo hi", "--help"]),
    (["submit", "--after-ok", "999999", "--", "true"], ["999999", "dependencies"]),
    (["submit", "--profile", "nope", "--", "true"], ["profile", "nope"]),
    (["submit", "--cores", "64", "--", "true"], ["cores", "64", "local.cores"]),
    (["status", "424242"], ["424242"]),
    (["status", "--limit", "-5"], ["--limit", "-5", ">=1"]),
    (["status", "--limit", "0"], ["--limit", "0", ">=1"]),
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


def test_submit_from_a_deleted_directory(jf_home: Path, tmp_path: Path) -> None:
    # A child cannot be started in a deleted directory; a shell can delete its own.
    script = 'mkdir d && cd d && rmdir ../d && exec "$@"'
    base = [PY, "-m", "jobfleet", "submit"]
    for extra, fix in (([], "pass --workdir"), (["--workdir", "rel"], "an absolute --workdir")):
        proc = subprocess.run(
            ["bash", "-c", script, "bash", *base, *extra, "--", "true"],
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
    # An absolute --workdir still works from there.
    proc = subprocess.run(
        ["bash", "-c", script, "bash", *base, "--workdir", str(tmp_path), "--", "true"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert [r["id"] for r in status()] == [proc.stdout.strip()]


def test_bad_config_file(jf_home: Path, tmp_path: Path) -> None:
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


def test_dry_run_checks_dependencies(jf_home: Path) -> None:
    line = usage_error("submit", "--dry-run", "--after-ok", "999999", "--", "true")
    assert "999999" in line and "dependencies" in line


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
