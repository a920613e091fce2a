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
from jobfleet.backends.pbs.parse import Record, parse_seconds
from jobfleet.states import MEMORY_EXCEEDED, JobState, walltime_exceeded

__all__ = ["STATE_MAP", "UnreadableXml", "epoch_text", "map_exit", "map_record", "read_xml"]

log = logging.getLogger(__name__)

# Torque's job_state letters (qstat(1), src/include/pbs_job.h); None: completed, and
# exit_status tells how.
STATE_MAP: dict[str, JobState | None] = {
    "Q": JobState.PENDING,  # queued
    "H": JobState.PENDING,  # held (user, system, or a dependency)
    "W": JobState.PENDING,  # waiting for its start time
    "T": JobState.PENDING,  # being moved
    "R": JobState.RUNNING,
    "E": JobState.RUNNING,  # exiting after having run
    "S": JobState.RUNNING,  # suspended
    "C": None,  # completed (kept keep_completed seconds)
}

#: Torque's negative exit codes (src/include/pbs_job.h JOB_EXEC_*), as read from a
#: completed record (C), the only one map_exit sees: the RETRY codes ask for a retry,
#: and a job retried is queued again, so a C record with one of them failed.
_CODES: dict[int, tuple[JobState, str]] = {
    -1: (JobState.FAILED, "Torque could not start the job (JOB_EXEC_FAIL1)"),
    -2: (JobState.FAILED, "Torque could not start the job (JOB_EXEC_FAIL2)"),
    -3: (JobState.FAILED, "Torque could not start the job; no retry followed (JOB_EXEC_RETRY)"),
    -4: (JobState.FAILED, "aborted on MOM initialisation (JOB_EXEC_INITABT)"),
    -8: (JobState.FAILED, "the job's shell could not be started (JOB_EXEC_CMDFAIL)"),
    -9: (JobState.FAILED, "the output files could not be opened (JOB_EXEC_STDOUTFAIL)"),
    -10: (JobState.OUT_OF_MEMORY, f"{MEMORY_EXCEEDED} (JOB_EXEC_OVERLIMIT_MEM)"),
    -11: (JobState.TIMEOUT, ""),  # the reason names the limit: walltime_exceeded()
    -12: (JobState.FAILED, "CPU time limit exceeded (JOB_EXEC_OVERLIMIT_CPUT)"),
    -13: (JobState.FAILED, "the job's cgroups could not be made (JOB_EXEC_RETRY_CGROUP)"),
    -14: (JobState.FAILED, "the prologue failed; no retry followed (JOB_EXEC_RETRY_PROLOGUE)"),
}
#: The comment of a job aborted because its dependency can never be met
#: (msg_registerdel, src/lib/Liblog/pbs_messages.c).
_DEPENDENCY = re.compile(r"Job deleted as result of dependency on job (\S+)")
#: The top shell's statuses a qdel of a running job leaves: (exit code, the signal):
#: jobfleet's script exits 143 with its command; 271 and 265: the shell itself ended.
_DELETED = {143: (143, "SIGTERM"), 271: (143, "SIGTERM"), 265: (137, "SIGKILL")}
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
    status: int | None, comment: str, limit_s: float | None, canceled_code: int = 0
) -> tuple[JobState, int | None, str | None]:
    """The outcome of a completed Torque job from its ``exit_status`` (and comment).

    Torque keeps the status of the job's top shell (req_jobobit.c): jobfleet's job
    script outlives qdel's SIGTERM and exits 143 with its command; 271 is a shell that
    SIGTERM ended, 265 one that the SIGKILL ``kill_delay`` later ended. Torque records
    no "deleted" on the job, so these read cancelled with a reason that says a SIGTERM
    or SIGKILL from elsewhere reads the same. A server with ``exit_code_canceled_job``
    (``canceled_code``, 0: unset) gives every deleted job that status instead. The
    server also sets 271 on a job it aborts because its dependency can never be met
    (job_func.c; its comment says so): that job never ran.
    """
    if status is None:
        return JobState.CANCELLED, None, "ended before it ran (qdel, or aborted by the server)"
    never = _DEPENDENCY.search(comment)
    if never is not None:
        return JobState.CANCELLED, None, f"dependency can never be met (job {never[1]})"
    if canceled_code and status == canceled_code:
        return JobState.CANCELLED, None, f"deleted (qdel): exit_code_canceled_job {status}"
    if status in _DELETED:
        code, sig = _DELETED[status]
        why = f"deleted (qdel) while running, or a {sig} from elsewhere (Torque does not say)"
        return JobState.CANCELLED, code, why
    if status >= 256:
        return JobState.FAILED, 128 + status - 256, f"killed by signal {status - 256}"
    if status >= 0:
        return (JobState.COMPLETED if status == 0 else JobState.FAILED), status, None
    known = _CODES.get(status)
    if known is None:
        return JobState.FAILED, None, f"Torque could not run the job (exit_status {status})"
    state, why = known
    return state, None, walltime_exceeded(limit_s) if state is JobState.TIMEOUT else why


def map_record(attrs: Mapping[str, str], canceled_code: int = 0) -> Element:
    """jobfleet's element for one Torque record (job or array element); ``canceled_code``:
    the server's ``exit_code_canceled_job`` (``torque.exit_code_canceled_job``)."""
    letter = attrs.get("job_state", "")
    if letter not in STATE_MAP:
        log.warning("unknown Torque job state %r; reporting it as unknown", letter)
        return JobState.UNKNOWN, None, f"Torque state {letter!r}"
    state = STATE_MAP[letter]
    if state is not None:
        return state, None, {"H": "held", "S": "suspended"}.get(letter)
    text = attrs.get("exit_status")
    status = int(text) if text is not None and re.fullmatch(r"-?\d+", text) else None
    limit = parse_seconds(attrs.get("Resource_List.walltime", ""))
    used = parse_seconds(attrs.get("resources_used.walltime", ""))
    if status == -10 and limit is not None and used is not None and used + 1 >= limit:
        # Torque before 4 had one code, -10 (JOB_EXEC_OVERLIMIT), for every limit: a
        # job that ran to its walltime was killed for that, not for its memory.
        return JobState.TIMEOUT, None, walltime_exceeded(limit)
    return map_exit(status, attrs.get("comment", ""), limit, canceled_code)
