"""PBS Pro / OpenPBS's command output, read by pure functions: output (and a poll's
context) in, records out. The text form of ``qstat -f`` and the record-to-state step are
shared with Torque (:mod:`jobfleet.backends.torque.parse`), whose qstat prints the same form;
how a record reads (state, exit code, reason) is in :mod:`.outcome`.

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
from jobfleet.usage import Usage

__all__ = [
    "NO_RECORD",
    "REMOVED",
    "Record",
    "UnreadableJson",
    "ctime_text",
    "finished_ids",
    "job_key",
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


# -- records to elements ------------------------------------------------------------------


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
