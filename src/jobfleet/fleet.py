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

import logging
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from jobfleet.backends import KNOWN_BACKENDS
from jobfleet.backends.base import Backend, PollTarget, SubmitRequest, scheduler_name
from jobfleet.config import Config, load_config
from jobfleet.errors import ConfigError, SpecError, SubmitError, UnknownJobError, WaitTimeout
from jobfleet.registry import NewJob, Registry, StatusUpdate
from jobfleet.runner import Runner
from jobfleet.script import get_dialect, render_script, stream_path
from jobfleet.spec import DepKind, JobSpec, spec_from_dict
from jobfleet.states import JobRecord

__all__ = ["DryRun", "Fleet"]

log = logging.getLogger(__name__)

SCRIPT_NAME = "job.sh"


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
        if name not in KNOWN_BACKENDS:
            raise ConfigError(
                f"unknown backend {name!r}; choose one of {', '.join(KNOWN_BACKENDS)}",
                key="backend",
            )
        backend = self._make_backend(name)
        self._backends[name] = backend
        return backend

    def _make_backend(self, name: str) -> Backend:
        if name == "local":
            from jobfleet.backends.local import LocalBackend, detect_capacity, queue_directory

            local = self.config.local
            return LocalBackend(
                queue_directory(self.registry.home),
                detect_capacity(local.cores, local.memory_bytes, local.gpus),
                cancel_grace_s=local.cancel_grace_s,
                idle_exit_s=local.idle_exit_s,
            )
        if name == "slurm":
            from jobfleet.backends.slurm import SlurmBackend, SlurmSettings

            slurm = self.config.slurm
            return SlurmBackend(
                self._runner,
                SlurmSettings(
                    command_timeout_s=slurm.command_timeout_s,
                    submit_retries=slurm.submit_retries,
                    retry_backoff_s=slurm.retry_backoff_s,
                    kill_invalid_dependents=slurm.kill_invalid_dependents,
                ),
            )
        # A name added to KNOWN_BACKENDS without a case here must not silently run locally.
        raise ConfigError(
            f"backend {name!r} is not available in this jobfleet; "
            f"choose one of {', '.join(KNOWN_BACKENDS)}",
            key="backend",
        )

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
        get_dialect(backend.dialect)
        return spec

    def _dependencies(
        self, spec: JobSpec, backend: Backend
    ) -> tuple[tuple[DepKind, tuple[str, ...]], ...]:
        """The spec's dependencies with jobfleet ids replaced by the backend's native ids."""
        resolved = []
        for dep in spec.dependencies:
            native = []
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
                if record.native_id is None:
                    raise SpecError(
                        "dependencies", f"job {record.id} was never submitted ({record.reason})"
                    )
                native.append(record.native_id)
            resolved.append((dep.kind, tuple(native)))
        return tuple(resolved)

    def dry_run(self, spec: JobSpec, *, backend: str | None = None) -> DryRun:
        """The script and submit command for ``spec``, without recording or running anything."""
        be = self.backend(backend)
        spec = self._prepare(spec, be)
        deps = self._dependencies(spec, be)
        job_dir = str(self.registry.home / "jobs" / "DRY-RUN")
        script = render_script(spec, be.dialect, job_id="DRY-RUN", job_dir=job_dir)
        request = SubmitRequest(
            job_id="DRY-RUN",
            name=scheduler_name(str(self.registry.home), "DRY-RUN", spec.display_name),
            spec=spec,
            script_path=f"{job_dir}/{SCRIPT_NAME}",
            job_dir=job_dir,
            dependencies=deps,
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

        Every job recorded ends up either submitted or failed, whatever happens
        after it is recorded (an exception, KeyboardInterrupt): none is left
        ``unknown`` for ever. Bad specs raise before anything is recorded.

        Raises:
            SpecError: a spec cannot run on this backend (nothing is recorded).
            SubmitError: some submissions failed (they are recorded as failed; the
                others were submitted and recorded).
        """
        be = self.backend(backend)
        prepared = [self._prepare(s, be) for s in specs]
        deps = [self._dependencies(s, be) for s in prepared]
        placeholder_dir = str(self.registry.home / "jobs" / "0")
        for spec in prepared:
            # Rendering is pure: a script it refuses now, it refuses with the real id too.
            render_script(spec, be.dialect, job_id="0", job_dir=placeholder_dir)
        records = self.registry.create_jobs([NewJob(s.display_name, be.name, s) for s in prepared])
        submitted: list[tuple[str, str]] = []
        failed: list[tuple[str, SubmitError]] = []
        try:
            requests = self._write_scripts(be, records, prepared, deps)
            results = be.submit_many(requests)
            for record, result in zip(records, results, strict=True):
                if isinstance(result, str):
                    submitted.append((record.id, result))
                else:
                    failed.append((record.id, result))
        except BaseException as exc:
            self._abandon(records, exc)
            raise
        try:
            self.registry.mark_submitted_many(submitted)
        finally:
            # Even when recording the submitted ones failed, the refused ones are final.
            if failed:
                self.registry.mark_submit_failed_many([(i, str(e)) for i, e in failed])
        if failed:
            first = failed[0][1]
            raise SubmitError(
                first.job_name,
                f"{len(failed)} of {len(records)} submissions failed; first: {first}",
            )
        return self.registry.get_many([r.id for r in records])

    def _write_scripts(
        self,
        be: Backend,
        records: Sequence[JobRecord],
        specs: Sequence[JobSpec],
        deps: Sequence[tuple[tuple[DepKind, tuple[str, ...]], ...]],
    ) -> list[SubmitRequest]:
        env = dict(os.environ)
        requests = []
        for record, spec, dep in zip(records, specs, deps, strict=True):
            script_path = Path(record.job_dir) / SCRIPT_NAME
            script_path.write_text(
                render_script(spec, be.dialect, job_id=record.id, job_dir=record.job_dir),
                encoding="utf-8",
                errors="surrogateescape",
            )
            requests.append(
                SubmitRequest(
                    job_id=record.id,
                    name=scheduler_name(str(self.registry.home), record.id, spec.display_name),
                    spec=spec,
                    script_path=str(script_path),
                    job_dir=record.job_dir,
                    dependencies=dep,
                    env=env,
                )
            )
        return requests

    def _abandon(self, records: Sequence[JobRecord], exc: BaseException) -> None:
        """Mark jobs whose submission was never confirmed as failed, so nobody waits on them."""
        error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        reason = f"submission interrupted: {error}"
        try:
            self.registry.mark_submit_failed_many([(r.id, reason) for r in records])
        except Exception:
            # The original error is the one to report; this one only goes to the log.
            log.exception(
                "jobs %s: could not record the interrupted submission as failed",
                ", ".join(r.id for r in records),
            )

    # -- states -------------------------------------------------------------------

    def refresh(self, records: Iterable[JobRecord]) -> list[JobRecord]:
        """Ask the backends about the unfinished ones, record changes, return all fresh.

        Only what differs from the given records is written; a record some other
        process updated meanwhile is read again rather than assumed.
        """
        current = {r.id: r for r in records}
        by_backend: dict[str, list[JobRecord]] = {}
        for record in current.values():
            if record.submitted and record.native_id and not record.state.is_terminal:
                by_backend.setdefault(record.backend, []).append(record)
        updates: list[StatusUpdate] = []
        for name, group in by_backend.items():
            statuses = self.backend(name).poll([_target(r) for r in group])
            for record in group:
                status = statuses.get(record.native_id or "")
                if status is None:
                    continue  # not known right now: keep the last known state
                update = StatusUpdate(
                    record.id,
                    state=None if status.elements else status.state,
                    exit_code=status.exit_code,
                    reason=status.reason,
                    elements=status.elements,
                )
                if _differs(update, record):
                    updates.append(update)
        if updates:
            changed = {r.id: r for r in self.registry.apply(updates)}
            unchanged = [u.job_id for u in updates if u.job_id not in changed]
            changed.update((r.id, r) for r in self.registry.get_many(unchanged))
            current.update(changed)
        return list(current.values())

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

        Polls with a short first interval growing to ``wait.poll_interval``.

        Raises:
            WaitTimeout: ``timeout_s`` passed first (the jobs keep running).
        """
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        interval = min(0.05, self.config.poll_interval_s)
        records = self.registry.get_many(list(job_ids))
        while True:
            records = self.refresh(records)
            if on_update is not None:
                on_update(records)
            unfinished = [r.id for r in records if not r.state.is_terminal]
            if not unfinished:
                return records
            if deadline is not None and time.monotonic() >= deadline:
                raise WaitTimeout(unfinished, timeout_s or 0.0)
            pause = (
                interval if deadline is None else min(interval, max(deadline - time.monotonic(), 0))
            )
            time.sleep(pause)
            interval = min(interval * 1.5, self.config.poll_interval_s)

    def cancel(self, job_ids: Sequence[str]) -> list[JobRecord]:
        """Cancel these jobs (every element of arrays); returns their fresh records."""
        records = self.registry.get_many(list(job_ids))
        by_backend: dict[str, list[str]] = {}
        for record in records:
            if record.native_id and not record.state.is_terminal:
                by_backend.setdefault(record.backend, []).append(record.native_id)
        for name, native_ids in by_backend.items():
            self.backend(name).cancel(native_ids)
        return self.refresh(records)

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


def _target(record: JobRecord) -> PollTarget:
    return PollTarget(
        job_id=record.id,
        native_id=record.native_id or "",
        job_dir=record.job_dir,
        submitted_at=record.created_at,
        indices=tuple(sorted(record.elements)) if record.elements else None,
    )
