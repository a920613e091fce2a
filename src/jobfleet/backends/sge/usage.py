"""What Grid Engine jobs used, from the poll's ``qacct -j`` records: pure functions.

Each record (one per job, or per array task; a parallel job's ``qrsh -inherit`` tasks
have their own, see :func:`~jobfleet.backends.sge.parse.last_run`) gives ``qsub_time``,
``start_time`` and ``end_time`` (ctime form, the cluster's local time), ``hostname``
(the host of that task), ``ru_utime`` + ``ru_stime`` and ``ru_wallclock``. Peak memory
is ``maxvmem`` (virtual memory, sampled by execd); a job too short to be sampled records
0, and then the kernel's ``ru_maxrss`` of the job's processes is taken, which qacct
8.1.9 prints in KiB labelled as bytes (``207.945KB`` for 208 MiB: fixtures/8.1.9/usage-qacct).
"""

from __future__ import annotations

import dataclasses

from jobfleet.backends.command import PollContext, Used
from jobfleet.backends.sge.parse import accounting_records, parse_ctime
from jobfleet.nativeunits import parse_qacct_memory, parse_sge_seconds
from jobfleet.runner import CommandResult
from jobfleet.usage import Usage

__all__ = ["parse_ctime", "parse_usage", "record_usage", "run_usage"]


def parse_usage(result: CommandResult, ctx: PollContext) -> Used:
    """What the jobs ``ctx.ids`` used, from ``qacct -j``'s answer."""
    used: Used = {}
    for number, index, run in accounting_records(result, ctx):
        usage = run_usage(run)
        if not usage.empty:
            used.setdefault(number, {})[index] = usage
    return used


def run_usage(run: list[dict[str, str]]) -> Usage:
    """The usage of one run: its master's record (``run[0]``: times, wall time) with
    the CPU time of every task of a parallel job summed, the largest task's peak
    memory (each record is one task's processes: the same as SLURM's MaxRSS), and every
    host a task ran on, the master's first."""
    master = record_usage(run[0])
    if len(run) == 1:
        return master
    tasks = [record_usage(record) for record in run]
    cpu = [t.cpu_time_s for t in tasks]
    peaks = [t.max_memory_bytes for t in tasks if t.max_memory_bytes is not None]
    hosts = [h for t in tasks for h in t.hosts or ()]
    return dataclasses.replace(
        master,
        cpu_time_s=round(sum(c for c in cpu if c is not None), 6)
        if all(c is not None for c in cpu)
        else master.cpu_time_s,
        max_memory_bytes=max(peaks) if peaks else None,
        hosts=tuple(dict.fromkeys(hosts)) or master.hosts,
    )


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
