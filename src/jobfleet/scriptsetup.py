"""The job script's environment set-up and tear-down around the command (the
:class:`~jobfleet.environment.Environment` of a job): env files, modules, scratch
and prologue before it; the epilogue and the scratch directory's removal after.
Pure: lines of shell, every value quoted but the prologue and epilogue lines,
which are shell the user wrote on purpose (see docs/environment.md)."""

from __future__ import annotations

import shlex

from jobfleet.environment import Environment, path_parts

__all__ = ["EXIT_SETUP_FAILED", "path_word", "setup_lines", "teardown_lines"]

#: Exit status of the script when its environment set-up failed (a module that
#: cannot be loaded, an env file that cannot be read, a prologue line that
#: failed, no scratch directory); it then wrote ``setup_failed[.<index>]`` with
#: the reason, and ran neither the command nor the epilogue.
EXIT_SETUP_FAILED = 195

#: The signals the script outlives (see script.py) and their Linux numbers: schedulers
#: run on Linux, and POSIX fixes only HUP, INT, QUIT and TERM.
_SIGNALS = (("HUP", 1), ("INT", 2), ("QUIT", 3), ("TERM", 15), ("USR1", 10), ("USR2", 12))


# Where a non-interactive shell finds `module`: login shells define it from these
# (Environment Modules' and Lmod's init scripts); the first readable one is sourced.
_MODULE_INITS = (
    '${MODULESHOME:+"$MODULESHOME/init/sh"}',
    "/etc/profile.d/modules.sh",
    "/etc/profile.d/lmod.sh",
    "/usr/share/lmod/lmod/init/sh",
)


def setup_lines(env: Environment) -> list[str]:
    """Env files, modules, scratch and prologue: before the command, in this order."""
    if not (env.env_files or env.modules or env.prologue or env.scratch):
        return []
    out = [
        "",
        "# The job's environment set-up. A step that fails ends the job here: the",
        "# reason in setup_failed, exit status 195, neither command nor epilogue run.",
        "__jf_scratch=",
        "__jf_setup_failed() {",
        "    trap - EXIT",
        """    printf '%s\\n' "$1" >|"$__jf_edir/setup_failed$__jf_tag\"""",
        """    printf 'jobfleet: %s; the command was not run\\n' "$1" >&2""",
        f"    __jf_record {EXIT_SETUP_FAILED}",
        *_scratch_removal(env, indent="    "),
        f"    exit {EXIT_SETUP_FAILED}",
        "}",
        "# A signal during the set-up (a cancel's or a time limit's SIGTERM, a warning",
        "# signal) ends the job here, recorded as a command it ended would be: 128+N",
        "# (Linux numbers). No setup_failed: the set-up did nothing wrong.",
        "__jf_interrupted() {",
        "    trap - EXIT",
        "    printf 'jobfleet: the set-up was interrupted by SIG%s (a cancel or a time limit?);"
        ' the command was not run\\n\' "$2" >&2',
        '    __jf_record "$1"',
        *_scratch_removal(env, indent="    "),
        '    exit "$1"',
        "}",
        *(f"trap '__jf_interrupted {128 + n} {name}' {name}" for name, n in _SIGNALS),
        "# Whatever else ends the script during the set-up (an exit, or set -e and a",
        "# failing command, in an env file or a prologue line) fails it the same way.",
        "__jf_step='the set-up'",
        """trap '__jf_setup_failed "$__jf_step ended the job script (exit status $?)"' EXIT""",
    ]
    for path in env.env_files:
        out += [_step(f"env file {path}"), *_source(path)]
    if env.modules:
        inits = " ".join(_MODULE_INITS)
        out += [
            _step("loading modules"),
            "if ! command -v module >/dev/null 2>&1; then",
            f"    for __jf_f in {inits}; do",
            '        if [ -r "$__jf_f" ]; then . "$__jf_f"; break; fi',
            "    done",
            "fi",
        ]
        for module in env.modules:
            why = shlex.quote(f"module {module} could not be loaded")
            out.append(f"module load {shlex.quote(module)} || __jf_setup_failed {why}")
    if env.scratch:
        given = "$TMPDIR" if env.scratch is True else str(env.scratch)
        base = '"${TMPDIR:-/tmp}"' if env.scratch is True else path_word(given)
        why = shlex.quote("cannot create a scratch directory under ")
        relative = shlex.quote(f"scratch base {given} is not an absolute path here: ")
        out += [
            _step("making the scratch directory"),
            f"__jf_base={base}",
            f'case "$__jf_base" in /*) ;; *) __jf_setup_failed {relative}"\'$__jf_base\'" ;; esac',
            '__jf_scratch=$(mktemp -d "$__jf_base/jobfleet-$JOBFLEET_JOB_ID$__jf_tag.XXXXXX")'
            f' || __jf_setup_failed {why}"$__jf_base"',
            'export TMPDIR="$__jf_scratch" JOBFLEET_SCRATCH="$__jf_scratch"',
        ]
    for i, line in enumerate(env.prologue, 1):
        why = shlex.quote(f"prologue line {i} failed: {line}")
        out += [
            _step(f"prologue line {i}"),
            f'{_contained(line)} || __jf_setup_failed {why}" (exit status $?)"',
        ]
    return [*out, "__jf_step=", "trap - EXIT"]


def path_word(path: str) -> str:
    """``path`` as one shell word: its ``$NAME``, ``${NAME}`` and leading ``~`` expanded
    when the job runs (double-quoted references: no splitting, no globbing), the rest
    quoted (see :func:`jobfleet.environment.path_parts`)."""
    return "".join(
        f'"${{{text}}}"' if kind == "var" else shlex.quote(text) for kind, text in path_parts(path)
    )


def _source(path: str) -> list[str]:
    """Source an env file; one that cannot be read fails the set-up. A relative path is
    taken in the workdir: "./" keeps `.` from searching PATH. A missing file would end a
    POSIX shell (dash) on the spot, so readability is checked first."""
    why = shlex.quote(f"env file {path} cannot be read")
    if all(kind == "text" for kind, _ in path_parts(path)):
        word = shlex.quote(path if path.startswith("/") else "./" + path)
        return [f"if [ -r {word} ]; then . {word}; else __jf_setup_failed {why}; fi"]
    return [  # known when the job runs only
        f"__jf_f={path_word(path)}",
        'case "$__jf_f" in /*) ;; *) __jf_f="./$__jf_f" ;; esac',
        f'if [ -r "$__jf_f" ]; then . "$__jf_f"; else __jf_setup_failed {why}": $__jf_f"; fi',
    ]


def _contained(line: str) -> str:
    """A prologue or epilogue line, run in the script's own shell but parsed on its own:
    its syntax error, comment, trailing ``&`` or unended here-document stays inside it.
    ``command``: a syntax error in a special built-in's eval would end dash itself."""
    return f"command eval {shlex.quote(line)}"


def _step(what: str) -> str:
    """Names the set-up step now running, for the reason of an unexpected end."""
    return f"__jf_step={shlex.quote(what)}"


def _scratch_removal(env: Environment, indent: str = "") -> list[str]:
    if not env.scratch or env.keep_scratch:
        return []
    return [f'{indent}[ -z "${{__jf_scratch-}}" ] || rm -rf -- "$__jf_scratch"']


def teardown_lines(env: Environment) -> list[str]:
    """The epilogue and the scratch directory's removal, after the exit code is recorded."""
    out = []
    if env.epilogue:
        out += [
            "# The epilogue runs whatever the command's status, in a subshell: it cannot",
            "# change the status recorded above, nor the script's; failures only say so.",
            "(",
        ]
        for i, line in enumerate(env.epilogue, 1):
            out.append(
                f"{_contained(line)} || "
                f"printf 'jobfleet: epilogue line {i} failed (exit status %s)\\n' \"$?\" >&2"
            )
        # An `exit` in a line ends the epilogue (the subshell) there.
        out.append(") || printf 'jobfleet: the epilogue exited %s\\n' \"$?\" >&2")
    if env.scratch and env.keep_scratch:
        out.append("""printf 'jobfleet: scratch directory kept: %s\\n' "$__jf_scratch" >&2""")
    return out + _scratch_removal(env)
