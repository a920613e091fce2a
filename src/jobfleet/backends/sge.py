"""Son of Grid Engine: qsub, qstat, qacct and qdel, as argv lists and parsers.

All I/O, retries and the polling rule are in
:class:`~jobfleet.backends.batch.BatchBackend`. Checked against a live Son of
Grid Engine 8.1.9 (recorded output in ``tests/fixtures/sge/``); what was
learned there is in docs/sge-notes.md. Grid Engine differs from SLURM in ways
that matter:

* ``-hold_jid`` waits for predecessors to *end*, whatever their outcome. So
  after-ok and after-not-ok are checked by the job script itself, from its
  predecessors' exit-code files (:attr:`holds_mean_after_any`); a job whose
  dependency can never be met ends ``cancelled`` without running its command.
* ``qacct -j`` takes one job id or name pattern per call (``-j 2,3`` reports
  job 2 only): accounting for every tracked job is ONE call with the name
  pattern all jobs of a jobfleet registry share (``jf<token>-*``).
* Arrays are one range ``a-b[:s]``; memory requests are per slot.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import logging
import math
import re
import time
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass

from jobfleet.backends.base import PollTarget, QueueEntry, SubmitRequest, user_name
from jobfleet.backends.batch import BatchBackend, BatchSettings, Element, Seen, command_failed
from jobfleet.errors import BackendError, CommandError, SpecError
from jobfleet.runner import CommandResult, Runner
from jobfleet.script import Dialect, register_dialect
from jobfleet.spec import ArraySpec, JobSpec
from jobfleet.states import JobState
from jobfleet.units import (
    format_sge_memory,
    format_sge_time,
    parse_qacct_memory,
    parse_sge_memory,
    parse_sge_seconds,
    parse_sge_time,
)

__all__ = [
    "SGE",
    "STATE_LETTERS",
    "SgeBackend",
    "SgeSettings",
    "map_failed",
    "map_state",
    "parse_queue_list",
    "queue_list_argv",
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
_FAILED_RESCHEDULED = 25  # rescheduled: it will run again

_TRANSIENT_SUBMIT = re.compile(
    r"unable to contact qmaster|failed receiving gdi request|commlib error|"
    r"got no connection|timeout|try again|too many jobs|max_u_jobs|max_jobs|"
    r"jobs are allowed per (?:user|cluster)",
    re.IGNORECASE,
)
_UNKNOWN_JOB = re.compile(r"do(es)? not exist|not found", re.IGNORECASE)
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
    with its own exit code, whatever its maxvmem (tests/fixtures/sge/8.1.9/oom-qacct-grow
    and the look-alike oom-qacct-crash). Only execd's kill says "memory": ``failed 37``
    with maxvmem above h_vmem times the slots (oom-qacct-multi, oom-qacct-pe2).
    """
    if failed == 0:
        if exit_status is None:
            return JobState.UNKNOWN, None, "no exit status in accounting"
        return (JobState.COMPLETED if exit_status == 0 else JobState.FAILED), exit_status, None
    if failed == _FAILED_TIMEOUT:
        vmem = parse_sge_memory(category, "h_vmem")
        if vmem is not None and maxvmem_bytes is not None:
            # execd kills when the job's vmem passes h_vmem x slots, and records that
            # very sample as maxvmem; an h_rt or h_cpu kill leaves it below.
            if maxvmem_bytes > vmem * slots:
                return (
                    JobState.OUT_OF_MEMORY,
                    None,
                    f"h_vmem limit exceeded: maxvmem {maxvmem_bytes / 2**20:.1f} MiB "
                    f"> {vmem * slots / 2**20:.0f} MiB",
                )
            return JobState.TIMEOUT, None, "h_rt limit exceeded"
        limit = parse_sge_time(category, "h_rt")
        if limit is None and "h_vmem" in category:
            return JobState.OUT_OF_MEMORY, None, "h_vmem limit exceeded"
        if limit is not None and wallclock_s is not None and wallclock_s + 1 < limit:
            return JobState.OUT_OF_MEMORY, None, "h_vmem limit exceeded"
        return JobState.TIMEOUT, None, "h_rt limit exceeded"
    if failed == _FAILED_KILLED:
        return JobState.CANCELLED, None, "killed from outside the job (qdel, or a signal to it)"
    if failed == _FAILED_RESCHEDULED:
        return JobState.PENDING, None, "rescheduled"
    # A job that never started has a placeholder exit_status 0 (start_time -/-).
    return JobState.FAILED, exit_status or None, f"Grid Engine failure {failed}"


@dataclass(frozen=True, slots=True)
class SgeSettings(BatchSettings):
    """Grid Engine knobs (configuration section ``sge:``).

    Attributes:
        parallel_environment: the PE that gives a job several slots on one host.
        memory_resource: ``h_vmem`` (an enforced limit, per slot: the job's memory
            is divided by its cores) or ``mem_free`` (a load value the host must
            have free, compared as is; measured on the live cluster).
        gpu_resource: the consumable a site uses for GPUs.
        verify_requests: submit with ``-w e``, so a request no host could ever
            meet is refused at once instead of waiting for ever.
    """

    parallel_environment: str = "smp"
    memory_resource: str = "h_vmem"
    gpu_resource: str = "gpu"
    verify_requests: bool = True


def sge_directives(spec: JobSpec, settings: SgeSettings | None = None) -> list[str]:
    """``#$`` bodies for a spec's resources, in a fixed order."""
    settings = settings or SgeSettings()
    res = spec.resources
    out = ["-S /bin/bash", "-V"]  # POSIX script; the submitter's environment, as sbatch does
    if res.cores > 1:
        out.append(f"-pe {settings.parallel_environment} {res.cores}")
    resources = []
    if res.walltime_s is not None:
        resources.append(f"h_rt={format_sge_time(res.walltime_s)}")
    if res.memory_bytes is not None:
        # h_vmem is a per-slot limit (Grid Engine multiplies it by the slots);
        # mem_free, a load value, is compared with the host's free memory as is.
        slots = res.cores if settings.memory_resource == "h_vmem" else 1
        resources.append(f"{settings.memory_resource}={format_sge_memory(res.memory_bytes, slots)}")
    if res.gpus:
        resources.append(f"{settings.gpu_resource}={res.gpus}")
    if resources:
        out.append("-l " + ",".join(resources))
    if res.queue:
        out.append(f"-q {res.queue}")
    if res.account:
        out.append(f"-P {res.account}")
    if spec.array is not None:
        ((start, stop, step),) = spec.array.ranges() or [(0, 0, 1)]
        out.append(f"-t {start}-{stop}:{step}")
        if spec.array.max_concurrent:
            out.append(f"-tc {spec.array.max_concurrent}")
    return out


SGE = register_dialect(
    Dialect(
        name="sge",
        directive_prefix="#$",
        # Grid Engine sets SGE_TASK_ID to "undefined" for a job that is no array.
        index_expr="${SGE_TASK_ID-}",
        once_guard=False,  # Grid Engine may reschedule a job: a rerun is legitimate
        directives=sge_directives,
        reserved_exits=(99, 100),  # 99: reschedule; 100: error state (sge_status(5))
    )
)


class SgeBackend(BatchBackend):
    """Jobs on a Grid Engine cluster, through its command-line tools."""

    name = "sge"
    dialect = "sge"
    holds_mean_after_any = True
    queue_lists_all = True
    accounting_lists_all = True

    def __init__(self, runner: Runner | None = None, settings: SgeSettings | None = None):
        self.sge_settings = settings or SgeSettings()
        super().__init__(runner, self.sge_settings)
        self._error_texts: dict[str, str] = {}  # job in Eqw -> why, asked once
        self._accounting_names: dict[str, str] = {}  # native id -> name, this poll

    def script_dialect(self) -> Dialect:
        # The directives depend on the site's settings (PE, memory resource).
        return dataclasses.replace(
            SGE, directives=functools.partial(sge_directives, settings=self.sge_settings)
        )

    def check_request(self, spec: JobSpec) -> None:
        if spec.array is not None and spec.array.indices[0] < 1:
            raise SpecError(
                "array", "Grid Engine task ids start at 1; shift the indices (e.g. '1-10')"
            )
        if spec.array is not None and len(spec.array.ranges()) != 1:
            raise SpecError(
                "array",
                f"{spec.array.to_text()!r}: Grid Engine arrays are one range a-b[:step]; "
                "submit one array per range",
            )
        if spec.resources.nodes != 1:
            raise SpecError(
                "resources.nodes", "use a parallel environment for several hosts (extra_args)"
            )

    # -- submit ---------------------------------------------------------------------

    def submit_argv(self, request: SubmitRequest) -> list[str]:
        argv = [
            "qsub",
            "-terse",
            # Refuse at once what could never run (e.g. more slots than any host
            # has); by default Grid Engine accepts it and it waits for ever.
            *(["-w", "e"] if self.sge_settings.verify_requests else []),
            "-N",
            request.name,
            "-o",
            f"{request.job_dir}/sge.$TASK_ID.out",
            "-j",
            "y",
        ]
        holds = [native for _, ids in request.dependencies for native in ids]
        if holds:
            argv += ["-hold_jid", ",".join(dict.fromkeys(holds))]
        argv += list(request.spec.resources.extra_args)
        argv.append(request.script_path)
        return argv

    def parse_submit(self, result: CommandResult) -> str:
        # -terse prints "123" or, for an array, "123.1-10:1".
        first = result.stdout.strip().split(".", 1)[0]
        if not first.isdigit():
            raise CommandError(result.argv, f"qsub printed no job id: {result.stdout!r}")
        return first

    def submit_is_transient(self, result: CommandResult) -> bool:
        return bool(_TRANSIENT_SUBMIT.search(result.stderr))

    def find_by_name_argv(self, name: str) -> list[str]:
        return ["qstat", "-xml"]

    def parse_find_by_name(self, result: CommandResult, name: str) -> str | None:
        if not result.ok:
            raise command_failed(result)
        for job in _xml(result).iter("job_list"):
            if job.findtext("JB_name") == name:
                return job.findtext("JB_job_number")
        return None

    def find_submitted(self, name: str, job_id: str) -> str | None:
        """In the queue, or else (a job that already ended) in accounting."""
        found = super().find_submitted(name, job_id)
        if found is not None:
            return found
        result = self.run(["qacct", "-j", name])
        if not result.ok:
            if _UNKNOWN_JOB.search(result.stderr + result.stdout) or _NO_ACCOUNTING_FILE.search(
                result.stderr
            ):
                return None
            raise command_failed(result)
        numbers = [r.get("jobnumber", "") for r in _qacct_records(result.stdout)]
        return next((n for n in numbers if n.isdigit()), None)

    # -- queue ----------------------------------------------------------------------

    def queue_argv(self, native_ids: Sequence[str]) -> list[str]:
        # Every job of the user, array tasks one per line; filtered here.
        return ["qstat", "-xml", "-g", "d"]

    def parse_queue(self, result: CommandResult, native_ids: Sequence[str]) -> Seen:
        if not result.ok:
            raise command_failed(result)
        wanted = set(native_ids)
        seen: Seen = {}
        errors: list[str] = []
        for job in _xml(result).iter("job_list"):
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
            tasks = job.findtext("tasks")
            for index in _task_indices(tasks):
                seen.setdefault(number, {})[index] = (state, None, reason)
        if errors or self._error_texts:
            self._explain_errors(seen, errors)
        return seen

    def _explain_errors(self, seen: Seen, numbers: list[str]) -> None:
        """Fill in why jobs are in error state: one ``qstat -j`` for those not explained
        in an earlier poll (a job may sit in Eqw for days; it is asked about once)."""
        known = {n: t for n, t in self._error_texts.items() if n in numbers}
        unexplained = [n for n in dict.fromkeys(numbers) if n not in known]
        if unexplained:
            try:
                result = self.run(["qstat", "-j", ",".join(unexplained)])
            except CommandError:
                result = None
            reasons = _error_reasons(result.stdout) if result is not None else {}
            for number in unexplained:
                why = reasons.get(number)
                if why is not None:
                    known[number] = (
                        f"error state (Eqw): {why}; fix it and `qmod -cj {number}`, "
                        "or `jobfleet cancel`"
                    )
        self._error_texts = known  # jobs out of the error state are forgotten
        for number, text in known.items():
            for index, (state, code, _) in seen.get(number, {}).items():
                seen[number][index] = (state, code, text)

    # -- accounting -----------------------------------------------------------------

    def accounting_argv(self, targets: Sequence[PollTarget]) -> list[str] | None:
        # Job numbers wrap and start again with a new spool: a record is ours only
        # under our job's name (checked in parse_accounting).
        self._accounting_names = {t.native_id: t.name for t in targets if t.name}
        prefixes = {t.name.split("-", 1)[0] for t in targets if t.name}
        if len(targets) == 1:
            return ["qacct", "-j", targets[0].native_id]
        if len(prefixes) == 1 and all(t.name for t in targets):
            return ["qacct", "-j", f"{prefixes.pop()}-*"]
        # qacct takes one job or pattern: jobs of several registries, or adopted ones,
        # are found among this user's jobs that ended since the oldest was submitted.
        days = math.ceil((time.time() - min(t.submitted_at for t in targets)) / 86400) + 1
        owner = ["-o", user] if (user := user_name()) else []
        return ["qacct", *owner, "-d", str(days), "-j"]

    def parse_accounting(self, result: CommandResult, native_ids: Sequence[str]) -> Seen:
        if not result.ok:
            if _UNKNOWN_JOB.search(result.stderr + result.stdout) or _NO_ACCOUNTING_FILE.search(
                result.stderr
            ):
                return {}  # none of them has an accounting record yet
            raise command_failed(result)
        wanted = set(native_ids)
        seen: Seen = {}
        names = self._accounting_names
        for record in _qacct_records(result.stdout):
            number = record.get("jobnumber", "")
            if number not in wanted:
                continue
            if number in names and record.get("jobname", names[number]) != names[number]:
                continue  # an older job that had the same number
            task = record.get("taskid", "undefined")
            index = int(task) if task.isdigit() else None
            failed = int((record.get("failed") or "0").split()[0])
            status_text = (record.get("exit_status") or "").split()
            exit_status = int(status_text[0]) if status_text and status_text[0].isdigit() else None
            wallclock = parse_sge_seconds(record.get("ru_wallclock", ""))
            slots = record.get("slots", "1")
            element = map_failed(
                failed,
                exit_status,
                record.get("category", ""),
                wallclock,
                parse_qacct_memory(record.get("maxvmem", "")),
                int(slots) if slots.isdigit() else 1,
            )
            seen.setdefault(number, {})[index] = element
        return seen

    # -- cancel ---------------------------------------------------------------------

    def cancel(
        self,
        native_ids: Sequence[str],
        *,
        indices: Sequence[int] | None = None,
        signal: str | None = None,
    ) -> dict[str, list[int | None]]:
        if signal is not None:
            raise BackendError(
                "Grid Engine cannot send a chosen signal to a job; cancel it instead "
                "(qdel sends SIGKILL, or SIGUSR2 first with qsub -notify)"
            )
        if not native_ids:
            return {}
        # Which tasks wait: for an array, qdel's "has deleted job N" means those.
        waiting = self._waiting_tasks(native_ids)
        removed: dict[str, list[int | None]] = {}
        if not indices:
            removed = super().cancel(native_ids)
        else:
            # qdel takes one task range per call ("-t 1,3" is refused).
            for start, stop, step in ArraySpec(tuple(indices)).ranges():
                for native in native_ids:
                    found = super().cancel([native], indices=range(start, stop + 1, step))
                    for job, gone in found.items():
                        removed.setdefault(job, []).extend(gone)
        chosen = None if indices is None else set(indices)
        for job, gone in removed.items():
            if None in gone and waiting.get(job):
                removed[job] = [i for i in waiting[job] if chosen is None or i in chosen]
        self._wait_until_gone(native_ids)
        return removed

    def _waiting_tasks(self, native_ids: Sequence[str]) -> dict[str, list[int | None]]:
        """Array tasks not yet started, per job (one qstat)."""
        try:
            seen = self.parse_queue(self.run(self.queue_argv(native_ids)), native_ids)
        except CommandError:
            return {}
        return {
            job: [i for i, e in elements.items() if i is not None and e[0] is JobState.PENDING]
            for job, elements in seen.items()
        }

    def _wait_until_gone(self, native_ids: Sequence[str]) -> None:
        """Give qdel a moment, so that the next poll reads how the jobs ended."""
        deadline = time.monotonic() + min(self.settings.command_timeout_s, 30.0)
        wanted = set(native_ids)
        while time.monotonic() < deadline:
            try:
                result = self.run(self.queue_argv(native_ids))
            except CommandError:
                return
            if not result.ok or not any(
                job.findtext("JB_job_number") in wanted for job in _xml(result).iter("job_list")
            ):
                return
            time.sleep(0.2)

    def parse_cancel(self, result: CommandResult) -> dict[str, list[int | None]]:
        # "has deleted job 15" / "has deleted job-array task 20.3": gone at once,
        # before it started (no accounting record will ever exist); a running
        # job is "registered ... for deletion" and ends in accounting.
        removed: dict[str, list[int | None]] = {}
        for job, task in re.findall(
            r"has deleted job(?:-array task)? (\d+)(?:\.(\d+))?", result.stdout
        ):
            removed.setdefault(job, []).append(int(task) if task else None)
        return removed

    def cancel_argv(
        self, native_ids: Sequence[str], indices: Sequence[int] | None, signal: str | None
    ) -> list[str]:
        argv = ["qdel", *native_ids]
        if indices:
            # One range (cancel() splits the others): "3", "1-5" or "1-9:2".
            argv += ["-t", ArraySpec(tuple(indices)).to_text()]
        return argv

    def cancel_ok(self, result: CommandResult) -> bool:
        # A job that already ended is not an error: the goal is reached.
        return result.ok or bool(_UNKNOWN_JOB.search(result.stdout + result.stderr))

    # -- the queue view -------------------------------------------------------------

    def list_queue(self, all_users: bool = False) -> list[QueueEntry]:
        user = None if all_users else user_name()
        if user is None and not all_users:
            raise BackendError(
                "cannot tell this user's name (no password entry for the uid) to ask "
                "Grid Engine for its jobs; use --all-users"
            )
        return parse_queue_list(self.run(queue_list_argv(user)), time.time())


def _xml(result: CommandResult) -> ET.Element:
    try:
        # Our own scheduler's output, not untrusted input (and no DTD processing
        # happens in ElementTree).
        return ET.fromstring(result.stdout)  # noqa: S314
    except ET.ParseError as exc:
        raise CommandError(result.argv, f"qstat printed unreadable XML: {exc}") from None


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


def _error_reasons(text: str) -> dict[str, str]:
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


# -- the queue view: every job of the user (or of everybody), jobfleet's or not ------------


def queue_list_argv(user: str | None) -> list[str]:
    """The one qstat call for the queue view: ``user``'s jobs, or everybody's for None.

    ``-u`` is always given: a site's ``sge_qstat`` file can change qstat's default.
    Without ``-g d``, an array's waiting tasks are one row (``<tasks>3-10:1``) and
    started ones a row each.
    """
    return ["qstat", "-xml", "-u", user or "*"]


def parse_queue_list(result: CommandResult, now: float) -> list[QueueEntry]:
    """The rows of :func:`queue_list_argv`'s output; ``now`` (Unix time) for the
    elapsed times. CommandError if qstat failed."""
    if not result.ok:
        raise command_failed(result)
    entries = []
    for job in _xml(result).iter("job_list"):
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
