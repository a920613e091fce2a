"""PBS Pro / OpenPBS's command output, read by pure functions: output (and a poll's
context) in, records out. The text form of ``qstat -f`` and the record-to-state step are
shared with Torque (:mod:`jobfleet.backends.torque.parse`), whose qstat prints the same form.

The formats, and where each fact comes from, are in docs/pbs-notes.md; the fixtures in
``tests/backends/pbs/fixtures/``.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from jobfleet.backends.base import QueueEntry
from jobfleet.backends.command import Element, PollContext, Seen, command_failed
from jobfleet.errors import CommandError
from jobfleet.runner import CommandResult
from jobfleet.states import MEMORY_EXCEEDED, JobState, walltime_exceeded
from jobfleet.usage import Usage

__all__ = [
    "STATE_MAP",
    "Record",
    "UnreadableJson",
    "ctime_text",
    "finished_ids",
    "job_key",
    "map_exit",
    "map_record",
    "no_record_elements",
    "parse_find_by_name",
    "parse_seconds",
    "parse_size",
    "parse_submit",
    "queue_entries",
    "read_json",
    "read_text",
    "record_usage",
    "records_seen",
    "unknown_ids",
]

log = logging.getLogger(__name__)

#: One job of qstat's answer: its id and attributes (``resources_used.mem`` for resources).
Record = tuple[str, dict[str, str]]

# PBS's job_state letters (qstat(1B), src/include/job.h JOB_STATE_LTR_*); None: the
# job has ended and Exit_status tells how.
STATE_MAP: dict[str, JobState | None] = {
    "Q": JobState.PENDING,  # queued
    "H": JobState.PENDING,  # held (user, operator, system, or by a dependency)
    "W": JobState.PENDING,  # waiting for its start time (-a)
    "T": JobState.PENDING,  # in transit to its queue
    "R": JobState.RUNNING,
    "E": JobState.RUNNING,  # exiting after having run: its outcome is not final yet
    "B": JobState.RUNNING,  # an array with at least one element begun
    "S": JobState.RUNNING,  # suspended; it keeps its resources
    "U": JobState.RUNNING,  # suspended because the workstation is busy
    "M": JobState.UNKNOWN,  # moved to another server: not followed there
    "X": None,  # an array element that finished (expired)
    "F": None,  # finished (history, qstat -x)
}

#: PBS's own negative Exit_status codes (src/include/job.h JOB_EXEC_*), as read from a
#: finished record (F, X): the only one map_exit sees.
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
    -19: (JobState.CANCELLED, "a hook deleted the job (JOB_EXEC_HOOK_DELETE)"),
    -24: (JobState.FAILED, "ncpus limit exceeded (JOB_EXEC_KILL_NCPUS_BURST)"),
    -25: (JobState.FAILED, "ncpus limit exceeded (JOB_EXEC_KILL_NCPUS_SUM)"),
    -26: (JobState.OUT_OF_MEMORY, f"{MEMORY_EXCEEDED} (vmem)"),
    -27: (JobState.OUT_OF_MEMORY, f"{MEMORY_EXCEEDED} (mem)"),
    -28: (JobState.FAILED, "CPU time limit exceeded (cput)"),
    -29: (JobState.TIMEOUT, ""),  # the reason names the limit: walltime_exceeded()
}
#: substate of a job that qdel ended (src/include/job.h JOB_SUBSTATE_TERMINATED).
_TERMINATED = "91"
#: substate of a job that failed: with an Exit_status, one not 0; without any, one PBS
#: ended because its execution host went down (node_manager.c: T_MOM_DOWN history).
_FAILED = "93"
#: Marks an array element's record that qstat made up from its array's (see
#: :func:`no_record_elements`); no attribute of PBS's has this name.
NO_RECORD = "jobfleet.no_record"
#: Such an element's reason when its job script left no exit-code file either.
REMOVED = "removed before it started (PBS keeps no record of such an element)"

_SUBMITTED = re.compile(r"^\s*(\d+(?:\[\])?(?:\.\S+)?)\s*$")
_ELEMENT = re.compile(r"^(\d+)\[(\d*)\](.*)$")
_ATTRIBUTE = re.compile(r"^    ([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)?) = (.*)$")
_UNKNOWN = re.compile(r"Unknown Job Id(?: Error)? (\S+)")
_FINISHED = re.compile(r"(\S+) Job has finished")
_SIZE = re.compile(r"(\d+)(b|kb|mb|gb|tb|pb|w|kw|mw|gw|tw)?", re.IGNORECASE)
_SIZE_UNITS = {"b": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40, "p": 2**50}


class UnreadableJson(ValueError):
    """``qstat -F json`` printed something that is no JSON (docs/pbs-notes.md, 4)."""


# -- ids ----------------------------------------------------------------------------


def parse_submit(result: CommandResult) -> str:
    """The id qsub printed (``1001.server``, ``1010[].server``): the last line of that
    form (site wrappers and hooks may print lines before it)."""
    for line in reversed(result.stdout.splitlines()):
        match = _SUBMITTED.match(line)
        if match:
            return match[1]
    raise CommandError(result.argv, f"qsub printed no job id: {result.stdout.strip()[:200]!r}")


def job_key(job_id: str) -> tuple[str, int | None]:
    """(the id jobfleet records, the element index or None) of an id qstat prints:
    ``1010[3].server`` is element 3 of ``1010[].server``."""
    match = _ELEMENT.match(job_id)
    if match is None:
        return job_id, None
    number, index, rest = match.groups()
    return f"{number}[]{rest}", int(index) if index else None


def parse_find_by_name(result: CommandResult) -> str | None:
    """The id ``qselect -N NAME`` printed (the newest, if several); None for none."""
    if not result.ok:
        raise command_failed(result)
    ids = [line.strip() for line in result.stdout.splitlines() if line.strip()]
    return ids[-1] if ids else None


def unknown_ids(stderr: str) -> set[str]:
    """Ids qstat said it does not know (``Unknown Job Id N.server``)."""
    return set(_UNKNOWN.findall(stderr))


def finished_ids(stderr: str) -> set[str]:
    """Ids qstat said have finished, asked without ``-x`` (``N.server Job has
    finished, use -x ...``): ended, not lost, though how is not said."""
    return set(_FINISHED.findall(stderr))


# -- the two forms of qstat -f ---------------------------------------------------------


def read_text(text: str) -> list[Record]:
    """The jobs of ``qstat -f`` text (PBS and Torque).

    A value longer than the line goes on with lines that begin with one TAB, joined
    with nothing in between; newlines inside a value (an exported shell function in
    Variable_List) are printed raw: a line that is neither an attribute nor a
    continuation goes on the previous value after a newline.
    """
    records: list[Record] = []
    attrs: dict[str, str] = {}
    last = ""
    for line in text.splitlines():
        if line.startswith("Job Id: "):
            attrs, last = {}, ""
            records.append((line[8:].strip(), attrs))
            continue
        if not records:
            continue
        match = _ATTRIBUTE.match(line)
        if match is not None:
            last = match[1]
            attrs[last] = match[2]
        elif line.startswith("\t") and last:
            attrs[last] += line[1:]
        elif last and line:
            attrs[last] += "\n" + line
    return records


def read_json(text: str) -> list[Record]:
    """The jobs of ``qstat -f -F json``, resources flattened to ``name.resource``.

    Raises:
        UnreadableJson: the document is no valid JSON, as on many servers.
    """
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise UnreadableJson(f"qstat -F json printed invalid JSON: {exc}") from None
    jobs = document.get("Jobs", {}) if isinstance(document, dict) else None
    if not isinstance(jobs, dict):
        raise UnreadableJson("qstat -F json printed no Jobs object")
    records: list[Record] = []
    for job_id, values in jobs.items():
        attrs: dict[str, str] = {}
        for name, value in values.items() if isinstance(values, dict) else ():
            if name == "Variable_List":
                continue  # the environment: nothing jobfleet reads
            if isinstance(value, dict):
                for resource, inner in value.items():
                    attrs[f"{name}.{resource}"] = _scalar(inner)
            else:
                attrs[name] = _scalar(value)
        records.append((job_id, attrs))
    return records


def _scalar(value: Any) -> str:
    """A JSON value as qstat's text form would show it (numbers as written)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "True" if value else "False"
    return json.dumps(value)


# -- states ------------------------------------------------------------------------------


def map_exit(
    status: int | None, terminated: bool, limit_s: float | None, depend: str = ""
) -> tuple[JobState, int | None, str | None]:
    """The outcome of a finished PBS job from its ``Exit_status``.

    >= 0 and < 256: the job script's own; 256 + N: its top shell was killed by signal
    N (reported as 128 + N, the way a shell shows it); negative: PBS's own codes. A
    job that qdel ended (``terminated``) is cancelled, whatever its status says; one
    without any status never ran: deleted, or aborted by the server because its
    dependency (``depend``) can never be met (job_abt, src/server/req_register.c).
    """
    if status is None:
        if terminated:
            return JobState.CANCELLED, None, "deleted (qdel) before it ran"
        if depend:
            return JobState.CANCELLED, None, f"dependency can never be met ({depend})"
        return JobState.CANCELLED, None, "ended before it ran (deleted or aborted by PBS)"
    if status >= 256:
        code = 128 + (status - 256)
        if terminated:
            return JobState.CANCELLED, code, f"deleted (qdel): killed by signal {status - 256}"
        return JobState.FAILED, code, f"killed by signal {status - 256}"
    if terminated:
        return JobState.CANCELLED, status if status >= 0 else None, "deleted (qdel)"
    if status >= 0:
        return (JobState.COMPLETED if status == 0 else JobState.FAILED), status, None
    known = _PBS_CODES.get(status)
    if known is None:
        return JobState.FAILED, None, f"PBS could not run the job (Exit_status {status})"
    state, why = known
    if state is JobState.TIMEOUT:
        why = walltime_exceeded(limit_s)
    return state, None, why


def no_record_elements(records: Iterable[Record]) -> list[Record]:
    """``records`` with each finished array element that PBS keeps no job of marked
    :data:`NO_RECORD`, its other attributes dropped.

    An element deleted before it started (req_delete.c: only its state in the array's
    table, no job), or one whose job is gone, is printed from its ARRAY's attributes
    (stat_job.c, status_subjob): the array's substate (70, begun) and Exit_status (the
    last element's, 0/1/2), comment ``Subjob finished``, and none of the array
    attributes, ``array_index`` among them. Nothing of that is the element's own.
    """
    out: list[Record] = []
    for job_id, attrs in records:
        letter = attrs.get("job_state", "")
        if job_key(job_id)[1] is not None and letter in ("X", "F") and "array_index" not in attrs:
            attrs = {"job_state": letter, NO_RECORD: "1"}
        out.append((job_id, attrs))
    return out


def map_record(attrs: Mapping[str, str]) -> Element:
    """jobfleet's element for one PBS record (job or array element)."""
    letter = attrs.get("job_state", "")
    if NO_RECORD in attrs:
        return JobState.CANCELLED, None, REMOVED
    if letter not in STATE_MAP:
        log.warning("unknown PBS job state %r; reporting it as unknown", letter)
        return JobState.UNKNOWN, None, f"PBS state {letter!r}"
    state = STATE_MAP[letter]
    if state is not None:
        reason = None
        if letter == "H":
            reason = "held by a dependency" if attrs.get("substate") == "22" else "held"
        elif letter == "M":
            reason = "moved to another PBS server"
        elif letter in "SU":
            reason = "suspended"
        return state, None, reason
    status = _int(attrs.get("Exit_status"))
    terminated = attrs.get("substate") == _TERMINATED
    limit = parse_seconds(attrs.get("Resource_List.walltime", ""))
    if status is None and not terminated:
        if attrs.get("substate") == _FAILED:
            return JobState.FAILED, None, "its execution host went down (PBS ended the job)"
        if attrs.get("stime"):
            return JobState.FAILED, None, "ended by PBS after it started, with no exit status"
    killed = _signalled(status)
    if killed is not None and not terminated:
        # PBS before OpenPBS 22.05 (no JOB_EXEC_KILL_* codes) reports a job its MOM
        # killed at a limit as killed by a signal: its own numbers say which limit.
        # The top shell's 256 + N, or jobfleet's script's 128 + N: the script outlives
        # the MOM's SIGTERM and exits with its command's 143.
        used = parse_seconds(attrs.get("resources_used.walltime", ""))
        if limit is not None and used is not None and used + 1 >= limit:
            return JobState.TIMEOUT, killed, walltime_exceeded(limit)
        peak = parse_size(attrs.get("resources_used.mem", ""))
        asked = parse_size(attrs.get("Resource_List.mem", ""))
        if peak is not None and asked is not None and peak > asked:
            why = f"{MEMORY_EXCEEDED} (mem): {peak // 2**20} MiB > {asked // 2**20} MiB"
            return JobState.OUT_OF_MEMORY, killed, why
    return map_exit(status, terminated, limit, attrs.get("depend", ""))


def _signalled(status: int | None) -> int | None:
    """128 + N for a status that says signal N ended the job (256 + N from PBS, or
    128 + N from a shell that outlived it); None for any other."""
    if status is None:
        return None
    if status >= 256:
        return 128 + status - 256
    return status if 128 < status <= 128 + 64 else None


def records_seen(
    records: Iterable[Record],
    ctx: PollContext,
    mapper: Callable[[Mapping[str, str]], Element],
    times: Callable[[str], float | None],
) -> Seen:
    """The elements of the jobs ``ctx.ids`` among ``records``; what the ended ones used
    goes to ``ctx.usage``. An array's own record stands for none of its elements."""
    wanted = set(ctx.ids)
    seen: Seen = {}
    for job_id, attrs in records:
        key, index = job_key(job_id)
        if key not in wanted or (index is None and "[]" in job_id):
            continue  # not asked for, or an array's own record
        element = mapper(attrs)
        seen.setdefault(key, {})[index] = element
        if element[0].is_terminal:
            usage = record_usage(attrs, times)
            if not usage.empty:
                ctx.usage.setdefault(key, {})[index] = usage
    return seen


# -- usage -------------------------------------------------------------------------------


def record_usage(attrs: Mapping[str, str], times: Callable[[str], float | None]) -> Usage:
    """What one finished job used (``resources_used.*``, ``exec_host`` and its times;
    ``times`` reads the form its qstat prints times in)."""
    hosts = _hosts(attrs.get("exec_host", ""))
    started = times(attrs.get("stime") or attrs.get("start_time") or "")
    ended = times(attrs.get("obittime") or attrs.get("comp_time") or "")
    return Usage(
        submitted_at=times(attrs.get("qtime") or attrs.get("ctime") or ""),
        started_at=started,
        ended_at=ended if started is not None else None,
        hosts=hosts or None,
        max_memory_bytes=parse_size(attrs.get("resources_used.mem", "")),
        cpu_time_s=parse_seconds(attrs.get("resources_used.cput", "")),
        wall_time_s=parse_seconds(attrs.get("resources_used.walltime", "")),
    )


def ctime_text(text: str) -> float | None:
    """Unix time from qstat's ``Sun Dec  6 12:16:51 2026`` (the server's local time)."""
    try:
        return time.mktime(time.strptime(text.strip(), "%a %b %d %H:%M:%S %Y"))
    except ValueError:
        return None


def parse_size(text: str) -> int | None:
    """Bytes from a PBS size (``1048576kb``, ``4gb``, ``12w``: 1024-based; a word is 8
    bytes); None if unreadable.

    >>> parse_size("1048576kb"), parse_size("4gb"), parse_size("2kw"), parse_size("")
    (1073741824, 4294967296, 16384, None)
    """
    match = _SIZE.fullmatch(text.strip())
    if match is None:
        return None
    unit = (match[2] or "b").lower()
    factor = _SIZE_UNITS.get(unit[0], 1) if unit not in ("b", "w") else 1
    return int(match[1]) * factor * (8 if unit.endswith("w") else 1)


def parse_seconds(text: str) -> float | None:
    """Seconds from ``HH:MM:SS`` (or plain seconds); None if unreadable.

    >>> parse_seconds("00:03:00"), parse_seconds("25:01:01"), parse_seconds("90"), parse_seconds("")
    (180.0, 90061.0, 90.0, None)
    """
    parts = text.strip().split(":")
    if not parts or not all(p.isdigit() for p in parts) or len(parts) > 3:
        return None
    seconds = 0
    for part in parts:
        seconds = seconds * 60 + int(part)
    return float(seconds)


def _hosts(exec_host: str) -> tuple[str, ...]:
    """Hosts of ``node01/0*2+node02/0*2`` (PBS) or ``node01/0-1+node02/2-3`` (Torque)."""
    hosts = [part.split("/", 1)[0] for part in exec_host.split("+") if part.strip()]
    return tuple(dict.fromkeys(h.strip() for h in hosts if h.strip()))


def _int(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


# -- the queue view ----------------------------------------------------------------------


def queue_entries(
    records: Iterable[Record],
    mapper: Callable[[Mapping[str, str]], Element],
    times: Callable[[str], float | None],
    user: str | None,
    now: float,
) -> list[QueueEntry]:
    """The unfinished jobs and array elements among ``records`` (``user``'s, or
    everybody's for None), one row each; an array's own record is left out when its
    elements are listed."""
    entries = []
    for job_id, attrs in records:
        owner = attrs.get("Job_Owner", "").partition("@")[0]
        if user is not None and owner != user:
            continue
        key, index = job_key(job_id)
        if index is None and "[]" in job_id and attrs.get("job_state") in ("B", "R"):
            continue  # its running elements are rows of their own
        state, _, reason = mapper(attrs)
        if state.is_terminal:
            continue
        started = times(attrs.get("stime") or attrs.get("start_time") or "")
        entries.append(
            QueueEntry(
                native_id=key,
                tasks=None if index is None and "[]" not in job_id else str(index or ""),
                display_id=job_id.partition(".")[0],
                name=attrs.get("Job_Name", ""),
                user=owner,
                state=state,
                native_state=attrs.get("job_state", ""),
                elapsed_s=None if started is None else max(0, round(now - started)),
                nodes=",".join(_hosts(attrs.get("exec_host", ""))) or None,
                queue=attrs.get("queue") or None,
                reason=reason,
            )
        )
    return entries
