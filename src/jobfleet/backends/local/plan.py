"""Which waiting tasks the local agent starts now: FIFO with EASY backfill.

Pure functions over plain records, so the policy is tested without processes.

The policy, as in EASY backfilling (Lifka 1995; SLURM's backfill plugin works
the same way with time limits as estimates):

1. Tasks are considered in submission order (job order, then array index).
2. While tasks fit in the free cores, memory and GPUs, they start.
3. The first task that does not fit becomes the *head*. It gets a
   reservation: the earliest time (its *shadow time*) at which enough
   resources are free for it, assuming running tasks end at their walltime.
   A running task without a walltime is assumed to run for ever.
4. A later task may jump ahead (backfill) only if it fits now and either it
   has a walltime that ends before a known shadow time, or it fits in what
   the head leaves spare at the shadow time. So small jobs fill holes, and a
   big job is not starved by a stream of small ones (as long as walltimes are
   honest: the agent enforces them).
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar

__all__ = ["Amount", "Running", "Waiting", "plan"]

K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True, slots=True)
class Amount:
    """A quantity of cores, memory (bytes) and GPUs."""

    cores: int = 0
    memory: int = 0
    gpus: int = 0

    def __add__(self, other: Amount) -> Amount:
        return Amount(self.cores + other.cores, self.memory + other.memory, self.gpus + other.gpus)

    def __sub__(self, other: Amount) -> Amount:
        return Amount(self.cores - other.cores, self.memory - other.memory, self.gpus - other.gpus)

    def fits_in(self, other: Amount) -> bool:
        """True when this much is available within ``other``."""
        return self.cores <= other.cores and self.memory <= other.memory and self.gpus <= other.gpus


@dataclass(frozen=True, slots=True)
class Waiting(Generic[K]):
    """A task eligible to start (dependencies met, under its array's throttle)."""

    key: K
    need: Amount
    walltime_s: float | None


@dataclass(frozen=True, slots=True)
class Running:
    """A task holding resources, and when it will end at the latest (None: unknown)."""

    need: Amount
    ends_at: float | None


def plan(
    capacity: Amount,
    running: Iterable[Running],
    waiting: Iterable[Waiting[K]],
    now: float,
) -> list[K]:
    """Keys of the waiting tasks to start now, in start order.

    Args:
        capacity: everything this machine offers to jobs.
        running: tasks holding resources now.
        waiting: eligible tasks in FIFO order (consumed lazily: the scan stops
            as soon as no core is free).
        now: the current time, in the same clock as ``Running.ends_at``.
    """
    holding = list(running)
    free = capacity
    for held in holding:
        free = free - held.need
    started: list[K] = []
    shadow: float | None = None
    spare = Amount()
    for task in waiting:
        if free.cores <= 0:
            break  # every task needs at least one core: nothing more can start
        if not task.need.fits_in(free):
            if shadow is None:
                shadow, spare = _reservation(capacity, free, holding, task.need)
            continue
        if shadow is not None:
            # With an unknown shadow time (the head waits for jobs without a
            # walltime) nothing "ends in time": only the spare room is safe.
            ends_in_time = (
                task.walltime_s is not None
                and math.isfinite(shadow)
                and now + task.walltime_s <= shadow
            )
            if not ends_in_time:
                if not task.need.fits_in(spare):
                    continue
                spare = spare - task.need
        started.append(task.key)
        free = free - task.need
        ends = now + task.walltime_s if task.walltime_s is not None else None
        holding.append(Running(task.need, ends))
    return started


def _reservation(
    capacity: Amount, free: Amount, holding: list[Running], need: Amount
) -> tuple[float, Amount]:
    """The head's shadow time and what is spare at that time once the head runs."""
    available = free
    shadow = -math.inf
    for task in sorted(holding, key=lambda t: math.inf if t.ends_at is None else t.ends_at):
        if need.fits_in(available):
            break
        available = available + task.need
        shadow = math.inf if task.ends_at is None else task.ends_at
    if not need.fits_in(available):  # pragma: no cover - callers never queue oversized tasks
        return math.inf, Amount()
    return shadow, available - need
