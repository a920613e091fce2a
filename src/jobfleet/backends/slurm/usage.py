"""What SLURM jobs used, from the poll's one sacct call: a pure function of its output.

The job's (or array element's) own row gives Submit, Start, End, NodeList, TotalCPU
(SLURM sums its steps there) and Elapsed; MaxRSS is only on its steps (``.batch``,
``.extern``, ``.0``...), which is why the poll's sacct lists steps too (no
``--allocations``): the peak is the largest over the steps. Memory is sampled
(``JobAcctGatherFrequency``), so a step's MaxRSS may appear a poll or two after the
job ended (see :attr:`jobfleet.backends.base.Capabilities.usage_settles_s`).
"""

from __future__ import annotations

from jobfleet.backends.command import PollContext, Used
from jobfleet.backends.slurm.parse import parse_job_id
from jobfleet.errors import SpecError
from jobfleet.runner import CommandResult
from jobfleet.units import parse_slurm_cpu_time, parse_slurm_duration, parse_slurm_rss
from jobfleet.usage import Usage, expand_hostlist, parse_local_time

__all__ = ["USAGE_COLUMNS", "parse_usage"]

#: The columns after ACCOUNTING_FORMAT's first five (recordings made before they were
#: asked for have none of them: no usage is read from those).
#: MaxRSS stays third from the end: a step row is read from its end (a test checks).
USAGE_COLUMNS = ("Submit", "Start", "End", "NodeList", "MaxRSS", "TotalCPU", "Elapsed")
_FIRST = 5  # JobID,JobIDRaw,State,ExitCode,Timelimit
_WIDTH = _FIRST + len(USAGE_COLUMNS)


def parse_usage(result: CommandResult, ctx: PollContext) -> Used:
    """What the jobs ``ctx.ids`` used, from ``sacct --format=<ACCOUNTING_FORMAT>``
    (nothing from a failed call: the states' parser says why)."""
    if not result.ok:
        return {}
    wanted = set(ctx.ids)
    rows: dict[str, str] = {}  # sacct's id of the job or element -> its row
    peaks: dict[str, int] = {}  # the same id -> the largest MaxRSS of its steps
    for line in result.stdout.splitlines():
        job_id = line[: line.find("|")]
        if job_id.isdigit():  # a single job's own row: the common case, kept cheap
            if job_id in wanted:
                rows[job_id] = line
            continue
        owner, dot, _ = job_id.partition(".")
        if not dot:
            rows[job_id] = line  # an element's row ("5_3"), read below
            continue
        # A step: only its MaxRSS counts, the third column from the end.
        if line.count("|") < _WIDTH - 1:
            continue
        tail = line.rsplit("|", 3)
        if tail[1]:
            rss = parse_slurm_rss(tail[1])
            if rss is not None and rss > peaks.get(owner, -1):
                peaks[owner] = rss
    used: Used = {}
    for job_id, line in rows.items():
        fields = line.split("|")
        if len(fields) < _WIDTH:
            continue  # a recording made before these columns were asked for
        if job_id.isdigit():
            base, index = job_id, None
        else:
            try:
                base, indices = parse_job_id(job_id)
            except SpecError:
                continue
            if base not in wanted or indices is None or len(indices) != 1:
                continue  # not ours, or the waiting rest of an array ("5_[3-9]")
            index = indices[0]
        usage = _job_usage(fields, peaks.get(job_id))
        if not usage.empty:
            used.setdefault(base, {})[index] = usage
    return used


def _job_usage(fields: list[str], peak: int | None) -> Usage:
    submit, start, end, nodes, _, cpu, elapsed = fields[_FIRST:_WIDTH]
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
