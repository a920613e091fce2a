"""LSF's command output, read by pure functions: output (and a poll's context) in,
records out. Nothing here runs a command or keeps state between calls.

Read against the public recordings and documented layouts in
``tests/backends/lsf/fixtures/`` (see its SOURCES and docs/lsf-notes.md).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator, Sequence

from jobfleet.backends.base import QueueEntry
from jobfleet.backends.command import Element, PollContext, Seen, command_failed
from jobfleet.backends.lsf.endings import (
    NOTHING,
    TERM_MAP,
    Known,
    history_known,
    map_exit,
    parse_limit,
)
from jobfleet.errors import CommandError
from jobfleet.runner import CommandResult
from jobfleet.states import JobState

__all__ = [
    "LIST_FIELDS",
    "QUEUE_FIELDS",
    "STATE_MAP",
    "TERM_MAP",
    "TRANSIENT_SUBMIT",
    "element_of",
    "finished",
    "history_records",
    "map_exit",
    "parse_cancel_refusals",
    "parse_find_by_name",
    "parse_history",
    "parse_queue",
    "parse_queue_list",
    "parse_submit",
    "parse_version",
    "queue_records",
    "unwrap",
]

log = logging.getLogger(__name__)

#: The fields the poll asks ``bjobs -o`` for (their JSON keys are the same, upper case).
QUEUE_FIELDS = [
    "jobid",
    "jobindex",
    "stat",
    "exit_code",
    "exit_reason",
    "pend_reason",
    "job_name",
    "max_mem",
    "cpu_used",
    "exec_host",
    "submit_time",
    "start_time",
    "finish_time",
    "run_time",
    "user",
    "runtimelimit",
]

# bjobs' job states (bjobs(1), "Description" of the states; LSF 10.1), to jobfleet's.
# EXIT is decided by the termination reason (TERM_MAP) and the exit code.
STATE_MAP: dict[str, JobState | None] = {
    "PEND": JobState.PENDING,  # waiting to be scheduled
    "WAIT": JobState.PENDING,  # a chunk job's member waiting to run
    "PROV": JobState.PENDING,  # dispatched, its host being provisioned
    "PSUSP": JobState.PENDING,  # suspended (held) by its owner or an admin while pending
    "RUN": JobState.RUNNING,
    "USUSP": JobState.RUNNING,  # suspended by its owner while running; keeps its slots
    "SSUSP": JobState.RUNNING,  # suspended by LSF (load, run window); keeps its slots
    # DONE, PDONE, PERR: COMPLETED only with an exit code 0 (:func:`finished`).
    "DONE": JobState.COMPLETED,  # ended with exit code 0, or one in SUCCESS_EXIT_VALUES
    "PDONE": JobState.COMPLETED,  # ended, then its post-execution processing ended well
    "PERR": JobState.COMPLETED,  # ended, then its post-execution processing failed
    "EXIT": None,  # ended otherwise: TERM_MAP and the exit code tell how
    "UNKWN": JobState.UNKNOWN,  # mbatchd lost contact with the job's host
    "ZOMBI": JobState.UNKNOWN,  # killed while its host was unreachable: the end is not known
}

#: bsub's refusals for now: the batch daemon busy or unreachable, a threshold of pending
#: jobs (bsub itself waits and retries then, "Retrying in 60 seconds...").
TRANSIENT_SUBMIT = re.compile(
    r"LSF is down|Please wait|not responding|Cannot connect|Failed in an LSF library call|"
    r"[Tt]imed? ?out|try again later|threshold reached|concurrent query limit",
)
#: bjobs about an id it does not know; about no job at all (not errors: answers).
NOT_FOUND = re.compile(r"Job <([0-9]+)(?:\[([0-9]+)\])?> is not found")
NO_UNFINISHED = re.compile(r"No (?:unfinished )?job found|No matching job found")
_SUBMITTED = re.compile(r"^Job <([0-9]+)> is submitted to (?:default )?queue <[^>]*>\.?$", re.M)
_WRAP = " " * 21  # bjobs -l, bhist -l and bacct -l continue a line at column 22
_HEAD = re.compile(r"^Job <([0-9]+)(?:\[([0-9]+)\])?>")


def parse_submit(result: CommandResult) -> str:
    """The job id in bsub's ``Job <N> is submitted to [default ]queue <Q>.``"""
    match = _SUBMITTED.search(result.stdout)
    if match is None:
        raise CommandError(result.argv, f"bsub printed no job id: {result.stdout.strip()!r}")
    return match[1]


def parse_version(text: str) -> str | None:
    """The version in ``lsid`` or ``bsub -V`` (``IBM Spectrum LSF Standard 10.1.0.13, ...``)."""
    match = re.search(r"LSF[A-Za-z ]*?\s([0-9]+(?:\.[0-9]+)+)", text)
    return match[1] if match else None


#: Why a PERR job (post-execution processing failed) is said to be so.
POST_FAILED = "post-execution processing failed (LSF state PERR)"


def _counted_done(code: int) -> str:
    return f"exit code {code}, which LSF counts as done (SUCCESS_EXIT_VALUES)"


def finished(stat: str, exit_code: str, exit_reason: str) -> Element:
    """A DONE, PDONE or PERR job: completed only with an exit code 0 (EXIT_CODE empty).

    DONE with another code is a code the site lists in ``SUCCESS_EXIT_VALUES``
    (lsb.queues, lsb.applications): LSF neither requeues it nor calls it EXIT, but the
    command failed by its own word, and jobfleet never says a failed job succeeded: it
    is failed, with the code (the job's exit-code file, read for failed jobs, gives the
    command's own). PDONE and PERR come after post-execution processing, which runs
    for DONE and EXIT jobs alike (IBM LSF 10.1, "Pre- and post-execution processing"):
    their exit code tells how the job ended, and PERR adds that the post-execution
    command failed (the job's outcome stands: the command itself ended well or not).
    """
    post = POST_FAILED if stat == "PERR" else None
    text = exit_code.strip()
    if text in ("", "-", "0"):
        return JobState.COMPLETED, 0, post
    if not text.isdigit():
        return JobState.UNKNOWN, None, f"LSF state {stat} with exit code {text!r}"
    state, code, why = map_exit(text, exit_reason)
    if why is None and stat == "DONE" and code is not None:
        why = _counted_done(code)
    return state, code, "; ".join(w for w in (why, post) if w) or None


#: Why a job in a rare state reads as it does (bjobs(1), LSF 10.1; bhist's words for them,
#: openlava lsbatch/bhist/bhist.c). None: bjobs' PEND_REASON says.
_STATE_REASONS: dict[str, str | None] = {
    "PEND": None,
    "WAIT": "waiting to run as a member of a chunk job (LSF state WAIT)",
    "PROV": "dispatched; its host is being provisioned (LSF state PROV)",
    "PSUSP": "held (suspended while pending: bresume releases it)",
    "RUN": None,
    "USUSP": "suspended by its owner or an administrator (bresume resumes it); keeps its slots",
    "SSUSP": "suspended by LSF (host load, run window or preemption); keeps its slots",
    "UNKWN": "LSF lost contact with the job's host (LSF state UNKWN); its state is not known "
    "while that lasts",
    "ZOMBI": "killed while its host was unreachable (LSF state ZOMBI); how it ended is not "
    "known yet",
}
#: PEND_REASON of a job whose ``-w`` can never be met and which LSF leaves pending
#: (submitted without ``-ti``, and no ORPHAN_JOB_TERMINATE_TIME).
NEVER_SATISFIED = "Dependency condition invalid or never satisfied"


def element_of(
    stat: str, exit_code: str, exit_reason: str, pend_reason: str, known: Known = NOTHING
) -> Element:
    """One job's (or element's) report from bjobs' STAT, EXIT_CODE, EXIT_REASON and
    PEND_REASON (EXIT_CODE is empty for an exit code 0), and what else its record
    says (``known``: the owner, the run limit, MAX_MEM). Unknown states warn and map
    to UNKNOWN."""
    if stat not in STATE_MAP:
        log.warning("unknown LSF job state %r; reporting it as unknown", stat)
        return JobState.UNKNOWN, None, f"LSF state {stat}"
    state = STATE_MAP[stat]
    if state is None:
        return map_exit(exit_code, exit_reason, known)
    if state is JobState.COMPLETED:
        return finished(stat, exit_code, exit_reason)
    waited = pend_reason.strip().rstrip(";") or None
    reason = _STATE_REASONS.get(stat) or waited
    if state is JobState.PENDING and waited and stat != "PEND":
        reason = f"{reason}: {waited}"
    if waited is not None and waited.startswith(NEVER_SATISFIED):
        reason = f"{waited}: a dependency can never be met; `jobfleet cancel` removes it"
    return state, None, reason


def _known(record: dict[str, str]) -> Known:
    """What a bjobs record says besides its state: owner, run limit, memory."""
    return Known(
        owner=record.get("USER", ""),
        run_limit_s=parse_limit(record.get("RUNTIMELIMIT", "")),
        max_mem=record.get("MAX_MEM", ""),
    )


# -- bjobs ------------------------------------------------------------------------------


def queue_records(
    result: CommandResult, text_format: bool, fields: Sequence[str] = QUEUE_FIELDS
) -> list[dict[str, str]]:
    """The records of ``bjobs -json -o`` (or of the ``delimiter='|'`` text form), upper
    case keys; records of ids bjobs does not know are left out.

    ``bjobs`` says ``Job <N> is not found`` and ``No unfinished job found`` with exit 0
    or 255 (``LSB_BJOBS_CONSISTENT_EXIT_CODE``): answers, not errors. Anything else on
    stderr with a non-zero exit is an error (CommandError).
    """
    complaints = [
        line
        for line in result.stderr.splitlines()
        if line.strip() and not (NOT_FOUND.search(line) or NO_UNFINISHED.search(line))
    ]
    if not result.ok and complaints:
        raise command_failed(result)
    out = result.stdout.strip()
    if not out or NO_UNFINISHED.fullmatch(out):
        return []
    if text_format:
        return _text_records(out, fields)
    try:
        data = json.loads(out)
        records = data["RECORDS"]
    except (ValueError, KeyError, TypeError) as exc:
        raise CommandError(result.argv, f"bjobs printed unreadable JSON: {exc}") from None
    return [
        {str(k).upper(): "" if v is None else str(v) for k, v in r.items()}
        for r in records
        if isinstance(r, dict) and "ERROR" not in r
    ]


def _text_records(out: str, fields: Sequence[str]) -> list[dict[str, str]]:
    keys = [f.upper() for f in fields]
    records = []
    for line in out.splitlines():
        if NOT_FOUND.search(line) or NO_UNFINISHED.search(line) or not line.strip():
            continue
        values = line.split("|")
        if len(values) != len(keys):
            log.warning("skipping a bjobs line of %d fields: %r", len(values), line[:200])
            continue
        records.append(
            {k: ("" if v.strip() == "-" else v.strip()) for k, v in zip(keys, values, strict=True)}
        )
    return records


def _base_name(name: str) -> str:
    """``jf..-1-job`` from an element's ``jf..-1-job[3]``."""
    return re.sub(r"\[[0-9]+\]$", "", name)


def parse_queue(result: CommandResult, ctx: PollContext, text_format: bool = False) -> Seen:
    """States of the jobs ``ctx.ids`` from bjobs. Job ids wrap (``MAX_JOB_ID``): a
    record is taken only under its job's name, when the job has one."""
    wanted = set(ctx.ids)
    seen: Seen = {}
    for record in queue_records(result, text_format):
        job_id = record.get("JOBID", "")
        if job_id not in wanted:
            continue
        target = ctx.targets.get(job_id)
        name = record.get("JOB_NAME", "")
        if target is not None and target.name and name and _base_name(name) != target.name:
            continue  # an older job with the same id
        index_text = record.get("JOBINDEX", "0")
        index = int(index_text) if index_text.isdigit() and int(index_text) > 0 else None
        if target is not None and target.indices is None:
            index = None
        seen.setdefault(job_id, {})[index] = element_of(
            record.get("STAT", ""),
            record.get("EXIT_CODE", ""),
            record.get("EXIT_REASON", ""),
            record.get("PEND_REASON", ""),
            _known(record),
        )
    return seen


def parse_find_by_name(result: CommandResult) -> str | None:
    """The newest job id in ``bjobs -a -noheader -o jobid -J NAME``; None when bjobs
    answered it has none (``No job found``, ``Job <NAME> is not found``, exit 0 or 255)."""
    said = [line.strip() for line in result.stderr.splitlines() if line.strip()]
    if not result.ok and not all(
        re.fullmatch(r"Job <[^>]+> is not found", line) or NO_UNFINISHED.search(line)
        for line in said
    ):
        raise command_failed(result)
    ids = [int(w) for w in result.stdout.split() if w.isdigit()]
    return str(max(ids)) if ids else None


# -- bhist -l and bacct -l -----------------------------------------------------------------


def unwrap(text: str) -> list[str]:
    """Logical lines of ``bjobs -l``, ``bhist -l`` or ``bacct -l``: their 80-column lines
    go on at column 22 (21 spaces), cut anywhere, even inside a word.

    >>> unwrap("Exited with exit code 127. The CPU time used is 0.0 second\\n" + " " * 21 + "s;")
    ['Exited with exit code 127. The CPU time used is 0.0 seconds;']
    """
    lines: list[str] = []
    for line in text.splitlines():
        if lines and line.startswith(_WRAP) and line.strip():
            lines[-1] += line[len(_WRAP) :]
        else:
            lines.append(line)
    return lines


def history_records(text: str) -> Iterator[tuple[str, int | None, list[str]]]:
    """(job id, array index or None, the record's logical lines) for each job of a
    ``bhist -l`` or ``bacct -l`` answer."""
    current: tuple[str, int | None, list[str]] | None = None
    for line in unwrap(text):
        head = _HEAD.match(line)
        if head is not None:
            if current is not None:
                yield current
            current = (head[1], int(head[2]) if head[2] else None, [line])
        elif current is not None:
            current[2].append(line)
    if current is not None:
        yield current


_EXIT_CODE = re.compile(r": Exited with exit code ([0-9]+)")
_EXIT_SIGNAL = re.compile(r": Exited by (?:LSF )?signal ([0-9]+)")
_COMPLETED = re.compile(r": Completed <(done|exit)>[;.]?\s*(.*)$")


def history_element(lines: list[str]) -> Element | None:
    """How one job ended, from its bhist -l or bacct -l record; None while it has not.
    Done with a non-zero exit code (SUCCESS_EXIT_VALUES) is failed (:func:`finished`)."""
    code: int | None = None
    ended: Element | None = None
    done = False
    for line in lines:
        if ": Done successfully." in line:
            done = True
        elif (match := _EXIT_CODE.search(line)) is not None:
            code = int(match[1])
        elif (match := _EXIT_SIGNAL.search(line)) is not None:
            code = 128 + int(match[1])  # as a shell reports a command ended by a signal
        elif (match := _COMPLETED.search(line)) is not None:
            if match[1] == "done":
                done = True
            else:
                code_text = "" if code is None else str(code)
                ended = map_exit(code_text, match[2], history_known(lines))
        elif "Job has been requeued" in line or ": Pending:" in line:
            ended, done, code = None, False, None  # it runs again: later lines tell
    if done:
        ended = (JobState.COMPLETED, 0, None) if not code else finished("DONE", str(code), "")
    return ended


def parse_history(result: CommandResult, ctx: PollContext) -> Seen:
    """How the jobs ``ctx.ids`` ended, from ``bhist -l`` (or ``bacct -l``). Job ids
    wrap: a record is taken only under its job's name, when both are known."""
    complaints = [
        line
        for line in result.stderr.splitlines()
        if line.strip() and not (NOT_FOUND.search(line) or NO_UNFINISHED.search(line))
    ]
    if not result.ok and complaints:
        raise command_failed(result)
    # An id bhist does not know makes it exit non-zero: the others' records still count.
    wanted = set(ctx.ids)
    seen: Seen = {}
    for job_id, index, lines in history_records(result.stdout):
        if job_id not in wanted:
            continue
        target = ctx.targets.get(job_id)
        name = re.search(r"Job Name <([^>]*)>", lines[0])
        if target is not None and target.name and name and _base_name(name[1]) != target.name:
            continue
        element = history_element(lines)
        if element is None:
            continue
        if target is not None and target.indices is None:
            index = None
        seen.setdefault(job_id, {})[index] = element
    return seen


def parse_cancel_refusals(result: CommandResult) -> list[str]:
    """bkill's complaints that are not "already over": ``Job <N>: No matching job found``
    and ``Job has already finished`` mean the goal is reached."""
    return [
        line
        for line in (result.stdout + "\n" + result.stderr).splitlines()
        if line.strip()
        and "is being terminated" not in line
        and "is being signaled" not in line
        and "already finished" not in line
        and "No matching job found" not in line
    ]


#: The fields of the queue view's bjobs call.
LIST_FIELDS = ["jobid", "jobindex", "stat", "user", "queue", "job_name", "exec_host"]
LIST_FIELDS += ["pend_reason", "run_time"]


def parse_queue_list(result: CommandResult, text_format: bool = False) -> list[QueueEntry]:
    """The rows of the queue view's bjobs call (unfinished jobs, an element a row)."""
    entries = []
    for r in queue_records(result, text_format, LIST_FIELDS):
        job_id, index_text, stat = r.get("JOBID", ""), r.get("JOBINDEX", "0"), r.get("STAT", "")
        index = index_text if index_text.isdigit() and int(index_text) > 0 else None
        state, _, reason = element_of(stat, "", "", r.get("PEND_REASON", ""))
        run = re.match(r"([0-9]+)", r.get("RUN_TIME", ""))
        hosts = [h.split("*")[-1] for h in re.split(r"[:\s]+", r.get("EXEC_HOST", "")) if h]
        entries.append(
            QueueEntry(
                native_id=job_id,
                tasks=index,
                display_id=f"{job_id}[{index}]" if index else job_id,
                name=_base_name(r.get("JOB_NAME", "")) if index else r.get("JOB_NAME", ""),
                user=r.get("USER", ""),
                state=state,
                native_state=stat,
                elapsed_s=int(run[1]) if run and state is JobState.RUNNING else None,
                nodes=",".join(dict.fromkeys(hosts)) or None,
                queue=r.get("QUEUE") or None,
                reason=reason,
            )
        )
    return entries
