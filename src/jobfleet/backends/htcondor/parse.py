"""HTCondor's command output, read by pure functions: output (and a poll's context) in,
records out. Nothing here runs a command or keeps state between calls.

The formats (docs/htcondor-notes.md, fixtures in ``tests/backends/htcondor/fixtures/``):
``condor_submit`` prints ``N job(s) submitted to cluster C.`` after any warnings;
``condor_q -json`` and ``condor_history -json`` print a JSON array of job ads, or
NOTHING when no job matched (not ``[]``); expressions print as ``"\\/Expr(...)\\/"``
strings (``MemoryUsage`` is one). The user job event log is read by :mod:`.eventlog`.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Mapping
from typing import Any

from jobfleet.backends.base import PollTarget, QueueEntry
from jobfleet.backends.command import Element, PollContext, Seen, command_failed
from jobfleet.backends.htcondor import reasons
from jobfleet.backends.htcondor.submitfile import WALLTIME_ATTR
from jobfleet.errors import CommandError
from jobfleet.runner import CommandResult
from jobfleet.states import JobState

__all__ = [
    "AFTER_ATTR",
    "ATTRIBUTES",
    "INDEX_ATTR",
    "STATUS",
    "TRANSIENT_SUBMIT",
    "ad_index",
    "is_named",
    "map_ad",
    "parse_ads",
    "parse_find_by_name",
    "parse_history",
    "parse_queue",
    "parse_queue_list",
    "parse_submit",
]

log = logging.getLogger(__name__)

#: The attributes jobfleet's submit files set: the user's array index of each proc,
#: and the clusters a held job waits for.
INDEX_ATTR = "JobfleetIndex"
AFTER_ATTR = "JobfleetAfter"

#: What every status and accounting call asks for (``-attributes``).
ATTRIBUTES = (
    "ClusterId",
    "ProcId",
    "JobStatus",
    "ExitCode",
    "ExitBySignal",
    "ExitSignal",
    "HoldReason",
    "HoldReasonCode",
    "HoldReasonSubCode",
    "LastHoldReason",
    "LastHoldReasonCode",
    "LastHoldReasonSubCode",
    "RemoveReason",
    "JobBatchName",
    "Owner",
    "QDate",
    "JobStartDate",
    "JobCurrentStartDate",
    "CompletionDate",
    "EnteredCurrentStatus",
    "RemoteWallClockTime",
    "RemoteUserCpu",
    "RemoteSysCpu",
    "ResidentSetSize",
    "ResidentSetSize_RAW",
    "RemoteHost",
    "LastRemoteHost",
    "JobMaterializeNextProcId",
    INDEX_ATTR,
    AFTER_ATTR,
    WALLTIME_ATTR,
)

# JobStatus codes, to jobfleet's states. Source: the job ClassAd attributes reference,
# JobStatus (docs/classad-attributes/job-classad-attributes.rst): 1 Idle, 2 Running,
# 3 Removed, 4 Completed, 5 Held, 6 Transferring Output, 7 Suspended. 3 and 4 are read
# by :func:`map_ad` (removed: by whom or by which policy; completed: the exit code).
STATUS: dict[int, JobState] = {
    1: JobState.PENDING,  # idle: waiting for a match
    2: JobState.RUNNING,
    3: JobState.CANCELLED,  # removed (condor_rm, or a periodic_remove policy)
    4: JobState.COMPLETED,  # completed: ExitCode says whether it succeeded
    5: JobState.PENDING,  # held: it runs again only once released
    6: JobState.RUNNING,  # transferring output: the job has exited, HTCondor copies files
    7: JobState.RUNNING,  # suspended: it keeps its slot
}
#: HoldReasonCode 15, SubmittedOnHold (docs/codes-other-values/hold-table.rst).
HOLD_SUBMITTED = 15

TRANSIENT_SUBMIT = re.compile(
    r"Failed to connect to (?:local )?queue manager|Can't find address of (?:local )?schedd|"
    r"timed out|timeout|Connection refused|try again|CEDAR",
    re.IGNORECASE,
)
_SUBMITTED = re.compile(r"^(\d+) job\(s\) submitted to cluster (\d+)\.$", re.MULTILINE)


def parse_submit(result: CommandResult) -> str:
    """The cluster id in ``condor_submit``'s ``N job(s) submitted to cluster C.``
    (after any ``WARNING:`` lines)."""
    found = _SUBMITTED.findall(result.stdout)
    if len(found) != 1:
        raise CommandError(
            result.argv, f"condor_submit printed no single cluster id: {result.stdout!r}"
        )
    return str(found[0][1])


def parse_ads(result: CommandResult) -> list[dict[str, Any]]:
    """The job ads of a ``-json`` answer; CommandError when it failed or is unreadable.

    No ad matched: the command printed nothing at all.
    """
    if not result.ok:
        raise command_failed(result)
    text = result.stdout.strip()
    if not text:
        return []
    try:
        ads = json.loads(text)
    except ValueError as exc:
        raise CommandError(
            result.argv, f"{result.argv[0]} printed unreadable JSON: {exc}"
        ) from None
    if not isinstance(ads, list) or not all(isinstance(ad, dict) for ad in ads):
        raise CommandError(result.argv, f"{result.argv[0]} printed JSON that is no list of ads")
    return ads


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None


#: How a proc held for its dependencies is described (:func:`held_reason`).
_WAITING = "waiting for job(s) "


def is_waiting(reason: str | None) -> bool:
    """Whether ``reason`` is :func:`held_reason`'s for a proc jobfleet held itself."""
    return bool(reason) and str(reason).startswith(_WAITING)


def held_reason(ad: Mapping[str, Any]) -> str:
    """Why a held job waits, in HTCondor's words, and what releases it."""
    after = ad.get(AFTER_ATTR)
    if _int(ad.get("HoldReasonCode")) == HOLD_SUBMITTED and isinstance(after, str) and after:
        jobs = ", ".join(after.split())
        return f"{_WAITING}{jobs} to end (the next jobfleet poll releases it)"
    job = f"{ad.get('ClusterId')}.{ad.get('ProcId')}"
    why = reasons.held(ad.get("HoldReason"), _int(ad.get("HoldReasonCode")))
    return f"{why}; `condor_release {job}` once fixed, or jobfleet cancel"


def map_ad(ad: Mapping[str, Any], *, in_queue: bool) -> Element:
    """The state, exit code and reason of one job ad.

    Completed (4) is a success only with ``ExitCode == 0`` and not ``ExitBySignal``;
    removed (3) is out of memory when the periodic_remove jobfleet set fired on a job
    held for its memory (HoldReasonCode 34, kept as LastHoldReasonCode once removed), a
    time-out when it fired otherwise (its RemoveReason quotes the walltime expression),
    else cancelled, by whom the RemoveReason says (:mod:`.reasons`). A removed job still
    in the queue is being stopped: running until it leaves. A held job (5) is pending,
    one held for its memory too until that periodic_remove ends it (the schedd
    evaluates it every PERIODIC_EXPR_INTERVAL).
    """
    status = _int(ad.get("JobStatus"))
    if status == 4:
        if ad.get("ExitBySignal") is True:
            signal = _int(ad.get("ExitSignal"))
            code = 128 + signal if signal is not None else None
            return JobState.FAILED, code, f"killed by signal {signal}"
        code = _int(ad.get("ExitCode"))
        if code is None:
            return JobState.UNKNOWN, None, "completed without an exit code"
        return (JobState.COMPLETED if code == 0 else JobState.FAILED), code, None
    if status == 3:
        if in_queue:
            return JobState.RUNNING, None, "being removed"
        last = "LastHoldReasonCode" in ad
        return reasons.removed(
            _str(ad.get("RemoveReason")),
            walltime_s=_int(ad.get(WALLTIME_ATTR)),
            hold_code=ad.get("LastHoldReasonCode" if last else "HoldReasonCode"),
            hold_subcode=ad.get("LastHoldReasonSubCode" if last else "HoldReasonSubCode"),
            hold_reason=_str(ad.get("LastHoldReason" if last else "HoldReason")),
        )
    if status == 5:
        return JobState.PENDING, None, held_reason(ad)
    state = STATUS.get(status) if status is not None else None
    if state is None:
        log.warning("unknown HTCondor JobStatus %r; reporting it as unknown", ad.get("JobStatus"))
        return JobState.UNKNOWN, None, f"JobStatus {ad.get('JobStatus')!r}"
    return state, None, {6: "transferring output", 7: "suspended"}.get(status or 0)


def ad_index(ad: Mapping[str, Any], target: PollTarget | None) -> tuple[bool, int | None]:
    """(whether the ad is one of ``target``'s elements, its index): the user's index
    is ``JobfleetIndex``, else the ``ProcId``-th of the target's indices."""
    proc = _int(ad.get("ProcId"))
    if target is None or target.indices is None:
        return proc == 0, None
    index = _int(ad.get(INDEX_ATTR))
    if index is None and proc is not None and 0 <= proc < len(target.indices):
        index = target.indices[proc]
    return index is not None and index in target.indices, index


def _read(ads: Iterable[Mapping[str, Any]], ctx: PollContext, *, in_queue: bool) -> Seen:
    wanted = set(ctx.ids)
    seen: Seen = {}
    for ad in ads:
        cluster = str(ad.get("ClusterId"))
        if cluster not in wanted:
            continue
        ok, index = ad_index(ad, ctx.targets.get(cluster))
        if ok:
            seen.setdefault(cluster, {})[index] = map_ad(ad, in_queue=in_queue)
    return seen


def parse_queue(result: CommandResult, ctx: PollContext) -> tuple[Seen, dict[str, list[str]]]:
    """States of the jobs ``ctx.ids`` from ``condor_q -json``, and the clusters held
    for dependencies whose predecessors all left the queue (or completed in it), each
    with its predecessors: the ones to release (:func:`releasable`).

    Array elements whose proc was not materialized yet (``max_materialize``: procs
    from the cluster's ``JobMaterializeNextProcId`` on) are pending.
    """
    ads = parse_ads(result)
    seen = _read(ads, ctx, in_queue=True)
    for cluster, elements in seen.items():
        target = ctx.targets.get(cluster)
        if target is None or target.indices is None:
            continue
        nexts = [
            _int(ad.get("JobMaterializeNextProcId"))
            for ad in ads
            if str(ad.get("ClusterId")) == cluster
        ]
        first = min((n for n in nexts if n is not None), default=None)
        if first is None:
            continue
        for index in target.indices[first:]:
            elements.setdefault(index, (JobState.PENDING, None, "not materialized yet"))
    return seen, releasable(ads)


def releasable(ads: Iterable[Mapping[str, Any]]) -> dict[str, list[str]]:
    """Clusters jobfleet submitted held (``JobfleetAfter``) whose predecessors have all
    ended, each with its predecessors: none of their procs is in the queue in a state
    other than completed. (A predecessor between two late materializations shows no
    proc either: :func:`still_materializing` tells those apart, from its factory.)"""
    ads = list(ads)
    waiting = {
        str(ad.get("ClusterId")): str(ad.get(AFTER_ATTR)).split()
        for ad in ads
        if _int(ad.get("JobStatus")) == 5
        and _int(ad.get("HoldReasonCode")) == HOLD_SUBMITTED
        and isinstance(ad.get(AFTER_ATTR), str)
    }
    unfinished = {str(ad.get("ClusterId")) for ad in ads if _int(ad.get("JobStatus")) != 4}
    ready = sorted(
        (c for c, after in waiting.items() if not unfinished & set(after)), key=_cluster_key
    )
    return {c: waiting[c] for c in ready}


def still_materializing(ads: Iterable[Mapping[str, Any]]) -> set[str]:
    """Clusters of a ``condor_q -factory -json`` answer (cluster ads of late-materialization
    factories) with procs still to make: ``JobMaterializeNextProcId`` below
    ``TotalSubmitProcs``, or either missing (cannot tell: still making). A factory that
    is gone (all its procs made and left, or the cluster removed) is not listed."""
    busy = set()
    for ad in ads:
        made, total = _int(ad.get("JobMaterializeNextProcId")), _int(ad.get("TotalSubmitProcs"))
        if made is None or total is None or made < total:
            busy.add(str(ad.get("ClusterId")))
    return busy


def is_named(ad: Mapping[str, Any], target: PollTarget | None) -> bool:
    """Whether ``ad`` may be ``target``'s: the names agree, or one is not known."""
    name = ad.get("JobBatchName")
    return target is None or not target.name or not isinstance(name, str) or name == target.name


def _cluster_key(cluster: str) -> tuple[int, str]:
    return (int(cluster), "") if cluster.isdigit() else (-1, cluster)


def parse_history(result: CommandResult, ctx: PollContext) -> Seen:
    """How the jobs ``ctx.ids`` ended, from ``condor_history -json`` (newest first: the
    first record of a proc wins; a proc's later runs replace its ad, not add one).
    An ad whose ``JobBatchName`` is not the target's name is another job's: cluster ids
    start again after a schedd lost its job queue, the history keeps the old ones."""
    ads = [
        ad for ad in parse_ads(result) if is_named(ad, ctx.targets.get(str(ad.get("ClusterId"))))
    ]
    seen: Seen = {}
    for cluster, elements in _read(reversed(ads), ctx, in_queue=False).items():
        seen[cluster] = elements
    return seen


def parse_find_by_name(result: CommandResult, name: str) -> str | None:
    """The cluster of the job whose ``JobBatchName`` is ``name``; None for none."""
    for ad in parse_ads(result):
        if ad.get("JobBatchName") == name:
            return str(ad.get("ClusterId"))
    return None


# -- the queue view ---------------------------------------------------------------------

_LETTERS = {1: "I", 2: "R", 3: "X", 4: "C", 5: "H", 6: ">", 7: "S"}


def parse_queue_list(result: CommandResult, now: float) -> list[QueueEntry]:
    """One row per proc of ``condor_q -json``; ``now`` (Unix time) for elapsed times."""
    entries = []
    for ad in parse_ads(result):
        cluster, proc = str(ad.get("ClusterId")), _int(ad.get("ProcId")) or 0
        status = _int(ad.get("JobStatus"))
        state, _, reason = map_ad(ad, in_queue=True)
        index = _int(ad.get(INDEX_ATTR))
        started = _int(ad.get("JobCurrentStartDate"))
        host = str(ad.get("RemoteHost") or "").rpartition("@")[2]
        entries.append(
            QueueEntry(
                native_id=cluster,
                tasks=None if index is None else str(index),
                display_id=f"{cluster}.{proc}",
                name=str(ad.get("JobBatchName") or ""),
                user=str(ad.get("Owner") or ""),
                state=state,
                native_state=_LETTERS.get(status or 0, str(ad.get("JobStatus"))),
                elapsed_s=max(0, round(now - started)) if started and status == 2 else None,
                nodes=host or None,
                reason=reason,
            )
        )
    return entries
