"""How one PBS Pro / OpenPBS record reads: its state, exit code and reason, in the words
every backend uses (docs/states.md). Pure functions of a record's attributes; the limit
and hold helpers are shared with Torque (:mod:`jobfleet.backends.torque.parse`), whose
records carry the same ``resources_used``, ``Resource_List`` and ``Hold_Types``.

Where each fact comes from: docs/pbs-notes.md (OpenPBS v22.05.11 source).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping

from jobfleet.backends.command import Element
from jobfleet.backends.pbs.parse import NO_RECORD, REMOVED, parse_seconds, parse_size
from jobfleet.states import CANCELLED_BY, MEMORY_EXCEEDED, JobState, walltime_exceeded

__all__ = [
    "STATE_MAP",
    "held_reason",
    "map_exit",
    "map_record",
    "memory_over",
    "memory_reason",
    "signalled",
    "walltime_reached",
]

log = logging.getLogger(__name__)

# PBS's job_state letters (qstat(1B), src/include/job.h JOB_STATE_LTR_*); None: the
# job has ended and Exit_status tells how.
STATE_MAP: dict[str, JobState | None] = {
    "Q": JobState.PENDING,  # queued
    "H": JobState.PENDING,  # held (user, operator, system, or by a dependency)
    "W": JobState.PENDING,  # waiting for its start time (-a), or for file staging
    "T": JobState.PENDING,  # in transit to its queue
    "R": JobState.RUNNING,
    "E": JobState.RUNNING,  # exiting after having run: its outcome is not final yet
    "B": JobState.RUNNING,  # an array with at least one element begun
    "S": JobState.RUNNING,  # suspended; it keeps its resources
    "U": JobState.RUNNING,  # suspended because the workstation is busy
    # Moved to another server (svr_setjob_histinfo T_MOV_JOB: peer scheduling, qmove to
    # a remote queue): this server's history says no more, ever; jobfleet does not
    # follow it there. Lost, not unknown: unknown would never end.
    "M": JobState.LOST,
    "X": None,  # an array element that finished (expired)
    "F": None,  # finished (history, qstat -x)
}
_WAITING = {
    "W": "waiting for its execution time (qsub -a), or for its files to be staged in",
    "T": "in transit to its queue",
    "E": "exiting",
    "S": "suspended",
    "U": "suspended while its workstation is busy",
}

#: PBS's own negative Exit_status codes (src/include/job.h JOB_EXEC_*), as read from a
#: finished record (F, X). Memory and walltime (-26, -27, -29) are told apart below.
_PBS_CODES: dict[int, tuple[JobState, str]] = {
    -1: (JobState.FAILED, "PBS could not start the job (JOB_EXEC_FAIL1)"),
    -2: (JobState.FAILED, "PBS could not start the job (JOB_EXEC_FAIL2)"),
    # -3 and -11 ask for a retry or a rerun: a job that did it is queued again (Q), so a
    # finished record (F, X) with one of them ran no more: it failed.
    -3: (JobState.FAILED, "PBS could not start the job; no retry followed (JOB_EXEC_RETRY)"),
    -4: (JobState.FAILED, "aborted on MOM initialisation (JOB_EXEC_INITABT)"),
    -10: (JobState.FAILED, "invalid user or group on the execution host (JOB_EXEC_FAILUID)"),
    -11: (JobState.FAILED, "ended for a rerun that did not follow (JOB_EXEC_RERUN)"),
    -17: (JobState.FAILED, "a hook refused the job (JOB_EXEC_FAILHOOK_DELETE)"),
    -19: (JobState.CANCELLED, "cancelled: a hook deleted the job (JOB_EXEC_HOOK_DELETE)"),
    -24: (JobState.FAILED, "ncpus limit exceeded (JOB_EXEC_KILL_NCPUS_BURST)"),
    -25: (JobState.FAILED, "ncpus limit exceeded (JOB_EXEC_KILL_NCPUS_SUM)"),
    -28: (JobState.FAILED, "CPU time limit exceeded (cput)"),
}
#: JOB_EXEC_KILL_VMEM and JOB_EXEC_KILL_MEM: the resource the MOM compared.
_MEMORY_CODES = {-26: "vmem", -27: "mem"}
_KILL_WALLTIME = -29
#: substate of a job that qdel ended (src/include/job.h JOB_SUBSTATE_TERMINATED).
_TERMINATED = "91"
#: substate of a job that failed: with an Exit_status, one not 0; without any, one PBS
#: ended because its execution host went down (node_manager.c: T_MOM_DOWN history).
_FAILED = "93"
#: substate of a job held by a dependency (JOB_SUBSTATE_DEPNHOLD).
_DEPENDENCY_HOLD = "22"
#: The comment of a running job qdel ended: "Job run at ... on (...) and terminated by
#: alice@login1" (update_job_finish_comment, src/server/svr_jobfunc.c).
_TERMINATED_BY = re.compile(r"\bterminated by ([^@\s]+)@")
#: The comment of a moved job: 'Job has been moved to "workq@peer"' (svr_jobfunc.c).
_MOVED_TO = re.compile(r'moved to "([^"]+)"')
#: A job qdel ended before it started: its comment names nobody (req_delete.c sets
#: "terminated by" on running jobs only).
_QUEUED_DELETED = "cancelled before it started (PBS records by whom only for a running job)"
#: Hold_Types letters (qhold(1B); Torque's are the same but for p).
_HOLDS = {"u": "its owner", "o": "an operator", "s": "the system", "p": "a bad password"}


def map_record(attrs: Mapping[str, str]) -> Element:
    """jobfleet's element for one PBS record (job or array element)."""
    letter = attrs.get("job_state", "")
    if NO_RECORD in attrs:
        return JobState.CANCELLED, None, REMOVED
    if letter not in STATE_MAP:
        log.warning("unknown PBS job state %r; reporting it as unknown", letter)
        return JobState.UNKNOWN, None, f"PBS state {letter!r}"
    state = STATE_MAP[letter]
    if state is JobState.LOST:
        moved = _MOVED_TO.search(attrs.get("comment", ""))
        where = f" ({moved[1]})" if moved else ""
        return state, None, f"moved to another PBS server{where}; jobfleet does not follow it"
    if state is not None:
        reason = held_reason(attrs) if letter == "H" else _WAITING.get(letter)
        return state, None, reason
    return map_exit(_int(attrs.get("Exit_status")), attrs)


def map_exit(status: int | None, attrs: Mapping[str, str]) -> Element:
    """The outcome of a finished PBS record (F, X) with this ``Exit_status``.

    >= 0 and < 256: the job script's own; 256 + N: its top shell was killed by signal
    N (reported as 128 + N, the way a shell shows it); negative: PBS's own codes. A
    job that qdel ended (substate 91) is cancelled, whatever its status says; the
    comment names who for a running one. One without any status never ran: deleted,
    or aborted by the server because its dependency can never be met (job_abt,
    src/server/req_register.c), unless it started or its host went down (failed).
    """
    substate = attrs.get("substate")
    limit = parse_seconds(attrs.get("Resource_List.walltime", ""))
    if substate == _TERMINATED:
        return _deleted(status, attrs)
    if status is None:
        if substate == _FAILED:
            return JobState.FAILED, None, "its execution host went down (PBS ended the job)"
        if attrs.get("stime"):
            return JobState.FAILED, None, "ended by PBS after it started, with no exit status"
        if attrs.get("depend"):
            why = f"cancelled: a dependency can never be met ({attrs['depend']})"
            return JobState.CANCELLED, None, why
        return JobState.CANCELLED, None, "cancelled before it started (deleted or aborted by PBS)"
    killed = signalled(status)
    if killed is not None:
        # PBS before OpenPBS 22.05 (no JOB_EXEC_KILL_* codes) reports a job its MOM
        # killed at a limit as killed by a signal: its own numbers say which limit.
        # The top shell's 256 + N, or jobfleet's script's 128 + N: the script outlives
        # the MOM's SIGTERM and exits with its command's 143.
        if walltime_reached(attrs):
            return JobState.TIMEOUT, killed, walltime_exceeded(limit)
        kind = memory_over(attrs, strictly=True)
        if kind is not None:
            return JobState.OUT_OF_MEMORY, killed, memory_reason(attrs, kind)
        if status >= 256:
            return JobState.FAILED, killed, f"killed by signal {status - 256}"
    if status >= 0:
        return (JobState.COMPLETED if status == 0 else JobState.FAILED), status, None
    if status == _KILL_WALLTIME:
        return JobState.TIMEOUT, None, walltime_exceeded(limit)
    if status in _MEMORY_CODES:
        return JobState.OUT_OF_MEMORY, None, memory_reason(attrs, _MEMORY_CODES[status])
    state, why = _PBS_CODES.get(
        status, (JobState.FAILED, f"PBS could not run the job (Exit_status {status})")
    )
    return state, None, why


def _deleted(status: int | None, attrs: Mapping[str, str]) -> Element:
    """A job qdel ended. Its code: the signal's (256 + N from a killed shell, 128 + N
    from jobfleet's script), or what its command exited with; never 0, which is only
    the bookkeeping of a job that ran no command to its end (docs/states.md)."""
    by = _TERMINATED_BY.search(attrs.get("comment", ""))
    who = f"{CANCELLED_BY}{by[1]}" if by else "cancelled (PBS did not record by whom)"
    if status is None and not attrs.get("stime"):
        if by:
            return JobState.CANCELLED, None, f"{who} before it started"
        return JobState.CANCELLED, None, _QUEUED_DELETED
    code = signalled(status)
    if code is None and status is not None and 0 < status < 256:
        code = status
    return JobState.CANCELLED, code, who


# -- shared with Torque ------------------------------------------------------------------


def signalled(status: int | None) -> int | None:
    """128 + N for a status that says signal N ended the job (256 + N from the MOM, or
    128 + N from a shell that outlived it); None for any other.

    >>> signalled(271), signalled(143), signalled(1), signalled(None)
    (143, 143, None, None)
    """
    if status is None:
        return None
    if status >= 256:
        return 128 + status - 256
    return status if 128 < status <= 128 + 64 else None


def walltime_reached(attrs: Mapping[str, str]) -> float | None:
    """The walltime limit (s) when the job used it up (``resources_used.walltime`` at or
    past ``Resource_List.walltime``, within the second qstat rounds to); else None.

    >>> walltime_reached({"Resource_List.walltime": "00:10:00",
    ...                   "resources_used.walltime": "00:09:59"})
    600.0
    """
    limit = parse_seconds(attrs.get("Resource_List.walltime", ""))
    used = parse_seconds(attrs.get("resources_used.walltime", ""))
    if limit is None or used is None or used + 1 < limit:
        return None
    return limit


def memory_over(attrs: Mapping[str, str], strictly: bool) -> str | None:
    """The memory resource (``mem``, ``vmem``) the job used more of than it asked for
    (``strictly``: more; else at least as much, as Torque's MOM compares); None if none."""
    for kind in ("mem", "vmem"):
        used = parse_size(attrs.get(f"resources_used.{kind}", ""))
        asked = parse_size(attrs.get(f"Resource_List.{kind}", ""))
        if used is not None and asked and (used > asked or (not strictly and used >= asked)):
            return kind
    return None


def memory_reason(attrs: Mapping[str, str], kind: str | None, code: str = "") -> str:
    """``memory limit exceeded (mem): used 4100.1 MiB > 4096 MiB``: what the scheduler
    measured against what the job asked for; ``kind`` None when the scheduler did not
    say which resource (then every use it recorded); ``code`` names its exit code.

    >>> memory_reason({"resources_used.mem": "4198400kb", "Resource_List.mem": "4gb"}, "mem")
    'memory limit exceeded (mem): used 4100 MiB > 4096 MiB'
    """
    label = ", ".join(filter(None, (kind, code)))
    head = f"{MEMORY_EXCEEDED} ({label})" if label else MEMORY_EXCEEDED
    parts = []
    for name in (kind,) if kind else ("mem", "vmem"):
        used = parse_size(attrs.get(f"resources_used.{name}", ""))
        asked = parse_size(attrs.get(f"Resource_List.{name}", ""))
        if used is None:
            continue
        part = f"used {_mib(used)}" if kind else f"used {name} {_mib(used)}"
        if asked:
            part += f" {'>' if used > asked else '>=' if used == asked else 'of'} {_mib(asked)}"
        parts.append(part)
    return f"{head}: {', '.join(parts)}" if parts else head


def _mib(size: int) -> str:
    mib = size / 2**20
    return f"{mib:.0f} MiB" if mib == int(mib) else f"{mib:.1f} MiB"


def held_reason(attrs: Mapping[str, str]) -> str:
    """``held: ...``: by a dependency (PBS's substate 22; Torque's system hold on a job
    with dependencies, req_register.c), else by whom ``Hold_Types`` names."""
    holds = attrs.get("Hold_Types", "").strip()
    if attrs.get("substate") == _DEPENDENCY_HOLD or (
        "substate" not in attrs and "s" in holds and attrs.get("depend")
    ):
        return "held: waiting for a dependency"
    who = [_HOLDS[h] for h in holds if h in _HOLDS]
    if not who:
        return "held: Hold_Types not shown"
    return f"held: by {' and '.join(who)} (Hold_Types {holds}; qrls releases it)"


def _int(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None
