"""The library's front door: submit, look at, wait for and cancel jobs on any backend.

>>> from jobfleet import Fleet, JobSpec            # doctest: +SKIP
>>> fleet = Fleet()                                 # doctest: +SKIP
>>> job = fleet.submit(JobSpec(["echo", "hello"]))  # doctest: +SKIP
>>> fleet.wait([job.id])[0].state                   # doctest: +SKIP
<JobState.COMPLETED: 'completed'>

Data flows one way: spec -> script -> backend -> registry -> user. Every
state a backend reports is written to the registry before any method here
returns it, so what a user is told is what any other process will see.

A :class:`Fleet` only puts the engine's steps in order: submission
(:mod:`.submission`), polling (:mod:`.polling`), recovery after a crash or a
poll (:mod:`.recovery`), cancelling (:mod:`.cancel`), watching (:mod:`.monitor`) and
removing ended jobs' files (:mod:`.cleanup`); what it shows without recording anything
(recorded jobs, queues, output paths) it has from :class:`~jobfleet.engine.views.FleetViews`.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from jobfleet.engine import cancel as cancelling
from jobfleet.engine.polling import Poller
from jobfleet.engine.pool import BackendPool
from jobfleet.engine.views import FleetViews, QueueRow, Report, counted
from jobfleet.errors import UnknownJobError
from jobfleet.registry import Registry, awaits_reconciling
from jobfleet.runner import Runner, unbounded, within
from jobfleet.states import JobRecord, JobState

# Submitting, recovering, watching and cleaning are imported by the
# methods that do them: ``jobfleet status ID`` pays for none of them (issue 16).
if TYPE_CHECKING:
    from jobfleet.backends.base import Backend
    from jobfleet.config import Config
    from jobfleet.engine.cleanup import CleanReport
    from jobfleet.engine.monitor import Monitor
    from jobfleet.engine.recovery import Recovery
    from jobfleet.engine.submission import DryRun, Submission
    from jobfleet.spec import JobSpec

#: How long a cancel's report may wait for the jobs it cancelled to read ended.
CANCEL_SETTLE_S = 5.0

__all__ = ["CleanReport", "DryRun", "Fleet", "QueueRow", "Report"]

#: Names this module offers that live in modules it imports on use.
_ELSEWHERE = {
    "CleanReport": "jobfleet.engine.cleanup",
    "DryRun": "jobfleet.engine.submission",
}


def __getattr__(name: str) -> Any:
    module = _ELSEWHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)


class Fleet(FleetViews):
    """Jobs of every backend, through one persistent registry.

    Args:
        config: the configuration; None loads it from the usual places.
        home: the registry directory; None uses ``$JOBFLEET_HOME`` or the
            per-user data directory.
        runner: how scheduler commands are run (tests inject a scripted one).
    """

    def __init__(
        self,
        config: Config | None = None,
        *,
        home: str | os.PathLike[str] | None = None,
        runner: Runner | None = None,
    ):
        if config is None:
            from jobfleet.config import load_config

            config = load_config()
        self.config = config
        self.registry = Registry(home)
        self._backends = BackendPool(lambda: self.config, self.registry.home, runner)
        self._poller = Poller(self.registry, self._backends, lambda: self.config.wait.lost_after_s)
        self._monitors: dict[str, Monitor] = {}

    # Made on first use (their modules too); both keep no state of their own, so two
    # threads making one each at once is harmless.
    @functools.cached_property
    def _submission(self) -> Submission:
        from jobfleet.engine.submission import Submission

        return Submission(self.registry, self._backends)

    @functools.cached_property
    def _recovery(self) -> Recovery:
        from jobfleet.engine.recovery import Recovery

        return Recovery(self.registry, self._backends, self._submission, self._poller)

    def close(self) -> None:
        self._backends.close()
        self.registry.close()

    def __enter__(self) -> Fleet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- backends -----------------------------------------------------------------

    def backend(self, name: str | None = None) -> Backend:
        """The backend called ``name`` (default: the configured one), created once.

        Raises:
            ConfigError: no backend of that name.
        """
        return self._backends.get(name or self.config.backend)

    def use_backend(self, backend: Backend) -> None:
        """Send jobs of ``backend.name`` to this instance (one made by the caller,
        e.g. with a runner of its own) instead of one made from the configuration."""
        self._backends.put(backend)

    def monitor(self, backend: str | None = None) -> Monitor:
        """The one :class:`~jobfleet.engine.monitor.Monitor` of a backend (default: the
        configured one)."""
        from jobfleet.engine.monitor import Monitor, Pace

        be = self.backend(backend)
        if be.name not in self._monitors:
            wait = self.config.wait
            floor = wait.min_gap_s if be.capabilities.polls_scheduler else 0.0
            pace = Pace(min(wait.first_poll_s, wait.poll_interval_s), wait.poll_interval_s, floor)
            self._monitors[be.name] = Monitor(be.name, self, self.registry, pace)
        return self._monitors[be.name]

    # -- submission ---------------------------------------------------------------

    def dry_run(self, spec: JobSpec, *, backend: str | None = None) -> DryRun:
        """The script and submit command for ``spec``, without recording or running anything."""
        be = self.backend(backend)
        spec = self._submission.prepare(spec, be)
        self._submission.check_dependencies(spec, be)  # before asking the scheduler
        deps = self._submission.resolve(spec, be, self._fresh(spec.dependency_ids()))
        return self._submission.dry_run(spec, be, deps)

    def submit(self, spec: JobSpec, *, backend: str | None = None) -> JobRecord:
        """Record, then submit one job; returns its record (state ``pending``).

        Raises:
            SpecError: the spec cannot run on this backend.
            SubmitError: the backend refused it; the job stays recorded as failed.
        """
        return self.submit_many([spec], backend=backend)[0]

    def submit_many(
        self, specs: Sequence[JobSpec], *, backend: str | None = None
    ) -> list[JobRecord]:
        """Record, then submit several jobs in one batch (one registry transaction each step).

        Every job recorded ends up submitted, failed, or ``unknown`` with the
        reason that its submission may have reached the scheduler (then the next
        refresh looks for it by its unique name): whatever happens after it is
        recorded (an exception, KeyboardInterrupt), nobody waits on it for ever.
        A job whose dependency can never be met is recorded ``cancelled`` and not
        submitted. Bad specs raise before anything is recorded.

        Raises:
            SpecError: a spec cannot run on this backend (nothing is recorded).
            SubmitError: some submissions failed or their outcome is unknown
                (they are recorded so; the others were submitted and recorded).
        """
        be = self.backend(backend)
        prepared = [self._submission.prepare(s, be) for s in specs]
        # Every job depended on is asked about once for the whole batch.
        fresh = self._fresh(list(dict.fromkeys(i for s in prepared for i in s.dependency_ids())))
        deps = [self._submission.resolve(s, be, fresh) for s in prepared]
        return self._submission.submit(be, prepared, deps)

    def _fresh(self, job_ids: Sequence[str]) -> dict[str, JobRecord]:
        """Fresh records of the jobs depended on (an unknown id: none; resolving
        the dependencies says which id, and how to fix it)."""
        if not job_ids:
            return {}
        try:
            records = self.registry.get_many(list(job_ids))
        except UnknownJobError:
            return {}
        return {r.id: r for r in self.refresh(records)}

    # -- states -------------------------------------------------------------------

    def refresh(self, records: Iterable[JobRecord]) -> list[JobRecord]:
        """See :meth:`look`; raises when a backend could not be asked."""
        report = self.look(records)
        if report.errors:
            raise next(iter(report.errors.values()))
        return report.records

    def look(self, records: Iterable[JobRecord], *, within_s: float | None = None) -> Report:
        """Ask the backends about the unfinished ones, record changes, return all as
        fresh as they could be made, with the backends that could not be asked.

        In three steps: jobs whose submitter died while submitting are looked
        for by name (recovery); every backend is polled once and what changed is
        recorded (a job the scheduler no longer knows and that left no
        exit-code file becomes ``lost`` after ``wait.lost_after`` of answered
        polls); jobs that ended in one of their ``retry_on`` states with retries
        left are submitted again (recovery).

        A backend that cannot be asked changes nothing: its jobs keep their last
        known states (:attr:`Report.unanswered` says which and why); what the
        others answered is recorded all the same. Backends are asked at once,
        each in its own thread; ``within_s`` bounds how long the asking may take
        (the first step and the poll each): a scheduler command still running
        then is stopped and its backend counts as not answering. Submissions
        (retries) are never cut short by it (a submission stopped half-way could
        not tell whether it happened).
        """
        current = {r.id: r for r in records}
        unsure = [r for r in current.values() if awaits_reconciling(r)]
        if unsure:  # rare (a submitter died): its own bound, not the poll's share
            with within(within_s):
                self._recovery.reconcile(unsure)
            current.update((r.id, r) for r in self.registry.get_many([r.id for r in unsure]))
        with within(within_s):
            polled = self._poller.refresh(current.values())
        current = {r.id: r for r in polled.records}
        # Also those that ended before (a program that died before retrying them).
        retry = [r for r in current.values() if r.retry_due]
        if retry:
            with unbounded():
                current.update((r.id, r) for r in self._recovery.retry(retry))
        unanswered = {name: str(exc) for name, exc in polled.unanswered.items()}
        return Report(list(current.values()), unanswered, polled.unanswered)

    def status(self, job_ids: Sequence[str] | None = None, *, limit: int = 20) -> list[JobRecord]:
        """Fresh records of these jobs (default: the ``limit`` most recent).

        Raises:
            CommandError: a backend could not be asked (see :meth:`status_report`,
                which shows the last known states instead).
        """
        records = self.registry.get_many(list(job_ids)) if job_ids else self.registry.recent(limit)
        return self.refresh(records)

    def status_report(
        self,
        job_ids: Sequence[str] | None = None,
        *,
        limit: int = 20,
        within_s: float | None = None,
        ask: bool = True,
        ended_elements: bool = True,
        settling_whole: bool = False,
    ) -> Report:
        """:meth:`status` that never goes blind: jobs of a backend that cannot be
        asked (its scheduler is down) come with their last known states, and the
        report says which backends did not answer and why.

        Args:
            job_ids: the jobs (default: the ``limit`` most recent).
            limit: how many recent jobs without ids.
            within_s: the longest wait for the schedulers (default
                ``wait.status_timeout``); one still asked then is not answering.
            ask: False shows the recorded states at once, asking nobody (every
                unfinished job's backend is then reported as not asked).
            ended_elements: False for a view that only counts elements: an array
                that ended comes without them, counted (:attr:`Report.element_counts`);
                with ``settling_whole``, one whose usage may still fill in comes whole.
        """
        records, counts = counted(self.registry, job_ids, limit, ended_elements, settling_whole)
        unwritable = self.registry.read_only
        if not ask or unwritable is not None:
            # A registry that cannot be written cannot record what a poll learns:
            # its recorded states are shown, and why nobody was asked.
            why = "not asked" if not ask else f"not asked: {unwritable}"
            skipped = {r.backend for r in records if not r.state.is_terminal}
            return Report(records, dict.fromkeys(sorted(skipped), why), element_counts=counts)
        if within_s is None:
            within_s = self.config.wait.status_timeout_s
        # Arrays read without their elements are not asked about (they ended).
        report = self.look([r for r in records if r.id not in counts], within_s=within_s)
        fresh = {r.id: r for r in report.records}
        mixed = [fresh.get(r.id, r) for r in records]
        return Report(mixed, report.unanswered, report.errors, element_counts=counts)

    def wait(
        self,
        job_ids: Sequence[str],
        *,
        timeout_s: float | None = None,
        on_update: Callable[[list[JobRecord]], None] | None = None,
    ) -> list[JobRecord]:
        """Block until every job is terminal; returns their records.

        Polls through each backend's :meth:`monitor` (backoff from
        ``wait.first_poll`` to ``wait.poll_interval``, never closer than
        ``wait.min_gap`` for a scheduler); rides out a scheduler that does not answer.

        With ``timeout_s``, no scheduler command outlives it by much: each is
        stopped ``timeout_s`` after the start (but never before
        ``wait.status_timeout``, so that each scheduler is asked once).

        Raises:
            WaitTimeout: ``timeout_s`` passed first (the jobs keep running).
        """
        records = self.registry.get_many(list(job_ids))
        monitors = [self.monitor(name) for name in dict.fromkeys(r.backend for r in records)]
        bound = None
        if timeout_s is not None:
            bound = max(timeout_s, self.config.wait.status_timeout_s)
        from jobfleet.engine.monitor import wait_all

        with within(bound):
            return wait_all(monitors, list(job_ids), timeout_s=timeout_s, on_update=on_update)

    def cancel(
        self,
        job_ids: Sequence[str],
        *,
        indices: Sequence[int] | None = None,
        signal: str | None = None,
    ) -> list[JobRecord]:
        """Cancel these jobs (every element of arrays), or only some elements of one
        array, or send them a signal instead; returns their fresh records.

        Args:
            job_ids: the jobs.
            indices: only these elements (of a single array job).
            signal: a signal name (``TERM``, ``SIGUSR1``, ...) to send to the running
                jobs instead of cancelling them, e.g. to let them stop gracefully.

        Raises:
            SpecError: indices for several jobs, for a job that is not an array,
                or that it does not have; an unknown signal.
            CommandError: a backend could not be asked; the jobs of the other
                backends were cancelled all the same (:meth:`cancel_report` says
                which instead of raising).
        """
        report = self.cancel_report(job_ids, indices=indices, signal=signal)
        if report.errors:
            raise next(iter(report.errors.values()))
        return report.records

    def cancel_report(
        self,
        job_ids: Sequence[str],
        *,
        indices: Sequence[int] | None = None,
        signal: str | None = None,
    ) -> Report:
        """:meth:`cancel` that goes on past a backend that cannot be asked: the
        other backends' jobs are cancelled and refreshed, that backend's are left
        as last known and :attr:`Report.unanswered` names it.

        Raises:
            SpecError: as :meth:`cancel`.
        """
        name = cancelling.signal_name(signal) if signal is not None else None
        records = self.registry.get_many(list(job_ids))
        retried = {r.id: r for r in records if r.spec.get("retries")}
        if retried and signal is None:
            # A cancelled job is not submitted again, even if its last attempt failed.
            self.registry.stop_retries(list(retried))
            records = self.registry.get_many(list(job_ids))
        unsure = [r for r in records if awaits_reconciling(r)]
        if unsure:
            # Submitted or not? Look for them by name first: found ones are cancelled
            # below like any other, and one the scheduler never got ends failed.
            self._recovery.reconcile(unsure)
            records = self.registry.get_many(list(job_ids))
        cancelling.check_indices(records, indices)
        failed = cancelling.cancel(
            self.registry, self._backends, records, indices=indices, signal=name
        )
        if failed and retried and signal is None:
            # Not cancelled after all: those jobs keep the retries they had.
            self.registry.restore_retries(
                {i: r.spec["retries"] for i, r in retried.items() if r.backend in failed}
            )
        after = self.registry.get_many([r.id for r in records])
        # A backend that did not take the cancel is not asked again at once.
        report = self.look([r for r in after if r.backend not in failed])
        fresh = {r.id: r for r in report.records}
        if signal is None:
            fresh.update(self._stopped(list(fresh.values()), indices))
        return Report(
            [fresh.get(r.id, r) for r in after],
            {**{b: str(exc) for b, exc in failed.items()}, **report.unanswered},
            {**failed, **report.errors},
        )

    def _stopped(
        self, records: Sequence[JobRecord], indices: Sequence[int] | None
    ) -> dict[str, JobRecord]:
        """Records of just-cancelled jobs that still read running, asked about again
        for a moment (at most :data:`CANCEL_SETTLE_S`): a scheduler may show a job as
        still being stopped (SLURM's COMPLETING) while its job script records how its
        command ended. What reads so after that is reported as it is."""
        fresh: dict[str, JobRecord] = {}
        deadline = time.monotonic() + CANCEL_SETTLE_S
        pause = 0.1
        left = cancelling.still_stopping(records, indices)
        while left and time.monotonic() + pause < deadline:
            time.sleep(pause)
            pause = min(pause * 2, 1.0)
            again = self.look(left)
            answered = [r for r in again.records if again.refreshed(r)]
            fresh.update((r.id, r) for r in answered)
            left = cancelling.still_stopping(answered, indices)
        return fresh

    def unfinished_matching(
        self, names: str | Sequence[str] | None = None, *, backend: str | None = None
    ) -> list[JobRecord]:
        """The registry's unfinished jobs (see :meth:`unfinished`) whose name matches
        one of the shell-style patterns ``names`` (``train-*``, ``run-?``; case-sensitive;
        None: every job), of one backend or of all, oldest first, refreshed first
        so that a job that has just ended is not among them.

        Only jobs of this registry are ever chosen, never other jobs on a scheduler.

        Raises:
            SpecError: an empty pattern.
            ConfigError: ``backend`` is no backend (the message names the valid ones).
        """
        patterns = [names] if isinstance(names, str) else names
        if patterns is not None:
            cancelling.check_patterns(patterns)
        if backend is not None:
            self._backends.check(backend)
        chosen = cancelling.matching(self.registry.unfinished(backend), patterns)
        if not chosen:
            return []
        return [r for r in self.look(chosen).records if not r.state.is_terminal or r.retry_due]

    def cancel_matching(
        self,
        names: str | Sequence[str] | None = None,
        *,
        backend: str | None = None,
        signal: str | None = None,
    ) -> Report:
        """Cancel (or send ``signal`` to) every job :meth:`unfinished_matching` chooses:
        ``cancel_matching("train-*")``, ``cancel_matching(backend="slurm")``, or
        ``cancel_matching()`` for every unfinished job of the registry.

        Returns:
            As :meth:`cancel_report`: the chosen jobs, fresh; a backend that could
            not be asked is named in :attr:`Report.unanswered` (its jobs as last
            known) while the others' jobs are cancelled all the same.

        Raises:
            SpecError: an empty pattern; an unknown signal.
            ConfigError: ``backend`` is no backend.
        """
        if signal is not None:
            cancelling.signal_name(signal)  # a bad signal before anything is asked
        chosen = self.unfinished_matching(names, backend=backend)
        if not chosen:
            return Report([])
        return self.cancel_report([r.id for r in chosen], signal=signal)

    def clean(
        self,
        *,
        states: Iterable[JobState | str] | None = None,
        older_than: str | float | None = None,
        dry_run: bool = False,
    ) -> CleanReport:
        """Remove the files (directories, logs, a Python call's payload) of the jobs that
        ended and will not be retried, keeping their records; nothing a spec named outside
        the job's directory is ever removed (:mod:`jobfleet.engine.cleanup`).

        Args:
            states: only jobs that ended in these states (default: every ended state).
            older_than: only jobs that ended at least this long ago (``"7d"``, ``"12h"``,
                seconds).
            dry_run: remove nothing; the report says what would be removed.

        Raises:
            SpecError: a state that is not an ended one; an unreadable duration.
        """
        from jobfleet.engine import cleanup
        from jobfleet.units import parse_walltime

        seconds = None if older_than is None else parse_walltime(older_than, "older_than")
        return cleanup.clean(self.registry, states=states, older_than_s=seconds, dry_run=dry_run)

    def adopt(self, prefix: str, *, backend: str | None = None) -> list[JobRecord]:
        """Record the scheduler's jobs of this user whose names start with ``prefix``
        and that the registry does not know; returns the new (or now confirmed) records.

        A job this registry submitted but never saw confirmed (its submitter
        died) is confirmed instead of recorded twice. An adopted job's command
        is unknown; its state, exit code and end come from the scheduler's
        queue and accounting as for any job. Arrays are adopted with the
        elements the queue still shows (those that ended before are not known).

        Raises:
            SpecError: an empty prefix.
            CommandError: the scheduler could not be asked.
        """
        chosen = self._backends.resolve(backend or self.config.backend)
        return self.refresh(self._recovery.adopt(prefix, chosen))
