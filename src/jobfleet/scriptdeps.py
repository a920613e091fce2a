"""The dependencies a job script checks itself: those its scheduler only waits for.

A backend whose scheduler cannot tell after-ok from after-any (Grid Engine's
``-hold_jid``, HTCondor's held submission) waits for the predecessor to end, and the
job script then reads the predecessor's exit-code files: a dependency that can never
be met writes ``never[.<index>]`` with the reason and exits
:data:`EXIT_DEPENDENCY_NEVER_MET`, running nothing.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass

from jobfleet.spec import DepKind

__all__ = ["EXIT_DEPENDENCY_NEVER_MET", "Requirement", "requirement_lines"]

#: Exit status of the script when a dependency turned out never to be met
#: (it then wrote ``never[.<index>]`` with the reason, and ran nothing).
EXIT_DEPENDENCY_NEVER_MET = 196


@dataclass(frozen=True, slots=True)
class Requirement:
    """A dependency the scheduler only waits for, checked by the job script.

    Attributes:
        kind: what is required of the predecessor.
        job_id: the predecessor's jobfleet id (for the message).
        exit_files: the exit-code files of every element of the predecessor.
    """

    kind: DepKind
    job_id: str
    exit_files: tuple[str, ...]


def requirement_lines(requires: Sequence[Requirement]) -> list[str]:
    checks = [r for r in requires if r.kind is not DepKind.AFTER_ANY]
    if not checks:
        return []
    out = [
        "",
        "# The scheduler starts this job once its predecessors ended, whatever their",
        "# outcome (Grid Engine's -hold_jid): what it requires of them is checked here.",
        "# 0: every exit-code file says 0; 1: one does not; 2: one is not there (yet).",
        "__jf_all_zero() {",
        '    for __jf_f in "$@"; do',
        "        __jf_v=",
        '        { read -r __jf_v <"$__jf_f"; } 2>/dev/null',
        '        [ -n "$__jf_v" ] || return 2',
        '        [ "$__jf_v" = 0 ] || return 1',
        "    done",
        "}",
        "# A shared file system may show a file late: wait a while for missing ones",
        "# (JOBFLEET_DEPENDENCY_WAIT seconds) before taking them as never written.",
        "__jf_check() {",
        '    __jf_left="${JOBFLEET_DEPENDENCY_WAIT:-30}"',
        "    while :; do",
        '        __jf_all_zero "$@"',
        "        __jf_s=$?",
        '        [ "$__jf_s" -ne 2 ] && return "$__jf_s"',
        '        [ "$__jf_left" -gt 0 ] || return 1',
        '        for __jf_f in "$@"; do ls "${__jf_f%/*}" >/dev/null 2>&1; done',
        "        sleep 1",
        "        __jf_left=$((__jf_left - 1))",
        "    done",
        "}",
        "__jf_never() {",
        '    printf \'%s\\n\' "$1" >"$__jf_edir/never$__jf_tag"',
        """    printf 'jobfleet: %s; the command was not run\\n' "$1" >&2""",
        f"    exit {EXIT_DEPENDENCY_NEVER_MET}",
        "}",
    ]
    for req in checks:
        files = " ".join(shlex.quote(f) for f in req.exit_files)
        why = shlex.quote(f"{req.kind.value} dependency on job {req.job_id} can never be met")
        test = "||" if req.kind is DepKind.AFTER_OK else "&&"
        out.append(f"__jf_check {files} {test} __jf_never {why}")
    return out
