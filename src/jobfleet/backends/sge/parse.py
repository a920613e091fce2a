"""Grid Engine's command output, read by pure functions: output (and a poll's
context) in, records out. Nothing here runs a command or keeps state between calls.

Checked against a live Son of Grid Engine 8.1.9 (recorded output in
``tests/backends/sge/fixtures/``); see docs/sge-notes.md.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import re
import time
import xml.etree.ElementTree as ET

from jobfleet.backends.base import QueueEntry
from jobfleet.backends.command import Element, PollContext, Seen, command_failed
from jobfleet.errors import CommandError
from jobfleet.nativeunits import (
    parse_qacct_memory,
    parse_sge_memory,
    parse_sge_seconds,
    parse_sge_time,
)
from jobfleet.runner import CommandResult
from jobfleet.states import MEMORY_EXCEEDED, JobState, walltime_exceeded

__all__ = [
    "STATE_LETTERS",
    "accounting_records",
    "last_run",
    "map_failed",
    "map_state",
    "parse_accounting",
    "parse_cancel",
    "parse_ctime",
    "parse_error_reasons",
    "parse_find_by_name",
    "parse_find_in_accounting",
    "parse_queue",
    "parse_queue_list",
    "parse_submit",
    "queued_numbers",
]

log = logging.getLogger(__name__)

# qstat's state letters, to jobfleet's states. A state is a combination of
# letters (``hqw``, ``Eqw``, ``dr``); the most telling one decides, in this order.
# Source: qstat(1), section "state" of the job list (Grid Engine 8.1), and
# docs/sge-notes.md for what was seen live.
STATE_LETTERS: tuple[tuple[str, JobState | None], ...] = (
    ("E", JobState.PENDING),  # error: the job cannot start until the error is cleared
    ("d", JobState.RUNNING),  # being deleted (qdel): accounting says how it ended
    ("r", JobState.RUNNING),  # running (Rr: restarted and running)
    ("t", JobState.RUNNING),  # being transferred to its host: about to run
    ("s", JobState.RUNNING),  # suspended (by user); it keeps its slots
    ("S", JobState.RUNNING),  # suspended by the queue
    ("T", JobState.RUNNING),  # suspended by a threshold
    ("h", JobState.PENDING),  # held (user, operator, system or by -hold_jid)
    ("w", JobState.PENDING),  # waiting
    ("q", JobState.PENDING),  # queued
    ("z", None),  # zombie: finished, kept for qstat -s z
)

# qacct's "failed" codes (Grid Engine's accounting(5) and the shepherd's exit
# codes): 0 means the job ran, and exit_status tells how it ended; the others
# mean Grid Engine itself ended or could not start it.
_FAILED_TIMEOUT = 37  # qmaster enforced h_rt, h_cpu or h_vmem limit
_FAILED_KILLED = 100  # "assumedly after job": killed from outside the job (qdel)
#: qacct records no "deleted by" (8.1.9): who cancelled a job is not known; and a job
#: script killed by SIGKILL (by anyone) reads the same (fixtures/8.1.9/qacct-sigkill).
_QDEL = "cancelled (qdel, or a SIGKILL to the job script; Grid Engine does not record by whom)"
_FAILED_RESCHEDULED = 25  # rescheduled: it will run again

TRANSIENT_SUBMIT = re.compile(
    r"unable to contact qmaster|failed receiving gdi request|commlib error|"
    r"got no connection|timeout|try again|too many jobs|max_u_jobs|max_jobs|"
    r"jobs are allowed per (?:user|cluster)",
    re.IGNORECASE,
)
UNKNOWN_JOB = re.compile(r"do(es)? not exist|not found", re.IGNORECASE)
#: qacct on a cluster where no job has ended yet: no records, not an outage.
_NO_ACCOUNTING_FILE = re.compile(r"accounting: No such file or directory")


def map_state(letters: str) -> JobState | None:
    """jobfleet's state for qstat's state letters; None when accounting must tell.

    Unknown letters warn and map to UNKNOWN.
    """
    for letter, state in STATE_LETTERS:
        if letter in letters:
            return state
    log.warning("unknown Grid Engine job state %r; reporting it as unknown", letters)
    return JobState.UNKNOWN


def map_failed(
    failed: int,
    exit_status: int | None,
    category: str,
    wallclock_s: float | None,
    maxvmem_bytes: float | None = None,
    slots: int = 1,
) -> Element:
    """The outcome of a finished job from its qacct record.

    A job that asks for more memory than its h_vmem is refused it (the limit is also
    the process's RLIMIT_AS): it fails by itself, ``failed 0``, and is reported FAILED
    with its own exit code, whatever its maxvmem (tests/backends/sge/fixtures/8.1.9/oom-qacct-grow
    and the look-alike oom-qacct-crash). Only execd's kill says "memory": ``failed 37``
    with maxvmem above h_vmem times the slots (oom-qacct-multi, oom-qacct-pe2).

    Such kills (qdel, h_rt, h_vmem) are SIGKILLs of the whole job: its exit_status,
    137, is also what its command would show a shell (no job script outlives a
    SIGKILL to record otherwise: same-event-qacct-*).
    """
    if failed == 0:
        if exit_status is None:
            return JobState.UNKNOWN, None, "no exit status in accounting"
        soft = parse_sge_time(category, "s_rt")
        if exit_status and soft is not None and wallclock_s is not None and wallclock_s >= soft:
            # s_rt's SIGUSR1 ended the command (138, if it did not catch it); the job
            # script recorded it and exited by itself, before h_rt (fixtures/8.1.9/qacct-srt).
            limit = parse_sge_time(category, "h_rt")
            return JobState.TIMEOUT, exit_status, walltime_exceeded(limit or soft)
        return (JobState.COMPLETED if exit_status == 0 else JobState.FAILED), exit_status, None
    killed = exit_status or None
    if failed == _FAILED_TIMEOUT:
        limit = parse_sge_time(category, "h_rt")
        timeout = (JobState.TIMEOUT, killed, walltime_exceeded(limit))
        vmem = parse_sge_memory(category, "h_vmem")
        if vmem is not None and maxvmem_bytes is not None:
            # execd kills when the job's vmem passes h_vmem x slots, and records that
            # very sample as maxvmem; an h_rt or h_cpu kill leaves it below.
            if maxvmem_bytes > vmem * slots:
                return (
                    JobState.OUT_OF_MEMORY,
                    killed,
                    f"{MEMORY_EXCEEDED} (h_vmem): maxvmem {maxvmem_bytes / 2**20:.1f} MiB "
                    f"> {vmem * slots / 2**20:.0f} MiB",
                )
            return timeout
        if limit is None and "h_vmem" in category:
            return JobState.OUT_OF_MEMORY, killed, f"{MEMORY_EXCEEDED} (h_vmem)"
        if limit is not None and wallclock_s is not None and wallclock_s + 1 < limit:
            return JobState.OUT_OF_MEMORY, killed, f"{MEMORY_EXCEEDED} (h_vmem)"
        return timeout
    if failed == _FAILED_KILLED:
        return JobState.CANCELLED, killed, _QDEL
    if failed == _FAILED_RESCHEDULED:
        return JobState.PENDING, None, "rescheduled"
    # A job that never started has a placeholder exit_status 0 (start_time -/-).
    return JobState.FAILED, exit_status or None, f"Grid Engine failure {failed}"


def xml(result: CommandResult) -> ET.Element:
    """qstat's XML; CommandError when it cannot be read."""
    try:
        # Our own scheduler's output, not untrusted input (and no DTD processing
        # happens in ElementTree).
        return ET.fromstring(result.stdout)  # noqa: S314
    except ET.ParseError as exc:
        raise CommandError(result.argv, f"qstat printed unreadable XML: {exc}") from None


# -- submit and look-up ---------------------------------------------------------------


def parse_submit(result: CommandResult) -> str:
    """The job number ``qsub -terse`` printed (``123``, or ``123.1-10:1`` for an array)."""
    first = result.stdout.strip().split(".", 1)[0]
    if not first.isdigit():
        raise CommandError(result.argv, f"qsub printed no job id: {result.stdout!r}")
    return first


def parse_find_by_name(result: CommandResult, name: str) -> str | None:
    """The number of the job called ``name`` in ``qstat -xml``; None for none."""
    if not result.ok:
        raise command_failed(result)
    for job in xml(result).iter("job_list"):
        if job.findtext("JB_name") == name:
            return job.findtext("JB_job_number")
    return None


def parse_find_in_accounting(result: CommandResult) -> str | None:
    """The job number in ``qacct -j NAME``'s answer; None when it has no such job."""
    if not result.ok:
        if UNKNOWN_JOB.search(result.stderr + result.stdout) or _NO_ACCOUNTING_FILE.search(
            result.stderr
        ):
            return None
        raise command_failed(result)
    numbers = [r.get("jobnumber", "") for r in _qacct_records(result.stdout)]
    return next((n for n in numbers if n.isdigit()), None)


# -- polling ----------------------------------------------------------------------------


def parse_queue(result: CommandResult, ctx: PollContext) -> tuple[Seen, list[str]]:
    """States of the jobs ``ctx.ids`` from ``qstat -xml -g d``, and the numbers of
    those in error state (whose reason ``qstat -j`` tells: :func:`parse_error_reasons`)."""
    if not result.ok:
        raise command_failed(result)
    wanted = set(ctx.ids)
    seen: Seen = {}
    errors: list[str] = []
    for job in xml(result).iter("job_list"):
        number = job.findtext("JB_job_number") or ""
        if number not in wanted:
            continue
        letters = job.findtext("state") or ""
        state = map_state(letters)
        if state is None:
            continue  # finishing: accounting tells how
        reason = "held" if "h" in letters else None
        if "d" in letters:
            reason = "being deleted (qdel)"
        if "E" in letters:
            errors.append(number)
            reason = "error state (Eqw)"
        for index in _task_indices(job.findtext("tasks")):
            seen.setdefault(number, {})[index] = (state, None, reason)
    return seen, errors


def queued_numbers(result: CommandResult) -> set[str]:
    """The job numbers ``qstat -xml`` lists."""
    return {job.findtext("JB_job_number") or "" for job in xml(result).iter("job_list")}


def parse_accounting(result: CommandResult, ctx: PollContext) -> Seen:
    """How the jobs ``ctx.ids`` ended, from ``qacct -j``.

    Job numbers wrap and start again with a new spool: a record is taken only
    under its job's name (``ctx.targets``), when the job has one.
    """
    seen: Seen = {}
    for number, index, run in accounting_records(result, ctx):
        record = run[0]  # the master's: how the job ended
        failed = int((record.get("failed") or "0").split()[0])
        status_text = (record.get("exit_status") or "").split()
        exit_status = int(status_text[0]) if status_text and status_text[0].isdigit() else None
        slots = record.get("slots", "1")
        seen.setdefault(number, {})[index] = map_failed(
            failed,
            exit_status,
            record.get("category", ""),
            parse_sge_seconds(record.get("ru_wallclock", "")),
            parse_qacct_memory(record.get("maxvmem", "")),
            int(slots) if slots.isdigit() else 1,
        )
    return seen


def accounting_records(
    result: CommandResult, ctx: PollContext
) -> list[tuple[str, int | None, list[dict[str, str]]]]:
    """The ``qacct -j`` records of the jobs ``ctx.ids`` as (job number, task index or
    None, the records of its last run, the master's first; see :func:`last_run`); only
    under the job's own name (``ctx.targets``), as job numbers wrap. CommandError when
    qacct failed (no record yet is an empty answer)."""
    if not result.ok:
        if UNKNOWN_JOB.search(result.stderr + result.stdout) or _NO_ACCOUNTING_FILE.search(
            result.stderr
        ):
            return []  # none of them has an accounting record yet
        raise command_failed(result)
    wanted = set(ctx.ids)
    found: dict[tuple[str, int | None], list[dict[str, str]]] = {}
    for record in _qacct_records(result.stdout):
        number = record.get("jobnumber", "")
        if number not in wanted:
            continue
        target = ctx.targets.get(number)
        name = target.name if target is not None else ""
        if name and record.get("jobname", name) != name:
            continue  # an older job that had the same number
        task = record.get("taskid", "undefined")
        found.setdefault((number, int(task) if task.isdigit() else None), []).append(record)
    return [(number, index, last_run(records)) for (number, index), records in found.items()]


def last_run(records: list[dict[str, str]]) -> list[dict[str, str]]:
    """Of one job's (or array task's) records in qacct's order, those of its last run,
    its master's first.

    A job run again (rescheduled, or cleared from Eqw) has a record per run; a tightly
    integrated parallel job (a PE with ``control_slaves TRUE`` and ``accounting_summary
    FALSE``) one per ``qrsh -inherit`` task besides its master's, under the same number
    and task id (fixtures/8.1.9/pe-tasks-qacct). qacct does not show ``pe_taskid``, so
    the master is told by its times: its tasks start within its run (from its start to
    its end), and it starts first, ends last and runs longest; of records with the same
    times the master's, written when the job ends, is the later one.
    """

    def start(i: int) -> float:
        return parse_ctime(records[i].get("start_time", "")) or -math.inf

    def end(i: int) -> float:
        return parse_ctime(records[i].get("end_time", "")) or -math.inf

    def wall(i: int) -> float:
        return parse_sge_seconds(records[i].get("ru_wallclock", "")) or 0.0

    # Never-started records (no start time) stay in qacct's order, the newest last.
    order = sorted(
        range(len(records)),
        key=lambda i: (start(i), -end(i), -wall(i), i if start(i) == -math.inf else -i),
    )
    runs: list[list[int]] = []
    for i in order:
        if runs and start(i) > -math.inf and start(i) <= end(runs[-1][0]):
            runs[-1].append(i)  # a task of the run whose master is runs[-1][0]
        else:
            runs.append([i])
    return [records[i] for i in runs[-1]]


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


def parse_error_reasons(text: str) -> dict[str, str]:
    """job number -> its error reason, from ``qstat -j`` output."""
    reasons: dict[str, str] = {}
    number = ""
    for line in text.splitlines():
        if line.startswith("job_number:"):
            number = line.split(":", 1)[1].strip()
        elif line.startswith("error reason") and number:
            # "error reason    1:      11/21/2026 09:37:52 [105:31154]: exit_status ..."
            reasons[number] = line.split("]:", 1)[-1].strip()
    return reasons


def parse_cancel(result: CommandResult) -> dict[str, list[int | None]]:
    """Elements qdel removed at once, before they started (no accounting record will
    ever exist): "has deleted job 15" / "has deleted job-array task 20.3". A running
    job is "registered ... for deletion" and ends in accounting."""
    removed: dict[str, list[int | None]] = {}
    for job, task in re.findall(
        r"has deleted job(?:-array task)? (\d+)(?:\.(\d+))?", result.stdout
    ):
        removed.setdefault(job, []).append(int(task) if task else None)
    return removed


def _task_indices(tasks: str | None) -> list[int | None]:
    """Indices from qstat's ``tasks`` field: absent for a single job, ``5`` or ``3-10:1``."""
    if not tasks:
        return [None]
    out: list[int | None] = []
    for part in tasks.split(","):
        span, _, step = part.partition(":")
        first, _, last = span.partition("-")
        if not first.isdigit():
            continue
        out.extend(range(int(first), int(last or first) + 1, int(step or 1)))
    return out


def _qacct_records(text: str) -> list[dict[str, str]]:
    records: list[dict[str, str]] = []
    current: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("====="):
            if current:
                records.append(current)
            current = {}
            continue
        key, _, value = line.partition(" ")
        if key:
            current[key] = value.strip()
    if current:
        records.append(current)
    return records


# -- the queue view ---------------------------------------------------------------------


def parse_queue_list(result: CommandResult, now: float) -> list[QueueEntry]:
    """The rows of the queue view's qstat call; ``now`` (Unix time) for the
    elapsed times. CommandError if qstat failed."""
    if not result.ok:
        raise command_failed(result)
    entries = []
    for job in xml(result).iter("job_list"):
        number = job.findtext("JB_job_number") or ""
        letters = job.findtext("state") or ""
        tasks = job.findtext("tasks") or None
        # Running tasks have a start time; waiting ones only a submission time.
        started = _local_time(job.findtext("JAT_start_time"))
        queue, _, host = (job.findtext("queue_name") or "").partition("@")
        entries.append(
            QueueEntry(
                native_id=number,
                tasks=tasks,
                display_id=f"{number}.{tasks}" if tasks else number,
                name=job.findtext("JB_name") or "",
                user=job.findtext("JB_owner") or "",
                # None is a finished job ("z", only with -s z): how it ended is not known here.
                state=map_state(letters) or JobState.UNKNOWN,
                native_state=letters,
                elapsed_s=None if started is None else max(0, round(now - started)),
                nodes=host or None,
                queue=queue or None,
                reason=_list_reason(letters, number),
            )
        )
    return entries


def _local_time(text: str | None) -> float | None:
    """Unix time from qstat's XML times (local time, no zone: ``2026-11-21T09:41:52``)."""
    if not text:
        return None
    try:
        return dt.datetime.fromisoformat(text).timestamp()
    except ValueError:
        return None


def _list_reason(letters: str, number: str) -> str | None:
    """Why a job waits or stands still, from its state letters (the job list has no
    reason field; ``qstat -j`` would cost a call per listing)."""
    if "E" in letters:
        return f"error state: `qstat -j {number}` says why, `qmod -cj {number}` clears it"
    if "d" in letters:
        return "being deleted"
    if "h" in letters:
        return "held"
    if any(letter in letters for letter in "sST"):
        return "suspended"
    return None
