"""SLURM: sbatch, squeue, sacct, scontrol and scancel, as argv lists and parsers.

Everything that runs a command, retries or decides what to ask next is in
:class:`~jobfleet.backends.batch.BatchBackend`; this module only knows SLURM's
words. Checked against a live SLURM 22.05 cluster with slurmdbd accounting
(recorded output in ``tests/fixtures/slurm/``) and against the documented
formats of newer versions. Traps found on 22.05 (see docs/slurm-notes.md):

* ``squeue --json`` ignores ``-j``/``-t`` and reports raw wait statuses, and
  ``sacct --json`` reports ``exit 5`` as success: we use the text formats.
* ``sacct`` without ``--starttime`` shows only jobs since midnight: we always
  pass the earliest submission time of the jobs asked about.
* A dependent of a failed job stays PENDING for ever unless the cluster sets
  ``kill_invalid_depend``: we submit with ``--kill-on-invalid-dep=yes`` (it is
  cancelled, as on every jobfleet backend) unless ``slurm.kill_invalid_dependents``
  is off, and otherwise report the reason ``DependencyNeverSatisfied``.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass

from jobfleet.backends.base import NativeStatus, PollTarget, QueueEntry, SubmitRequest
from jobfleet.backends.batch import (
    BatchBackend,
    BatchSettings,
    Element,
    Seen,
    command_failed,
)
from jobfleet.errors import CommandError, SpecError
from jobfleet.runner import CommandResult, Runner, argv_chunks
from jobfleet.script import Dialect, register_dialect
from jobfleet.spec import DepKind, JobSpec, parse_array
from jobfleet.states import TERMINAL, JobState
from jobfleet.units import format_slurm_memory, format_slurm_time, parse_slurm_duration

__all__ = [
    "SLURM",
    "STATE_MAP",
    "SlurmBackend",
    "SlurmSettings",
    "exit_code",
    "map_state",
    "parse_queue_list",
    "queue_list_argv",
]

log = logging.getLogger(__name__)

# SLURM's job state codes, as squeue and sacct print them, to jobfleet's states.
# Source: https://slurm.schedmd.com/squeue.html#SECTION_JOB-STATE-CODES and
# https://slurm.schedmd.com/sacct.html#SECTION_JOB-STATE-CODES (22.05 - 24.11).
STATE_MAP: dict[str, JobState] = {
    "PENDING": JobState.PENDING,  # awaiting resource allocation
    "CONFIGURING": JobState.PENDING,  # allocated, nodes still booting
    "POWER_UP_NODE": JobState.PENDING,  # allocated, powered-down nodes starting
    "REQUEUED": JobState.PENDING,  # being requeued; it will run again
    "REQUEUE_HOLD": JobState.PENDING,  # requeued and held
    "REQUEUE_FED": JobState.PENDING,  # requeued by a federation
    "RESV_DEL_HOLD": JobState.PENDING,  # held after its reservation was deleted
    "SPECIAL_EXIT": JobState.PENDING,  # requeued in a held state after a special exit code
    "RUNNING": JobState.RUNNING,
    "COMPLETING": JobState.RUNNING,  # ending; some processes may still be active
    "SIGNALING": JobState.RUNNING,  # being signalled
    "STAGE_OUT": JobState.RUNNING,  # staging out data after running
    "SUSPENDED": JobState.RUNNING,  # started, then suspended; it keeps its allocation
    "STOPPED": JobState.RUNNING,  # SIGSTOPped; it keeps its allocation
    "RESIZING": JobState.RUNNING,  # changing size
    "UPDATE_DB": JobState.RUNNING,  # sending an update to the database
    "COMPLETED": JobState.COMPLETED,  # all processes ended with exit code 0
    "FAILED": JobState.FAILED,  # non-zero exit code or other failure
    "BOOT_FAIL": JobState.FAILED,  # launch failure (typically hardware); never ran
    "NODE_FAIL": JobState.FAILED,  # an allocated node failed; the job was ended
    "LAUNCH_FAILED": JobState.FAILED,  # the job could not be launched
    "RECONFIG_FAIL": JobState.FAILED,  # node configuration for the job failed
    "PREEMPTED": JobState.FAILED,  # ended by preemption (and not requeued)
    "CANCELLED": JobState.CANCELLED,  # by a user or an administrator
    "REVOKED": JobState.CANCELLED,  # a sibling in a federation started instead
    "TIMEOUT": JobState.TIMEOUT,  # reached its time limit
    "DEADLINE": JobState.TIMEOUT,  # ended on its deadline
    "OUT_OF_MEMORY": JobState.OUT_OF_MEMORY,  # exceeded its memory
}
# OUT_OF_MEMORY comes only from the task/cgroup plugin (the kernel's OOM killer in the
# job's cgroup). JobAcctGatherParams=OverMemoryKill kills a step that outgrows its request
# with SIGKILL through the controller instead (src/common/slurm_jobacct_gather.c,
# _acct_kill_step), and 22.05 records that as FAILED 0:9 with the batch step
# "CANCELLED by <uid>" (tests/fixtures/slurm/22.05/oom-*): see _sigkilled_for_memory.

#: Pending reasons that mean the job will never start by itself.
NEVER_RUNS = {
    "DependencyNeverSatisfied": "a dependency can never be met",
    "BadConstraints": "its constraints can never be satisfied",
    "PartitionConfig": "it asks for more than its partition allows",
    "JobHeldAdmin": "an administrator holds it",
    "JobHeldUser": "it is held (scontrol release to start it)",
}

#: stderr of a refused submission that a later try may get through.
_TRANSIENT_SUBMIT = re.compile(
    r"QOSMaxSubmitJob|AssocMaxSubmitJob|MaxSubmitJobs|Socket timed out|"
    r"temporarily unable|Resource temporarily unavailable|try again|"
    r"Unable to contact slurm controller|Connection refused",
    re.IGNORECASE,
)
#: stderr of squeue/scancel naming job ids the controller no longer holds.
_INVALID_ID = re.compile(r"Invalid job id specified", re.IGNORECASE)
#: sacct's answer on a cluster without accounting storage.
_NO_ACCOUNTING = re.compile(
    r"accounting storage is disabled|not running a supported accounting_storage", re.IGNORECASE
)
_QUEUE_FORMAT = "%i|%A|%F|%K|%T|%r|%j"
_ACCOUNTING_FORMAT = "JobID,JobIDRaw,State,ExitCode"
#: The batch step of a job OverMemoryKill ended: cancelled through the controller, by
#: slurmstepd's uid. Neither ``kill -9`` nor ``scancel --batch --signal=KILL`` leaves the
#: "by": they record plain CANCELLED (22.05/oom-sacct-batch-steps); scancel refuses
#: ``ID.batch``.
_STEP_CANCELLED_BY = re.compile(r"CANCELLED by \d+")
_SCONTROL_KEYS = re.compile(
    r"(?:^|\s)(JobId|ArrayJobId|ArrayTaskId|JobState|Reason|ExitCode)=(\S*)"
)


def map_state(native: str) -> tuple[JobState, str | None]:
    """jobfleet's state for a SLURM state string, and any detail it carried.

    ``CANCELLED by 1000`` is CANCELLED with detail ``by 1000``; a state with
    the ``+`` of a truncated display is read without it. Unknown states warn
    and map to UNKNOWN: a poll never fails on a code SLURM added later.
    """
    word, _, detail = native.strip().partition(" ")
    word = word.rstrip("+")
    state = STATE_MAP.get(word)
    if state is None:
        log.warning("unknown SLURM job state %r; reporting it as unknown", native)
        return JobState.UNKNOWN, native
    return state, detail or None


@functools.lru_cache(maxsize=1024)
def exit_code(text: str) -> int | None:
    """The exit code from SLURM's ``code:signal`` (128+signal when a signal ended it).

    >>> exit_code("3:0"), exit_code("0:9"), exit_code(""), exit_code("0:0")
    (3, 137, None, 0)
    """
    code, sep, sig = text.strip().partition(":")
    if not sep or not code.isdigit() or not sig.isdigit():
        return None
    return 128 + int(sig) if int(sig) else int(code)


def parse_job_id(text: str) -> tuple[str, list[int] | None]:
    """Split a SLURM job id into the array (or job) id and element indices.

    >>> parse_job_id("123"), parse_job_id("123_4")
    (('123', None), ('123', [4]))
    >>> parse_job_id("123_[1-3%2]"), parse_job_id("123_[1,3-5]")
    (('123', [1, 2, 3]), ('123', [1, 3, 4, 5]))
    """
    if text.isdigit():
        return text, None  # the common case, kept cheap
    base, sep, rest = text.strip().partition("_")
    if not sep:
        return base.split(".", 1)[0].split("+", 1)[0], None
    if rest.startswith("["):
        listed, closed, _ = rest[1:].partition("]")
        if not closed or "..." in listed:
            # SLURM cut the list short (SLURM_BITSTR_LEN): never guess the rest.
            raise SpecError("job id", f"array index list cut short in {text!r}")
        return base, list(parse_array(listed).indices)
    rest = rest.split(".", 1)[0]
    return base, [int(rest)] if rest.isdigit() else []


@functools.lru_cache(maxsize=4096)
def _element(native_state: str, reason: str | None, code: int | None) -> Element:
    """jobfleet's (state, exit code, reason) for SLURM's; cached: a poll of
    thousands of jobs sees only a handful of different combinations."""
    state, detail = map_state(native_state)
    if state is JobState.CANCELLED and detail:
        reason = f"cancelled {detail}"
    elif state is JobState.CANCELLED and reason == "DependencyNeverSatisfied":
        reason = f"cancelled: {NEVER_RUNS[reason]} ({reason})"
    if state is JobState.PENDING and reason in NEVER_RUNS:
        reason = f"{reason}: {NEVER_RUNS[reason]}; `jobfleet cancel` removes it"
    elif reason in ("None", ""):
        reason = None
    if state is JobState.COMPLETED and code not in (None, 0):
        state = JobState.FAILED  # never report a non-zero exit as success
    if state.is_terminal and state is not JobState.COMPLETED and code == 0:
        # "0:0" on a job that did not succeed (cancelled before it ran, a
        # time-out as recorded before a controller restart): no exit code is known.
        code = None
    return state, code, reason


def slurm_directives(spec: JobSpec) -> list[str]:
    """``#SBATCH`` bodies for a spec's resources, in a fixed order."""
    res = spec.resources
    out = [f"--cpus-per-task={res.cores}"]
    if res.nodes != 1:
        out.append(f"--nodes={res.nodes}")
    if res.memory_bytes is not None:
        out.append(f"--mem={format_slurm_memory(res.memory_bytes)}")
    if res.walltime_s is not None:
        out.append(f"--time={format_slurm_time(res.walltime_s)}")
    if res.gpus:
        out.append(f"--gres=gpu:{res.gpus}")
    if res.queue:
        out.append(f"--partition={res.queue}")
    if res.account:
        out.append(f"--account={res.account}")
    if spec.array is not None:
        out.append(f"--array={spec.array.to_text()}")
    return out


SLURM = register_dialect(
    Dialect(
        name="slurm",
        directive_prefix="#SBATCH",
        index_expr="${SLURM_ARRAY_TASK_ID-}",
        once_guard=False,  # SLURM requeues jobs on node failure: a rerun is legitimate
        directives=slurm_directives,
    )
)

_DEP_WORD = {
    DepKind.AFTER_OK: "afterok",
    DepKind.AFTER_ANY: "afterany",
    DepKind.AFTER_NOT_OK: "afternotok",
}


@dataclass(frozen=True, slots=True)
class SlurmSettings(BatchSettings):
    """SLURM knobs (configuration section ``slurm:``).

    Attributes:
        kill_invalid_dependents: submit with ``--kill-on-invalid-dep=yes``, so a job
            whose dependency can never be met is cancelled rather than pending for ever.
    """

    kill_invalid_dependents: bool = True


class SlurmBackend(BatchBackend):
    """Jobs on a SLURM cluster, through its command-line tools."""

    name = "slurm"
    dialect = "slurm"

    def __init__(self, runner: Runner | None = None, settings: SlurmSettings | None = None):
        self.slurm_settings = settings or SlurmSettings()
        super().__init__(runner, self.slurm_settings)
        self.accounting: bool | None = None  # None until the first accounting call tells
        self._ended_reasons: dict[tuple[str, int | None], str] = {}
        # squeue and sacct cut long array index lists at 64 bytes ("359_[1-2,4,"):
        # SLURM_BITSTR_LEN=0 makes them print the whole list.
        self._env = {**os.environ, "SLURM_BITSTR_LEN": "0"}

    def command_env(self, argv: Sequence[str]) -> dict[str, str] | None:
        # Only the commands that print array index lists; a changed environment
        # costs each sbatch call (and its job's --export=ALL) for nothing.
        return self._env if argv and argv[0] in ("squeue", "sacct") else None

    # -- submit ---------------------------------------------------------------------

    def submit_argv(self, request: SubmitRequest) -> list[str]:
        spec = request.spec
        pattern = "slurm-%A_%a.out" if spec.array is not None else "slurm-%j.out"
        argv = [
            "sbatch",
            "--parsable",
            f"--job-name={request.name}",
            f"--output={request.job_dir}/{pattern}",
        ]
        if request.dependencies:
            clauses = [
                ":".join([_DEP_WORD[kind], *ids]) for kind, ids in request.dependencies if ids
            ]
            argv.append(f"--dependency={','.join(clauses)}")
            if self.slurm_settings.kill_invalid_dependents:
                argv.append("--kill-on-invalid-dep=yes")
        argv += list(spec.resources.extra_args)
        argv.append(request.script_path)
        return argv

    def parse_submit(self, result: CommandResult) -> str:
        # --parsable prints "id" or "id;cluster".
        first = result.stdout.strip().splitlines()[0] if result.stdout.strip() else ""
        native = first.split(";", 1)[0]
        if not native.isdigit():
            raise CommandError(result.argv, f"sbatch printed no job id: {result.stdout!r}")
        return native

    def submit_is_transient(self, result: CommandResult) -> bool:
        return bool(_TRANSIENT_SUBMIT.search(result.stderr))

    def find_by_name_argv(self, name: str) -> list[str]:
        return ["squeue", "--noheader", "--states=all", f"--name={name}", "--format=%F"]

    def parse_find_by_name(self, result: CommandResult, name: str) -> str | None:
        if not result.ok:
            raise command_failed(result)  # no answer is not "no such job"
        ids = [line.strip() for line in result.stdout.splitlines() if line.strip().isdigit()]
        return ids[0] if ids else None

    def find_submitted(self, name: str, job_id: str) -> str | None:
        """In the queue, or else (a job that ended and was purged) in accounting."""
        found = super().find_submitted(name, job_id)
        if found is not None:
            return found
        if self.accounting is False:
            raise CommandError(
                ("sacct",), "no accounting: a job that ended may be gone", transient=True
            )
        result = self.run(
            [
                "sacct",
                "--noheader",
                "--parsable2",
                "--allocations",
                "--starttime=now-30days",
                f"--name={name}",
                "--format=JobIDRaw",
            ]
        )
        if not result.ok:
            raise command_failed(result)
        ids = [line.strip() for line in result.stdout.splitlines() if line.strip().isdigit()]
        return ids[-1] if ids else None

    # -- queue ----------------------------------------------------------------------

    def poll(self, targets: Sequence[PollTarget]) -> dict[str, NativeStatus]:
        self._ended_reasons = {}  # gathered over this poll's squeue calls, for sacct's rows
        return super().poll(targets)

    def queue_argv(self, native_ids: Sequence[str]) -> list[str]:
        return [
            "squeue",
            "--noheader",
            "--array",
            "--states=all",
            f"--jobs={','.join(native_ids)}",
            f"--format={_QUEUE_FORMAT}",
        ]

    def parse_queue(self, result: CommandResult, native_ids: Sequence[str]) -> Seen:
        if not result.ok:
            if _INVALID_ID.search(result.stderr):
                return {}  # none of them is in the controller's memory any more
            raise command_failed(result)
        seen: Seen = {}
        for line in result.stdout.splitlines():
            fields = line.split("|", 6)
            if len(fields) < 7:
                continue
            _, job_id, array_id, task, state, reason, _name = fields
            if state == "COMPLETING":
                state = "COMPLETED"  # ending: left to accounting, below
            indices: list[int | None] | None
            if task in ("N/A", ""):
                element = _element(state, reason, None)
                if element[0] not in TERMINAL:
                    # A single job waiting or running: the common case, kept cheap.
                    mine = seen.get(job_id)
                    if mine is None:
                        seen[job_id] = {None: element}
                    else:
                        mine[None] = element
                    continue
                owner, indices = job_id, [None]
            else:
                indices = _task_indices(task)
                if indices is None:
                    log.warning("squeue: cannot read array task list %r; skipped", task)
                    continue
                owner, element = array_id, _element(state, reason, None)
            if element[0] in TERMINAL:
                # Finished (or finishing) jobs in squeue carry no exit code: left to
                # accounting, keeping squeue's reason for a cancellation (sacct does
                # not say why SLURM cancelled a job, e.g. DependencyNeverSatisfied).
                # Accounting may lag behind (still RUNNING, even PENDING, right after a
                # cancel): remembered here so such a row is read as "still ending".
                kept = element[2] if element[0] is JobState.CANCELLED and element[2] else ""
                for index in indices:
                    self._ended_reasons[(owner, index)] = kept
                seen.setdefault(owner, {})
                continue
            mine = seen.setdefault(owner, {})
            for index in indices:
                mine[index] = element
        return seen

    # -- accounting -----------------------------------------------------------------

    def accounting_argv(self, targets: Sequence[PollTarget]) -> list[str] | None:
        if self.accounting is False:
            return None
        native_ids = [t.native_id for t in targets]
        since = min(t.submitted_at for t in targets)
        start = dt.datetime.fromtimestamp(since - 86400).strftime("%Y-%m-%dT%H:%M:%S")
        return [
            "sacct",
            "--noheader",
            "--parsable2",
            "--allocations",
            f"--starttime={start}",
            f"--jobs={','.join(native_ids)}",
            f"--format={_ACCOUNTING_FORMAT}",
        ]

    def parse_accounting(self, result: CommandResult, native_ids: Sequence[str]) -> Seen:
        if not result.ok:
            if _NO_ACCOUNTING.search(result.stderr):
                self.accounting_missing(result.stderr.strip())
                return {}
            raise command_failed(result)
        self.accounting = True
        wanted = set(native_ids)
        ended = self._ended_reasons  # usually empty: then not looked up per row
        seen: Seen = {}
        sigkilled: dict[str, tuple[str, int | None]] = {}  # "ID[_N]" -> (job, index)
        for line in result.stdout.splitlines():
            fields = line.split("|")
            if len(fields) < 4:
                continue
            job_id, state, code_text = fields[0], fields[2], fields[3]
            if code_text == "0:9" and state == "FAILED":
                # Killed by SIGKILL: by OverMemoryKill, or by anyone else (rare).
                try:
                    base, indices = parse_job_id(job_id)
                except SpecError:
                    base, indices = "", None
                if base in wanted and (indices is None or len(indices) == 1):
                    sigkilled[job_id] = (base, indices[0] if indices else None)
            if job_id.isdigit():  # a single job: the common case, kept cheap
                if job_id in wanted:
                    code = exit_code(code_text)
                    if ended and (job_id, None) in ended:
                        element = _after_queue(_element(state, ended[(job_id, None)], code))
                    else:
                        element = _element(state, None, code)
                    seen[job_id] = {None: element}
                continue
            try:
                base, indices = parse_job_id(job_id)
            except SpecError:
                log.warning("sacct: cannot read job id %r; skipped", job_id)
                continue
            if base not in wanted:
                continue
            for index in indices if indices is not None else [None]:
                code = exit_code(code_text)
                if (base, index) in ended:
                    element = _after_queue(_element(state, ended[(base, index)], code))
                else:
                    element = _element(state, None, code)
                seen.setdefault(base, {})[index] = element
        if sigkilled:
            self._sigkilled_for_memory(seen, sigkilled, result.argv)
        return seen

    def _sigkilled_for_memory(
        self, seen: Seen, sigkilled: dict[str, tuple[str, int | None]], argv: Sequence[str]
    ) -> None:
        """Report OUT_OF_MEMORY for the jobs of ``sigkilled`` that OverMemoryKill ended.

        One more sacct call, only for jobs that ended FAILED 0:9, asking for their batch
        steps. An error is raised (and the poll tried again): a FAILED reported now would
        be final.
        """
        start = [a for a in argv if a.startswith("--starttime=")]
        steps = [f"{job_id}.batch" for job_id in sigkilled]
        for chunk in argv_chunks(steps, 1024):  # one call, but for thousands of kills
            result = self.run(
                [
                    "sacct",
                    "--noheader",
                    "--parsable2",
                    *start,
                    f"--jobs={','.join(chunk)}",
                    "--format=JobID,State,MaxRSS",
                ]
            )
            if not result.ok:
                raise command_failed(result)
            for line in result.stdout.splitlines():
                step, _, rest = line.partition("|")
                state, _, max_rss = rest.partition("|")
                owner = sigkilled.get(step.removesuffix(".batch"))
                if owner is None or not _STEP_CANCELLED_BY.fullmatch(state):
                    continue
                job, index = owner
                used = f" (MaxRSS {max_rss})" if max_rss else ""
                seen[job][index] = (
                    JobState.OUT_OF_MEMORY,
                    137,
                    f"killed by SLURM for using more memory than it requested{used}",
                )

    def accounting_missing(self, why: str) -> None:
        self.accounting = False
        self.warn_once(
            "no-accounting",
            "SLURM accounting is not available (%s); final states come from "
            "`scontrol show job` while the controller remembers a job, then from "
            "the jobs' exit-code files",
            why,
        )

    # -- the controller's memory ------------------------------------------------------

    def memory_argv(self) -> list[str] | None:
        return ["scontrol", "show", "job", "--oneliner"]

    def parse_memory(self, result: CommandResult, native_ids: Sequence[str]) -> Seen:
        if not result.ok:
            if "No jobs in the system" in result.stdout + result.stderr:
                return {}
            raise command_failed(result)
        wanted = set(native_ids)
        seen: Seen = {}
        for line in result.stdout.splitlines():
            keys = dict(_SCONTROL_KEYS.findall(line))
            if "JobId" not in keys:
                continue
            task = keys.get("ArrayTaskId", "")
            if task.isdigit() and keys.get("ArrayJobId") in wanted:
                owner, index = keys["ArrayJobId"], int(task)
            elif keys["JobId"] in wanted and not task:
                owner, index = keys["JobId"], None
            else:
                continue
            element = _element(
                keys.get("JobState", ""), keys.get("Reason"), exit_code(keys.get("ExitCode", ""))
            )
            if element[0].is_terminal:
                if self.accounting and keys.get("ExitCode") == "0:9":
                    # SIGKILLed, perhaps for its memory: only accounting tells (its batch
                    # step), and it has not caught up yet (an array element can be missing
                    # from sacct for seconds: 22.05/oom-sacct-array-placeholder).
                    element = (JobState.RUNNING, None, "ending; accounting has not caught up yet")
                seen.setdefault(owner, {})[index] = element
        return seen

    # -- cancel ---------------------------------------------------------------------

    def cancel_argv(
        self, native_ids: Sequence[str], indices: Sequence[int] | None, signal: str | None
    ) -> list[str]:
        targets = [f"{n}_{i}" for n in native_ids for i in indices] if indices else list(native_ids)
        # Without --full a signal reaches only the job's steps, not its batch script.
        options = ["--full", f"--signal={signal}"] if signal else []
        return ["scancel", *options, *targets]

    def cancel_ok(self, result: CommandResult) -> bool:
        # Jobs that already ended are not an error: the goal is reached.
        return result.ok or bool(
            _INVALID_ID.search(result.stderr) or "already completing or completed" in result.stderr
        )

    # -- the queue view -------------------------------------------------------------

    def list_queue(self, all_users: bool = False) -> list[QueueEntry]:
        return parse_queue_list(self.run(queue_list_argv(all_users)))


def _after_queue(element: Element) -> Element:
    """An accounting row of a job squeue showed ending or ended: never a state earlier
    than "ending" when accounting has not caught up yet (e.g. RUNNING, even PENDING,
    just after a cancel)."""
    if element[0] not in TERMINAL:
        return JobState.RUNNING, None, "ending; accounting has not caught up yet"
    return element


def _task_indices(task: str) -> list[int | None] | None:
    """Indices from squeue's array task field (``5``, ``3-6%2``, ``1,3-5``)."""
    if task.isdigit():
        return [int(task)]
    try:
        return list(parse_array(task.strip("[]")).indices)
    except SpecError:
        return None


# -- the queue view: every job of the user (or of everybody), jobfleet's or not ------------

#: squeue's fields for the queue view, split by the ASCII unit separator, which no job
#: name or partition contains; the name comes last, so a name holding one anyway stays whole.
_LIST_SEP = "\x1f"
_LIST_FORMAT = _LIST_SEP.join(("%i", "%F", "%K", "%T", "%M", "%N", "%P", "%u", "%r", "%j"))


def queue_list_argv(all_users: bool) -> list[str]:
    """The one squeue call for the queue view.

    Without ``--array``, waiting elements of an array are one row (``123_[5-10%2]``)
    and started ones a row each; ``--all`` includes hidden partitions; ``--me``
    (SLURM 20.11 and newer) selects the caller's jobs by uid.
    """
    users = [] if all_users else ["--me"]
    return ["squeue", "--noheader", "--all", *users, f"--format={_LIST_FORMAT}"]


def parse_queue_list(result: CommandResult) -> list[QueueEntry]:
    """The rows of :func:`queue_list_argv`'s output; CommandError if squeue failed."""
    if not result.ok:
        raise command_failed(result)
    entries = []
    for line in result.stdout.splitlines():
        fields = line.split(_LIST_SEP, 9)
        if len(fields) < 10:
            continue
        display, array_id, task, native, used, nodes, partition, user, reason, name = fields
        state, _ = map_state(native)
        entries.append(
            QueueEntry(
                native_id=array_id,  # for a job that is no array, its own id
                tasks=None if task in ("N/A", "") else task,
                display_id=display,
                name=name,
                user=user,
                state=state,
                native_state=native,
                elapsed_s=None if state is JobState.PENDING else parse_slurm_duration(used),
                nodes=nodes or None,
                queue=partition or None,
                reason=None if reason in ("None", "") else reason,
            )
        )
    return entries
