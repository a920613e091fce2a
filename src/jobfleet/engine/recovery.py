"""Recovery: what a poll cannot settle by itself, done as one explicit step.

* Dead submitters: a job whose submitter died (or said so) while its
  submission may have reached the scheduler is looked for by its unique
  scheduler name; found, it is recorded submitted; not found, its exit-code
  file decides whether it ran, and otherwise it never reached the scheduler
  (once the dead submitter's submit can no longer be in flight).
* Retries: a job that ended in one of its ``retry_on`` states with retries
  left is submitted again, by whichever process sees it first.
* Adoption: jobs on the scheduler the registry does not know.

Recovery may submit (through :class:`~jobfleet.engine.submission.Submission`)
and poll predecessors (through :class:`~jobfleet.engine.polling.Poller`);
neither of those ever calls back here.
"""

from __future__ import annotations

import collections
import logging
import time
from collections.abc import Sequence

from jobfleet import owner
from jobfleet.backends.base import QueueEntry
from jobfleet.engine.polling import Poller
from jobfleet.engine.pool import BackendPool
from jobfleet.engine.submission import Submission
from jobfleet.errors import BackendError, CommandError, ConfigError, SpecError, UnknownJobError
from jobfleet.jobdir import exit_code_path, read_env, read_exit_code
from jobfleet.naming import ADOPTED_COMMAND, name_on_scheduler, parse_scheduler_name
from jobfleet.registry import SUBMITTING, NewJob, Registry, StatusUpdate
from jobfleet.spec import ArraySpec, JobSpec, parse_array, spec_from_dict
from jobfleet.states import JobRecord, JobState

__all__ = ["Recovery"]

log = logging.getLogger(__name__)


class Recovery:
    """Settles dead submitters' jobs, submits retries, adopts scheduler jobs."""

    def __init__(
        self, registry: Registry, backends: BackendPool, submission: Submission, poller: Poller
    ):
        self.registry = registry
        self.backends = backends
        self.submission = submission
        self.poller = poller

    # -- dead submitters ------------------------------------------------------------

    def reconcile(self, records: Sequence[JobRecord]) -> None:
        """Settle jobs whose submission may have reached the scheduler, by their name."""
        found: list[tuple[str, str]] = []
        absent: list[JobRecord] = []
        retry: list[JobRecord] = []
        listed = self._queued_names(records)
        for record in records:
            name = name_on_scheduler(record, self.registry.token)
            native = listed.get((record.backend, name))
            if native is not None:
                found.append((record.id, native))
                continue
            try:
                native = self.backends.get(record.backend).find_submitted(name, record.id)
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
            self._submit_attempt(record, record.job_dir)

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
            else:
                in_flight = self.backends.get(record.backend).capabilities.submit_in_flight_s
                if now - record.updated_at > in_flight:
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
                entries = self.backends.get(name).list_queue()
            except (CommandError, BackendError, ConfigError) as exc:
                log.info("%s: cannot list the queue (%s); looking jobs up one by one", name, exc)
                continue
            listed.update(((name, e.name), e.native_id) for e in entries)
        return listed

    # -- retries --------------------------------------------------------------------

    def retry(self, records: Sequence[JobRecord]) -> list[JobRecord]:
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
            # In the environment of the first submitter, kept beside the attempt before.
            self._submit_attempt(again, record.job_dir)
            out.append(self.registry.get(record.id))
        return out

    def _submit_attempt(self, record: JobRecord, env_dir: str) -> None:
        """Submit a retry in the environment its first submitter had (kept in
        ``env_dir``), with its dependencies checked again (the attempt before may
        never have started)."""
        spec = spec_from_dict(record.spec)
        backend = self.backends.get(record.backend)
        named = spec.dependency_ids()
        try:
            fresh = {r.id: r for r in self.poller.refresh(self.registry.get_many(named)).records}
        except UnknownJobError:
            fresh = {}  # resolve says which id is unknown
        deps = self.submission.resolve(spec, backend, fresh)
        self.submission.submit_attempt(record, deps, read_env(env_dir))

    # -- adoption -------------------------------------------------------------------

    def adopt(self, prefix: str, backend_name: str) -> list[JobRecord]:
        """Record the scheduler's jobs named ``prefix...`` the registry does not know
        (see :meth:`jobfleet.engine.fleet.Fleet.adopt`); the new or confirmed records."""
        if not prefix:
            raise SpecError("prefix", "give the start of the job names to adopt, e.g. 'sweep-'")
        be = self.backends.get(backend_name)
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
        return adopted

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


def _recorded_code(record: JobRecord) -> int | None:
    """The exit code a single job's script recorded (it reached its scheduler), if any."""
    return None if record.elements else read_exit_code(exit_code_path(record.job_dir, None))


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
