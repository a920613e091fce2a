"""Render the POSIX shell script that runs one job, or each element of an array.

Pure: no I/O. The same script text serves every element of an array; the
element's index is read at run time from the scheduler's variable (see
:attr:`Dialect.index_expr`). Backends write the text into the job directory
and hand it to their scheduler; the local backend runs it with /bin/sh. Write it
with ``encoding="utf-8", errors="surrogateescape"`` so that paths decoded by
:func:`os.fsdecode` reach bash byte for byte.

What the script does, in order:

1. header comment and scheduler directives (schedulers only read directives
   that come before the first command);
2. exports ``JOBFLEET_JOB_ID``, ``JOBFLEET_ARRAY_INDEX`` and ``JOBFLEET_JOB_DIR``;
3. creates ``started[.<index>]`` (its modification time is when the run started;
   an element's files are in ``<job dir>/<index // 1000>/``, see :mod:`jobfleet.jobdir`);
   with :attr:`Dialect.once_guard` (the local backend) it creates the exit-code file
   instead, with noclobber, holding ``pid N`` until the exit code replaces it, and
   exits with :data:`EXIT_ALREADY_STARTED` if it already exists (one file fewer per
   element: the agent itself knows when it started the script);
4. appends its stdout and stderr to the paths :func:`jobfleet.jobdir.stream_path` names;
5. exports the spec's environment, changes to its workdir;
6. sets up the job's :class:`~jobfleet.environment.Environment`: sources its
   env files, loads its modules, makes its scratch directory (``TMPDIR``),
   runs its prologue; a step that fails writes ``setup_failed[.<index>]``,
   records and exits :data:`EXIT_SETUP_FAILED` without running the command;
7. runs the command and writes its exit status to ``exit_code[.<index>]``;
8. runs the epilogue in a subshell (whatever that status; it cannot change
   it), removes the scratch directory unless kept, exits with the status.

Every value taken from the spec or the caller is quoted with
:func:`shlex.quote`; nothing lands in the script as code. The text depends
only on the arguments, so golden files can pin it (``tests/unit/golden/``).

>>> from jobfleet.spec import JobSpec
>>> text = render_script(JobSpec(["echo", "hi there"]), LOCAL, job_id="7", job_dir="/j/7")
>>> text.splitlines()[1]
'# jobfleet job 7 (echo)'
>>> "( 'echo' 'hi there' )" in text
True
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from jobfleet.errors import BackendError, SpecError
from jobfleet.jobdir import SHARD, STREAM_PLACEHOLDER, user_stream, workdir_prefix
from jobfleet.scriptdeps import Requirement, requirement_lines
from jobfleet.scriptsetup import EXIT_SETUP_FAILED, setup_lines, teardown_lines
from jobfleet.spec import JobSpec

__all__ = [
    "EXIT_ALREADY_STARTED",
    "EXIT_SETUP_FAILED",
    "LOCAL",
    "Dialect",
    "render_script",
]

#: Exit status of the script when the once-guard refuses a second start.
#: Chosen outside the ranges commands use (0-125, 126/127 from the shell,
#: 128+N for signals up to 64 would reach 192).
EXIT_ALREADY_STARTED = 197


def _spec_tasks(spec: JobSpec) -> str:
    """The number of tasks the spec asks for (where nothing says what the job got)."""
    return str(spec.resources.total_tasks)


@dataclass(frozen=True, slots=True)
class Dialect:
    """How one scheduler wants its job scripts.

    A backend hands its own (``Backend.script_dialect()``); :data:`LOCAL` is the
    plain one, without directives, for launchers that read none.

    Attributes:
        name: ``"local"``, later ``"slurm"``, ``"sge"``, ...
        directive_prefix: ``"#SBATCH"`` and the like; empty for no directives at all.
        index_expr: shell code giving the array index at run time, e.g.
            ``"${SLURM_ARRAY_TASK_ID-}"``. Trusted code from the dialect, never user data.
        once_guard: refuse to run the same job (or array element) twice; for
            launchers that may retry a start, like the local one.
        directives: the directive bodies (without the prefix) for a spec, in a
            fixed order. :func:`render_script` drops those matching
            ``resources.directives_skip`` and appends ``resources.extra_directives``.
        reserved_exits: exit statuses the scheduler gives a meaning of its own
            (Grid Engine: 99 reschedules the job, 100 puts it in error state). The
            script exits 1 instead; the exit-code file keeps the real code.
        interpreter: the shell named in the ``#!`` line. The script is POSIX sh
            (tested under dash and bash), so any POSIX shell runs it; schedulers
            get bash, which every cluster has, the local backend the faster
            ``/bin/sh``.
        task_count: the number of tasks the job got, as a shell word (trusted code,
            e.g. ``"$SLURM_NTASKS"``), for ``mpirun -np`` / ``mpiexec -np``.
        srun: whether ``launcher: srun`` works here (SLURM only).
        before_command: lines of shell (trusted, from the dialect) between the set-up
            and the command, e.g. SLURM's ``export SLURM_EXPORT_ENV=ALL`` after
            ``--export=NONE``.
        forward_signals: the scheduler signals the job script alone (HTCondor's starter:
            its kill signal to the job's main process, the rest only hard-killed after
            the vacate time): the script runs the command in the background, in a
            process group of its own (bash's ``set -m``), and passes each trapped signal
            on to that group. Otherwise the command runs in the foreground and gets the
            signals the scheduler sends to the whole job.
    """

    name: str
    directive_prefix: str
    index_expr: str
    once_guard: bool
    directives: Callable[[JobSpec], list[str]]
    interpreter: str = "/bin/bash"
    reserved_exits: tuple[int, ...] = ()
    task_count: Callable[[JobSpec], str] = _spec_tasks
    srun: bool = False
    before_command: Callable[[JobSpec], list[str]] = lambda spec: []
    forward_signals: bool = False


def _no_directives(spec: JobSpec) -> list[str]:
    return []


def _local_before_command(spec: JobSpec) -> list[str]:
    """For mpirun / mpiexec: Open MPI told that the local agent, not it, shares the machine."""
    if spec.resources.launcher not in ("mpirun", "mpiexec"):
        return []
    # Seen with Open MPI 4.1.4 (docs/job-model.md, the launcher): without a resource manager
    # it counts this machine's cores as its slots, so it refused the ranks of a job the
    # agent admitted under a larger local.cores; and it bound rank 0 of every job to core 0,
    # out of the CPUs the agent pinned the job to. MPICH and Intel MPI ignore OMPI_MCA_*.
    return [
        "",
        "# The local agent has given this job its cores (and pinned it to its CPUs): Open MPI",
        "# must neither count this machine's cores again nor bind ranks to cores of its choosing.",
        "# A value the job sets itself wins.",
        'export OMPI_MCA_rmaps_base_oversubscribe="${OMPI_MCA_rmaps_base_oversubscribe-1}"',
        'export OMPI_MCA_hwloc_base_binding_policy="${OMPI_MCA_hwloc_base_binding_policy-none}"',
    ]


LOCAL = Dialect(
    name="local",
    directive_prefix="",
    index_expr="${JOBFLEET_ARRAY_INDEX-}",
    once_guard=True,
    directives=_no_directives,
    interpreter="/bin/sh",
    before_command=_local_before_command,
)

# ---------------------------------------------------------------------------
# What the script may hold. Its paths are jobfleet.jobdir's: keep the two in step.

_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
# fullmatch, not "$": "$" would also accept a name ending in a newline.
_ENV_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# The script's own variables; an env entry must not overwrite them.
_RESERVED_ENV = frozenset({"JOBFLEET_JOB_ID", "JOBFLEET_ARRAY_INDEX", "JOBFLEET_JOB_DIR"})
_RESERVED_ENV_PREFIX = "__jf_"


def _stream_word(spec: JobSpec, stream: str) -> str:
    """The shell word for :func:`jobfleet.jobdir.stream_path`, evaluated at run time."""
    user = user_stream(spec, stream)
    if user is None:
        return f'"$__jf_edir/{stream}$__jf_tag"'
    refs = {"index": '"$JOBFLEET_ARRAY_INDEX"', "job_id": '"$JOBFLEET_JOB_ID"'}
    words = [shlex.quote(prefix)] if (prefix := workdir_prefix(spec, user)) else []
    # re.split with a group alternates literal text and placeholder names.
    for i, part in enumerate(STREAM_PLACEHOLDER.split(user)):
        if i % 2:
            words.append(refs[part])
        elif part:
            words.append(shlex.quote(part))
    return "".join(words)


# ---------------------------------------------------------------------------
# Rendering.


def _comment_safe(text: str) -> str:
    """``text`` with everything that could end a comment line escaped, then quoted."""
    shown = "".join(
        ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text
    )
    return shlex.quote(shown)


def _check_line(field: str, value: str) -> None:
    if not value or _CONTROL_RE.search(value):
        raise SpecError(field, f"must be one non-empty line without control characters: {value!r}")


def _directive_lines(spec: JobSpec, dialect: Dialect) -> list[str]:
    generated = dialect.directives(spec)
    if not dialect.directive_prefix:
        if generated:
            raise BackendError(f"dialect {dialect.name!r} generates directives but has no prefix")
        # Nothing reads directives here (the local launcher); extra ones from a
        # shared profile are ignored rather than turned into shell commands.
        return []
    skip = spec.resources.directives_skip
    bodies = [body for body in generated if not any(s in body for s in skip)]
    for body in bodies:
        if _CONTROL_RE.search(body):
            raise BackendError(f"dialect {dialect.name!r} generated a bad directive {body!r}")
    for i, body in enumerate(spec.resources.extra_directives):
        # Checked again: a newline here would turn the rest into shell code.
        _check_line(f"resources.extra_directives[{i}]", body)
        bodies.append(body)
    return [f"{dialect.directive_prefix} {body}" for body in bodies]


def _env_lines(spec: JobSpec) -> list[str]:
    lines = []
    # Sorted: equal specs render equal text whatever the dict's insertion order.
    for name in sorted(spec.env):
        if not _ENV_NAME_RE.fullmatch(name):
            raise SpecError("env", f"{name!r} is not a valid environment variable name")
        if name in _RESERVED_ENV or name.startswith(_RESERVED_ENV_PREFIX):
            raise SpecError(
                f"env.{name}", "this name is set by jobfleet's job script; choose another"
            )
        lines.append(f"export {name}={shlex.quote(spec.env[name])}")
    return lines


def _launcher(spec: JobSpec, dialect: Dialect) -> str:
    """The launcher's words before the command (trusted text: numbers and fixed words)."""
    res = spec.resources
    if res.launcher == "none":
        return ""
    if res.launcher == "srun":
        if not dialect.srun:
            raise SpecError(
                "resources.launcher",
                f"srun starts tasks only under SLURM, not {dialect.name}; use mpirun or mpiexec",
            )
        # Given, not inherited: 22.05's release notes say srun stopped reading
        # SLURM_CPUS_PER_TASK from the batch job (23.11 reads it again).
        return f"srun --cpus-per-task={res.cores} "
    return f"{res.launcher} -np {dialect.task_count(spec)} "


def _command_line(spec: JobSpec, dialect: Dialect) -> str:
    launcher = _launcher(spec, dialect)
    if spec.shell:
        return f"{launcher}bash -c {shlex.quote(spec.command[0])}"
    program, *args = spec.command
    # The program is always quoted, even when shlex.quote would not: a bare
    # "FOO=1" would be an assignment and a bare "time" or "if" a keyword.
    # The subshell keeps builtins (exit, exec, cd, set) from skipping the record.
    program_word = "'" + program.replace("'", "'\"'\"'") + "'"
    return "( " + launcher + " ".join([program_word, *(shlex.quote(a) for a in args)]) + " )"


def _forwarding_lines(command: str) -> list[str]:
    """The command run with :attr:`Dialect.forward_signals`: in the background, in its
    own process group, each signal the script traps passed on to that group."""
    return [
        "",
        "# The scheduler signals this script alone (HTCondor's starter: its kill signal",
        "# to the job's main process; the rest only killed after the vacate time). The",
        "# script outlives the signal, passes it on to the command's process group, and",
        "# records how the command ended.",
        "__jf_pid=",
        "__jf_sig=",
        "__jf_fwd() {",
        '    __jf_sig="$1"',
        '    [ -n "$__jf_pid" ] || return 0',
        '    kill -s "$1" -- "-$__jf_pid" 2>/dev/null || kill -s "$1" "$__jf_pid" 2>/dev/null || :',
        "}",
        "for __jf_s in HUP INT QUIT TERM USR1 USR2; do",
        '    trap "__jf_fwd $__jf_s" "$__jf_s"',
        "done",
        "# In the background, in a process group of its own (set -m: job control, so it",
        "# keeps its stdin and INT and QUIT), and waited for: the script needs its exit",
        "# status. Tested (||), so that a set -e from the set-up cannot end the script",
        "# before it records it. A trapped signal ends a wait early: wait again.",
        "__jf_rc=0",
        "{ set -m; } 2>/dev/null",
        f"{command} &",
        "__jf_pid=$!",
        "set +m",
        '[ -z "$__jf_sig" ] || __jf_fwd "$__jf_sig"',
        "while :; do",
        "    __jf_sig=",
        "    __jf_rc=0",
        '    wait "$__jf_pid" || __jf_rc=$?',
        '    [ -n "$__jf_sig" ] || break',
        "done",
    ]


def render_script(
    spec: JobSpec,
    dialect: Dialect,
    *,
    job_id: str = "0",
    job_dir: str = ".",
    requires: Sequence[Requirement] = (),
) -> str:
    """The shell script that runs ``spec``; the same text for every array element.

    Args:
        spec: the job.
        dialect: how the scheduler wants the script (the backend's ``script_dialect()``).
        job_id: the jobfleet id, exported as ``JOBFLEET_JOB_ID``.
        job_dir: the job's directory (markers, exit codes, default outputs).
            A relative one is taken relative to where the script starts.
        requires: dependencies the scheduler only waits for (it starts the job
            once they ended, however): the script checks their outcomes itself.

    Raises:
        BackendError: a dialect generating bad directives.
        SpecError: an env name the script cannot export, or a value it cannot hold.
    """
    _check_line("job_id", job_id)
    _check_line("job_dir", job_dir)

    out = [
        f"#!{dialect.interpreter}",
        f"# jobfleet job {_comment_safe(job_id)} ({_comment_safe(spec.display_name)})",
    ]
    out += _directive_lines(spec, dialect)
    out += [
        f"# Generated by jobfleet ({dialect.name}); render it again rather than editing it.",
        "",
        f"export JOBFLEET_JOB_ID={shlex.quote(job_id)}",
    ]
    if spec.array is None:
        # Known to be empty: an index inherited from an enclosing array job
        # must not send this job's files to another name.
        out.append("export JOBFLEET_ARRAY_INDEX=''")
    else:
        out += [
            f'export JOBFLEET_ARRAY_INDEX="{dialect.index_expr}"',
            'case "$JOBFLEET_ARRAY_INDEX" in',
            "    '' | *[!0-9]*)",
            "        printf '%s\\n' \"jobfleet: array job $JOBFLEET_JOB_ID started without a"
            " numeric array index (got '$JOBFLEET_ARRAY_INDEX')\" >&2",
            "        exit 1",
            "        ;;",
            "esac",
        ]
    out += [
        f"__jf_dir={shlex.quote(job_dir)}",
        # Made absolute now, because the cd into the workdir comes later.
        'case "$__jf_dir" in /*) ;; *) __jf_dir="$PWD/$__jf_dir" ;; esac',
        'export JOBFLEET_JOB_DIR="$__jf_dir"',
        '__jf_tag="${JOBFLEET_ARRAY_INDEX:+.$JOBFLEET_ARRAY_INDEX}"',
    ]
    if spec.array is None:
        out.append('__jf_edir="$__jf_dir"')
    else:
        out += [
            f"# An element's files: <job dir>/<index / {SHARD}>/ (jobfleet.jobdir), made by",
            "# the submitter; made here only if missing (mkdir is a fork).",
            f'__jf_edir="$__jf_dir/$((JOBFLEET_ARRAY_INDEX / {SHARD}))"',
            '[ -d "$__jf_edir" ] || mkdir -m 700 "$__jf_edir" 2>/dev/null || :',
        ]
    out += [
        "",
        "# One write(2) of a few bytes, ending in a newline: readers take the file",
        "# only once it ends with one. (No temporary file and mv: a fork per job.)",
        "__jf_record() {",
        # >|: a prologue's set -C (noclobber) must not keep a rerun from recording.
        """    printf '%s\\n' "$1" >|"$__jf_edir/exit_code$__jf_tag\"""",
        "}",
    ]
    if dialect.once_guard:
        out += [
            "",
            "# Refuse a second start before touching anything else: a duplicate start",
            "# must leave the first run's outputs and exit code alone. noclobber (-C)",
            "# creates the exit-code file with O_EXCL, so of two racing starts only one",
            '# wins. It holds "pid N" (no code: readers wait) until the code replaces it.',
            "set -C",
            'if ! { printf \'pid %s\\n\' "$$" >"$__jf_edir/exit_code$__jf_tag"; }'
            " 2>/dev/null; then",
            '    if [ -e "$__jf_edir/exit_code$__jf_tag" ]; then',
            "        printf '%s\\n' \"jobfleet: job $JOBFLEET_JOB_ID$__jf_tag already started;"
            ' not running it twice" >&2',
            f"        exit {EXIT_ALREADY_STARTED}",
            "    fi",
            "    printf '%s\\n' \"jobfleet: cannot create $__jf_edir/exit_code$__jf_tag;"
            ' does the job directory exist?" >&2',
            "    exit 1",
            "fi",
            "set +C",
        ]
    else:
        out += [
            "",
            "# When this run started, for backends whose accounting does not tell: the",
            "# marker's modification time (a rerun's start replaces an earlier one's).",
            # "pid N", not a bare number: only the local agent's marker names a process
            # group (the once-guard's), which its tools may signal.
            '{ printf \'pid %s\\n\' "$$" >|"$__jf_edir/started$__jf_tag"; } 2>/dev/null || :',
        ]
    stdout_word = _stream_word(spec, "stdout")
    stderr_word = _stream_word(spec, "stderr")
    out += ["", "# Append both streams to the job's output files."]
    if spec.workdir and any(p and not p.startswith("/") for p in (spec.stdout, spec.stderr)):
        out.append(
            "# Relative paths are relative to the workdir, written out as the cd comes later."
        )
    out += [
        # "command": a failed redirection of the special built-in exec would
        # end a POSIX shell (dash) on the spot, before the exit code is written.
        f"if ! command exec >>{stdout_word} 2>>{stderr_word}; then",
        "    printf '%s\\n' \"jobfleet: cannot open the job's output files\" >&2",
        "    __jf_record 1",
        "    exit 1",
        "fi",
    ]
    out += requirement_lines(requires)
    env_lines = _env_lines(spec)
    if env_lines:
        out += ["", *env_lines]
    if spec.workdir:
        # "./" keeps cd from searching CDPATH and from reading "-" as $OLDPWD.
        target = spec.workdir if spec.workdir.startswith("/") else "./" + spec.workdir
        out += [
            "",
            f"if ! cd -- {shlex.quote(target)}; then",
            "    printf 'jobfleet: cannot change to the working directory %s\\n' "
            f"{shlex.quote(spec.workdir)} >&2",
            "    __jf_record 1",
            "    exit 1",
            "fi",
        ]
    out += setup_lines(spec.environment)
    out += dialect.before_command(spec)
    if dialect.forward_signals:
        out += _forwarding_lines(_command_line(spec, dialect))
    else:
        out += [
            "",
            "# This script outlives signals meant for the command (a scheduler's SIGTERM,",
            "# a --signal for a graceful stop), so that it records how the command ended.",
            "# Trapped, not ignored: the command gets each signal with its default action.",
            "trap : HUP INT QUIT TERM USR1 USR2",
            "# Not exec'd: the script needs the command's exit status. Tested (||), so that",
            "# a set -e from the set-up cannot end the script before it records it.",
            "__jf_rc=0",
            f"{_command_line(spec, dialect)} || __jf_rc=$?",
        ]
    out.append('__jf_record "$__jf_rc"')
    out += teardown_lines(spec.environment)
    if dialect.reserved_exits:
        codes = "|".join(str(c) for c in dialect.reserved_exits)
        out += [
            "# These statuses mean something else to the scheduler; the exit-code",
            "# file above holds the command's own.",
            f'case "$__jf_rc" in {codes}) exit 1 ;; esac',
        ]
    out += [
        'exit "$__jf_rc"',
    ]
    return "\n".join(out) + "\n"
