"""The library's front door: submit, look at, wait for and cancel jobs on any backend.

>>> from jobfleet import Fleet, JobSpec            # doctest: +SKIP
>>> fleet = Fleet()                                 # doctest: +SKIP
>>> job = fleet.submit(JobSpec(["echo", "hello"]))  # doctest: +SKIP
>>> fleet.wait([job.id])[0].state                   # doctest: +SKIP
<JobState.COMPLETED: 'completed'>

Data flows one way: spec -> script -> backend -> registry -> user. Every
state a backend reports is written to the registry before any method here
returns it, so what a user is told is what any other process will see.
"""

from __future__ import annotations

import collections
import logging
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from jobfleet import backends as catalog
from jobfleet import owner
from jobfleet.backends.base import Backend, PollTarget, QueueEntry, SubmitRequest
from jobfleet.config import Config, load_config
from jobfleet.errors import (
    BackendError,
    CommandError,
    ConfigError,
    SpecError,
    SubmitError,
    UnknownJobError,
)
from jobfleet.jobdir import (
    exit_code_path,
    read_env,
    read_exit_code,
    script_path,
    stream_path,
    write_env,
)
from jobfleet.naming import parse_scheduler_name, scheduler_name
from jobfleet.registry import SUBMITTING, NewJob, Registry, StatusUpdate
from jobfleet.runner import Runner
from jobfleet.script import Requirement, render_script
from jobfleet.spec import ArraySpec, DepKind, JobSpec, parse_array, spec_from_dict
from jobfleet.states import JobRecord, JobState

if TYPE_CHECKING:
    from jobfleet.monitor import Monitor

__all__ = ["DryRun", "Fleet"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class _Deps:
    """A spec's dependencies, resolved for one backend."""

    native: tuple[tuple[DepKind, tuple[str, ...]], ...]
    owners: dict[str, str]  # native id -> jobfleet id
    never: str | None  # why the job can never start, if so
    requires: tuple[Requirement, ...] = ()  # for the script, where holds mean after-any


@dataclass(frozen=True, slots=True)
class DryRun:
    """What a submission would do: the script and the command, nothing run."""

    backend: str
    script: str
    argv: list[str] | None


class Fleet:
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
        self.config = config if config is not None else load_config()
        self.registry = Registry(home)
        self._runner = runner
        self._backends: dict[str, Backend] = {}
        self._monitors: dict[str, Monitor] = {}
        self._targets: dict[tuple[str, str | None, int], PollTarget] = {}

    def close(self) -> None:
        for backend in self._backends.values():
            backend.close()
        self._backends.clear()
        self.registry.close()

    def __enter__(self) -> Fleet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- backends -----------------------------------------------------------------

    def backend(self, name: str | None = None) -> Backend:
        """The backend called ``name`` (default: the configured one), created once."""
        name = name or self.config.backend
        if name in self._backends:
            return self._backends[name]
        backend = self._make_backend(name)
        self._backends[name] = backend
        return backend

    def monitor(self, backend: str | None = None) -> Monitor:
        """The one :class:`~jobfleet.monitor.Monitor` of a backend (default: the configured one)."""
        name = self.backend(backend).name
        if name not in self._monitors:
            from jobfleet.monitor import Monitor

            self._monitors[name] = Monitor(self, name)
        return self._monitors[name]

    def _make_backend(self, name: str) -> Backend:
        # ConfigError naming the installed backends when there is no such one.
        backend_type = catalog.get(name)
        settings = self.config.settings_for(name)
        return backend_type.create(settings, runner=self._runner, home=self.registry.home)

    # -- submission ---------------------------------------------------------------

    def _prepare(self, spec: JobSpec, backend: Backend) -> JobSpec:
        try:
            workdir = os.path.abspath(spec.workdir) if spec.workdir else os.getcwd()
        except FileNotFoundError:  # abspath of a relative path needs the cwd too
            raise SpecError(
                "workdir",
                "the current directory no longer exists; cd somewhere else or pass "
                + ("an absolute --workdir" if spec.workdir else "--workdir"),
            ) from None
        spec = spec.with_changes(workdir=workdir)
        backend.check_request(spec)
        backend.script_dialect()
        return spec

    def _dependencies(
        self, spec: JobSpec, backend: Backend, fresh: dict[str, JobRecord] | None = None
    ) -> _Deps:
        """The spec's dependencies as the backend's native ids, each checked.

        A dependency on a job that has already ended is settled here, the same
        way on every backend: met, it is left out (SLURM, for one, forgets
        finished jobs and then silently drops the dependency); never to be met,
        the new job is not submitted at all (see :attr:`_Deps.never`).
        """
        resolved: list[tuple[DepKind, tuple[str, ...]]] = []
        owners: dict[str, str] = {}
        requires: list[Requirement] = []
        for dep in spec.dependencies:
            try:
                records = self.registry.get_many(list(dep.job_ids))
            except UnknownJobError as exc:
                raise SpecError(
                    "dependencies",
                    f"{dep.kind.value} names job {exc.job_id!r}, which is not in the registry; "
                    "check the id with `jobfleet status`",
                ) from None
            for record in records:
                if record.backend != backend.name:
                    raise SpecError(
                        "dependencies",
                        f"job {record.id} runs on backend {record.backend!r}, this one on "
                        f"{backend.name!r}; dependencies must be on the same backend",
                    )
                if record.spec.get("retries"):
                    raise SpecError(
                        "dependencies",
                        f"job {record.id} may be retried (retries={record.spec['retries']}); "
                        "a scheduler dependency would only see its first attempt: wait for it "
                        "with `jobfleet wait` (or fleet.wait) and submit this job afterwards",
                    )
                if record.native_id is None and not record.state.is_terminal:
                    raise SpecError(
                        "dependencies",
                        f"job {record.id} has not been submitted ({record.reason or 'unknown'})",
                    )
            native = []
            if fresh is None:
                fresh = {r.id: r for r in self.refresh(records)}
            for record in (fresh.get(r.id, r) for r in records):
                if not record.state.is_terminal:
                    native.append(record.native_id or "")
                    owners[record.native_id or ""] = record.id
                    if dep.kind not in backend.capabilities.dependencies:
                        # The scheduler only waits for it to end: the script checks.
                        requires.append(Requirement(dep.kind, record.id, _exit_files(record)))
                    continue
                ok = record.state is JobState.COMPLETED
                if dep.kind is not DepKind.AFTER_ANY and ok != (dep.kind is DepKind.AFTER_OK):
                    return _Deps(
                        (),
                        {},
                        f"{dep.kind.value} dependency on job {record.id} can never be met "
                        f"(it ended {record.state.value})",
                    )
            if native:
                resolved.append((dep.kind, tuple(native)))
        return _Deps(tuple(resolved), owners, None, tuple(requires))

    def dry_run(self, spec: JobSpec, *, backend: str | None = None) -> DryRun:
        """The script and submit command for ``spec``, without recording or running anything."""
        be = self.backend(backend)
        spec = self._prepare(spec, be)
        deps = self._dependencies(spec, be)
        job_dir = str(self.registry.home / "jobs" / "DRY-RUN")
        script = render_script(
            spec, be.script_dialect(), job_id="DRY-RUN", job_dir=job_dir, requires=deps.requires
        )
        request = SubmitRequest(
            job_id="DRY-RUN",
            name=scheduler_name(self.registry.token, "DRY-RUN", spec.display_name),
            spec=spec,
            script_path=script_path(job_dir),
            job_dir=job_dir,
            dependencies=deps.native,
            dependency_owners=deps.owners,
        )
        return DryRun(be.name, script, be.submit_argv(request))

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
        prepared = [self._prepare(s, be) for s in specs]
        # Every job depended on is asked about once for the whole batch.
        named = list(dict.fromkeys(i for s in prepared for i in s.dependency_ids()))
        try:
            fresh = {r.id: r for r in self.refresh(self.registry.get_many(named))}
        except UnknownJobError:
            fresh = None  # _dependencies says which id, and how to fix it
        deps = [self._dependencies(s, be, fresh) for s in prepared]
        placeholder_dir = str(self.registry.home / "jobs" / "0")
        for spec, dep in zip(prepared, deps, strict=True):
            # Rendering is pure: a script it refuses now, it refuses with the real id too.
            render_script(
                spec,
                be.script_dialect(),
                job_id="0",
                job_dir=placeholder_dir,
                requires=dep.requires,
            )
        records = self.registry.create_jobs([NewJob(s.display_name, be.name, s) for s in prepared])
        never = [(r.id, d.never) for r, d in zip(records, deps, strict=True) if d.never]
        if never:
            self.registry.apply(
                [StatusUpdate(job_id, JobState.CANCELLED, reason=why) for job_id, why in never]
            )
        todo = [
            (record, spec, dep)
            for record, spec, dep in zip(records, prepared, deps, strict=True)
            if not dep.never
        ]
        failed = self._hand_over(be, todo)
        if failed:
            first = failed[0][1]
            if len(records) == 1:
                raise first
            raise SubmitError(
                first.job_name,
                f"{first.detail} ({len(failed)} of {len(records)} submissions did not go through)",
                maybe_submitted=any(e.maybe_submitted for _, e in failed),
            )
        return self.registry.get_many([r.id for r in records])

    def _hand_over(
        self,
        be: Backend,
        todo: Sequence[tuple[JobRecord, JobSpec, _Deps]],
        env: Mapping[str, str] | None = None,
    ) -> list[tuple[str, SubmitError]]:
        """Write the scripts, submit, record the outcome; the submissions that failed.

        ``env``: the environment to submit in (default: this process's).
        """
        submitted: list[tuple[str, str]] = []
        failed: list[tuple[str, SubmitError]] = []
        handed_over = False
        try:
            requests = self._write_scripts(be, todo, env)
            handed_over = True
            results = be.submit_many(requests) if requests else []
            for (record, _, _), result in zip(todo, results, strict=True):
                if isinstance(result, str):
                    submitted.append((record.id, result))
                else:
                    failed.append((record.id, result))
        except BaseException as exc:
            self._abandon([r for r, _, _ in todo], exc, maybe_submitted=handed_over)
            raise
        try:
            self.registry.mark_submitted_many(submitted)
        finally:
            # Even when recording the submitted ones failed, the refused ones are recorded.
            self._record_failures(failed)
        return failed

    def _record_failures(self, failed: Sequence[tuple[str, SubmitError]]) -> None:
        refused = [(i, str(e)) for i, e in failed if not e.maybe_submitted]
        if refused:
            self.registry.mark_submit_failed_many(refused)
        unsure = [
            StatusUpdate(i, JobState.UNKNOWN, reason=_maybe(e))
            for i, e in failed
            if e.maybe_submitted
        ]
        if unsure:
            self.registry.apply(unsure)

    def _write_scripts(
        self,
        be: Backend,
        todo: Sequence[tuple[JobRecord, JobSpec, _Deps]],
        env: Mapping[str, str] | None = None,
    ) -> list[SubmitRequest]:
        env = dict(os.environ if env is None else env)
        requests = []
        for record, spec, dep in todo:
            if spec.retries:
                # A retry is submitted by whichever process sees the failure: it must
                # run in this environment, not that process's.
                write_env(record.job_dir, env)
            path = Path(script_path(record.job_dir))
            path.write_text(
                render_script(
                    spec,
                    be.script_dialect(),
                    job_id=record.id,
                    job_dir=record.job_dir,
                    requires=dep.requires,
                ),
                encoding="utf-8",
                errors="surrogateescape",
            )
            requests.append(
                SubmitRequest(
                    job_id=record.id,
                    name=scheduler_name(
                        self.registry.token, record.id, spec.display_name, record.attempt
                    ),
                    spec=spec,
                    script_path=str(path),
                    job_dir=record.job_dir,
                    dependencies=dep.native,
                    dependency_owners=dep.owners,
                    env=env,
                )
            )
        return requests

    def _abandon(
        self, records: Sequence[JobRecord], exc: BaseException, *, maybe_submitted: bool
    ) -> None:
        """Record jobs whose submission was never confirmed, so nobody waits on them for
        ever: failed if the backend never saw them, else ``unknown`` until a refresh
        has looked for them by name."""
        error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        try:
            if maybe_submitted:
                self.registry.apply(
                    [StatusUpdate(r.id, JobState.UNKNOWN, reason=_maybe(error)) for r in records]
                )
            else:
                reason = f"submission interrupted before reaching the backend: {error}"
                self.registry.mark_submit_failed_many([(r.id, reason) for r in records])
        except Exception:
            # The original error is the one to report; this one only goes to the log.
            log.exception(
                "jobs %s: could not record the interrupted submission",
                ", ".join(r.id for r in records),
            )

    def _reconcile(self, records: Sequence[JobRecord]) -> None:
        """Settle jobs whose submission may have reached the scheduler, by their name."""
        found: list[tuple[str, str]] = []
        absent: list[JobRecord] = []
        retry: list[JobRecord] = []
        listed = self._queued_names(records)
        for record in records:
            name = scheduler_name(self.registry.token, record.id, record.name, record.attempt)
            native = listed.get((record.backend, name))
            if native is not None:
                found.append((record.id, native))
                continue
            try:
                native = self.backend(record.backend).find_submitted(name, record.id)
            except (CommandError, ConfigError) as exc:
                log.info("job %s: cannot look for it on the scheduler yet: %s", record.id, exc)
                continue
            if native is not None:
                found.append((record.id, native))
            elif record.attempt > 1 and _recorded_code(record) is None:
                retry.append(record)
            else:
                absent.append(record)
        if found:
            self.registry.mark_submitted_many(found)
        self._settle_absent(absent)
        for record in retry:
            # A retry whose submitter died before submitting it: submit it now.
            log.warning(
                "job %s: attempt %d was never submitted; submitting it", record.id, record.attempt
            )
            self._submit_attempt(record, read_env(record.job_dir))

    def _settle_absent(self, records: Sequence[JobRecord]) -> None:
        """Jobs whose submitter died and that the scheduler does not know (now)."""
        now = time.time()
        ran: list[StatusUpdate] = []
        never: list[tuple[str, str]] = []
        for record in records:
            code = _recorded_code(record)
            if code is not None:
                # It reached the scheduler after all: its script recorded how it ended.
                ran.append(
                    StatusUpdate(
                        record.id,
                        JobState.COMPLETED if code == 0 else JobState.FAILED,
                        exit_code=code,
                        reason="its submitter died before recording it; "
                        "outcome from its exit-code file",
                    )
                )
            elif (
                now - record.updated_at
                > self.backend(record.backend).capabilities.submit_in_flight_s
            ):
                never.append((record.id, "it never reached the scheduler"))
        if ran:
            self.registry.apply(ran)
        if never:
            self.registry.mark_submit_failed_many(never)

    def _queued_names(self, records: Sequence[JobRecord]) -> dict[tuple[str, str], str]:
        """(backend, scheduler name) -> native id of the queued jobs of each backend
        with several records to reconcile: one listing instead of one lookup each."""
        counts = collections.Counter(r.backend for r in records)
        listed: dict[tuple[str, str], str] = {}
        for name in (n for n, count in counts.items() if count > 1):
            try:
                entries = self.backend(name).list_queue()
            except (CommandError, BackendError, ConfigError) as exc:
                log.info("%s: cannot list the queue (%s); looking jobs up one by one", name, exc)
                continue
            listed.update(((name, e.name), e.native_id) for e in entries)
        return listed

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
        if not prefix:
            raise SpecError("prefix", "give the start of the job names to adopt, e.g. 'sweep-'")
        be = self.backend(backend)
        rows: dict[str, list[QueueEntry]] = {}
        for entry in be.list_queue():
            if entry.name.startswith(prefix):
                rows.setdefault(entry.native_id, []).append(entry)
        confirm: list[tuple[str, str]] = []
        new: list[tuple[NewJob, str]] = []
        for native_id, entries in rows.items():
            if self.registry.find_native(be.name, native_id) is not None:
                continue
            name = entries[0].name
            mine = self._unconfirmed(name)
            if mine is not None:
                confirm.append((mine.id, native_id))
                continue
            indices = _adopted_indices(entries)
            spec = JobSpec(
                [ADOPTED_COMMAND],
                name=name,
                array=ArraySpec(tuple(sorted(indices))) if indices else None,
            )
            new.append((NewJob(name, be.name, spec), native_id))
        adopted = self.registry.create_jobs([n for n, _ in new], [i for _, i in new]) if new else []
        if confirm:
            adopted += self.registry.mark_submitted_many(confirm)
        for record in adopted:
            log.info("job %s: adopted %s job %s", record.id, be.name, record.native_id)
        return self.refresh(adopted)

    def _unconfirmed(self, name: str) -> JobRecord | None:
        """The unconfirmed job of this registry named ``name`` on its scheduler, if any."""
        parsed = parse_scheduler_name(name, self.registry.token)
        if parsed is None:
            return None
        try:
            record = self.registry.get(parsed.job_id)
        except UnknownJobError:
            return None
        if record.submitted or record.attempt != parsed.attempt:
            return None
        return record

    # -- states -------------------------------------------------------------------

    def refresh(self, records: Iterable[JobRecord]) -> list[JobRecord]:
        """Ask the backends about the unfinished ones, record changes, return all fresh.

        Only what differs from the given records is written; a record some other
        process updated meanwhile is read again rather than assumed. A job the
        scheduler no longer knows and that left no exit-code file becomes
        ``lost`` after ``wait.lost_after`` of answered polls; a job that ended
        in one of its ``retry_on`` states with retries left is submitted again.

        Raises:
            CommandError: a backend could not be asked (what the others answered
                is recorded first; nothing is concluded about this one's jobs).
        """
        current = {r.id: r for r in records}
        unsure = [r for r in current.values() if _awaits_reconciling(r)]
        if unsure:
            self._reconcile(unsure)
            current.update((r.id, r) for r in self.registry.get_many([r.id for r in unsure]))
        by_backend: dict[str, list[JobRecord]] = {}
        for record in current.values():
            if record.submitted and record.native_id and not record.state.is_terminal:
                by_backend.setdefault(record.backend, []).append(record)
        updates: list[StatusUpdate] = []
        error: CommandError | None = None
        # Read again what this poll cannot vouch for: jobs another process may be
        # submitting or may have retried, and jobs the scheduler said nothing about.
        reread = [
            r.id for r in current.values() if not r.settled and not (r.submitted and r.native_id)
        ]
        for name, group in by_backend.items():
            try:
                found, unanswered = self._poll_group(name, group)
            except CommandError as exc:
                error = error or exc
                continue
            updates += found
            reread += unanswered
        changed: dict[str, JobRecord] = {}
        if updates:
            changed = {r.id: r for r in self.registry.apply(updates)}
            # An update not applied may be about an attempt the job is no longer on.
            reread += [u.job_id for u in updates if u.job_id not in changed]
        reread = [i for i in dict.fromkeys(reread) if i not in changed]
        changed.update((r.id, r) for r in self.registry.get_many(reread))
        current.update(changed)
        # Also those that ended before (a program that died before retrying them).
        retry = [r for r in current.values() if r.retry_due]
        if retry:
            current.update((r.id, r) for r in self._retry(retry))
        if error is not None:
            raise error
        return list(current.values())

    def _poll_group(
        self, name: str, group: Sequence[JobRecord]
    ) -> tuple[list[StatusUpdate], list[str]]:
        """What one backend says of its jobs, with the lost rule applied; and the jobs
        it said nothing about (their records may be out of date: read them again)."""
        asked_at = time.time()
        try:
            statuses = self.backend(name).poll([self._target(r) for r in group])
        except CommandError:
            # No answer: nothing is concluded, and absence timers start again.
            self.registry.note_outage(name, asked_at)
            raise
        updates: list[StatusUpdate] = []
        absent: dict[str, list[int | None]] = {}
        for record in group:
            status = statuses.get(record.native_id or "")
            if status is None:
                absent[record.id] = _unfinished_indices(record, {})
                continue
            if record.elements:
                missing = _unfinished_indices(record, status.elements)
                if missing:
                    absent[record.id] = missing
            update = StatusUpdate(
                record.id,
                state=None if status.elements else status.state,
                exit_code=status.exit_code,
                reason=status.reason,
                elements=status.elements,
                native_id=record.native_id,
            )
            if _differs(update, record):
                updates.append(update)
        lost_after = self.config.wait.lost_after_s
        natives = {r.id: r.native_id or "" for r in group}
        lost = self.registry.track_absence(
            name, list(natives), absent, at=asked_at, lost_after_s=lost_after, natives=natives
        )
        reason = (
            f"vanished: the scheduler has not known it for {lost_after} s of answered polls "
            "and it left no exit-code file (its real outcome is unknown)"
        )
        for job_id, indices in lost.items():
            if indices == [None]:
                updates.append(
                    StatusUpdate(job_id, JobState.LOST, reason=reason, native_id=natives[job_id])
                )
            else:
                lost_element = (JobState.LOST, None, reason)
                elements = {i: lost_element for i in indices if i is not None}
                updates.append(StatusUpdate(job_id, elements=elements, native_id=natives[job_id]))
        return updates, list(absent)

    def _target(self, record: JobRecord) -> PollTarget:
        """What a backend needs to find ``record``: built once per job and attempt (a
        monitor asks about the same thousands of jobs every few seconds)."""
        key = (record.id, record.native_id, record.attempt)
        target = self._targets.get(key)
        if target is None:
            target = self._targets[key] = _target(record, self.registry.token)
        return target

    def _retry(self, records: Sequence[JobRecord]) -> list[JobRecord]:
        """Submit ended jobs with retries left again; their fresh records."""
        out = []
        for record in records:
            budget = int(record.spec.get("retries", 0))
            why = record.state.value + (
                f" (exit {record.exit_code})" if record.exit_code is not None else ""
            )
            again = self.registry.begin_retry(
                record.id, record.attempt, SUBMITTING + owner.current()
            )
            if again is None:  # another process got there first
                out.append(self.registry.get(record.id))
                continue
            log.warning(
                "job %s: attempt %d ended %s; submitting attempt %d of %d",
                record.id,
                record.attempt,
                why,
                again.attempt,
                budget + 1,
            )
            self._submit_attempt(again, read_env(record.job_dir))
            out.append(self.registry.get(record.id))
        return out

    def _submit_attempt(self, record: JobRecord, env: Mapping[str, str] | None) -> None:
        """Submit a retry (``record`` unsubmitted, on its new attempt) in the environment
        its first submitter had, with its dependencies checked again (the attempt
        before may never have started)."""
        spec = spec_from_dict(record.spec)
        be = self.backend(record.backend)
        deps = self._dependencies(spec, be)
        if deps.never:
            self.registry.apply([StatusUpdate(record.id, JobState.CANCELLED, reason=deps.never)])
            return
        for _, error in self._hand_over(be, [(record, spec, deps)], env):
            log.warning("job %s: attempt %d not submitted: %s", record.id, record.attempt, error)

    def status(self, job_ids: Sequence[str] | None = None, *, limit: int = 20) -> list[JobRecord]:
        """Fresh records of these jobs (default: the ``limit`` most recent)."""
        records = self.registry.get_many(list(job_ids)) if job_ids else self.registry.recent(limit)
        return self.refresh(records)

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

        Raises:
            WaitTimeout: ``timeout_s`` passed first (the jobs keep running).
        """
        from jobfleet.monitor import wait_all

        records = self.registry.get_many(list(job_ids))
        monitors = [self.monitor(name) for name in dict.fromkeys(r.backend for r in records)]
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
        """
        records = self.registry.get_many(list(job_ids))
        retried = [r.id for r in records if r.spec.get("retries")]
        if retried and signal is None:
            # A cancelled job is not submitted again, even if its last attempt failed.
            self.registry.stop_retries(retried)
            records = self.registry.get_many(list(job_ids))
        unsure = [r for r in records if _awaits_reconciling(r)]
        if unsure:
            # Submitted or not? Look for them by name first: found ones are cancelled
            # below like any other, and one the scheduler never got ends failed.
            self._reconcile(unsure)
            records = self.registry.get_many(list(job_ids))
        name = _signal_name(signal) if signal is not None else None
        if indices is not None:
            if len(records) != 1 or not records[0].elements:
                raise SpecError("index", "give exactly one array job with --index")
            missing = sorted(set(indices) - set(records[0].elements))
            if missing:
                raise SpecError("index", f"job {records[0].id} has no element {missing[0]}")
        by_backend: dict[str, list[JobRecord]] = {}
        for record in records:
            if record.native_id and not record.state.is_terminal:
                by_backend.setdefault(record.backend, []).append(record)
        gone: list[StatusUpdate] = []
        for backend_name, group in by_backend.items():
            native_ids = [r.native_id or "" for r in group]
            removed = self.backend(backend_name).cancel(native_ids, indices=indices, signal=name)
            for record in group:
                gone += _removed_updates(record, removed.get(record.native_id or "", []))
        if gone:
            # Removed before they started: nothing else will ever say so.
            self.registry.apply(gone)
        return self.refresh(self.registry.get_many([r.id for r in records]))

    def log_path(
        self,
        job_id: str,
        *,
        index: int | None = None,
        stream: Literal["stdout", "stderr"] = "stdout",
    ) -> Path:
        """Where a job's (or an array element's) output goes.

        Raises:
            SpecError: an array without ``index``, or an index it does not have.
        """
        record = self.registry.get(job_id)
        if record.elements and index is None:
            shown = ", ".join(str(i) for i in list(record.elements)[:5])
            raise SpecError("index", f"job {job_id} is an array; pass --index N (e.g. {shown})")
        if index is not None and index not in record.elements:
            raise SpecError("index", f"job {job_id} has no element {index}")
        spec = spec_from_dict(record.spec)
        return Path(stream_path(spec, record.job_dir, stream, index, job_id=record.id))


def _differs(update: StatusUpdate, record: JobRecord) -> bool:
    """Whether a backend's report says anything the record does not say already."""
    if update.elements:
        for index, (state, exit_code, reason) in update.elements.items():
            element = record.elements.get(index)
            if element is None or (state, exit_code, reason) != (
                element.state,
                element.exit_code,
                element.reason,
            ):
                return True
        return False
    return (update.state, update.exit_code, update.reason) != (
        record.state,
        record.exit_code,
        record.reason,
    )


def _removed_updates(record: JobRecord, indices: Sequence[int | None]) -> list[StatusUpdate]:
    reason = "removed while waiting to start"
    if not indices:
        return []
    if record.elements:
        cancelled = (JobState.CANCELLED, None, reason)
        return [StatusUpdate(record.id, elements={i: cancelled for i in indices if i is not None})]
    return [StatusUpdate(record.id, JobState.CANCELLED, reason=reason)]


def _signal_name(signal: str) -> str:
    """``TERM`` for ``TERM``, ``SIGTERM``, ``term`` or ``15``; SpecError otherwise."""
    import signal as signals

    text = signal.strip().upper().removeprefix("SIG")
    try:
        return (
            signals.Signals(int(text)).name.removeprefix("SIG")
            if text.isdigit()
            else (signals.Signals[f"SIG{text}"].name.removeprefix("SIG"))
        )
    except (KeyError, ValueError):
        raise SpecError(
            "signal", f"{signal!r} is not a signal name; e.g. TERM, INT, USR1"
        ) from None


def _recorded_code(record: JobRecord) -> int | None:
    """The exit code a single job's script recorded (it reached its scheduler), if any."""
    return None if record.elements else read_exit_code(exit_code_path(record.job_dir, None))


def _exit_files(record: JobRecord) -> tuple[str, ...]:
    """The exit-code files of every element of a job."""
    if record.elements:
        return tuple(exit_code_path(record.job_dir, i) for i in sorted(record.elements))
    return (exit_code_path(record.job_dir, None),)


def _target(record: JobRecord, token: str) -> PollTarget:
    return PollTarget(
        job_id=record.id,
        native_id=record.native_id or "",
        job_dir=record.job_dir,
        submitted_at=record.created_at,
        indices=tuple(sorted(record.elements)) if record.elements else None,
        name=record.name
        if record.spec.get("command") == [ADOPTED_COMMAND]
        else scheduler_name(token, record.id, record.name, record.attempt),
    )


def _unfinished_indices(record: JobRecord, reported: Mapping[int, object]) -> list[int | None]:
    """The unfinished parts of a job (None: the job itself) a report left out."""
    if not record.elements:
        return [None]
    return [i for i, e in record.elements.items() if not e.state.is_terminal and i not in reported]


#: The command recorded for a job adopted from its scheduler (its real one is unknown).
ADOPTED_COMMAND = "(adopted from the scheduler: command unknown)"


def _adopted_indices(entries: Sequence[QueueEntry]) -> set[int]:
    """The array indices an adopted job's queue rows show (empty: not an array)."""
    indices: set[int] = set()
    for entry in entries:
        if entry.tasks is None:
            continue
        try:
            indices.update(parse_array(entry.tasks.strip("[]")).indices)
        except SpecError:
            log.warning("job %s: cannot read its elements %r", entry.native_id, entry.tasks)
    return indices


#: How the registry marks a job whose submission may have reached its scheduler.
MAYBE_SUBMITTED = "submission outcome unknown"


def _maybe(error: object) -> str:
    return f"{MAYBE_SUBMITTED} ({error}); it is looked for by its name at the next status"


def _awaits_reconciling(record: JobRecord) -> bool:
    """A job whose submission may have reached the scheduler and nobody is finishing it:
    its submitter said so, or died while submitting (killed, the machine rebooted)."""
    if record.submitted or record.state is not JobState.UNKNOWN:
        return False
    reason = record.reason or ""
    if reason.startswith(MAYBE_SUBMITTED):
        return True
    return reason.startswith(SUBMITTING) and owner.is_gone(reason.removeprefix(SUBMITTING))
