"""SLURM's states and ids, and the output of sbatch and scontrol, read by pure functions:
output (and a poll's context) in, records out. Nothing here runs a command or keeps state
between calls. squeue is read by :mod:`.queue`, sacct by :mod:`.accounting`.

Checked against a live SLURM 22.05 cluster with slurmdbd accounting (recorded
output in ``tests/backends/slurm/fixtures/``) and the documented formats of newer
versions; see docs/slurm-notes.md.
"""

from __future__ import annotations

import functools
import logging
import re

from jobfleet.backends.command import Element, PollContext, Seen, command_failed
from jobfleet.errors import CommandError, SpecError
from jobfleet.nativeunits import parse_slurm_duration
from jobfleet.runner import CommandResult
from jobfleet.spec import parse_array
from jobfleet.states import JobState, walltime_exceeded

__all__ = [
    "ENDING",
    "INVALID_ID",
    "NEVER_RUNS",
    "STATE_MAP",
    "STOPPING",
    "TRANSIENT_SUBMIT",
    "exit_code",
    "map_state",
    "named",
    "parse_find_by_name",
    "parse_job_id",
    "parse_memory",
    "parse_submit",
    "to_element",
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
# "CANCELLED by <uid>" (tests/backends/slurm/fixtures/22.05/oom-*): see .accounting.

#: Pending reasons that mean the job will never start by itself.
NEVER_RUNS = {
    "DependencyNeverSatisfied": "a dependency can never be met",
    "BadConstraints": "its constraints can never be satisfied",
    "PartitionConfig": "it asks for more than its partition allows",
    "JobHeldAdmin": "an administrator holds it",
    "JobHeldUser": "it is held (scontrol release to start it)",
}

#: stderr of a refused submission that a later try may get through.
TRANSIENT_SUBMIT = re.compile(
    r"QOSMaxSubmitJob|AssocMaxSubmitJob|MaxSubmitJobs|Socket timed out|"
    r"temporarily unable|Resource temporarily unavailable|try again|"
    r"Unable to contact slurm controller|Connection refused",
    re.IGNORECASE,
)
#: stderr of squeue/scancel naming job ids the controller no longer holds.
INVALID_ID = re.compile(r"Invalid job id specified", re.IGNORECASE)
#: A job that is ending (squeue's COMPLETING), or that ended while accounting has not
#: caught up yet: still running, until it is known how it ended.
ENDING: Element = (JobState.RUNNING, None, "ending; accounting has not caught up yet")
#: A job squeue shows COMPLETING that accounting already shows ended (sacct writes a
#: cancel's or a time-out's final row at once): its job script may not have recorded
#: its command's exit code yet (22.05/cancel-lag-*), so it is still running.
STOPPING: Element = (
    JobState.RUNNING,
    None,
    "ending; SLURM is still stopping its processes (COMPLETING)",
)
_SCONTROL_KEYS = re.compile(
    r"(?:^|\s)(JobId|ArrayJobId|ArrayTaskId|JobState|Reason|ExitCode|TimeLimit)=(\S*)"
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


def named(native_state: str, ctx: PollContext) -> str:
    """sacct's ``CANCELLED by 1000`` with the uid's name (``ctx.user_name``):
    ``CANCELLED by alice``; any other state as it is."""
    word, by, uid = native_state.partition(" by ")
    if by and uid.isdigit():
        return f"{word} by {ctx.user_name(int(uid))}"
    return native_state


@functools.lru_cache(maxsize=4096)
def to_element(
    native_state: str, reason: str | None, code: int | None, limit_s: int | None = None
) -> Element:
    """jobfleet's (state, exit code, reason) for SLURM's (``limit_s``: the job's time
    limit, if known); cached: a poll of thousands of jobs sees only a handful of
    different combinations."""
    state, detail = map_state(native_state)
    if state is JobState.CANCELLED and detail:
        reason = f"cancelled {detail}"
    elif state is JobState.CANCELLED and reason == "DependencyNeverSatisfied":
        reason = f"cancelled: {NEVER_RUNS[reason]} ({reason})"
    elif state is JobState.CANCELLED and not (reason or "").startswith("cancelled"):
        # scontrol and squeue do not say who; sacct does (``CANCELLED by <uid>``). Their
        # reason is still the one it waited for, if it never started. (A reason read
        # already, kept from squeue for accounting's row, stays as it is.)
        waited = "" if reason in (None, "", "None") else f" while waiting ({reason})"
        reason = f"cancelled{waited} (SLURM did not say by whom)"
    elif state is JobState.TIMEOUT:
        deadline = native_state.startswith("DEADLINE")
        reason = "deadline reached" if deadline else walltime_exceeded(limit_s)
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


# -- submit and look-up ---------------------------------------------------------------


def parse_submit(result: CommandResult) -> str:
    """The job id ``sbatch --parsable`` printed (``id`` or ``id;cluster``)."""
    first = result.stdout.strip().splitlines()[0] if result.stdout.strip() else ""
    native = first.split(";", 1)[0]
    if not native.isdigit():
        raise CommandError(result.argv, f"sbatch printed no job id: {result.stdout!r}")
    return native


def parse_find_by_name(result: CommandResult, *, last: bool = False) -> str | None:
    """The job id in a ``--format=%F`` (squeue) or ``JobIDRaw`` (sacct) listing, the
    first (or ``last``); None for none. CommandError when the command failed:
    no answer is not "no such job"."""
    if not result.ok:
        raise command_failed(result)
    ids = [line.strip() for line in result.stdout.splitlines() if line.strip().isdigit()]
    if not ids:
        return None
    return ids[-1] if last else ids[0]


# -- the controller's memory --------------------------------------------------------------


def parse_memory(result: CommandResult, ctx: PollContext) -> Seen:
    """Final states of the jobs ``ctx.ids`` from ``scontrol show job --oneliner``.

    With accounting (``ctx.accounting``), a job SIGKILLed is left to it: only its
    batch step tells whether that was for its memory.
    """
    if not result.ok:
        if "No jobs in the system" in result.stdout + result.stderr:
            return {}
        raise command_failed(result)
    wanted = set(ctx.ids)
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
        element = to_element(
            keys.get("JobState", ""),
            keys.get("Reason"),
            exit_code(keys.get("ExitCode", "")),
            parse_slurm_duration(keys.get("TimeLimit", ""))
            if keys.get("JobState") == "TIMEOUT"
            else None,
        )
        if element[0].is_terminal:
            if ctx.accounting and keys.get("ExitCode") == "0:9":
                # SIGKILLed, perhaps for its memory: only accounting tells (its batch
                # step), and it has not caught up yet (an array element can be missing
                # from sacct for seconds: 22.05/oom-sacct-array-placeholder).
                # (A cancel is taken at once, although only accounting says by whom:
                # waiting for it could outlast scontrol's memory of the job, and the
                # job would then be read from its exit-code file as failed 143.)
                element = ENDING
            seen.setdefault(owner, {})[index] = element
    return seen
