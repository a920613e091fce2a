"""What HTCondor jobs used, from the poll's ``condor_history -json`` ads: pure functions.

Each ad (one per proc) gives ``QDate``, ``JobCurrentStartDate`` (the last run's start;
``JobStartDate`` is the first), ``CompletionDate`` (0 for a removed job: then
``EnteredCurrentStatus`` is when it left), ``LastRemoteHost`` (``slot1_2@host``),
``RemoteUserCpu`` + ``RemoteSysCpu`` and ``RemoteWallClockTime`` (seconds, summed over
runs), and the peak resident memory in KiB: ``ResidentSetSize_RAW`` as measured,
``ResidentSetSize`` rounded up by the schedd (1551120 shown as 1750000 in
fixtures/q-osg-8.8.10.json). ``MemoryUsage`` (MiB) is an expression over the rounded
value, which ``-json`` prints as text: not read.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jobfleet.backends.command import PollContext, Used
from jobfleet.backends.htcondor.parse import ad_index, is_named, parse_ads
from jobfleet.runner import CommandResult
from jobfleet.usage import Usage

__all__ = ["ad_usage", "parse_usage"]


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _time(value: object) -> float | None:
    number = _number(value)
    return number if number else None  # 0: never happened


def ad_usage(ad: Mapping[str, Any]) -> Usage:
    """The usage in one job ad."""
    started = _time(ad.get("JobCurrentStartDate")) or _time(ad.get("JobStartDate"))
    ran = started is not None
    ended = None
    if ad.get("JobStatus") in (3, 4):  # ended: removed jobs have CompletionDate 0
        ended = _time(ad.get("CompletionDate")) or _time(ad.get("EnteredCurrentStatus"))
    host = str(ad.get("LastRemoteHost") or ad.get("RemoteHost") or "").rpartition("@")[2]
    user, system = _number(ad.get("RemoteUserCpu")), _number(ad.get("RemoteSysCpu"))
    rss = _number(ad.get("ResidentSetSize_RAW"))
    if rss is None:
        rss = _number(ad.get("ResidentSetSize"))
    return Usage(
        submitted_at=_time(ad.get("QDate")),
        started_at=started,
        ended_at=ended,
        hosts=(host,) if ran and host else None,
        max_memory_bytes=int(rss * 1024) if ran and rss else None,
        cpu_time_s=round(user + system, 6)
        if ran and user is not None and system is not None
        else None,
        wall_time_s=_number(ad.get("RemoteWallClockTime")) if ran else None,
    )


def parse_usage(result: CommandResult, ctx: PollContext) -> Used:
    """What the jobs ``ctx.ids`` used, from ``condor_history -json``'s answer (newest
    record of a proc first: that one counts). As for the states, an ad of another job
    under a reused cluster id (its ``JobBatchName`` not the target's) is not read."""
    if not result.ok:
        return {}
    wanted = set(ctx.ids)
    used: Used = {}
    for ad in reversed(parse_ads(result)):
        cluster = str(ad.get("ClusterId"))
        if cluster not in wanted or not is_named(ad, ctx.targets.get(cluster)):
            continue
        ok, index = ad_index(ad, ctx.targets.get(cluster))
        usage = ad_usage(ad)
        if ok and not usage.empty:
            used.setdefault(cluster, {})[index] = usage
    return used
