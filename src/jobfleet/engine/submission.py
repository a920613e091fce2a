"""Submission: prepare a spec, resolve its dependencies, record, write its script, submit.

Crash-safe by order: a job is recorded (``being submitted by <owner>``)
before its script is written and handed to its backend, and its outcome is
recorded after. Whatever happens in between, the job ends up submitted,
failed, or ``unknown`` with the reason that its submission may have reached
the scheduler (:data:`MAYBE_SUBMITTED`); recovery then looks for it by its
unique name (:mod:`jobfleet.engine.recovery`).

This module never polls: dependencies are resolved against records the
caller has just refreshed.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from jobfleet.backends.base import Backend, Capabilities, SubmitRequest
from jobfleet.engine.handover import Deps, hand_over
from jobfleet.engine.pool import BackendPool
from jobfleet.errors import SpecError, SubmitError, UnknownJobError, shown
from jobfleet.jobdir import exit_code_path, located, script_path
from jobfleet.naming import scheduler_name
from jobfleet.registry import (
    MAYBE_SUBMITTED,
    NewJob,
    Registry,
    StatusUpdate,
    awaits_reconciling,
)
from jobfleet.registry.files import job_dir_path
from jobfleet.script import render_script
from jobfleet.scriptdeps import Requirement
from jobfleet.shellsyntax import check_syntax
from jobfleet.spec import DepKind, JobSpec, spec_from_dict
from jobfleet.states import JobRecord, JobState, never_met

__all__ = [
    "MAYBE_SUBMITTED",
    "Deps",
    "DryRun",
    "Submission",
    "awaits_reconciling",
    "check_capabilities",
]

log = logging.getLogger(__name__)

#: The placeholder id of a dry run.
_DRY_RUN = "DRY-RUN"


@dataclass(frozen=True, slots=True)
class DryRun:
    """What a submission would do: the script, the command and any other file it
    would write (path -> text: HTCondor's submit description), nothing run."""

    backend: str
    script: str
    argv: list[str] | None
    files: dict[str, str] = field(default_factory=dict)


def _exit_files(record: JobRecord) -> tuple[str, ...]:
    """The exit-code files of every element of a job."""
    if record.elements:
        # located: a job written before elements were sharded has them flat.
        return tuple(located(exit_code_path(record.job_dir, i)) for i in sorted(record.elements))
    return (exit_code_path(record.job_dir, None),)


class Submission:
    """Puts jobs on their backends and records each step."""

    def __init__(self, registry: Registry, backends: BackendPool):
        self.registry = registry
        self.backends = backends

    # -- before anything is recorded ------------------------------------------------

    def prepare(self, spec: JobSpec, backend: Backend) -> JobSpec:
        """``spec`` with an absolute workdir, checked against ``backend``.

        Raises:
            SpecError: the backend cannot run it, a prologue or epilogue line is not
                complete shell, or the current directory is gone.
        """
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
        check_capabilities(spec, backend.name, backend.capabilities)
        check_syntax(spec.environment)
        backend.script_dialect()
        return spec

    def check_dependencies(self, spec: JobSpec, backend: Backend) -> None:
        """Raise :class:`SpecError` for a predecessor that is unknown, on another
        backend, retried or never submitted: before anything is asked about it."""
        for dep in spec.dependencies:
            for record in self._predecessors(dep.kind, dep.job_ids):
                _check_predecessor(record, backend)

    def _predecessors(self, kind: DepKind, job_ids: Sequence[str]) -> list[JobRecord]:
        try:
            return self.registry.get_many(list(job_ids))
        except UnknownJobError as exc:
            raise SpecError(
                "dependencies",
                f"{kind.value} names job {shown(exc.job_id)}, which is not in the registry; "
                "check the id with `jobfleet status`",
            ) from None

    def resolve(self, spec: JobSpec, backend: Backend, fresh: Mapping[str, JobRecord]) -> Deps:
        """The spec's dependencies as the backend's native ids, each checked.

        ``fresh``: the predecessors' records as just refreshed (any missing one is
        read from the registry). A dependency on a job that has already ended is
        settled here, the same way on every backend: met, it is left out (SLURM,
        for one, forgets finished jobs and then silently drops the dependency);
        never to be met, the new job is not submitted at all (:attr:`Deps.never`).

        Raises:
            SpecError: an unknown predecessor, one on another backend, one with
                retries, or one that was never submitted.
        """
        resolved: list[tuple[DepKind, tuple[str, ...]]] = []
        owners: dict[str, str] = {}
        requires: list[Requirement] = []
        for dep in spec.dependencies:
            records = self._predecessors(dep.kind, dep.job_ids)
            for record in records:
                _check_predecessor(record, backend)
            native = []
            for record in (fresh.get(r.id, r) for r in records):
                if not record.state.is_terminal:
                    native.append(record.native_id or "")
                    owners[record.native_id or ""] = record.id
                    if dep.kind not in backend.capabilities.dependencies:
                        requires.append(Requirement(dep.kind, record.id, _exit_files(record)))
                    continue
                ok = record.state is JobState.COMPLETED
                if dep.kind is not DepKind.AFTER_ANY and ok != (dep.kind is DepKind.AFTER_OK):
                    return Deps(
                        (),
                        {},
                        never_met(
                            f"{dep.kind.value} dependency on job {record.id} can never be met "
                            f"(it ended {record.state.value})"
                        ),
                    )
            if native:
                resolved.append((dep.kind, tuple(native)))
        return Deps(tuple(resolved), owners, None, tuple(requires))

    def dry_run(self, spec: JobSpec, backend: Backend, deps: Deps) -> DryRun:
        """The script and submit command for a prepared spec, nothing recorded or run."""
        job_dir = str(job_dir_path(self.registry.home, 0, _DRY_RUN))
        script = render_script(
            spec, backend.script_dialect(), job_id=_DRY_RUN, job_dir=job_dir, requires=deps.requires
        )
        request = SubmitRequest(
            job_id=_DRY_RUN,
            name=scheduler_name(
                self.registry.token,
                _DRY_RUN,
                spec.display_name,
                prefix=spec.resources.name_prefix,
            ),
            spec=spec,
            script_path=script_path(job_dir),
            job_dir=job_dir,
            dependencies=deps.native,
            dependency_owners=deps.owners,
        )
        files = backend.submit_files(request, script)
        return DryRun(backend.name, script, backend.submit_argv(request), files)

    # -- recording and submitting ---------------------------------------------------

    def submit(
        self, backend: Backend, specs: Sequence[JobSpec], deps: Sequence[Deps]
    ) -> list[JobRecord]:
        """Record prepared specs, then submit them; their records.

        Raises:
            SpecError: the job script refuses a spec (nothing is recorded).
            SubmitError: some submissions failed or their outcome is unknown.
        """
        placeholder_dir = str(job_dir_path(self.registry.home, 0))
        for spec, dep in zip(specs, deps, strict=True):
            # Rendering is pure: a script it refuses now, it refuses with the real id too.
            render_script(
                spec,
                backend.script_dialect(),
                job_id="0",
                job_dir=placeholder_dir,
                requires=dep.requires,
            )
        records = self.registry.create_jobs(
            [NewJob(s.display_name, backend.name, s) for s in specs]
        )
        never = [(r.id, d.never) for r, d in zip(records, deps, strict=True) if d.never]
        if never:
            self.registry.apply(
                [StatusUpdate(job_id, JobState.CANCELLED, reason=why) for job_id, why in never]
            )
        todo = [
            (record, spec, dep)
            for record, spec, dep in zip(records, specs, deps, strict=True)
            if not dep.never
        ]
        failed = self.hand_over(backend, todo)
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

    def hand_over(
        self,
        backend: Backend,
        todo: Sequence[tuple[JobRecord, JobSpec, Deps]],
        env: Mapping[str, str] | None = None,
    ) -> list[tuple[str, SubmitError]]:
        """Write the scripts, submit, record the outcome; the submissions that failed
        (see :func:`jobfleet.engine.handover.hand_over`).

        ``env``: the environment to submit in (default: this process's).
        """
        return hand_over(self.registry, backend, todo, env)

    def submit_attempt(self, record: JobRecord, deps: Deps, env: Mapping[str, str] | None) -> None:
        """Submit a retry (``record`` unsubmitted, on its new attempt) in the
        environment its first submitter had, with its dependencies as resolved
        again (the attempt before may never have started)."""
        if deps.never:
            self.registry.apply([StatusUpdate(record.id, JobState.CANCELLED, reason=deps.never)])
            return
        backend = self.backends.get(record.backend)
        spec = spec_from_dict(record.spec)
        for _, error in self.hand_over(backend, [(record, spec, deps)], env):
            log.warning("job %s: attempt %d not submitted: %s", record.id, record.attempt, error)


def check_capabilities(spec: JobSpec, backend: str, can: Capabilities) -> None:
    """Refuse, before anything is recorded, what ``backend``'s scheduler cannot do.

    Raises:
        SpecError: naming the field and how to express the request there.
    """
    array = spec.array
    if array is None:
        return
    if not can.arrays:
        raise SpecError("array", f"the {backend} backend runs no arrays; submit one job per index")
    if can.max_array_size is not None and len(array) > can.max_array_size:
        raise SpecError(
            "array",
            f"{len(array)} elements; the {backend} backend takes at most "
            f"{can.max_array_size} in one array: split it",
        )
    if array.max_concurrent is not None and not can.max_concurrency:
        raise SpecError(
            "array",
            f"the {backend} backend cannot limit how many elements run at once; "
            f"drop '%{array.max_concurrent}'",
        )
    runs = array.ranges()
    if not can.listed_indices and len(runs) != 1:
        raise SpecError(
            "array",
            f"{shown(array.to_text())}: the {backend} backend takes one range a-b[:step] per "
            "array; submit one array per range",
        )
    if not can.stepped_indices and any(step != 1 for _, _, step in runs):
        raise SpecError(
            "array",
            f"{shown(array.to_text())}: the {backend} backend takes no stepped ranges; "
            "list the indices instead",
        )


def _check_predecessor(record: JobRecord, backend: Backend) -> None:
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
