"""SLURM's sacct output, read in one pass by a pure function: how each job ended (its
state, exit code and reason), whether a SIGKILL was for its memory, and what it used.

The poll's sacct lists each job's (or array element's) row, then its steps'
(``ID.batch``, ``ID.extern``, ``ID.0``; no ``--allocations``): the job's row says how
it ended, the steps carry MaxRSS (:mod:`.usage`) and the mark of a memory kill. Recorded
output in ``tests/backends/slurm/fixtures/22.05/`` (docs/slurm-notes.md).
"""

from __future__ import annotations

import logging
import re

from jobfleet.backends.command import Element, Ended, PollContext, Seen, Used, command_failed
from jobfleet.backends.slurm.parse import (
    ENDING,
    STOPPING,
    exit_code,
    named,
    parse_job_id,
    to_element,
)
from jobfleet.backends.slurm.usage import FIRST, WIDTH, UsageRow, used_by
from jobfleet.errors import SpecError
from jobfleet.nativeunits import parse_slurm_duration, parse_slurm_rss
from jobfleet.runner import CommandResult
from jobfleet.states import MEMORY_EXCEEDED, TERMINAL, JobState

__all__ = ["ACCOUNTING_FORMAT", "NoAccounting", "parse_accounting"]

log = logging.getLogger(__name__)

#: Timelimit, then what a job used (:mod:`.usage`), last: recordings made before they
#: were asked for read them as unknown.
ACCOUNTING_FORMAT = (
    "JobID,JobIDRaw,State,ExitCode,Timelimit,Submit,Start,End,NodeList,MaxRSS,TotalCPU,Elapsed"
)
#: sacct's answer on a cluster without accounting storage.
_NO_ACCOUNTING = re.compile(
    r"accounting storage is disabled|not running a supported accounting_storage", re.IGNORECASE
)


class NoAccounting(Exception):
    """sacct answered that the cluster keeps no accounting."""


def parse_accounting(result: CommandResult, ctx: PollContext) -> tuple[Seen, Used]:
    """States and what the jobs ``ctx.ids`` used, from ``sacct --format=ACCOUNTING_FORMAT``.

    A job killed by SIGKILL (``FAILED 0:9``) whose batch step is ``CANCELLED by <uid>``
    was killed by OverMemoryKill: OUT_OF_MEMORY (a ``kill -9`` or ``scancel --batch
    --signal=KILL`` leaves a plain ``CANCELLED`` step: 22.05/oom-sacct-steps-final;
    scancel refuses ``ID.batch``). For an element squeue showed ending or ended
    (``ctx.ended``), a row that lags behind (PENDING or RUNNING) is read by
    :func:`_after_queue`. Raises NoAccounting when the cluster keeps none; CommandError
    when sacct failed otherwise.
    """
    if not result.ok:
        if _NO_ACCOUNTING.search(result.stderr):
            raise NoAccounting(result.stderr.strip())
        raise command_failed(result)
    wanted = set(ctx.ids)
    ended = ctx.ended  # usually empty: then not looked up per row
    seen: Seen = {}
    usage_rows: list[UsageRow] = []  # read once every step is in: see used_by
    peaks: dict[str, int] = {}  # sacct's id of a job or element -> largest MaxRSS of its steps
    sigkilled: dict[str, tuple[str, int | None]] = {}  # FAILED 0:9, by sacct's id
    memory_kills: dict[str, str] = {}  # sacct's id -> MaxRSS of a batch step "CANCELLED by"
    for line in result.stdout.splitlines():
        job_id = line[: line.find("|")]
        if "." in job_id and "..." not in job_id:  # "...": an index list cut short
            # A step: its MaxRSS (third column from the end), and the mark of a memory kill.
            owner, _, step = job_id.partition(".")
            rss_text = line.rsplit("|", 3)[1] if line.count("|") >= WIDTH - 1 else ""
            if step == "batch" and "|CANCELLED by " in line:
                memory_kills[owner] = rss_text
            if rss_text:
                rss = parse_slurm_rss(rss_text)
                if rss is not None and rss > peaks.get(owner, -1):
                    peaks[owner] = rss
            continue
        # The usage columns stay one string (no list per row kept alive: see used_by).
        fields = line.split("|", FIRST)
        if len(fields) < 4:
            continue
        if job_id.isdigit():  # a single job: the common case, kept cheap
            if job_id not in wanted:
                continue
            base, indices, one = job_id, None, True
        else:
            try:
                base, indices = parse_job_id(job_id)
            except SpecError:
                log.warning("sacct: cannot read job id %r; skipped", job_id)
                continue
            if base not in wanted:
                continue
            one = indices is not None and len(indices) == 1  # not "5_[3-9]", a waiting rest
        state, code_text = fields[2], fields[3]
        if " by " in state:
            state = named(state, ctx)
        # Only a time-out's reason shows its limit (and only a time-out pays for reading it).
        limit = parse_slurm_duration(fields[4]) if state == "TIMEOUT" and len(fields) > 4 else None
        if code_text == "0:9" and state == "FAILED" and one:
            # Killed by SIGKILL: by OverMemoryKill (its batch step tells), or by anyone else.
            sigkilled[job_id] = (base, indices[0] if indices else None)
        if indices is None and not ended:  # a single job, nothing from squeue: kept cheap
            seen[base] = {None: to_element(state, None, exit_code(code_text), limit)}
        else:
            mine = seen.setdefault(base, {})
            code = exit_code(code_text)
            for index in indices if indices is not None else (None,):
                queued = ended.get((base, index)) if ended else None
                if queued is None:
                    mine[index] = to_element(state, None, code, limit)
                    continue
                kept = queued[2] if queued[0] is JobState.CANCELLED else None
                element = _after_queue(to_element(state, kept, code, limit), queued)
                if element is not None:
                    mine[index] = element
        if one and len(fields) > FIRST:
            usage_rows.append((base, indices[0] if indices else None, job_id, fields[FIRST]))
    for job_id, (base, index) in sigkilled.items():
        if job_id in memory_kills:
            rss_text = memory_kills[job_id]
            used = f" (MaxRSS {rss_text})" if rss_text else ""
            seen[base][index] = (
                JobState.OUT_OF_MEMORY,
                137,
                f"{MEMORY_EXCEEDED}{used}: killed by SLURM for using more than it requested",
            )
    if ended:
        _cancelled_in_queue(seen, ended, wanted)
    return {k: v for k, v in seen.items() if v} if ended else seen, used_by(usage_rows, peaks)


def _after_queue(element: Element, queued: Element) -> Element | None:
    """An accounting row of an element squeue showed ending or ended (``queued``).

    A final row is accounting's to tell (state, exit code, who cancelled), once squeue
    no longer shows the element COMPLETING: sacct has a cancel's or a time-out's final
    row while SLURM is still stopping the job's processes, before its job script has
    recorded the code its command ended with (seen live: the exit-code file appears as
    squeue drops COMPLETING); until then it is :data:`STOPPING`. A row that lags
    behind (PENDING or RUNNING, just after a cancel) never walks back what squeue
    showed: ending stays ending; a cancel is a cancel at once (its exit code, if any,
    is the one the job script recorded); another final state (COMPLETED, FAILED,
    TIMEOUT) is left to the controller's memory (``scontrol``, with its exit code) and
    the job's exit-code file, as for a job accounting does not list yet (None).
    """
    if element[0] in TERMINAL:
        stopping = queued == ENDING and element[0] is not JobState.COMPLETED
        return STOPPING if stopping else element
    if queued[0] in TERMINAL and queued[0] is not JobState.CANCELLED:
        return None
    return queued


def _cancelled_in_queue(seen: Seen, ended: Ended, wanted: set[str]) -> None:
    """Elements squeue showed cancelled that accounting does not list yet: cancelled."""
    for (owner, index), queued in ended.items():
        if queued[0] is JobState.CANCELLED and owner in wanted:
            seen.setdefault(owner, {}).setdefault(index, queued)
