"""What Grid Engine jobs used, from the poll's ``qacct -j`` records: pure functions.

Each record (one per job, or per array task) gives ``qsub_time``, ``start_time`` and
``end_time`` (ctime form, the cluster's local time), ``hostname`` (the master host of
a parallel job: qacct keeps no list of the others), ``ru_utime`` + ``ru_stime`` and
``ru_wallclock``. Peak memory is ``maxvmem`` (virtual memory, sampled by execd); a job
too short to be sampled records 0, and then the kernel's ``ru_maxrss`` of the job's
processes is taken, which qacct 8.1.9 prints in KiB labelled as bytes (``207.945KB``
for 208 MiB: fixtures/8.1.9/usage-qacct).
"""

from __future__ import annotations

import time

from jobfleet.backends.command import PollContext, Used
from jobfleet.backends.sge.parse import accounting_records
from jobfleet.runner import CommandResult
from jobfleet.units import parse_qacct_memory, parse_sge_seconds
from jobfleet.usage import Usage

__all__ = ["parse_ctime", "parse_usage", "record_usage"]


def parse_usage(result: CommandResult, ctx: PollContext) -> Used:
    """What the jobs ``ctx.ids`` used, from ``qacct -j``'s answer."""
    used: Used = {}
    for number, index, record in accounting_records(result, ctx):
        usage = record_usage(record)
        if not usage.empty:
            used.setdefault(number, {})[index] = usage
    return used


def record_usage(record: dict[str, str]) -> Usage:
    """The usage in one qacct record (its ``key value`` lines as a dict)."""
    started = parse_ctime(record.get("start_time", ""))
    ran = started is not None
    vmem = parse_qacct_memory(record.get("maxvmem", ""))
    rss = parse_qacct_memory(record.get("ru_maxrss", ""))
    peak = vmem if vmem else (rss * 1024 if rss else None)
    user = parse_sge_seconds(record.get("ru_utime", ""))
    system = parse_sge_seconds(record.get("ru_stime", ""))
    host = record.get("hostname", "").strip()
    return Usage(
        submitted_at=parse_ctime(record.get("qsub_time", "")),
        started_at=started,
        ended_at=parse_ctime(record.get("end_time", "")) if ran else None,
        hosts=(host,) if ran and host else None,
        max_memory_bytes=int(peak) if ran and peak is not None else None,
        cpu_time_s=round(user + system, 6)
        if ran and user is not None and system is not None
        else None,
        wall_time_s=parse_sge_seconds(record.get("ru_wallclock", "")) if ran else None,
    )


def parse_ctime(text: str) -> float | None:
    """Unix time from qacct's ``Sun Dec  6 12:16:08 2026`` (local time); None for
    ``-/-`` (never started) or anything unreadable.

    >>> parse_ctime("-/-") is None
    True
    """
    text = text.strip()
    if not text or not text[0].isalpha():
        return None
    try:
        return time.mktime(time.strptime(text, "%a %b %d %H:%M:%S %Y"))
    except ValueError:
        return None
