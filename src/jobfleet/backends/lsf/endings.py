"""How an LSF job ended, from its termination reason (``TERM_*``), exit code and what
else the poll's bjobs record or bhist/bacct record says (who killed it, its limits):
pure functions, the same words as every backend (docs/states.md).

Termination reasons: IBM Spectrum LSF 10.1, "Termination reasons displayed by bacct,
bhist, and bjobs" (and Platform LSF 7.3's Configuration Reference, with example bhist
lines); the limits' layout: openlava's lsbatch/cmd/cmd.prt.c (``prtLimit``); see
docs/lsf-notes.md.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from jobfleet.backends.command import Element
from jobfleet.states import MEMORY_EXCEEDED, JobState, cancelled_by, walltime_exceeded
from jobfleet.units import format_walltime

__all__ = [
    "CANCELS",
    "CPU_EXCEEDED",
    "TERM_MAP",
    "Known",
    "history_known",
    "map_exit",
    "parse_limit",
]

_C, _F, _P = JobState.CANCELLED, JobState.FAILED, JobState.PENDING

#: Every termination reason IBM lists (LSF 10.1), to jobfleet's state. A reason not
#: here (a newer one) is failed. TERM_UNKNOWN is logged as 0 and never displayed.
TERM_MAP: dict[str, JobState] = {
    "TERM_ADMIN": _C,  # killed by root or an LSF administrator (bkill)
    "TERM_BUCKET_KILL": _C,  # bkill -b
    "TERM_CHKPNT": _C,  # killed after checkpointing (bchkpnt -k)
    "TERM_CPULIMIT": _F,  # its CPU time limit (-c): not its run limit
    "TERM_CSM_ALLOC": _F,  # CSM allocation API error
    "TERM_CWD_NOTEXIST": _F,  # its working directory is not there on the host
    "TERM_DATA": _F,  # data staging failed
    "TERM_DEADLINE": JobState.TIMEOUT,  # its termination deadline (-t) passed
    "TERM_EXTERNAL_SIGNAL": _F,  # a signal from outside LSF
    "TERM_FORCE_ADMIN": _C,  # bkill -r by root or an administrator
    "TERM_FORCE_OWNER": _C,  # bkill -r by its owner
    "TERM_KUBE": _F,  # Kubernetes integration
    "TERM_LOAD": _F,  # the host's load passed a threshold
    "TERM_MC_RECALL": _F,  # multicluster recall
    "TERM_MEMLIMIT": JobState.OUT_OF_MEMORY,  # its memory limit (-M)
    "TERM_ORPHAN_SYSTEM": _C,  # a dependency never met (bsub -ti)
    "TERM_OTHER": _P,  # a chunk job's member requeued after a queue switch
    "TERM_OWNER": _C,  # bkill by its owner
    "TERM_PREEMPT": _F,  # killed after preemption
    "TERM_PRE_EXEC_FAIL": _F,  # pre-execution retry limit reached
    "TERM_PROCESSLIMIT": _F,  # its process limit
    "TERM_RC": _F,  # a resource connector host reclaimed by the cloud
    "TERM_REMOVE_HUNG_JOB": _F,  # removed from LSF as hung
    "TERM_REQUEUE_ADMIN": _P,  # killed and requeued: it runs again
    "TERM_REQUEUE_OWNER": _P,
    "TERM_REQUEUE_RC": _P,
    "TERM_RMS": _F,  # RMS system error
    "TERM_RUNLIMIT": JobState.TIMEOUT,  # its run limit (-W): the walltime jobfleet asks
    "TERM_SLURM": _F,  # ended abnormally in SLURM (LSF 7 on SLURM)
    "TERM_SWAP": JobState.OUT_OF_MEMORY,  # its swap limit (-v)
    "TERM_THREADLIMIT": _F,  # its thread limit
    "TERM_UNKNOWN": _F,  # LSF cannot tell (logged, never displayed)
    "TERM_WINDOW": _F,  # its queue's run window closed
    "TERM_ZOMBIE": _F,  # it exited while LSF was not available
}
#: Kills by a user: the owner's own (its name is the job's user), or anyone's.
CANCELS = {"TERM_OWNER", "TERM_FORCE_OWNER", "TERM_ADMIN", "TERM_FORCE_ADMIN"}
_OWNERS = {"TERM_OWNER", "TERM_FORCE_OWNER"}
_TERM_RE = re.compile(r"\b(TERM_[A-Z_]+)\b")
#: A job killed for its CPU time: failed, as on PBS and Torque (not a walltime).
CPU_EXCEEDED = "CPU time limit exceeded"


@dataclass(frozen=True, slots=True)
class Known:
    """What else the output says about a job that ended: its owner (bjobs ``USER``,
    bhist's ``User <...>``), who asked for the kill (bhist's ``Signal <KILL> requested
    by user or administrator <name>``), its run and CPU time limits in seconds, and
    its memory as LSF shows it (``MAX_MEM``, ``MEMLIMIT``)."""

    owner: str = ""
    killer: str = ""
    run_limit_s: float | None = None
    cpu_limit_s: float | None = None
    max_mem: str = ""
    mem_limit: str = ""


NOTHING = Known()


def parse_limit(text: str) -> float | None:
    """Seconds of a limit as bjobs ``-o runtimelimit`` prints it: minutes with one
    decimal (``1440.0``), with the normalising host after ABS_RUNLIMIT
    (``3.0/hostA``), or ``hh:mm:ss`` under ``-hms`` (``00:10:00``); and as bhist -l
    and bjobs -l print it (``240.0 min of mn61``, ``10085.0 min``). None: no limit.

    >>> parse_limit("1440.0"), parse_limit("00:10:00"), parse_limit("240.0 min of mn61")
    (86400.0, 600.0, 14400.0)
    >>> parse_limit("-"), parse_limit("")
    (None, None)
    """
    text = text.strip()
    clock = re.fullmatch(r"([0-9]+):([0-9]{2}):([0-9]{2})", text)
    if clock is not None:
        seconds = int(clock[1]) * 3600 + int(clock[2]) * 60 + int(clock[3])
        return float(seconds) or None
    minutes = re.fullmatch(r"([0-9]+(?:\.[0-9]+)?)(?:\s*min)?(?:\s*(?:/|of\s)\s*\S+)?", text)
    if minutes is None:
        return None
    return float(minutes[1]) * 60 or None


# -- bhist -l / bacct -l: the limits' block, the kill's requester ----------------------------

_LIMIT_NAMES = ("CPULIMIT", "RUNLIMIT", "PROCLIMIT")
_LIMIT_VALUE = re.compile(r"[0-9]+(?:\.[0-9]+)? min(?: of \S+)?")
_KILLER = re.compile(
    r"(?:Signal <KILL> requested|[Dd]elete requested) by user or administrator <([^>]+)>"
)
_OWNER = re.compile(r"(?:^|, )User <([^>]+)>")
_MAX_MEM = re.compile(r"MAX MEM: ([0-9.]+ *[KMGTP]?bytes)", re.I)


def _limits(lines: Sequence[str]) -> dict[str, float]:
    """The CPULIMIT and RUNLIMIT of a record: a line naming them (each in 25 columns),
    the next giving their values in the same order (``10.0 min of hostA``)."""
    found: dict[str, float] = {}
    for at, line in enumerate(lines[:-1]):
        names = line.split()
        if not names or any(n not in _LIMIT_NAMES for n in names):
            continue
        values = _LIMIT_VALUE.findall(lines[at + 1])
        for name, value in zip([n for n in names if n != "PROCLIMIT"], values, strict=False):
            seconds = parse_limit(value)
            if seconds is not None:
                found[name] = seconds
    return found


def _mem_limit(lines: Sequence[str]) -> str:
    """MEMLIMIT of a record's limits block (``CORELIMIT MEMLIMIT`` / ``0 M     3.9 G``)."""
    for at, line in enumerate(lines[:-1]):
        names = line.split()
        if "MEMLIMIT" in names and all(n.endswith("LIMIT") for n in names):
            values = re.findall(r"[0-9.]+ *[KMGTPE]?", lines[at + 1])
            if len(values) == len(names):
                return str(values[names.index("MEMLIMIT")]).strip()
    return ""


def history_known(lines: Sequence[str]) -> Known:
    """What a job's bhist -l or bacct -l record (logical lines) says besides its end."""
    owner = _OWNER.search(lines[0]) if lines else None
    killers = [m[1] for line in lines if (m := _KILLER.search(line)) is not None]
    limits = _limits(lines)
    mem = [m[1] for line in lines if (m := _MAX_MEM.search(line)) is not None]
    return Known(
        owner=owner[1] if owner else "",
        killer=killers[-1] if killers else "",
        run_limit_s=limits.get("RUNLIMIT"),
        cpu_limit_s=limits.get("CPULIMIT"),
        max_mem=mem[-1] if mem else "",
        mem_limit=_mem_limit(lines),
    )


# -- the end ---------------------------------------------------------------------------------


def _cancelled(term: str, lsf_says: str, known: Known) -> str:
    if term == "TERM_ORPHAN_SYSTEM":
        return f"cancelled: a dependency can never be met ({lsf_says})"
    if known.killer:
        return cancelled_by(known.killer)
    if term in _OWNERS and known.owner:
        return cancelled_by(known.owner)
    who = "root or an LSF administrator" if "ADMIN" in term else ""
    return f"cancelled ({lsf_says}; LSF did not say by whom{': ' + who if who else ''})"


def _memory(lsf_says: str, known: Known) -> str:
    measured = [
        f"{name} {value}"
        for name, value in (("MAX_MEM", known.max_mem), ("MEMLIMIT", known.mem_limit))
        if value
    ]
    return f"{MEMORY_EXCEEDED} ({'; '.join([*measured, lsf_says])})"


def map_exit(code_text: str, reason: str, known: Known = NOTHING) -> Element:
    """The outcome of an EXIT job from its exit code (``""`` or ``-``: not known) and
    its termination reason (``TERM_RUNLIMIT: job killed after ...``, or empty).

    A job that did not succeed never carries exit code 0 (LSF's EXIT_CODE is empty for
    0, which says nothing of a killed job): it has none then, unless its job script
    recorded the command's (the poll reads the exit-code file for these).
    """
    text = code_text.strip()
    code = int(text) if text.isdigit() else None
    found = _TERM_RE.search(reason)
    term = found[1] if found else ""
    state = TERM_MAP.get(term, _F) if term else _F
    lsf_says = reason.strip().rstrip(";.")
    why: str | None = lsf_says or None
    if state is _C:
        why = _cancelled(term, lsf_says, known)
    elif term == "TERM_RUNLIMIT":
        why = walltime_exceeded(known.run_limit_s)
    elif term == "TERM_DEADLINE":
        why = f"deadline reached ({lsf_says})"
    elif term == "TERM_CPULIMIT":
        limit = known.cpu_limit_s
        why = CPU_EXCEEDED + (f" ({format_walltime(int(limit))})" if limit else "")
    elif state is JobState.OUT_OF_MEMORY:
        why = _memory(lsf_says, known)
    if code == 0 and state is not JobState.COMPLETED:
        code = None
    return state, code, why
