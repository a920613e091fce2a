"""What local jobs used, as the agent measured it: its queue's rows to :class:`Usage`.

The agent reaps each job script (its child) with ``os.wait4``, whose resource usage
covers the script and the processes it waited for (its command): the peak resident
set size and user plus system CPU time. Times are the queue's (enqueued, started,
ended); the host is this one. A job the agent adopted from an earlier agent (not its
child) has times but no memory or CPU time.
"""

from __future__ import annotations

import socket
from collections.abc import Sequence
from dataclasses import replace

from jobfleet.backends.base import NativeStatus
from jobfleet.backends.local.queue import NO_INDEX
from jobfleet.usage import Usage

__all__ = ["UsageRow", "add_usage", "row_usage"]

#: (job, idx, submitted_at, started_at, ended_at, max_rss, cpu_time) of an ended task.
UsageRow = tuple[int, int, float, float | None, float | None, int | None, float | None]


def row_usage(row: UsageRow, host: str) -> Usage:
    """The usage of one ended task."""
    _, _, submitted, started, ended, max_rss, cpu_time = row
    ran = started is not None
    wall = round(ended - started, 6) if started is not None and ended is not None else None
    return Usage(
        submitted_at=submitted,
        started_at=started,
        ended_at=ended,
        hosts=(host,) if ran else None,
        max_memory_bytes=max_rss,
        cpu_time_s=cpu_time,
        wall_time_s=wall,
    )


def add_usage(result: dict[str, NativeStatus], rows: Sequence[UsageRow]) -> None:
    """Give each status of ``result`` (by queue job id) what its tasks used."""
    host = socket.gethostname().split(".")[0] or "localhost"
    by_job: dict[int, dict[int, Usage]] = {}
    for row in rows:
        by_job.setdefault(row[0], {})[row[1]] = row_usage(row, host)
    for job, used in by_job.items():
        status = result.get(str(job))
        if status is None:
            continue
        single = used.pop(NO_INDEX, None)
        result[str(job)] = replace(status, usage=single, element_usage=used)
