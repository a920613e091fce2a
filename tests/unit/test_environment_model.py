"""Tests for jobfleet.environment: the value object, its merge, its place in a spec and
the configuration, then rendered scripts run by bash and dash (a fake `module` on PATH;
the real Environment Modules are tested by tests/backends/local/test_local_environment.py)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from jobfleet.backends.slurm.directives import SLURM
from jobfleet.config import load_config
from jobfleet.environment import Environment
from jobfleet.errors import ConfigError, SpecError
from jobfleet.script import EXIT_SETUP_FAILED, LOCAL, Dialect, render_script
from jobfleet.spec import JobSpec, spec_from_dict, spec_to_dict

SHELLS = [name for name in ("bash", "dash") if shutil.which(name)]


# --- the value object -------------------------------------------------------------


def test_of_accepts_setup_as_prologue_and_keeps_order() -> None:
    env = Environment.of(modules=["b", "a"], setup=["x=1", "y=2"], env_files=["2", "1"])
    assert env.modules == ("b", "a")
    assert env.prologue == ("x=1", "y=2")
    assert env.env_files == ("2", "1")


@pytest.mark.parametrize(
    ("values", "field", "words"),
    [
        ({"modules": ["gcc 12"]}, "environment.modules[0]", "not a module name"),
        ({"modules": ["-f"]}, "environment.modules[0]", "not a module name"),
        ({"modules": "gcc"}, "environment.modules", "list of strings"),
        ({"prologue": ["a\nb"]}, "environment.prologue[0]", "one line"),
        ({"epilogue": [""]}, "environment.epilogue[0]", "must not be empty"),
        ({"env_files": [3]}, "environment.env_files[0]", "expected text"),
        ({"export_env": "yes"}, "environment.export_env", "true, false or null"),
        ({"scratch": "a\nb"}, "environment.scratch", "one line"),
        ({"keep_scratch": 1}, "environment.keep_scratch", "true or false"),
        ({"modulse": ["x"]}, "environment.modulse", "did you mean 'modules'"),
        ({"setup": ["a"], "prologue": ["b"]}, "environment.prologue", "not both"),
    ],
)
def test_bad_values_name_the_field(values: dict[str, object], field: str, words: str) -> None:
    with pytest.raises(SpecError) as err:
        Environment.from_mapping(values)
    assert err.value.field == field
    assert words in err.value.message


def test_then_puts_the_configuration_first() -> None:
    config = Environment.of(
        modules=["gcc"], prologue=["p1"], epilogue=["e1"], env_files=["f1"], export_env=True
    )
    job = Environment.of(modules=["mpi"], prologue=["p2"], epilogue=["e2"], env_files=["f2"])
    both = config.then(job)
    assert both.modules == ("gcc", "mpi")
    assert both.prologue == ("p1", "p2")
    assert both.epilogue == ("e1", "e2")
    assert both.env_files == ("f1", "f2")
    assert both.export_env is True  # the job left it unset
    assert config.then(Environment(export_env=False)).export_env is False
    assert Environment(scratch="/big").then(Environment(scratch=True)).scratch is True
    assert Environment(scratch="/big").then(Environment()).scratch == "/big"


def test_round_trip_and_old_stored_specs() -> None:
    spec = JobSpec(["x"], environment=Environment.of(modules=["m"], scratch="/s", epilogue=["e"]))
    stored = spec_to_dict(spec)
    assert spec_from_dict(stored) == spec
    del stored["environment"]  # as jobfleet 0.1 stored it
    assert spec_from_dict(stored).environment == Environment()


def test_spec_refuses_a_mapping_for_environment() -> None:
    with pytest.raises(SpecError, match=r"Environment\.of"):
        JobSpec(["x"], environment={"modules": ["m"]})  # type: ignore[arg-type]


def test_configuration_section(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(
        "environment: {modules: [gcc], setup: ['ulimit -c 0'], scratch: /tmp, export_env: false}\n"
        "profiles: {mpi: {environment: {modules: [gcc, openmpi]}}}\n"
    )
    config = load_config(path)
    assert config.environment == Environment.of(
        modules=["gcc"], prologue=["ulimit -c 0"], scratch="/tmp", export_env=False
    )
    assert load_config(path, profile="mpi").environment.modules == ("gcc", "openmpi")


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("environment: {modules: gcc}\n", "environment.modules"),
        ("environment: {modules: ['a b']}\n", "environment.modules[0]"),
        ("environment: {epilog: [x]}\n", "environment.epilog"),
        ("environment: {keep_scratch: yes please}\n", "environment.keep_scratch"),
    ],
)
def test_configuration_errors_name_the_key(tmp_path: Path, text: str, key: str) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert err.value.key == key


# --- the rendered script, run ----------------------------------------------------------

FAKE_MODULE = """#!/bin/sh
# A stand-in for `module`: logs its arguments; knows only the modules named in $KNOWN.
printf '%s\\n' "$*" >>"$MODULE_LOG"
case " $KNOWN " in *" $2 "*) exit 0 ;; esac
echo "ERROR: Unable to locate a modulefile for '$2'" >&2
exit 1
"""


@pytest.fixture(params=SHELLS)
def shell(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _run(
    tmp_path: Path, shell: str, spec: JobSpec, dialect: Dialect = LOCAL, **extra: str
) -> tuple[subprocess.CompletedProcess[str], Path]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    fake = bin_dir / "module"
    fake.write_text(FAKE_MODULE)
    fake.chmod(0o755)
    job_dir = tmp_path / "job"
    job_dir.mkdir(exist_ok=True)
    script = tmp_path / "job.sh"
    script.write_text(render_script(spec, dialect, job_id="9", job_dir=str(job_dir)))
    env = {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "MODULE_LOG": str(tmp_path / "module.log"),
        "TMPDIR": str(tmp_path),
        **extra,
    }
    proc = subprocess.run(
        [shell, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    return proc, job_dir


def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def test_everything_in_order(tmp_path: Path, shell: str) -> None:
    (tmp_path / "first.sh").write_text('echo "file:$MARK" >>order\nMARK=from-file\n')
    spec = JobSpec(
        'echo "command:$MARK:$FROM_PROLOGUE:$TMPDIR" >>order; test -d "$TMPDIR"',
        shell=True,
        env={"MARK": "from-env"},
        environment=Environment.of(
            env_files=["first.sh"],
            modules=["a/1", "b"],
            prologue=["echo prologue:$MARK >>order", "export FROM_PROLOGUE=yes"],
            epilogue=["echo epilogue:$FROM_PROLOGUE >>order"],
            scratch=True,
        ),
    )
    proc, job_dir = _run(tmp_path, shell, spec, KNOWN="a/1 b")
    assert proc.returncode == 0, proc.stderr
    assert _read(tmp_path / "module.log").splitlines() == ["load a/1", "load b"]
    lines = _read(tmp_path / "order").splitlines()
    assert lines[:2] == ["file:from-env", "prologue:from-file"]
    _, marks, prologue, scratch = lines[2].split(":")
    assert (marks, prologue) == ("from-file", "yes")
    assert Path(scratch).parent == tmp_path and Path(scratch).name.startswith("jobfleet-9.")
    assert not Path(scratch).exists()  # removed at the end
    assert lines[3] == "epilogue:yes"
    assert _read(job_dir / "exit_code") == "0\n"


def test_a_missing_module_fails_the_job_clearly(tmp_path: Path, shell: str) -> None:
    spec = JobSpec(
        ["touch", "ran"],
        environment=Environment.of(modules=["a", "nosuch/9", "b"], epilogue=["touch epi"]),
    )
    proc, job_dir = _run(tmp_path, shell, spec, KNOWN="a b")
    assert proc.returncode == EXIT_SETUP_FAILED
    assert _read(job_dir / "exit_code") == f"{EXIT_SETUP_FAILED}\n"
    assert _read(job_dir / "setup_failed") == "module nosuch/9 could not be loaded\n"
    stderr = _read(job_dir / "stderr")
    assert "jobfleet: module nosuch/9 could not be loaded; the command was not run" in stderr
    assert _read(tmp_path / "module.log").splitlines() == ["load a", "load nosuch/9"]
    assert not (tmp_path / "ran").exists()
    assert not (tmp_path / "epi").exists()


def test_no_module_command_at_all(tmp_path: Path, shell: str) -> None:
    spec = JobSpec(["true"], environment=Environment.of(modules=["gcc"]))
    (tmp_path / "bin").mkdir()
    job_dir = tmp_path / "job"
    job_dir.mkdir()
    script = tmp_path / "job.sh"
    text = render_script(spec, LOCAL, job_id="9", job_dir=str(job_dir))
    # No site init script either, whatever this machine has installed.
    script.write_text(text.replace("/etc/profile.d/", str(tmp_path / "none") + "/"))
    script.write_text(script.read_text().replace("/usr/share/lmod/", str(tmp_path / "none/")))
    proc = subprocess.run(
        [shell, str(script)], cwd=tmp_path, env={"PATH": "/usr/bin:/bin"}, timeout=60
    )
    assert proc.returncode == EXIT_SETUP_FAILED
    assert _read(job_dir / "setup_failed") == "module gcc could not be loaded\n"


@pytest.mark.parametrize(
    ("command", "epilogue", "code", "said"),
    [
        ("exit 3", "true", 3, None),
        ("exit 0", "false", 0, "jobfleet: epilogue line 1 failed (exit status 1)"),
        ("exit 0", "exit 7", 0, "jobfleet: the epilogue exited 7"),
        ("exit 5", "exit 0", 5, None),
    ],
)
def test_the_epilogue_never_changes_the_exit_code(
    tmp_path: Path, shell: str, command: str, epilogue: str, code: int, said: str | None
) -> None:
    spec = JobSpec(
        command, shell=True, environment=Environment.of(epilogue=[epilogue, "touch after"])
    )
    proc, job_dir = _run(tmp_path, shell, spec)
    assert proc.returncode == code
    assert _read(job_dir / "exit_code") == f"{code}\n"
    # A failing line does not stop the next one; an `exit` ends the epilogue.
    assert (tmp_path / "after").exists() is not epilogue.startswith("exit")
    stderr = _read(job_dir / "stderr")
    if said is None:
        assert "jobfleet: " not in stderr
    else:
        assert said in stderr


def test_env_file_that_cannot_be_read(tmp_path: Path, shell: str) -> None:
    spec = JobSpec(["touch", "ran"], environment=Environment.of(env_files=["nope.sh"]))
    proc, job_dir = _run(tmp_path, shell, spec)
    assert proc.returncode == EXIT_SETUP_FAILED
    assert _read(job_dir / "setup_failed") == "env file nope.sh cannot be read\n"
    assert not (tmp_path / "ran").exists()


def test_env_file_without_a_slash_is_not_searched_on_path(tmp_path: Path, shell: str) -> None:
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "envf").write_text("touch sourced-from-path\n")
    spec = JobSpec(["true"], environment=Environment.of(env_files=["envf"]))
    proc, _ = _run(tmp_path, shell, spec)
    assert proc.returncode == EXIT_SETUP_FAILED
    assert not (tmp_path / "sourced-from-path").exists()


def test_failing_prologue_line_ends_the_job(tmp_path: Path, shell: str) -> None:
    spec = JobSpec(
        ["touch", "ran"],
        environment=Environment.of(prologue=["true", "test -e missing # why"], scratch=True),
    )
    proc, job_dir = _run(tmp_path, shell, spec)
    assert proc.returncode == EXIT_SETUP_FAILED
    reason = _read(job_dir / "setup_failed")
    assert reason == "prologue line 2 failed: test -e missing # why (exit status 1)\n"
    assert not (tmp_path / "ran").exists()
    assert not list(tmp_path.glob("jobfleet-9.*"))  # its scratch went with it


@pytest.mark.parametrize("keep", [False, True])
def test_scratch_under_a_base_kept_or_not(tmp_path: Path, shell: str, keep: bool) -> None:
    base = tmp_path / "fast disk"
    base.mkdir()
    spec = JobSpec(
        'echo "$TMPDIR" >where; [ "$TMPDIR" = "$JOBFLEET_SCRATCH" ] && touch "$TMPDIR/f"',
        shell=True,
        environment=Environment.of(scratch=str(base), keep_scratch=keep),
    )
    proc, _ = _run(tmp_path, shell, spec)
    assert proc.returncode == 0
    scratch = Path(_read(tmp_path / "where").strip())
    assert scratch.parent == base
    assert (scratch / "f").exists() is keep


def test_scratch_that_cannot_be_made(tmp_path: Path, shell: str) -> None:
    spec = JobSpec(["true"], environment=Environment.of(scratch=str(tmp_path / "absent")))
    proc, job_dir = _run(tmp_path, shell, spec)
    assert proc.returncode == EXIT_SETUP_FAILED
    assert "cannot create a scratch directory under" in _read(job_dir / "setup_failed")


def test_a_cancelled_command_still_records_143_then_cleans_up(tmp_path: Path, shell: str) -> None:
    spec = JobSpec(
        "touch started; sleep 30",
        shell=True,
        environment=Environment.of(epilogue=["touch epilogue-ran"], scratch=True),
    )
    job_dir = tmp_path / "job"
    job_dir.mkdir()
    script = tmp_path / "job.sh"
    script.write_text(render_script(spec, LOCAL, job_id="9", job_dir=str(job_dir)))
    env = {"PATH": "/usr/bin:/bin", "TMPDIR": str(tmp_path)}
    proc = subprocess.Popen([shell, str(script)], cwd=tmp_path, env=env, start_new_session=True)
    deadline = time.monotonic() + 20
    while not (tmp_path / "started").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGTERM)  # as a scheduler's cancel does
    assert proc.wait(timeout=20) == 143
    assert _read(job_dir / "exit_code") == "143\n"
    assert (tmp_path / "epilogue-ran").exists()
    assert not list(tmp_path.glob("jobfleet-9.*"))


# --- what the set-up may do to the script's own shell (review of issue 11) --------------


@pytest.mark.parametrize("where", ["prologue", "env_file"])
def test_set_e_in_the_set_up_never_skips_the_record(tmp_path: Path, shell: str, where: str) -> None:
    (tmp_path / "strict.sh").write_text("set -e\n")
    spec = JobSpec(
        ["sh", "-c", "exit 3"],
        environment=Environment.of(
            prologue=["set -e"] if where == "prologue" else [],
            env_files=["strict.sh"] if where == "env_file" else [],
            epilogue=["touch epilogue-ran"],
            scratch=True,
        ),
    )
    proc, job_dir = _run(tmp_path, shell, spec)
    assert proc.returncode == 3, _read(job_dir / "stderr")
    assert _read(job_dir / "exit_code") == "3\n"
    assert (tmp_path / "epilogue-ran").exists()
    assert not list(tmp_path.glob("jobfleet-9.*"))


@pytest.mark.parametrize(
    ("prologue", "env_file", "reason"),
    [
        (["exit 0"], "", "prologue line 1 ended the job script (exit status 0)"),
        (["true", "exit 5"], "", "prologue line 2 ended the job script (exit status 5)"),
        ([], "set -e\nfalse\n", "env file site.sh ended the job script (exit status 1)"),
    ],
)
def test_a_set_up_that_ends_the_script_is_a_set_up_failure(
    tmp_path: Path, shell: str, prologue: list[str], env_file: str, reason: str
) -> None:
    (tmp_path / "site.sh").write_text(env_file)
    spec = JobSpec(
        ["touch", "ran"],
        environment=Environment.of(
            env_files=["site.sh"], prologue=prologue, epilogue=["touch epi"], scratch=True
        ),
    )
    proc, job_dir = _run(tmp_path, shell, spec)
    assert proc.returncode == EXIT_SETUP_FAILED
    assert _read(job_dir / "exit_code") == f"{EXIT_SETUP_FAILED}\n"
    assert _read(job_dir / "setup_failed") == reason + "\n"
    assert not (tmp_path / "ran").exists()
    assert not (tmp_path / "epi").exists()
    assert not list(tmp_path.glob("jobfleet-9.*"))


def test_noclobber_from_the_prologue_does_not_stop_a_rerun_recording(
    tmp_path: Path, shell: str
) -> None:
    # A scheduler's requeue runs the same script again over the earlier run's files (the
    # local backend never does: there the exit-code file is the once-guard, see below).
    (tmp_path / "job").mkdir()
    (tmp_path / "job" / "exit_code").write_text("1\n")  # an earlier run's (a requeue)
    spec = JobSpec(["true"], environment=Environment.of(prologue=["set -C"]))
    proc, job_dir = _run(tmp_path, shell, spec, SLURM)
    assert proc.returncode == 0
    assert _read(job_dir / "exit_code") == "0\n"


def test_noclobber_from_the_prologue_does_not_stop_a_local_job_recording(
    tmp_path: Path, shell: str
) -> None:
    spec = JobSpec(["true"], environment=Environment.of(prologue=["set -C"]))
    proc, job_dir = _run(tmp_path, shell, spec)
    assert proc.returncode == 0
    assert _read(job_dir / "exit_code") == "0\n"


def test_a_local_job_whose_exit_code_file_exists_is_not_run_again(
    tmp_path: Path, shell: str
) -> None:
    (tmp_path / "job").mkdir()
    (tmp_path / "job" / "exit_code").write_text("1\n")
    proc, job_dir = _run(tmp_path, shell, JobSpec(["touch", str(tmp_path / "ran")]))
    assert proc.returncode == 197 and "not running it twice" in proc.stderr, proc
    assert not (tmp_path / "ran").exists()
    assert _read(job_dir / "exit_code") == "1\n"


@pytest.mark.parametrize("where", ["prologue", "env_file"])
def test_a_cancel_during_the_set_up_is_recorded_and_cleans_up(
    tmp_path: Path, shell: str, where: str
) -> None:
    slow = "touch in-set-up; sleep 30"
    (tmp_path / "slow.sh").write_text(slow + "\n")
    spec = JobSpec(
        ["touch", "ran"],
        environment=Environment.of(
            env_files=["slow.sh"] if where == "env_file" else [],
            prologue=[slow] if where == "prologue" else [],
            epilogue=["touch epi"],
            scratch=True,
        ),
    )
    job_dir = tmp_path / "job"
    job_dir.mkdir()
    script = tmp_path / "job.sh"
    script.write_text(render_script(spec, LOCAL, job_id="9", job_dir=str(job_dir)))
    env = {"PATH": "/usr/bin:/bin", "TMPDIR": str(tmp_path)}
    proc = subprocess.Popen([shell, str(script)], cwd=tmp_path, env=env, start_new_session=True)
    deadline = time.monotonic() + 20
    while not (tmp_path / "in-set-up").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGTERM)  # a cancel, or a time limit, while setting up
    assert proc.wait(timeout=20) == 143
    assert _read(job_dir / "exit_code") == "143\n"
    assert not (job_dir / "setup_failed").exists()  # not the set-up's fault
    assert "set-up was interrupted by SIGTERM" in _read(job_dir / "stderr")
    assert not (tmp_path / "ran").exists()
    assert not (tmp_path / "epi").exists()
    assert not list(tmp_path.glob("jobfleet-9.*"))


# Lines bash cannot parse are refused at submission (jobfleet.shellsyntax); a script
# rendered with one anyway keeps it to itself.


def test_a_broken_prologue_line_fails_the_set_up_only(tmp_path: Path, shell: str) -> None:
    spec = JobSpec(
        ["touch", "ran"],
        environment=Environment.of(
            prologue=["if true; then"], epilogue=["touch epi"], scratch=True
        ),
    )
    proc, job_dir = _run(tmp_path, shell, spec)
    assert proc.returncode == EXIT_SETUP_FAILED
    assert (
        _read(job_dir / "setup_failed") == "prologue line 1 failed: if true; then (exit status 2)\n"
    )
    assert not (tmp_path / "ran").exists()
    assert not list(tmp_path.glob("jobfleet-9.*"))


@pytest.mark.parametrize("broken", ["echo )", "if true; then", "cat <<EOF", "echo 'x"])
def test_a_broken_epilogue_line_changes_nothing_else(
    tmp_path: Path, shell: str, broken: str
) -> None:
    spec = JobSpec(
        "exit 4",
        shell=True,
        environment=Environment.of(epilogue=[broken, "touch after"], scratch=True),
    )
    proc, job_dir = _run(tmp_path, shell, spec)
    assert proc.returncode == 4
    assert _read(job_dir / "exit_code") == "4\n"
    assert (tmp_path / "after").exists()  # the next line ran
    assert not list(tmp_path.glob("jobfleet-9.*"))  # and the clean-up


# --- scratch and env-file paths: $NAME, ${NAME} and ~ expanded in the job ---------------


@pytest.mark.parametrize(
    ("values", "field", "words"),
    [
        ({"scratch": "scr"}, "environment.scratch", "not an absolute path"),
        ({"scratch": "-x"}, "environment.scratch", "begins with '-'"),
        ({"scratch": "/s/$(id -u)"}, "environment.scratch", "only $NAME, ${NAME}"),
        ({"scratch": "${SCR:-/tmp}"}, "environment.scratch", "only $NAME, ${NAME}"),
        ({"scratch": "~bob/s"}, "environment.scratch", "~user is not expanded"),
        ({"env_files": ["a", "$1/x"]}, "environment.env_files[1]", "only $NAME, ${NAME}"),
        ({"env_files": ["`id`/$"]}, "environment.env_files[0]", "only $NAME, ${NAME}"),
    ],
)
def test_bad_paths_name_the_field(values: dict[str, object], field: str, words: str) -> None:
    with pytest.raises(SpecError) as err:
        Environment.from_mapping(values)
    assert err.value.field == field
    assert words in err.value.message


@pytest.mark.parametrize(
    ("scratch", "env_file"),
    [
        ("$JF_BASE/fast disk", "~/site.env"),
        ("${JF_BASE}/fast disk", "${HOME}/site.env"),
        ("~/fast disk", "$JF_REL/site.env"),  # relative: in the workdir
    ],
)
def test_paths_expand_in_the_job(tmp_path: Path, shell: str, scratch: str, env_file: str) -> None:
    (tmp_path / "fast disk").mkdir()
    (tmp_path / "conf").mkdir()
    (tmp_path / "site.env").write_text("export FROM_FILE=home\n")
    (tmp_path / "conf" / "site.env").write_text("export FROM_FILE=workdir\n")
    spec = JobSpec(
        'echo "$FROM_FILE $TMPDIR" >seen; touch "$TMPDIR/x"',
        shell=True,
        environment=Environment.of(scratch=scratch, env_files=[env_file], keep_scratch=True),
    )
    proc, job_dir = _run(
        tmp_path, shell, spec, HOME=str(tmp_path), JF_BASE=str(tmp_path), JF_REL="conf"
    )
    assert proc.returncode == 0, _read(job_dir / "stderr")
    file, where = _read(tmp_path / "seen").strip().split(" ", 1)
    assert file == ("workdir" if "JF_REL" in env_file else "home")
    assert Path(where).parent == tmp_path / "fast disk"
    assert (Path(where) / "x").exists()


@pytest.mark.parametrize(
    ("scratch", "extra", "said"),
    [
        (
            "$JF_BASE",
            {"JF_BASE": "rel"},
            "scratch base $JF_BASE is not an absolute path here: 'rel'",
        ),
        ("$JF_UNSET", {}, "scratch base $JF_UNSET is not an absolute path here: ''"),
        (True, {"TMPDIR": "rel"}, "scratch base $TMPDIR is not an absolute path here: 'rel'"),
    ],
)
def test_a_scratch_base_not_absolute_when_the_job_runs_fails_the_set_up(
    tmp_path: Path, shell: str, scratch: str | bool, extra: dict[str, str], said: str
) -> None:
    spec = JobSpec(["touch", "ran"], environment=Environment.of(scratch=scratch))
    proc, job_dir = _run(tmp_path, shell, spec, **extra)
    assert proc.returncode == EXIT_SETUP_FAILED
    assert _read(job_dir / "setup_failed") == said + "\n"
    assert not (tmp_path / "ran").exists()
    assert not list(tmp_path.glob("**/jobfleet-9.*"))


def test_an_expanded_env_file_that_cannot_be_read_says_where(tmp_path: Path, shell: str) -> None:
    spec = JobSpec(["true"], environment=Environment.of(env_files=["~/nope.env"]))
    proc, job_dir = _run(tmp_path, shell, spec, HOME="/nonexistent")
    assert proc.returncode == EXIT_SETUP_FAILED
    reason = "env file ~/nope.env cannot be read: /nonexistent/nope.env\n"
    assert _read(job_dir / "setup_failed") == reason
