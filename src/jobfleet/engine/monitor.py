"""Watching jobs: batched polls, backoff, callbacks that fire once, outages ridden out.

>>> from jobfleet import Fleet, JobSpec                          # doctest: +SKIP
>>> fleet = Fleet()                                               # doctest: +SKIP
>>> job = fleet.submit(JobSpec(["python", "train.py"]))           # doctest: +SKIP
>>> monitor = fleet.monitor()                                     # doctest: +SKIP
>>> monitor.watch([job.id], on_failure=notify)                    # doctest: +SKIP
>>> monitor.wait()                                                # doctest: +SKIP

There is one :class:`Monitor` per backend of a :class:`~jobfleet.engine.fleet.Fleet`
(``fleet.monitor(name)``). Each poll asks the scheduler about every watched
job of that backend at once (one queue call, then one accounting call for
what left the queue: see :meth:`jobfleet.engine.fleet.Fleet.refresh`). Polls start
``wait.first_poll`` apart and back off by half each time up to
``wait.poll_interval``; two polls of a scheduler are never closer than
``wait.min_gap``, so a site's rate limit is never approached. A poll that
cost this process much CPU (an array of 100,000 elements, thousands of jobs)
is followed by a pause of at least four times that cost: a waiting client
takes at most about a fifth of one core (:data:`POLL_CPU_SHARE`), whatever it watches.

Callbacks: each (job, callback key) fires once, ever. Before firing, the
monitor claims it in the registry; after it returns (or raises: the error is
logged and recorded), it is marked fired. A program restarted after a crash
watches its jobs again with the same callbacks: those already fired are
skipped, those of jobs that ended meanwhile fire now. Only a crash *during* a
callback makes it fire again, at the next monitor (at least once, never lost).
A callback's key is its qualified name (``module.function``) unless given.

Outages: a poll that fails changes nothing (the jobs keep their last known
state), is retried after the usual interval, and restarts every lost-job
timer (see :meth:`jobfleet.registry.Registry.track_absence`).

A monitor knows nothing of fleets: it asks a :class:`JobSource` for records
(the fleet is one) and keeps its callback claims in a :class:`CallbackLedger`
(the registry is one). Data flows one way, from the source to the user.

The blocking (:meth:`Monitor.wait`) and asyncio (:meth:`Monitor.wait_async`)
interfaces share one implementation: a poll is a plain call (run in a worker
thread under asyncio), only the sleeping and the calling of callbacks differ.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from jobfleet import owner
from jobfleet.engine.callbacks import (
    Callback,
    CallbackLedger,
    Due,
    Event,
    Hook,
    default_key,
    fires,
    run_to_completion,
)
from jobfleet.errors import CommandError, SpecError, WaitTimeout
from jobfleet.runner import unbounded
from jobfleet.states import JobRecord

__all__ = [
    "POLL_CPU_SHARE",
    "Callback",
    "CallbackLedger",
    "JobSource",
    "Monitor",
    "Pace",
    "wait_all",
]

log = logging.getLogger(__name__)

#: The most of one core a waiting client spends polling: after a poll that cost C
#: seconds of this process's CPU, the next one comes C * (1 / share - 1) later at the
#: earliest. Local jobs share the machine with the client; on a cluster it keeps a
#: login node's neighbours in mind.
POLL_CPU_SHARE = 0.2

#: Called after every poll with the records watched (e.g. a progress bar).
OnUpdate = Callable[[list[JobRecord]], None]


class JobSource(Protocol):
    """Where a monitor gets its records (a :class:`~jobfleet.engine.fleet.Fleet`)."""

    def records(self, job_ids: Sequence[str]) -> list[JobRecord]:
        """The recorded state of these jobs, nothing asked (UnknownJobError if one is not)."""
        ...

    def refresh(self, records: Sequence[JobRecord]) -> list[JobRecord]:
        """Ask the backend about these jobs, record and return them fresh
        (CommandError when it cannot be asked)."""
        ...

    def unfinished(self, backend: str | None = None) -> list[JobRecord]:
        """Every unfinished job of a backend."""
        ...


@dataclass
class Pace:
    """When the next poll may happen: backoff between polls and the rate-limit floor.

    Attributes:
        first_s: the first interval, grown by half at each poll...
        ceiling_s: ...up to this one (``wait.poll_interval``).
        floor_s: never closer than this (``wait.min_gap``; 0 where no scheduler is asked).
        cost_s: the CPU the last poll cost this process (:meth:`cost`); the next one
            waits at least ``cost_s * (1 / POLL_CPU_SHARE - 1)`` after it ended.
    """

    first_s: float
    ceiling_s: float
    floor_s: float
    interval_s: float = 0.0
    last: float | None = None  # time.monotonic() of the last poll
    cost_s: float = 0.0
    ended: float | None = None  # time.monotonic() when the last poll ended

    def __post_init__(self) -> None:
        self.interval_s = self.first_s

    def delay(self, now: float) -> float:
        if self.last is None:
            return 0.0
        gap = max(self.interval_s, self.floor_s)
        due = self.last + gap
        if self.ended is not None and self.cost_s > 0:
            due = max(due, self.ended + self.cost_s * (1 / POLL_CPU_SHARE - 1))
        return max(due - now, 0.0)

    def polled(self, now: float) -> None:
        self.last = now
        self.interval_s = min(self.interval_s * 1.5, self.ceiling_s)

    def cost(self, cpu_s: float, now: float) -> None:
        """The poll that started at the last :meth:`polled` ended at ``now``, having
        cost ``cpu_s`` seconds of this thread's CPU."""
        self.cost_s = max(cpu_s, 0.0)
        self.ended = now

    def restart(self) -> None:
        self.interval_s = self.first_s


class Monitor:
    """Watches jobs of one backend; use :meth:`Fleet.monitor` to get a fleet's.

    Thread-safe: one poll runs at a time.

    Args:
        backend: the backend's name (every watched job runs there).
        source: where records come from and polls go.
        ledger: where callbacks are claimed and marked fired.
        pace: when polls may happen.
    """

    def __init__(self, backend: str, source: JobSource, ledger: CallbackLedger, pace: Pace):
        self.backend = backend
        self._source = source
        self._ledger = ledger
        self._pace = pace
        self._records: dict[str, JobRecord] = {}
        self._hooks: dict[str, list[Hook]] = {}
        self._poll_lock = threading.Lock()  # one poll at a time
        self._state_lock = threading.Lock()  # records and hooks; never held while polling
        #: Polls made, and how many of them the scheduler did not answer.
        self.polls = 0
        self.failed_polls = 0

    # -- what is watched ------------------------------------------------------------

    def watch(
        self,
        job_ids: Iterable[str],
        *,
        on_success: Callback | None = None,
        on_failure: Callback | None = None,
        on_exit: Callback | None = None,
        key: str | None = None,
    ) -> list[JobRecord]:
        """Watch these jobs, with callbacks for how they end; returns their records.

        ``on_success`` fires when a job completed, ``on_failure`` when it ended any
        other way (failed, timeout, out of memory, cancelled, lost), ``on_exit``
        in every case; each with the job's final record, once per job ever.
        ``key`` names the callbacks in the registry (default: their qualified
        names); give one for lambdas and closures so that two of them differ.

        Raises:
            UnknownJobError: an id is not in the registry.
            SpecError: a job of another backend, or two different callbacks with one key.
        """
        records = self._source.records(list(job_ids))
        for record in records:
            if record.backend != self.backend:
                raise SpecError(
                    "job_ids",
                    f"job {record.id} runs on {record.backend!r}; watch it with "
                    f"fleet.monitor({record.backend!r})",
                )
        given: tuple[tuple[Event, Callback | None], ...] = (
            ("success", on_success),
            ("failure", on_failure),
            ("exit", on_exit),
        )
        hooks = [
            Hook(event, fn, f"{event}:{key}" if key else default_key(fn, event))
            for event, fn in given
            if fn is not None
        ]
        with self._state_lock:
            for record in records:
                mine = self._hooks.setdefault(record.id, [])
                for hook in hooks:
                    clash = next((h for h in mine if h.key == hook.key), None)
                    # == and not is: a bound method is a new object at each access.
                    if clash is not None and clash.fn != hook.fn:
                        raise SpecError(
                            "key",
                            f"job {record.id} already has a callback called {hook.key!r}; "
                            "pass key= to tell them apart",
                        )
                    if clash is None:
                        mine.append(hook)
                self._records.setdefault(record.id, record)
            self._pace.restart()
        return records

    def watch_unfinished(self) -> list[JobRecord]:
        """Watch every unfinished job of this backend in the registry (after a restart)."""
        return self.watch(r.id for r in self._source.unfinished(self.backend))

    @property
    def source(self) -> JobSource:
        """Where this monitor's records come from."""
        return self._source

    @property
    def records(self) -> list[JobRecord]:
        """The watched jobs as last seen."""
        return list(self._records.values())

    def unfinished(self) -> list[str]:
        """The watched jobs not settled yet."""
        return [i for i, r in self._records.items() if not r.settled]

    def record(self, job_id: str) -> JobRecord:
        """A watched job as last seen (KeyError when it is not watched)."""
        return self._records[job_id]

    def track(self, job_ids: Sequence[str] | None) -> list[str]:
        """These jobs (default: every watched one), watched from now on; their ids."""
        if job_ids is None:
            return list(self._records)
        missing = [i for i in job_ids if i not in self._records]
        if missing:
            self.watch(missing)
        return list(job_ids)

    # -- one poll -------------------------------------------------------------------

    def delay(self) -> float:
        """Seconds until the next poll is due (0: now)."""
        return self._pace.delay(time.monotonic())

    def _poll(self) -> None:
        """One poll of the unfinished watched jobs (one at a time; watching goes on
        meanwhile: the state lock is never held across the scheduler's answer)."""
        with self._poll_lock:
            with self._state_lock:
                records = [self._records[i] for i in self.unfinished()]
                self._pace.polled(time.monotonic())
                self.polls += 1
            cpu = time.thread_time()
            try:
                fresh = self._source.refresh(records)
            except CommandError as exc:
                with self._state_lock:
                    self.failed_polls += 1
                if not exc.transient:
                    raise
                log.warning(
                    "%s: cannot ask the scheduler right now (%s); still watching", self.backend, exc
                )
                fresh = self._source.records([r.id for r in records]) if records else []
            with self._state_lock:
                self._records.update((r.id, r) for r in fresh)
                self._pace.cost(time.thread_time() - cpu, time.monotonic())

    def _claim(self) -> list[Due]:
        """Claim the callbacks of the jobs that ended; those won are to be fired now."""
        with self._state_lock:
            ended = [
                (r, h)
                for r in self._records.values()
                if r.settled
                for h in self._hooks.get(r.id, ())
                if fires(h.event, r)
            ]
            if not ended:
                return []
            won = set(
                self._ledger.claim_callbacks([(r.id, h.key) for r, h in ended], owner.current())
            )
            for record, hook in ended:
                self._hooks[record.id].remove(hook)  # fired here, or elsewhere, or before
            return [Due(r, h) for r, h in ended if (r.id, h.key) in won]

    def _give_back(self, dues: Sequence[Due]) -> None:
        """Callbacks claimed and not fired (interrupted): released for the next poll."""
        if not dues:
            return
        with self._state_lock:
            for due in dues:
                self._hooks.setdefault(due.record.id, []).append(due.hook)
        self._ledger.release_callbacks([(d.record.id, d.hook.key) for d in dues], owner.current())

    def _done(self, due: Due, error: BaseException | None) -> None:
        outcome = "ok" if error is None else f"{type(error).__name__}: {error}"
        if error is not None:
            log.error(
                "job %s: callback %s raised %s",
                due.record.id,
                due.hook.key,
                outcome,
                exc_info=(type(error), error, error.__traceback__),
            )
        self._ledger.callbacks_done([(due.record.id, due.hook.key, outcome)])

    def poll(self) -> list[JobRecord]:
        """Poll now (after the rate-limit floor), fire callbacks; the watched records."""
        time.sleep(self.delay())
        self._poll()
        dues = self._claim()
        for n, due in enumerate(dues):
            try:
                # A callback's own commands (a job it submits) are never cut short
                # by the bound of a wait with a time-out.
                with unbounded():
                    result = due.hook.fn(due.record)
                    if inspect.isawaitable(result):
                        run_to_completion(result)
            except Exception as exc:
                self._done(due, exc)
            except BaseException:  # KeyboardInterrupt: this one and the rest fire later
                self._give_back(dues[n:])
                raise
            else:
                self._done(due, None)
        return self.records

    async def poll_async(self) -> list[JobRecord]:
        """:meth:`poll` for asyncio: the poll runs in a worker thread, callbacks in the loop.

        Cancelled (e.g. by ``asyncio.wait_for``), it loses nothing: callbacks not
        fired yet fire at a later poll.
        """
        await asyncio.sleep(self.delay())
        await asyncio.to_thread(self._poll)
        dues = self._claim()
        for n, due in enumerate(dues):
            try:
                result = due.hook.fn(due.record)
                if inspect.isawaitable(result):
                    await result
            except Exception as exc:
                self._done(due, exc)
            except BaseException:  # cancelled: this one and the rest fire later
                self._give_back(dues[n:])
                raise
            else:
                self._done(due, None)
        return self.records

    # -- waiting --------------------------------------------------------------------

    def wait(
        self,
        job_ids: Sequence[str] | None = None,
        *,
        timeout_s: float | None = None,
        on_update: OnUpdate | None = None,
    ) -> list[JobRecord]:
        """Poll until these jobs (default: every watched one) have ended; their records.

        Raises:
            WaitTimeout: ``timeout_s`` passed first (the jobs keep running).
        """
        return wait_all([self], job_ids, timeout_s=timeout_s, on_update=on_update)

    async def wait_async(
        self,
        job_ids: Sequence[str] | None = None,
        *,
        timeout_s: float | None = None,
        on_update: OnUpdate | None = None,
    ) -> list[JobRecord]:
        """:meth:`wait` for asyncio."""
        ids = self.track(job_ids)
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            await self.poll_async()
            if on_update is not None:
                on_update([self._records[i] for i in ids])
            if all(self._records[i].settled for i in ids):
                return [self._records[i] for i in ids]
            _check_deadline(deadline, [i for i in ids if not self._records[i].settled], timeout_s)
            pause = self.delay()
            if deadline is not None:
                pause = min(pause, max(deadline - time.monotonic(), 0.0))
            await asyncio.sleep(pause)


def _check_deadline(deadline: float | None, unfinished: list[str], timeout_s: float | None) -> None:
    if deadline is not None and time.monotonic() >= deadline:
        raise WaitTimeout(unfinished, timeout_s or 0.0)


def wait_all(
    monitors: Sequence[Monitor],
    job_ids: Sequence[str] | None = None,
    *,
    timeout_s: float | None = None,
    on_update: OnUpdate | None = None,
) -> list[JobRecord]:
    """Poll each monitor when it is due until the jobs (default: all watched) have ended.

    Every job must be watched by one of ``monitors`` (ids not watched yet are
    given to the monitor of their backend). Returns the records in the order asked.

    Raises:
        WaitTimeout: ``timeout_s`` passed first (the jobs keep running).
    """
    by_monitor = {id(m): m for m in monitors}
    owners: dict[str, Monitor] = {}
    if job_ids is None:
        for monitor in monitors:
            owners.update(dict.fromkeys(monitor.track(None), monitor))
        ids = list(owners)
    else:
        ids = list(job_ids)
        by_backend = {m.backend: m for m in monitors}
        for record in monitors[0].source.records(ids) if monitors else []:
            found = by_backend.get(record.backend)
            if found is None:
                raise SpecError(
                    "job_ids",
                    f"job {record.id} runs on {record.backend!r}; wait for it with "
                    f"fleet.monitor({record.backend!r}) or fleet.wait",
                )
            found.track([record.id])
            owners[record.id] = found
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    pending_polls = {id(m) for m in monitors}  # every monitor polls at least once
    while True:
        unfinished_of = {id(owners[i]) for i in ids if not owners[i].record(i).settled}
        for key, monitor in by_monitor.items():
            # The first round polls every monitor: callbacks of jobs that ended unseen fire.
            if key in pending_polls or (key in unfinished_of and monitor.delay() <= 0):
                monitor.poll()
        pending_polls.clear()
        current = [owners[i].record(i) for i in ids]
        if on_update is not None:
            on_update(current)
        unfinished = [r.id for r in current if not r.settled]
        if not unfinished:
            return current
        _check_deadline(deadline, unfinished, timeout_s)
        busy = {id(owners[i]) for i in unfinished}
        pause = min(by_monitor[k].delay() for k in busy)
        if deadline is not None:
            pause = min(pause, max(deadline - time.monotonic(), 0.0))
        time.sleep(pause)
