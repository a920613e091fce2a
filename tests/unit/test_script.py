"""Tests for jobfleet.script: golden files, then the rendered scripts run by bash.

The golden files live in tests/unit/golden/<case>.sh. After an intended change to the
script text, regenerate them and review the diff:

    JOBFLEET_REGEN_GOLDEN=1 .venv/bin/pytest tests/unit/test_script.py
"""

from __future__ import annotations

import doctest
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import jobfleet.script
from jobfleet.backends.htcondor import HTCONDOR
from jobfleet.backends.lsf import LsfSettings, lsf_dialect
from jobfleet.backends.pbs import PBS
from jobfleet.backends.sge import SgeSettings, sge_dialect
from jobfleet.backends.sge.directives import SGE
from jobfleet.backends.slurm import SLURM
from jobfleet.backends.torque import TORQUE
from jobfleet.environment import Environment
from jobfleet.errors import BackendError, SpecError
from jobfleet.jobdir import exit_code_path, started_path, stream_path
from jobfleet.script import EXIT_ALREADY_STARTED, LOCAL, Dialect, render_script
from jobfleet.scriptdeps import EXIT_DEPENDENCY_NEVER_MET, Requirement
from jobfleet.spec import DepKind, JobSpec, Resources, parse_array

GOLDEN = Path(__file__).parent / "golden"
REGEN = os.environ.get("JOBFLEET_REGEN_GOLDEN") == "1"
BASH = shutil.which("bash")
needs_bash = pytest.mark.skipif(BASH is None, reason="bash is not installed")
#: The script is POSIX sh: every execution test runs under each shell here
#: (dash is Debian's /bin/sh, which the local backend uses).
SHELLS = [name for name in ("bash", "dash") if shutil.which(name)]
RUN_SHELL = BASH or "bash"


@pytest.fixture(params=SHELLS, autouse=True)
def run_shell(request: pytest.FixtureRequest) -> str:
    """Run this module's tests once per installed POSIX shell."""
    global RUN_SHELL
    RUN_SHELL = request.param
    return str(request.param)


NASTY = [
    "",
    " ",
    "two words",
    "it's",
    'say "hi"',
    "$(touch pwned)",
    "`touch pwned`",
    "${HOME}",
    "$HOME",
    "line1\nline2",
    "\n",
    "tab\there",
    "back\\slash",
    "*",
    "~",
    "{a,b}",
    "!",
    "a;b|c&d",
    "#not a comment",
    "FOO=bar",
    "--",
    "-c",
    "ünïcödé ✓",
    "'\"'\"'",
]


def _test_directives(spec: JobSpec) -> list[str]:
    out = [f"--job-name={spec.display_name}", f"--cpus-per-task={spec.resources.cores}"]
    if spec.resources.memory_bytes is not None:
        out.append(f"--mem={spec.resources.memory_bytes // 2**20}M")
    if spec.resources.queue is not None:
        out.append(f"--partition={spec.resources.queue}")
    return out


# A scheduler-like dialect, to test the generic directive handling.
TESTSCHED = Dialect(
    name="testsched",
    directive_prefix="#TEST",
    index_expr="${TEST_TASK_ID-}",
    once_guard=False,
    directives=_test_directives,
)

CASES: dict[str, tuple[JobSpec, Dialect]] = {
    "plain": (JobSpec(["python", "train.py", "--lr", "0.1"], name="train"), LOCAL),
    "nasty_argv": (
        JobSpec(
            ["/opt/my tools/run", "it's", '"dq"', "$(rm -rf /)", "`id`", "a\nb", "", "*"],
            name="nasty",
        ),
        LOCAL,
    ),
    "env": (
        JobSpec(
            ["env"],
            env={
                "ZED": "last",
                "EMPTY": "",
                "QUOTES": 'it\'s "quoted"',
                "SUBST": "$(id) `id` ${HOME}",
                "MULTI": "one\ntwo",
                "PATH_LIKE": "/a:/b:~/c",
            },
        ),
        LOCAL,
    ),
    "workdir": (
        JobSpec(
            ["./run.sh"],
            name="in a dir",
            workdir="/scratch/my project",
            stdout="logs/out.txt",
            stderr="/abs/err.txt",
        ),
        LOCAL,
    ),
    "custom_stdout_index": (
        JobSpec(
            ["python", "-V"],
            stdout="/logs/{job_id}/out.{index}.log",
            stderr="err {index} {other}.txt",
            array=parse_array("0-20:5"),
        ),
        LOCAL,
    ),
    "array": (JobSpec(["python", "task.py"], array=parse_array("1-10%2")), LOCAL),
    "shell": (
        JobSpec("for f in *.txt; do wc -l \"$f\"; done | sort -n > 'counts'", shell=True),
        LOCAL,
    ),
    "directives": (
        JobSpec(
            ["python", "big.py"],
            name="big",
            resources=Resources.of(
                cores=8,
                memory="16G",
                queue="long",
                directives_skip=["--mem", "--partition"],
                extra_directives=["--constraint=haswell", "--partition=debug"],
            ),
            array=parse_array("1-3"),
        ),
        TESTSCHED,
    ),
    # The environment set-up (jobfleet.environment), each option on each dialect.
    "environment_local": (
        JobSpec(
            ["python", "sim.py"],
            env={"OMP_NUM_THREADS": "2"},
            environment=Environment.of(
                env_files=["site env.sh", "/etc/project.sh"],
                modules=["gcc/12.2", "openmpi"],
                prologue=["export STAGE=$TMPDIR/in", 'cp input.dat "$TMPDIR" # stage in'],
                epilogue=['cp "$TMPDIR"/out.dat . || true', "echo done"],
                scratch=True,
            ),
        ),
        LOCAL,
    ),
    "environment_slurm": (
        JobSpec(
            ["./run"],
            name="env",
            environment=Environment.of(
                modules=["python/3.11"],
                scratch="/local scratch",
                keep_scratch=True,
                export_env=False,
            ),
        ),
        SLURM,
    ),
    "environment_paths": (
        JobSpec(
            ["./run"],
            environment=Environment.of(
                scratch="/scratch/$USER", env_files=["~/site.env", "${PROJECT}/env.sh", "a/b.sh"]
            ),
        ),
        LOCAL,
    ),
    "environment_slurm_export": (
        JobSpec(["./run"], environment=Environment.of(export_env=True, epilogue=["date"])),
        SLURM,
    ),
    "environment_sge": (
        JobSpec(
            ["./run"],
            array=parse_array("1-4"),
            environment=Environment.of(
                setup=["ulimit -c 0"], epilogue=["rm -f core.*"], scratch=True, export_env=False
            ),
        ),
        SGE,
    ),
    # HTCondor: the submit commands as #CONDOR lines, the index from the script's argument.
    "environment_htcondor": (
        JobSpec(
            ["./run"],
            array=parse_array("1,3,7"),
            resources=Resources.of(cores=2, memory="2G", walltime="10m"),
            environment=Environment.of(modules=["gcc/12.2"], env_files=["site.env"], scratch=True),
        ),
        HTCONDOR,
    ),
}


# The whole job model (issue 11): each new option on each backend. SGE's multi-host
# PE needs a per-count PE name; these are the default settings otherwise.
SGE_SITE = sge_dialect(SgeSettings())
#: LSF with the site's LSF_UNIT_FOR_LIMITS=MB (the default KB reads lsf.conf).
LSF_SITE = lsf_dialect(LsfSettings(unit_for_limits="MB"))
MPI_JOB = ["./simulate", "--input", "in put.dat"]
LAYOUT = Resources.of(
    nodes=2,
    tasks_per_node=4,
    cores_per_task=2,
    memory_per_core="2G",
    exclusive=True,
    walltime="1h",
)
SITE = Resources.of(
    qos="high",
    constraint="haswell&ib",
    reservation="12",
    mail_to="alice@example.org",
    mail_on=["begin", "fail"],
    licenses=["matlab", "fluent:4"],
    priority=-10,
    begin="2030-01-31T14:00",
)
CASES.update(
    {
        "slurm_layout_srun": (
            JobSpec(MPI_JOB, name="mpi", resources=LAYOUT.merged(gpus_per_task=1, launcher="srun")),
            SLURM,
        ),
        "slurm_tasks_mpirun": (
            JobSpec(
                MPI_JOB,
                name="mpi",
                resources=Resources.of(tasks=8, memory="32G", gpus_per_node=2, launcher="mpirun"),
            ),
            SLURM,
        ),
        "slurm_site": (JobSpec(["true"], name="site", resources=SITE), SLURM),
        "sge_layout_mpirun": (
            JobSpec(
                MPI_JOB,
                name="mpi",
                resources=Resources.of(
                    tasks=4, cores=2, memory_per_core="1G", exclusive=True, launcher="mpirun"
                ),
            ),
            SGE_SITE,
        ),
        "sge_nodes_mpiexec": (
            JobSpec(MPI_JOB, name="mpi", resources=LAYOUT.merged(launcher="mpiexec")),
            SGE_SITE,
        ),
        "sge_site": (
            JobSpec(["true"], name="site", resources=SITE.merged(qos=None, constraint=None)),
            SGE_SITE,
        ),
        "lsf_layout_mpirun": (
            JobSpec(
                MPI_JOB, name="mpi", resources=LAYOUT.merged(gpus_per_node=1, launcher="mpirun")
            ),
            LSF_SITE,
        ),
        "lsf_tasks_mpiexec": (
            JobSpec(
                MPI_JOB,
                name="mpi",
                resources=Resources.of(
                    tasks=6, cores=2, memory="10G", gpus_per_task=1, launcher="mpiexec"
                ),
            ),
            lsf_dialect(LsfSettings(unit_for_limits="KB", memory_per="slot")),
        ),
        "lsf_site": (
            JobSpec(["true"], name="site", resources=SITE.merged(qos=None, priority=10)),
            LSF_SITE,
        ),
        "environment_lsf": (
            JobSpec(
                ["./run"],
                array=parse_array("1-4"),
                environment=Environment.of(setup=["ulimit -c 0"], export_env=False),
            ),
            LSF_SITE,
        ),
        "pbs_layout_mpirun": (
            JobSpec(
                MPI_JOB, name="mpi", resources=LAYOUT.merged(gpus_per_node=2, launcher="mpirun")
            ),
            PBS,
        ),
        "pbs_site": (
            JobSpec(["true"], name="site", resources=SITE.merged(qos=None, reservation="R12")),
            PBS,
        ),
        "pbs_array": (
            JobSpec(
                ["./run"], array=parse_array("0-8:2%3"), environment=Environment.of(scratch=True)
            ),
            PBS,
        ),
        "torque_layout_mpiexec": (
            JobSpec(MPI_JOB, name="mpi", resources=LAYOUT.merged(launcher="mpiexec")),
            TORQUE,
        ),
        "torque_site": (
            JobSpec(
                ["true"],
                name="site",
                resources=SITE.merged(qos=None, reservation=None, licenses=()),
            ),
            TORQUE,
        ),
        "torque_array": (
            JobSpec(
                ["./run"],
                array=parse_array("1-3,7%2"),
                environment=Environment.of(export_env=False),
            ),
            TORQUE,
        ),
        "local_tasks_mpiexec": (
            JobSpec(MPI_JOB, name="mpi", resources=Resources.of(tasks=3, launcher="mpiexec")),
            LOCAL,
        ),
    }
)


def _render(case: str) -> str:
    spec, dialect = CASES[case]
    return render_script(spec, dialect, job_id="42", job_dir="/jobs/42")


@pytest.mark.parametrize("case", sorted(CASES))
def test_golden(case: str) -> None:
    text = _render(case)
    path = GOLDEN / f"{case}.sh"
    if REGEN:
        path.parent.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"missing {path}; run with JOBFLEET_REGEN_GOLDEN=1 to create it"
    assert text == path.read_text(encoding="utf-8")


def test_every_golden_file_has_a_case() -> None:
    # A stale golden file would otherwise be checked by bash -n but never compared.
    assert {p.stem for p in GOLDEN.glob("*.sh")} == set(CASES)


@needs_bash
@pytest.mark.parametrize("path", sorted(GOLDEN.glob("*.sh")), ids=lambda p: p.stem)
def test_golden_is_valid_shell(path: Path) -> None:
    proc = subprocess.run([RUN_SHELL, "-n", str(path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("case", sorted(CASES))
def test_render_is_deterministic(case: str) -> None:
    assert _render(case) == _render(case)


def test_env_order_does_not_change_the_text() -> None:
    a = JobSpec(["x"], env={"A": "1", "B": "2"})
    b = JobSpec(["x"], env={"B": "2", "A": "1"})
    assert render_script(a, LOCAL) == render_script(b, LOCAL)


# --- structure -------------------------------------------------------------


def test_header_then_directives_in_order() -> None:
    lines = _render("directives").splitlines()
    assert lines[0] == "#!/bin/bash"
    assert lines[1] == "# jobfleet job 42 (big)"
    # generated ones first (minus the skipped), then every extra one, even one
    # that matches a skip string: extras are the user's own words.
    assert lines[2:6] == [
        "#TEST --job-name=big",
        "#TEST --cpus-per-task=8",
        "#TEST --constraint=haswell",
        "#TEST --partition=debug",
    ]
    # no directive after the first command
    first_command = next(i for i, ln in enumerate(lines) if ln and not ln.startswith("#"))
    assert not any(ln.startswith("#TEST") for ln in lines[first_command:])


def test_local_dialect_emits_no_directives() -> None:
    spec = JobSpec(["x"], resources=Resources.of(extra_directives=["--constraint=a"]))
    text = render_script(spec, LOCAL)
    assert "--constraint" not in text


def test_dialect_with_directives_but_no_prefix_is_refused() -> None:
    bad = Dialect("bad", "", "", once_guard=False, directives=lambda s: ["--x"])
    with pytest.raises(BackendError, match="no prefix"):
        render_script(JobSpec(["x"]), bad)


def test_generated_directive_with_newline_is_refused() -> None:
    bad = Dialect("bad", "#B", "", once_guard=False, directives=lambda s: ["--x\necho pwned"])
    with pytest.raises(BackendError, match="bad directive"):
        render_script(JobSpec(["x"]), bad)


def test_name_cannot_leave_the_comment() -> None:
    spec = JobSpec(["x"], name="ok")
    # The spec forbids this; render defensively anyway.
    object.__setattr__(spec, "name", "evil\nrm -rf ~\r\u2028)")
    text = render_script(spec, LOCAL)
    header = text.splitlines()[1]
    assert header.startswith("# jobfleet job 0 (")
    assert "rm -rf" in header
    assert not any(line.startswith("rm") for line in text.splitlines())
    assert "\u2028" not in text


def test_program_is_always_quoted() -> None:
    text = render_script(JobSpec(["FOO=bar", "time"]), LOCAL)
    assert "( 'FOO=bar' time )" in text


@pytest.mark.parametrize(
    ("env", "field"),
    [
        ({"JOBFLEET_JOB_ID": "1"}, "env.JOBFLEET_JOB_ID"),
        ({"JOBFLEET_ARRAY_INDEX": "1"}, "env.JOBFLEET_ARRAY_INDEX"),
        ({"JOBFLEET_JOB_DIR": "/tmp"}, "env.JOBFLEET_JOB_DIR"),
        ({"__jf_dir": "/tmp"}, "env.__jf_dir"),
    ],
)
def test_reserved_env_names_are_refused(env: dict[str, str], field: str) -> None:
    with pytest.raises(SpecError) as info:
        render_script(JobSpec(["x"], env=env), LOCAL)
    assert info.value.field == field


def test_env_name_with_trailing_newline_is_refused() -> None:
    # spec.py's name check uses "$", which also matches before a final newline.
    spec = JobSpec(["x"])
    object.__setattr__(spec, "env", {"FOO\n": "1"})
    with pytest.raises(SpecError, match="not a valid environment variable name"):
        render_script(spec, LOCAL)


@pytest.mark.parametrize(
    ("field", "kwargs"), [("job_id", {"job_id": "1\n2"}), ("job_dir", {"job_dir": ""})]
)
def test_bad_job_id_or_dir(field: str, kwargs: dict[str, str]) -> None:
    with pytest.raises(SpecError) as info:
        render_script(JobSpec(["x"]), LOCAL, **kwargs)
    assert info.value.field == field


def test_each_backend_hands_its_dialect(tmp_path: Path) -> None:
    # No registry of dialects by name: a backend gives its own (script.py imports none).
    from jobfleet.backends import local, sge, slurm
    from jobfleet.backends.sge.backend import SgeBackend
    from jobfleet.backends.slurm.backend import SlurmBackend

    assert SlurmBackend().script_dialect().directive_prefix == "#SBATCH"
    assert SgeBackend().script_dialect().directive_prefix == "#$"
    backend = local.BACKEND.create(local.LocalSettings(), runner=None, home=tmp_path)
    try:
        assert backend.script_dialect() is LOCAL
    finally:
        backend.close()
    assert (slurm.SLURM.name, sge.SGE.name) == ("slurm", "sge")


# --- path rules --------------------------------------------------------------


def test_marker_and_exit_code_paths() -> None:
    assert exit_code_path("/j", None) == "/j/exit_code"
    assert exit_code_path("/j", 0) == "/j/0/exit_code.0"
    assert exit_code_path("/j", 12345) == "/j/12/exit_code.12345"
    assert started_path("/j", None) == "/j/started"
    assert started_path("/j", 12) == "/j/0/started.12"


def test_stream_path_rules() -> None:
    plain = JobSpec(["x"])
    assert stream_path(plain, "/j", "stdout", None) == "/j/stdout"
    assert stream_path(plain, "/j", "stderr", 3) == "/j/0/stderr.3"
    assert stream_path(plain, "/j", "stderr", 2000) == "/j/2/stderr.2000"
    user = JobSpec(["x"], stdout="/o/{job_id}-{index}.{other}", stderr="e{index}")
    assert stream_path(user, "/j", "stdout", 3, job_id="9") == "/o/9-3.{other}"
    assert stream_path(user, "/j", "stdout", None, job_id="9") == "/o/9-.{other}"
    assert stream_path(user, "/j", "stderr", 0) == "e0"
    in_dir = JobSpec(["x"], workdir="/w", stdout="rel/o", stderr="/abs/e")
    assert stream_path(in_dir, "/j", "stdout", None) == "/w/rel/o"
    assert stream_path(in_dir, "/j", "stderr", None) == "/abs/e"
    slash = JobSpec(["x"], workdir="w/", stdout="o")
    assert stream_path(slash, "/j", "stdout", None) == "w/o"
    with pytest.raises(ValueError, match="stream"):
        stream_path(plain, "/j", "stdin", None)  # type: ignore[arg-type]


def test_placeholder_lookalike_text_is_quoted() -> None:
    spec = JobSpec(["x"], stdout='a"$JOBFLEET_JOB_ID"{index}')
    text = render_script(spec, LOCAL)
    assert """exec >>'a"$JOBFLEET_JOB_ID"'"$JOBFLEET_ARRAY_INDEX" """ in text


# --- running the scripts -----------------------------------------------------

ARGV_PROG = (
    "import json, os, sys\n"
    "with open(os.environ['ARGV_OUT'], 'w', encoding='utf-8') as f:\n"
    "    json.dump(sys.argv[1:], f)\n"
)
ENV_PROG = (
    "import json, os, sys\n"
    "with open(sys.argv[1], 'w', encoding='utf-8') as f:\n"
    "    json.dump({k: v for k, v in os.environ.items() if k.startswith('T_')}, f)\n"
)


def _base_env(**extra: str) -> dict[str, str]:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C.UTF-8"}
    env.update(extra)
    return env


def _run(
    spec: JobSpec,
    where: Path,
    *,
    job_dir: Path | None = None,
    job_id: str = "42",
    env: dict[str, str] | None = None,
    dialect: Dialect = LOCAL,
) -> tuple[subprocess.CompletedProcess[str], Path]:
    job_dir = job_dir or where / "job"
    job_dir.mkdir(parents=True, exist_ok=True)
    script = where / "job.sh"
    script.write_text(
        render_script(spec, dialect, job_id=job_id, job_dir=str(job_dir)), encoding="utf-8"
    )
    proc = subprocess.run(
        [RUN_SHELL, str(script)],
        cwd=where,
        env=env if env is not None else _base_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    return proc, job_dir


def _read(path: Path | str) -> str:
    return Path(path).read_text(encoding="utf-8")


@needs_bash
def test_argv_arrives_byte_exact(tmp_path: Path) -> None:
    out = tmp_path / "argv.json"
    spec = JobSpec(
        [sys.executable, "-c", ARGV_PROG, *NASTY], env={"ARGV_OUT": str(out)}, workdir=str(tmp_path)
    )
    proc, job_dir = _run(spec, tmp_path)
    assert proc.returncode == 0, _read(job_dir / "stderr")
    assert json.loads(_read(out)) == NASTY
    assert not (tmp_path / "pwned").exists()
    assert _read(job_dir / "exit_code") == "0\n"


@needs_bash
@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00")), max_size=6
    )
)
def test_any_argv_arrives_byte_exact(args: list[str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        where = Path(tmp)
        # bash's builtin printf in the subshell: fast, and it prints each argument as is.
        proc, job_dir = _run(JobSpec(["printf", "%s\\0", *args]), where)
        assert proc.returncode == 0, _read(job_dir / "stderr")
        printed = (job_dir / "stdout").read_bytes()
        # printf uses its format once even without arguments
        expected = b"".join(a.encode("utf-8") + b"\0" for a in args) if args else b"\0"
        assert printed == expected


@needs_bash
@pytest.mark.parametrize("code", [0, 3])
def test_exit_code_is_recorded(tmp_path: Path, code: int) -> None:
    spec = JobSpec([sys.executable, "-c", f"import sys; print('hello'); sys.exit({code})"])
    proc, job_dir = _run(spec, tmp_path)
    assert proc.returncode == code
    assert _read(job_dir / "exit_code") == f"{code}\n"
    assert _read(job_dir / "stdout") == "hello\n"
    # Three files: the exit-code file was the once-guard (no "started" marker on the
    # local backend), and no temporary file is left behind.
    assert sorted(p.name for p in job_dir.iterdir()) == ["exit_code", "stderr", "stdout"]


@needs_bash
def test_builtin_program_cannot_skip_the_record(tmp_path: Path) -> None:
    proc, job_dir = _run(JobSpec(["exit", "5"]), tmp_path)
    assert proc.returncode == 5
    assert _read(job_dir / "exit_code") == "5\n"


@needs_bash
def test_assignment_lookalike_program_is_a_program(tmp_path: Path) -> None:
    proc, job_dir = _run(JobSpec(["FOO=bar"]), tmp_path)
    assert proc.returncode == 127  # command not found, not an assignment
    assert _read(job_dir / "exit_code") == "127\n"


@needs_bash
def test_env_vars_arrive_exactly(tmp_path: Path) -> None:
    values = {f"T_{i}": v for i, v in enumerate(NASTY)}
    values["T_PATHISH"] = "/x:~/y"
    out = tmp_path / "env.json"
    spec = JobSpec([sys.executable, "-c", ENV_PROG, str(out)], env=values)
    proc, job_dir = _run(spec, tmp_path)
    assert proc.returncode == 0, _read(job_dir / "stderr")
    assert json.loads(_read(out)) == values


@needs_bash
@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(
        st.from_regex(r"T_[A-Za-z0-9_]{0,8}", fullmatch=True),
        st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00")),
        max_size=4,
    )
)
def test_any_env_value_arrives_exactly(values: dict[str, str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        proc, job_dir = _run(JobSpec(["env", "-0"], env=values), Path(tmp))
        assert proc.returncode == 0, _read(job_dir / "stderr")
        printed = (job_dir / "stdout").read_bytes().split(b"\0")
        got = {}
        for item in printed:
            name, sep, value = item.partition(b"=")
            if sep and name.startswith(b"T_"):
                got[name.decode()] = value.decode("utf-8")
        assert got == values


@needs_bash
def test_env_path_does_not_break_the_record(tmp_path: Path) -> None:
    spec = JobSpec([sys.executable, "-c", "pass"], env={"PATH": "/nonexistent"})
    proc, job_dir = _run(spec, tmp_path)
    assert proc.returncode == 0
    assert _read(job_dir / "exit_code") == "0\n"


@needs_bash
def test_index_paths_resolve_at_run_time(tmp_path: Path) -> None:
    work = tmp_path / "work"
    (work / "logs").mkdir(parents=True)
    spec = JobSpec(
        [
            sys.executable,
            "-c",
            "import os, sys; print(os.environ['JOBFLEET_ARRAY_INDEX']);"
            "print(os.environ['JOBFLEET_JOB_ID'], file=sys.stderr);"
            "print(os.environ['JOBFLEET_JOB_DIR'], file=sys.stderr)",
        ],
        workdir=str(work),
        stdout="logs/{job_id}-{index}.out",
        stderr=str(tmp_path / "err.{index}"),
        array=parse_array("1-10"),
    )
    proc, job_dir = _run(spec, tmp_path, env=_base_env(JOBFLEET_ARRAY_INDEX="7"))
    assert proc.returncode == 0
    out = stream_path(spec, str(job_dir), "stdout", 7, job_id="42")
    err = stream_path(spec, str(job_dir), "stderr", 7, job_id="42")
    assert out == str(work / "logs" / "42-7.out")
    assert _read(out) == "7\n"
    assert _read(err) == f"42\n{job_dir}\n"  # the job directory, absolute
    assert _read(exit_code_path(str(job_dir), 7)) == "0\n"
    assert not Path(started_path(str(job_dir), 7)).exists()  # the exit-code file guards
    assert [p.name for p in (job_dir / "0").iterdir()] == ["exit_code.7"]
    assert not Path(exit_code_path(str(job_dir), None)).exists()


@needs_bash
def test_default_array_paths_and_dialect_index(tmp_path: Path) -> None:
    spec = JobSpec(["echo", "hi"], array=parse_array("0-3"))
    env = _base_env(TEST_TASK_ID="2", JOBFLEET_ARRAY_INDEX="9")
    proc, job_dir = _run(spec, tmp_path, env=env, dialect=TESTSCHED)
    assert proc.returncode == 0
    # the dialect's index expression wins over an inherited JOBFLEET_ARRAY_INDEX
    assert _read(stream_path(spec, str(job_dir), "stdout", 2)) == "hi\n"
    assert _read(exit_code_path(str(job_dir), 2)) == "0\n"


@needs_bash
@pytest.mark.parametrize("index", [None, "", "x1", "1;2"])
def test_array_without_numeric_index_refuses_to_run(tmp_path: Path, index: str | None) -> None:
    marker = tmp_path / "ran"
    spec = JobSpec(["touch", str(marker)], array=parse_array("1-3"))
    env = _base_env() if index is None else _base_env(JOBFLEET_ARRAY_INDEX=index)
    proc, job_dir = _run(spec, tmp_path, env=env)
    assert proc.returncode == 1
    assert "numeric array index" in proc.stderr
    assert not any(job_dir.iterdir())  # no marker, no exit code under a wrong name
    assert not marker.exists()


@needs_bash
def test_single_job_ignores_inherited_index(tmp_path: Path) -> None:
    # e.g. a job submitted from inside an element of another array job
    out = tmp_path / "argv.json"
    spec = JobSpec([sys.executable, "-c", ARGV_PROG, "{index}"], env={"ARGV_OUT": str(out)})
    proc, job_dir = _run(spec, tmp_path, env=_base_env(JOBFLEET_ARRAY_INDEX="5"))
    assert proc.returncode == 0
    assert _read(job_dir / "exit_code") == "0\n"
    assert not (job_dir / "0" / "exit_code.5").exists()


@needs_bash
def test_once_guard_refuses_a_second_run(tmp_path: Path) -> None:
    counter = tmp_path / "runs"
    spec = JobSpec(["bash", "-c", 'echo run >> "$1"; exit 4', "bash", str(counter)])
    first, job_dir = _run(spec, tmp_path)
    assert first.returncode == 4
    second, _ = _run(spec, tmp_path)
    assert second.returncode == EXIT_ALREADY_STARTED == 197
    assert "already started" in second.stderr
    assert _read(counter) == "run\n"
    # the first run's record and outputs are untouched
    assert _read(job_dir / "exit_code") == "4\n"
    assert "already started" not in _read(job_dir / "stderr")


@needs_bash
def test_once_guard_is_per_element(tmp_path: Path) -> None:
    spec = JobSpec(["true"], array=parse_array("1-2"))
    a, job_dir = _run(spec, tmp_path, env=_base_env(JOBFLEET_ARRAY_INDEX="1"))
    assert (job_dir / "0" / "exit_code.1").read_text() == "0\n"
    b, _ = _run(spec, tmp_path, env=_base_env(JOBFLEET_ARRAY_INDEX="2"))
    again, _ = _run(spec, tmp_path, env=_base_env(JOBFLEET_ARRAY_INDEX="1"))
    assert (a.returncode, b.returncode, again.returncode) == (0, 0, 197)


@needs_bash
def test_no_guard_without_once_guard(tmp_path: Path) -> None:
    spec = JobSpec(["true"], array=parse_array("1"))
    env = _base_env(TEST_TASK_ID="1")
    first, job_dir = _run(spec, tmp_path, env=env, dialect=TESTSCHED)
    marker = job_dir / "0" / "started.1"  # without the guard, only the time of the start
    assert marker.read_text().startswith("pid ")  # not a process group to signal
    os.utime(marker, (1000.0, 1000.0))
    second, _ = _run(spec, tmp_path, env=env, dialect=TESTSCHED)
    assert (first.returncode, second.returncode) == (0, 0)  # a rerun runs
    assert marker.stat().st_mtime > 1000.0  # and its start replaces the first one's
    assert (job_dir / "0" / "exit_code.1").stat().st_mtime >= marker.stat().st_mtime


@needs_bash
def test_missing_job_dir_is_not_reported_as_already_started(tmp_path: Path) -> None:
    script = tmp_path / "job.sh"
    script.write_text(render_script(JobSpec(["true"]), LOCAL, job_dir=str(tmp_path / "no")))
    proc = subprocess.run([RUN_SHELL, str(script)], env=_base_env(), capture_output=True, text=True)
    assert proc.returncode == 1
    assert "does the job directory exist" in proc.stderr


@needs_bash
def test_missing_workdir(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    spec = JobSpec(["touch", str(marker)], workdir=str(tmp_path / "no such dir"))
    proc, job_dir = _run(spec, tmp_path)
    assert proc.returncode == 1
    assert "cannot change to the working directory" in _read(job_dir / "stderr")
    assert str(tmp_path / "no such dir") in _read(job_dir / "stderr")
    assert _read(job_dir / "exit_code") == "1\n"
    assert not marker.exists()


@needs_bash
def test_unopenable_output_path(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    spec = JobSpec(["touch", str(marker)], stdout=str(tmp_path / "missing" / "out"))
    proc, job_dir = _run(spec, tmp_path)
    assert proc.returncode == 1
    assert "cannot open the job's output files" in proc.stderr
    assert _read(job_dir / "exit_code") == "1\n"
    assert not marker.exists()


@needs_bash
def test_relative_job_dir_and_workdir_ignore_cdpath(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    decoy = tmp_path / "decoy"
    (decoy / "sub").mkdir(parents=True)
    spec = JobSpec(["pwd"], workdir="sub", stdout="pwd.txt")
    script = tmp_path / "job.sh"
    script.write_text(render_script(spec, LOCAL, job_dir="jd"))
    (tmp_path / "jd").mkdir()
    proc = subprocess.run(
        [RUN_SHELL, str(script)],
        cwd=tmp_path,
        env=_base_env(CDPATH=str(decoy)),
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert _read(tmp_path / "sub" / "pwd.txt") == f"{tmp_path / 'sub'}\n"
    # the job dir was resolved before the cd
    assert _read(tmp_path / "jd" / "exit_code") == "0\n"


@needs_bash
def test_shell_command(tmp_path: Path) -> None:
    spec = JobSpec('echo $((6 * 7)) "$0"; exit 6', shell=True)
    proc, job_dir = _run(spec, tmp_path)
    assert proc.returncode == 6
    assert _read(job_dir / "stdout") == "42 bash\n"
    assert _read(job_dir / "exit_code") == "6\n"


@pytest.mark.parametrize(("launcher", "seen"), [("mpirun", "1 core"), ("none", "unset core")])
def test_local_open_mpi_defaults_yield_to_the_jobs_own(
    tmp_path: Path, launcher: str, seen: str
) -> None:
    # A stand-in mpirun that drops "-np N" and runs the command once.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "mpirun").write_text('#!/bin/sh\nshift 2\nexec "$@"\n', encoding="utf-8")
    (bin_dir / "mpirun").chmod(0o755)
    show = 'echo "${OMPI_MCA_rmaps_base_oversubscribe-unset} ${OMPI_MCA_hwloc_base_binding_policy}"'
    spec = JobSpec(
        ["sh", "-c", show],
        env={"OMPI_MCA_hwloc_base_binding_policy": "core"},
        resources=Resources(tasks=2, launcher=launcher),
    )
    env = _base_env(PATH=f"{bin_dir}:{os.environ.get('PATH', '/usr/bin:/bin')}")
    proc, job_dir = _run(spec, tmp_path, env=env)
    assert proc.returncode == 0, _read(job_dir / "stderr")
    assert _read(job_dir / "stdout") == f"{seen}\n"


def test_doctests() -> None:
    result = doctest.testmod(jobfleet.script)
    assert result.attempted > 0
    assert result.failed == 0


# --- dependencies the script checks itself ---------------------------------------


def _exit_files(where: Path, name: str, codes: list[str | None]) -> tuple[str, ...]:
    """Exit-code files of a predecessor's elements (None: the file is missing)."""
    files = []
    for i, code in enumerate(codes):
        path = where / f"{name}.exit_code.{i}"
        if code is not None:
            path.write_text(code)
        files.append(str(path))
    return tuple(files)


@pytest.mark.parametrize(
    ("kind", "codes", "runs"),
    [
        (DepKind.AFTER_OK, ["0\n"], True),
        (DepKind.AFTER_OK, ["0\n", "0\n"], True),
        (DepKind.AFTER_OK, ["3\n"], False),
        (DepKind.AFTER_OK, ["0\n", "3\n"], False),
        (DepKind.AFTER_OK, [None], False),  # cancelled or killed: no exit code
        (DepKind.AFTER_NOT_OK, ["0\n", "0\n"], False),
        (DepKind.AFTER_NOT_OK, ["0\n", "3\n"], True),
        (DepKind.AFTER_NOT_OK, [None], True),
        (DepKind.AFTER_ANY, ["3\n"], True),
    ],
)
def test_requirements_are_checked_before_the_command(
    tmp_path: Path, kind: DepKind, codes: list[str | None], runs: bool
) -> None:
    ran = tmp_path / "ran"
    requirement = Requirement(kind, "7", _exit_files(tmp_path, "pred", codes))
    job_dir = tmp_path / "job"
    job_dir.mkdir()
    script = tmp_path / "job.sh"
    script.write_text(
        render_script(
            JobSpec(["touch", str(ran)]),
            LOCAL,
            job_id="9",
            job_dir=str(job_dir),
            requires=[requirement],
        )
    )
    env = _base_env(JOBFLEET_DEPENDENCY_WAIT="0")  # a missing file stays missing here
    proc = subprocess.run([RUN_SHELL, str(script)], env=env, capture_output=True, text=True)
    if runs:
        assert proc.returncode == 0 and ran.exists()
        assert not (job_dir / "never").exists()
    else:
        assert proc.returncode == EXIT_DEPENDENCY_NEVER_MET
        assert not ran.exists()
        reason = (job_dir / "never").read_text()
        assert reason == f"{kind.value} dependency on job 7 can never be met\n"
        # The command did not run: no exit code, only the once-guard's pid.
        assert (job_dir / "exit_code").read_text().startswith("pid ")


def test_a_predecessors_file_shown_late_is_waited_for(tmp_path: Path) -> None:
    """On a shared file system an exit-code file may appear a moment late."""
    late = tmp_path / "pred.exit_code"
    ran = tmp_path / "ran"
    job_dir = tmp_path / "job"
    job_dir.mkdir()
    script = tmp_path / "job.sh"
    script.write_text(
        render_script(
            JobSpec(["touch", str(ran)]),
            LOCAL,
            job_id="9",
            job_dir=str(job_dir),
            requires=[Requirement(DepKind.AFTER_OK, "7", (str(late),))],
        )
    )
    env = _base_env(JOBFLEET_DEPENDENCY_WAIT="20")
    proc = subprocess.Popen([RUN_SHELL, str(script)], env=env)
    time.sleep(1.5)
    late.write_text("0\n")
    assert proc.wait(timeout=30) == 0
    assert ran.exists()
