"""Torque's command output, read by pure functions: ``qstat -x -t`` (XML) here, the
``qstat -f`` text form and the record-to-poll step from :mod:`jobfleet.backends.pbs.parse`
(the same form).

Torque's XML is not always XML (docs/torque-notes.md, 2): values are written as they
are, but for ``<`` turned into the byte 0x0E, so an ``&`` in a job's environment breaks
the document. :func:`read_xml` mends what it can; what it cannot is an
:class:`UnreadableXml` and the text form is read instead.
"""

from __future__ import annotations

import logging
import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping

from jobfleet.backends.command import Element
from jobfleet.backends.pbs.outcome import (
    held_reason,
    memory_over,
    memory_reason,
    signalled,
    walltime_reached,
)
from jobfleet.backends.pbs.parse import Record, parse_seconds
from jobfleet.states import JobState, walltime_exceeded

__all__ = [
    "NOT_BY_WHOM",
    "STATE_MAP",
    "UnreadableXml",
    "epoch_text",
    "map_exit",
    "map_record",
    "read_xml",
]

log = logging.getLogger(__name__)

# Torque's job_state letters (qstat(1), src/include/pbs_job.h); None: completed, and
# exit_status tells how.
STATE_MAP: dict[str, JobState | None] = {
    "Q": JobState.PENDING,  # queued
    "H": JobState.PENDING,  # held (user, operator, system, or a dependency)
    "W": JobState.PENDING,  # waiting for its start time
    "T": JobState.PENDING,  # being moved
    "R": JobState.RUNNING,
    "E": JobState.RUNNING,  # exiting after having run
    "S": JobState.RUNNING,  # suspended
    "C": None,  # completed (kept keep_completed seconds)
}
_WAITING = {
    "W": "waiting for its execution time (qsub -a)",
    "T": "in transit to another queue or server",
    "E": "exiting",
    "S": "suspended",
}

#: Torque's negative exit codes (src/include/pbs_job.h JOB_EXEC_*), as read from a
#: completed record (C), the only one map_exit sees: the RETRY codes ask for a retry,
#: and a job retried is queued again, so a C record with one of them failed. Memory
#: and walltime (-10, -11) are told apart below.
_CODES: dict[int, tuple[JobState, str]] = {
    -1: (JobState.FAILED, "Torque could not start the job (JOB_EXEC_FAIL1)"),
    -2: (JobState.FAILED, "Torque could not start the job (JOB_EXEC_FAIL2)"),
    -3: (JobState.FAILED, "Torque could not start the job; no retry followed (JOB_EXEC_RETRY)"),
    -4: (JobState.FAILED, "aborted on MOM initialisation (JOB_EXEC_INITABT)"),
    -8: (JobState.FAILED, "the job's shell could not be started (JOB_EXEC_CMDFAIL)"),
    -9: (JobState.FAILED, "the output files could not be opened (JOB_EXEC_STDOUTFAIL)"),
    -12: (JobState.FAILED, "CPU time limit exceeded (JOB_EXEC_OVERLIMIT_CPUT)"),
    -13: (JobState.FAILED, "the job's cgroups could not be made (JOB_EXEC_RETRY_CGROUP)"),
    -14: (JobState.FAILED, "the prologue failed; no retry followed (JOB_EXEC_RETRY_PROLOGUE)"),
}
_OVERLIMIT_MEM = -10  # JOB_EXEC_OVERLIMIT_MEM; Torque 2.5's JOB_EXEC_OVERLIMIT, any limit
_OVERLIMIT_WT = -11
#: The comment of a job aborted because its dependency can never be met
#: (msg_registerdel, src/lib/Liblog/pbs_messages.c).
_DEPENDENCY = re.compile(r"Job deleted as result of dependency on job (\S+)")
#: Torque records nothing on a job that says it was deleted, nor by whom (req_delete.c:
#: only the server log and the accounting record say).
NOT_BY_WHOM = "cancelled (Torque does not record by whom)"
#: The top shell's statuses a qdel of a running job leaves when the shell itself was
#: ended: SIGTERM (271), or the SIGKILL kill_delay later (265).
_SHELL_KILLED = {271: 143, 265: 137}
#: jobfleet's script outlives qdel's SIGTERM and exits 143 with its command: what a
#: command killed by anyone's SIGTERM gives too. Read as a cancel, as Grid Engine's
#: qdel-or-SIGKILL is, saying so (a command rarely exits 143 by itself).
_COMMAND_TERM = (
    "cancelled (qdel, or a SIGTERM to the job's command; Torque does not record by whom: "
    "the server's exit_code_canceled_job tells, torque.exit_code_canceled_job)"
)
#: What no XML may hold: the control bytes other than tab and newlines.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
_BARE_AMP = re.compile(r"&(?!(?:amp|lt|gt|quot|apos|#\d+|#x[0-9a-fA-F]+);)")


class UnreadableXml(ValueError):
    """``qstat -x`` printed XML that cannot be read, even mended."""


def read_xml(text: str) -> list[Record]:
    """The jobs of ``qstat -x`` (one document, or one per job-id operand one after the
    other), resources flattened to ``name.resource``.

    Raises:
        UnreadableXml: not XML even after mending (``&`` escaped, ``<``'s stand-in and
            other control bytes replaced).
    """
    records: list[Record] = []
    for part in text.split("<?xml")[1:] if "<?xml" in text else [text]:
        body = part.split("?>", 1)[-1].strip()
        if not body:
            continue
        mended = _CONTROL.sub(_control, _BARE_AMP.sub("&amp;", body))
        try:
            root = ET.fromstring(mended)  # noqa: S314 - our own scheduler's output, no DTD
        except ET.ParseError as exc:
            raise UnreadableXml(f"qstat -x printed unreadable XML: {exc}") from None
        for job in root.iter("Job"):
            attrs: dict[str, str] = {}
            for child in job:
                if len(child):
                    for inner in child:
                        attrs[f"{child.tag}.{inner.tag}"] = inner.text or ""
                else:
                    attrs[child.tag] = child.text or ""
            job_id = attrs.pop("Job_Id", "")
            if job_id:
                records.append((job_id, attrs))
    return records


def _control(match: re.Match[str]) -> str:
    # 0x0E is Torque's stand-in for '<' (MXMLSetVal); the others mean nothing here.
    return "&lt;" if match[0] == "\x0e" else " "


def epoch_text(text: str) -> float | None:
    """Unix time from the XML's times (seconds); None if absent or unreadable."""
    text = text.strip()
    return float(text) if text.isdigit() else None


def map_exit(
    status: int | None, attrs: Mapping[str, str], canceled_code: int = 0
) -> tuple[JobState, int | None, str | None]:
    """The outcome of a completed Torque job from its ``exit_status``.

    Torque keeps the status of the job's top shell (req_jobobit.c). Its MOM ends a job
    over a limit it checks with its own code (-11 walltime, -10 vmem/pvmem; mom_mach.c
    mom_over_limit). A job ended any other way reads as the signal that ended it: qdel,
    and a scheduler (Moab, Maui) enforcing the walltime by deleting the job, a MOM's
    job-wide ``mem`` limit on several nodes (mom_main.c job_over_limit), all send
    SIGTERM, then SIGKILL ``kill_delay`` later: 271 or 265 when the shell was ended,
    143 when jobfleet's script outlived the SIGTERM. These are told apart by the job's
    own numbers: walltime used up, memory at its limit; else 271/265 are cancelled
    (Torque does not record who deleted a job), and so is 143 (qdel, or anybody's
    SIGTERM to the command: the same to Torque, as to Grid Engine a qdel and a SIGKILL).
    A server with ``exit_code_canceled_job`` (``canceled_code``, 0: unset) gives every
    deleted job that status. The server also sets 271 on a job it aborts because its
    dependency can never be met (job_func.c; its comment says so): that job never ran.
    """
    never = _DEPENDENCY.search(attrs.get("comment", ""))
    if never is not None:
        return (
            JobState.CANCELLED,
            None,
            f"cancelled: a dependency can never be met (job {never[1]})",
        )
    if status is None:
        return (
            JobState.CANCELLED,
            None,
            f"{NOT_BY_WHOM} before it started, or aborted by the server",
        )
    if canceled_code and status == canceled_code:
        return JobState.CANCELLED, None, f"{NOT_BY_WHOM}: exit_code_canceled_job {status}"
    killed = signalled(status)
    limit = walltime_reached(attrs)
    if killed is not None or status == _OVERLIMIT_MEM:
        # Torque 2.5 had one code, -10 (JOB_EXEC_OVERLIMIT), for every limit: a job that
        # ran to its walltime was killed for that, not for its memory.
        if limit is not None:
            return JobState.TIMEOUT, killed, walltime_exceeded(limit)
        kind = memory_over(attrs, strictly=False)
        if kind is not None:
            return JobState.OUT_OF_MEMORY, killed, memory_reason(attrs, kind)
    if status in _SHELL_KILLED:
        return JobState.CANCELLED, _SHELL_KILLED[status], NOT_BY_WHOM
    if status >= 256:
        return JobState.FAILED, killed, f"killed by signal {status - 256}"
    if status == 143:
        return JobState.CANCELLED, status, _COMMAND_TERM
    if status >= 0:
        return (JobState.COMPLETED if status == 0 else JobState.FAILED), status, None
    if status == _OVERLIMIT_WT:
        wall = parse_seconds(attrs.get("Resource_List.walltime", ""))
        return JobState.TIMEOUT, None, walltime_exceeded(wall)
    if status == _OVERLIMIT_MEM:
        return JobState.OUT_OF_MEMORY, None, memory_reason(attrs, None, "JOB_EXEC_OVERLIMIT_MEM")
    known = _CODES.get(status)
    if known is None:
        return JobState.FAILED, None, f"Torque could not run the job (exit_status {status})"
    return known[0], None, known[1]


def map_record(attrs: Mapping[str, str], canceled_code: int = 0) -> Element:
    """jobfleet's element for one Torque record (job or array element); ``canceled_code``:
    the server's ``exit_code_canceled_job`` (``torque.exit_code_canceled_job``)."""
    letter = attrs.get("job_state", "")
    if letter not in STATE_MAP:
        log.warning("unknown Torque job state %r; reporting it as unknown", letter)
        return JobState.UNKNOWN, None, f"Torque state {letter!r}"
    state = STATE_MAP[letter]
    if state is not None:
        return state, None, held_reason(attrs) if letter == "H" else _WAITING.get(letter)
    text = attrs.get("exit_status")
    status = int(text) if text is not None and re.fullmatch(r"-?\d+", text) else None
    return map_exit(status, attrs, canceled_code)
