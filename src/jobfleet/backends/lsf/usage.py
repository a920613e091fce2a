"""What LSF jobs used, from the poll's bjobs records and bhist -l / bacct -l records:
pure functions.

bjobs gives ``MAX_MEM`` (``5.2 Gbytes``), ``CPU_USED`` (``0.1 second(s)``, or
``00:00:01`` under ``-hms``), ``EXEC_HOST`` (``4*hostB`` or ``hostA:hostA``),
``RUN_TIME`` and times without a year or seconds (``Dec 28 19:56``, a finish time
followed by `` L`` or another flag): the year is the latest that puts the time in
the past.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable

from jobfleet.backends.command import PollContext, Used
from jobfleet.backends.lsf.parse import history_records, queue_records
from jobfleet.runner import CommandResult
from jobfleet.usage import Usage

__all__ = [
    "history_usage",
    "parse_lsf_memory",
    "parse_lsf_seconds",
    "parse_lsf_time",
    "queue_usage",
    "record_usage",
]

_MEMORY_RE = re.compile(r"([0-9]+(?:\.[0-9]+)?)\s*([KMGTP]?)(?:bytes?|Bytes?|B)?", re.I)
_POWERS = {"": 2**10, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40, "P": 2**50}
_MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
_TIME_RE = re.compile(
    r"(?:[A-Z][a-z]{2}\s+)?([A-Z][a-z]{2})\s+([0-9]{1,2})\s+([0-9]{1,2}):([0-9]{2})(?::([0-9]{2}))?(?:\s+([0-9]{4}))?"
)
_STAMP = re.compile(r"^([A-Z][a-z]{2} [A-Z][a-z]{2} [ 0-9][0-9] [0-9:]{8}): (.*)$")


def parse_lsf_memory(text: str) -> int | None:
    """Bytes from ``5.2 Gbytes``, ``522 MBytes``, ``5M`` (1024-based; a bare number is KB).

    >>> parse_lsf_memory("2 Mbytes"), parse_lsf_memory("-"), parse_lsf_memory("5M")
    (2097152, None, 5242880)
    """
    match = _MEMORY_RE.fullmatch(text.strip())
    if match is None:
        return None
    return int(float(match[1]) * _POWERS[match[2].upper()])


def parse_lsf_seconds(text: str) -> float | None:
    """Seconds from ``0.1 second(s)``, ``16038 second(s)``, ``00:00:01`` or ``1.7``.

    >>> parse_lsf_seconds("31 second(s)"), parse_lsf_seconds("01:00:05"), parse_lsf_seconds("")
    (31.0, 3605.0, None)
    """
    text = text.strip().removesuffix("second(s)").removesuffix("seconds").strip()
    if re.fullmatch(r"[0-9]+(?:\.[0-9]+)?", text):
        return float(text)
    parts = text.split(":")
    if len(parts) == 3 and all(p.replace(".", "", 1).isdigit() for p in parts):
        return float(parts[0]) * 3600 + float(parts[1]) * 60 + float(parts[2])
    return None


def parse_lsf_time(text: str, now: float) -> float | None:
    """Unix time from bjobs' ``Dec 28 19:56 L`` or bhist's ``Sun Jan 10 17:47:38`` (local
    time); the year, when missing, is the latest that puts it before ``now``."""
    match = _TIME_RE.match(text.strip())
    if match is None or match[1] not in _MONTHS:
        return None
    month, day = _MONTHS.index(match[1]) + 1, int(match[2])
    hour, minute, second = int(match[3]), int(match[4]), int(match[5] or 0)
    years = (
        [int(match[6])]
        if match[6]
        else [time.localtime(now).tm_year, time.localtime(now).tm_year - 1]
    )
    for year in years:
        try:
            at = time.mktime((year, month, day, hour, minute, second, 0, 0, -1))
        except (OverflowError, ValueError):
            return None
        if match[6] or at <= now + 86400:
            return at
    return None


def _hosts(text: str) -> tuple[str, ...] | None:
    """Hosts of ``4*hostB``, ``hostA:hostA`` or ``hostA hostB``, each once, in order."""
    names = [w.split("*")[-1] for w in re.split(r"[:\s]+", text.strip()) if w and w != "-"]
    return tuple(dict.fromkeys(names)) or None


def record_usage(record: dict[str, str], now: float) -> Usage:
    """What one bjobs record says its job used."""
    started = parse_lsf_time(record.get("START_TIME", ""), now)
    return Usage(
        submitted_at=parse_lsf_time(record.get("SUBMIT_TIME", ""), now),
        started_at=started,
        ended_at=parse_lsf_time(record.get("FINISH_TIME", ""), now) if started else None,
        hosts=_hosts(record.get("EXEC_HOST", "")),
        max_memory_bytes=parse_lsf_memory(record.get("MAX_MEM", "")),
        cpu_time_s=parse_lsf_seconds(record.get("CPU_USED", "")),
        wall_time_s=parse_lsf_seconds(record.get("RUN_TIME", "")) if started else None,
    )


def queue_usage(
    result: CommandResult, ctx: PollContext, text_format: bool = False, now: float | None = None
) -> Used:
    """What the ended jobs among ``ctx.ids`` used, from the poll's bjobs answer."""
    now = time.time() if now is None else now
    wanted = set(ctx.ids)
    used: Used = {}
    for record in queue_records(result, text_format):
        job_id = record.get("JOBID", "")
        if job_id not in wanted or record.get("STAT") not in ("DONE", "EXIT", "PDONE", "PERR"):
            continue
        target = ctx.targets.get(job_id)
        index_text = record.get("JOBINDEX", "0")
        index = int(index_text) if index_text.isdigit() and int(index_text) > 0 else None
        if target is not None and target.indices is None:
            index = None
        usage = record_usage(record, now)
        if not usage.empty:
            used.setdefault(job_id, {})[index] = usage
    return used


def _history_usage(lines: Iterable[str], now: float) -> Usage:
    submitted = started = ended = cpu = memory = None
    hosts: tuple[str, ...] | None = None
    for line in lines:
        stamp = _STAMP.match(line)
        if stamp is not None:
            at, event = parse_lsf_time(stamp[1], now), stamp[2]
            if event.startswith("Submitted"):
                submitted = at
            elif event.startswith(("Dispatched", "Started")):
                started = at
                found = re.findall(r"<([^<>]+)>", event.split("Effective RES_REQ")[0])
                hosts = _hosts(" ".join(h for h in found if not h.startswith("/"))) or hosts
            elif event.startswith(("Done successfully", "Exited")):
                ended = at
        if (match := re.search(r"CPU time used is ([0-9.]+) seconds?", line)) is not None:
            cpu = float(match[1])
        if (match := re.search(r"MAX MEM: ([0-9.]+ *[KMGTP]?bytes)", line, re.I)) is not None:
            memory = parse_lsf_memory(match[1])
    return Usage(
        submitted_at=submitted,
        started_at=started,
        ended_at=ended if started else None,
        hosts=hosts,
        max_memory_bytes=memory,
        cpu_time_s=cpu,
        wall_time_s=ended - started if ended is not None and started is not None else None,
    )


def history_usage(result: CommandResult, ctx: PollContext, now: float | None = None) -> Used:
    """What the jobs ``ctx.ids`` used, from ``bhist -l`` or ``bacct -l``."""
    now = time.time() if now is None else now
    wanted = set(ctx.ids)
    used: Used = {}
    if not result.ok:
        return used
    for job_id, index, lines in history_records(result.stdout):
        if job_id not in wanted:
            continue
        target = ctx.targets.get(job_id)
        if target is not None and target.indices is None:
            index = None
        usage = _history_usage(lines, now)
        if not usage.empty:
            used.setdefault(job_id, {})[index] = usage
    return used
