"""SLURM's squeue output, read by pure functions: the poll's queue call and the queue view.

squeue shows what slurmctld holds in memory: waiting and running jobs, and jobs that
ended less than MinJobAge ago (with ``--states=all``), without their exit codes.
Recorded output in ``tests/backends/slurm/fixtures/22.05/`` (docs/slurm-notes.md).
"""

from __future__ import annotations

import logging

from jobfleet.backends.base import QueueEntry
from jobfleet.backends.command import Ended, PollContext, Seen, command_failed
from jobfleet.backends.slurm.parse import ENDING, INVALID_ID, map_state, to_element
from jobfleet.errors import SpecError
from jobfleet.nativeunits import parse_slurm_duration
from jobfleet.runner import CommandResult
from jobfleet.spec import parse_array
from jobfleet.states import TERMINAL, JobState

__all__ = ["LIST_FORMAT", "LIST_SEP", "QUEUE_FORMAT", "parse_queue", "parse_queue_list"]

log = logging.getLogger(__name__)

QUEUE_FORMAT = "%i|%A|%F|%K|%T|%r|%j"
#: squeue's fields for the queue view, split by the ASCII unit separator, which no job
#: name or partition contains; the name comes last, so a name holding one anyway stays whole.
LIST_SEP = "\x1f"
LIST_FORMAT = LIST_SEP.join(("%i", "%F", "%K", "%T", "%M", "%N", "%P", "%u", "%r", "%j"))


def parse_queue(result: CommandResult, ctx: PollContext) -> tuple[Seen, Ended]:
    """States from squeue, and the elements it showed ending or ended, with what it
    said of them, for accounting to read later.

    squeue's word for an element that ended (``ENDING`` for COMPLETING) is kept for
    accounting's row, which may lag behind (still RUNNING, even PENDING, right after a
    cancel): a final state squeue showed is never walked back by such a row. Exit
    codes are accounting's: squeue has none.
    """
    if not result.ok:
        if INVALID_ID.search(result.stderr):
            return {}, {}  # none of them is in the controller's memory any more
        raise command_failed(result)
    seen: Seen = {}
    ended: Ended = {}
    for line in result.stdout.splitlines():
        fields = line.split("|", 6)
        if len(fields) < 7:
            continue
        _, job_id, array_id, task, state, reason, _name = fields
        indices: list[int | None] | None
        if task in ("N/A", ""):
            element = ENDING if state == "COMPLETING" else to_element(state, reason, None)
            if element is not ENDING and element[0] not in TERMINAL:
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
            owner = array_id
            element = ENDING if state == "COMPLETING" else to_element(state, reason, None)
        if element is ENDING or element[0] in TERMINAL:
            # Ending or ended: how it ended (its exit code; who cancelled it) is
            # accounting's. squeue's reason for a cancellation stays (sacct does not
            # say why SLURM cancelled a job, e.g. DependencyNeverSatisfied).
            for index in indices:
                ended[(owner, index)] = element
            seen.setdefault(owner, {})
            continue
        mine = seen.setdefault(owner, {})
        for index in indices:
            mine[index] = element
    return seen, ended


def _task_indices(task: str) -> list[int | None] | None:
    """Indices from squeue's array task field (``5``, ``3-6%2``, ``1,3-5``)."""
    if task.isdigit():
        return [int(task)]
    try:
        return list(parse_array(task.strip("[]")).indices)
    except SpecError:
        return None


# -- the queue view ---------------------------------------------------------------------


def parse_queue_list(result: CommandResult) -> list[QueueEntry]:
    """The rows of the queue view's squeue call; CommandError if squeue failed."""
    if not result.ok:
        raise command_failed(result)
    entries = []
    for line in result.stdout.splitlines():
        fields = line.split(LIST_SEP, 9)
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
