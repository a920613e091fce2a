"""What local jobs used, as the agent measured it: its queue's rows to :class:`Usage`.

The agent reaps each job script (its child) with ``os.wait4``, whose resource usage
covers the script and the processes it waited for (its command): the peak resident
set size and user plus system CPU time. Times are the queue's (enqueued, started,
ended); the host is this one. A job the agent adopted from an earlier agent (not its
child) has times but no memory or CPU time.
"""

from __future__ import annotations

import socket
from collections.abc import Mapping, Sequence
from dataclasses import replace

from jobfleet.backends.base import NativeStatus
from jobfleet.backends.local.queue import NO_INDEX
from jobfleet.usage import Usage

__all__ = ["UsageRow", "add_usage", "row_usage"]

#: (job, idx, started_at, ended_at, max_rss, cpu_time) of an ended task.
UsageRow = tuple[int, int, float | None, float | None, int | None, float | None]


def row_usage(row: UsageRow, submitted: float, hosts: tuple[str, ...]) -> Usage:
    """The usage of one ended task of a job submitted at ``submitted``, run on ``hosts``
    (this one)."""
    _, _, started, ended, max_rss, cpu_time = row
    if started is None:  # never ran: no host, no wall time
        return Usage(submitted, None, ended, None, max_rss, cpu_time, None)
    wall = round(ended - started, 6) if ended is not None else None
    return Usage(submitted, started, ended, hosts, max_rss, cpu_time, wall)


def add_usage(
    result: dict[str, NativeStatus], rows: Sequence[UsageRow], submitted: Mapping[int, float]
) -> None:
    """Give each status of ``result`` (by queue job id) what its tasks used
    (``submitted``: when each job was)."""
    hosts = (socket.gethostname().split(".")[0] or "localhost",)
    by_job: dict[int, dict[int, Usage]] = {}
    for row in rows:
        by_job.setdefault(row[0], {})[row[1]] = row_usage(row, submitted[row[0]], hosts)
    for job, used in by_job.items():
        status = result.get(str(job))
        if status is None:
            continue
        single = used.pop(NO_INDEX, None)
        result[str(job)] = replace(status, usage=single, element_usage=used)
