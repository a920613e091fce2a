"""How a report changes the status of a job or an array element.

Pure functions over ``(state, exit_code, reason)`` triples (:data:`Status`):
no database, no clock. The rules:

- Terminal states are final: a late or stale report never moves a finished
  job or element; it may only fill in an exit code or a reason still missing.
- An exit code, once known, stays until the state changes; no news keeps it.
- A reason describes a state: a new state replaces it, even with None.
- An array's state and exit code follow from its elements'.
"""

from __future__ import annotations

import logging
from collections.abc import Set
from typing import TypeAlias

from jobfleet.states import TERMINAL, JobState, aggregate

__all__ = [
    "Status",
    "array_status",
    "merge",
    "merge_job",
    "needs_worst_exit",
    "next_reason",
]

log = logging.getLogger(__name__)

#: (state, exit_code, reason) of a job or an element.
Status: TypeAlias = tuple[JobState, int | None, str | None]


def next_reason(old: JobState, new: JobState, reason: str | None, given: str | None) -> str | None:
    """The reason after a move from ``old`` (holding ``reason``) to ``new``, reported
    with ``given``."""
    if old in TERMINAL:
        return reason if reason is not None else given
    if new is not old:
        return given
    return given if given is not None else reason


def merge(job_id: str, idx: int | None, old: Status, given: Status) -> Status:
    """The status after a report of ``given``, keeping terminal states final.

    ``job_id`` and ``idx`` (None for the job itself) only name it in the
    warning logged when a report would move a terminal state.
    """
    state, exit_code, reason = old
    new_state, new_exit, new_reason = given
    if state in TERMINAL and new_state is not state:
        where = "" if idx is None else f" element {idx}"
        log.warning("job %s:%s already %s; ignoring report of %s", job_id, where, state, new_state)
        new_state = state
    if state in TERMINAL:
        new_exit = exit_code if exit_code is not None else new_exit
    elif new_exit is None:
        new_exit = exit_code
    return new_state, new_exit, next_reason(state, new_state, reason, new_reason)


def merge_job(
    job_id: str,
    old: Status,
    given: tuple[JobState | None, int | None, str | None],
    movable: Set[JobState] | None = None,
) -> Status:
    """The status of a single job after a report whose state may be None (no news).

    ``movable``: the states the report may move the job out of (None: any).
    """
    new_state, exit_code, reason = given
    if new_state is None or (movable is not None and old[0] not in movable):
        new_state = old[0]
    return merge(job_id, None, old, (new_state, exit_code, reason))


def needs_worst_exit(present: Set[JobState]) -> bool:
    """True when an array whose elements are in ``present`` states takes its exit
    code from its elements' largest non-zero one (see :func:`array_status`)."""
    return present <= TERMINAL and present != {JobState.COMPLETED}


def array_status(
    old: Status, present: Set[JobState], worst_exit: int | None, given_reason: str | None
) -> Status:
    """The job-level status of an array whose elements are in the ``present`` states.

    Its state is :func:`~jobfleet.states.aggregate` of them; its exit code is
    None until every element ended, then 0 when all completed, else
    ``worst_exit`` (the largest non-zero element exit code; read it only when
    :func:`needs_worst_exit`). Its reason follows :func:`next_reason`.
    """
    state = aggregate(present)
    exit_code = None
    if present <= TERMINAL:
        exit_code = 0 if present == {JobState.COMPLETED} else worst_exit
    return state, exit_code, next_reason(old[0], state, old[2], given_reason)
