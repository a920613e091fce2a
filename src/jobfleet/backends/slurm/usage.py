"""What a SLURM job used, from its row in the poll's one sacct call (read in the same
pass as its state: :func:`.accounting.parse_accounting`).

The job's (or array element's) own row gives Submit, Start, End, NodeList, TotalCPU
(SLURM sums its steps there) and Elapsed; MaxRSS is only on its steps (``.batch``,
``.extern``, ``.0``...), which is why the poll's sacct lists steps too (no
``--allocations``): the peak is the largest over the steps. Memory is sampled
(``JobAcctGatherFrequency``), so a step's MaxRSS may appear a poll or two after the
job ended (see :attr:`jobfleet.backends.base.Capabilities.usage_settles_s`).
"""

from __future__ import annotations

from collections.abc import Sequence

from jobfleet.backends.usage import Used
from jobfleet.nativeunits import parse_slurm_cpu_time, parse_slurm_duration
from jobfleet.usage import Usage, expand_hostlist, new_usage, parse_local_time

__all__ = ["FIRST", "USAGE_COLUMNS", "WIDTH", "UsageRow", "job_usage", "used_by"]

#: The columns after ACCOUNTING_FORMAT's first five (recordings made before they were
#: asked for have none of them: no usage is read from those).
#: MaxRSS stays third from the end: a step row is read from its end (a test checks).
USAGE_COLUMNS = ("Submit", "Start", "End", "NodeList", "MaxRSS", "TotalCPU", "Elapsed")
FIRST = 5  # JobID,JobIDRaw,State,ExitCode,Timelimit
#: The number of columns of a row that has them all.
WIDTH = FIRST + len(USAGE_COLUMNS)

#: A job's (or element's) native id, index, sacct's id and its row's usage columns,
#: unsplit (a list per row kept alive costs the garbage collector more than splitting
#: later): read once every step is in (a step's MaxRSS comes after its job's row).
UsageRow = tuple[str, int | None, str, str]


def job_usage(columns: Sequence[str], peak: int | None) -> Usage:
    """What a job used, from its sacct row's USAGE_COLUMNS (``columns``; the row's own
    MaxRSS is unused) and the largest MaxRSS of its steps (``peak``, None for none)."""
    submit, start, end, nodes, _, cpu, elapsed = columns
    started = parse_local_time(start)
    hosts = expand_hostlist(nodes) if started is not None else ()
    ended = parse_local_time(end)
    wall = parse_slurm_duration(elapsed) if started is not None else None
    return Usage(
        submitted_at=parse_local_time(submit),
        started_at=started,
        ended_at=ended,
        hosts=hosts or None,
        max_memory_bytes=peak,
        # A job still running has no CPU time in accounting yet (00:00:00).
        cpu_time_s=parse_slurm_cpu_time(cpu) if ended is not None else None,
        wall_time_s=float(wall) if wall is not None and ended is not None else None,
    )


def used_by(rows: Sequence[UsageRow], peaks: dict[str, int]) -> Used:
    """What each job or element used: its row's usage columns and its steps' peak
    (``peaks``: sacct's id -> largest MaxRSS of its steps).

    :func:`job_usage`'s reading, inlined: thousands of rows when as many jobs end in
    one poll (bench/poll_cost.py --every 2); a test holds the two to the same values.
    """
    used: Used = {}
    for base, index, job_id, tail in rows:
        columns = tail.split("|")
        if len(columns) != len(USAGE_COLUMNS):
            continue  # a recording made before these columns were asked for
        submit, start, end, nodes, _, cpu_text, elapsed = columns
        submitted = parse_local_time(submit)
        started = parse_local_time(start)
        ended = parse_local_time(end)
        peak = peaks.get(job_id)
        if started is None:
            if submitted is None and ended is None and peak is None:
                continue  # nothing known
            hosts = wall = None
        else:
            hosts = expand_hostlist(nodes) or None
            wall = parse_slurm_duration(elapsed)
        if ended is None:
            cpu = wall_s = None  # a job still running has no CPU time yet (00:00:00)
        else:
            cpu = parse_slurm_cpu_time(cpu_text)
            wall_s = float(wall) if wall is not None else None
        usage = new_usage(submitted, started, ended, hosts, peak, cpu, wall_s)
        by_index = used.get(base)
        if by_index is None:
            used[base] = {index: usage}
        else:
            by_index[index] = usage
    return used
