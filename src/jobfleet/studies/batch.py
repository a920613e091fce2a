"""A batch of jobs in directories of their own: the Clawpack batch design, on any backend.

What to run (a :class:`Job`: a prefix, hooks that write its data, build its
command and post-process its result) is kept apart from where its files go
(:class:`JobPaths`, ``base/experiment/prefix/``) and from how it executes (the
backend, through :class:`~jobfleet.engine.fleet.Fleet`):

>>> class Simulation(Job):                                           # doctest: +SKIP
...     def __init__(self, a):
...         super().__init__(f"a={a}")
...         self.a = a
...     def write_data(self, paths):
...         (paths.data_dir / "params.txt").write_text(f"{self.a}\\n")
...     def command(self, paths):
...         return ["simulate", str(paths.data_dir / "params.txt")]
>>> results = BatchController([Simulation(a) for a in (1, 2)],       # doctest: +SKIP
...                           base_path="runs", experiment="try1").run()

A rerun with ``clobber="skip"`` resumes: a job whose last run completed is not
run again, one still running is waited for, the others run again.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from jobfleet.config import Config, load_config
from jobfleet.engine.fleet import Fleet
from jobfleet.errors import SpecError, SubmitError, shown
from jobfleet.jobdir import STREAM_PLACEHOLDER
from jobfleet.resources import Resources
from jobfleet.spec import JobSpec
from jobfleet.states import JobRecord, JobState
from jobfleet.studies.batchdirs import (
    BatchError,
    JobPaths,
    check_name,
    find_submitted,
    going_message,
    job_resources,
    previous_runs,
    taken_message,
    write_marker,
)

__all__ = ["CLOBBER_CHOICES", "BatchController", "BatchError", "Job", "JobPaths", "JobResult"]

log = logging.getLogger(__name__)

#: What a rerun does with a job directory that exists (see :class:`BatchController`).
CLOBBER_CHOICES = ("error", "overwrite", "skip")
Clobber = Literal["error", "overwrite", "skip"]


class Job:
    """One job of a batch. Subclass it: keep the job's parameters as attributes
    and override the hooks, which read them.

    Args:
        prefix: its name within the experiment, and its directory's name (letters,
            digits and ``. _ = + -``).
        restart: run it again from its own previous output: its directory is
            never removed (whatever ``clobber`` says) and it runs on every
            :meth:`BatchController.run`, even after it completed.
        resources: what it asks for (a :class:`Resources`, or a mapping such as
            ``{"cores": 4, "walltime": "1h"}`` over the configuration's).
        env: extra environment variables for its command.
        name: its job name (default ``experiment/prefix``).

    Hooks:
        :meth:`write_data` writes its input files (default: none);
        :meth:`command` gives its argv (required); :meth:`post_run` looks at how it
        ended (default: nothing).
    """

    def __init__(
        self,
        prefix: str,
        *,
        restart: bool = False,
        resources: Resources | Mapping[str, Any] | None = None,
        env: Mapping[str, str] | None = None,
        name: str | None = None,
    ) -> None:
        self.prefix = prefix
        self.restart = restart
        self.resources = resources
        self.env: Mapping[str, str] = env or {}
        self.name = name

    def write_data(self, paths: JobPaths) -> None:
        """Write the job's input files (into ``paths.data_dir``); called by
        :meth:`BatchController.setup` before anything is submitted."""

    def command(self, paths: JobPaths) -> Sequence[str]:
        """The program and its arguments (never split by a shell); it runs in
        ``paths.output_dir``."""
        raise NotImplementedError

    def post_run(self, result: JobResult) -> None:
        """Called once the job has ended (however it ended: see ``result.ok``)."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(prefix={self.prefix!r})"


@dataclass(frozen=True, slots=True)
class JobResult:
    """How one job of a batch stands (or ended).

    Attributes:
        prefix: the job's prefix.
        paths: where its files are.
        state: its state; ``unknown`` when it cannot be told (never ``failed`` then).
        exit_code: its command's exit code as a shell would show it (128+N for
            signal N); None when it never ran or nobody can tell.
        native_id: the scheduler's id.
        attempt: which attempt of the jobfleet job this is.
        job_id: the jobfleet id (None when its submission was not even recorded).
        reason: why it is pending or how it ended, if known.
        resumed: it was not submitted by this run: it comes from the run before
            (``clobber="skip"``).
        post_run_error: what its ``post_run`` raised, if it did.
    """

    prefix: str
    paths: JobPaths
    state: JobState
    exit_code: int | None = None
    native_id: str | None = None
    attempt: int = 1
    job_id: str | None = None
    reason: str | None = None
    resumed: bool = False
    post_run_error: str | None = field(default=None)

    @property
    def ok(self) -> bool:
        """The job completed (exit code 0) and its ``post_run`` did not raise."""
        return self.state is JobState.COMPLETED and self.post_run_error is None

    @classmethod
    def of(cls, prefix: str, paths: JobPaths, record: JobRecord, resumed: bool) -> JobResult:
        return cls(
            prefix=prefix,
            paths=paths,
            state=record.state,
            exit_code=record.exit_code,
            native_id=record.native_id,
            attempt=record.attempt,
            job_id=record.id,
            reason=record.reason,
            resumed=resumed,
        )


@dataclass(slots=True)
class _Entry:
    """One job's plan: its paths; the record of its earlier run when that run is
    resumed (else it is submitted); whether its old directory goes first."""

    job: Job
    paths: JobPaths
    resumed: JobRecord | None = None
    wipe: bool = False


class BatchController:
    """Run a list of :class:`Job` s, each in ``base_path/experiment/prefix/``.

    Args:
        jobs: the jobs (their prefixes distinct).
        backend: the backend (default: the configuration's).
        profile: a profile of the configuration file.
        base_path: the directory that holds the experiment's directory.
        experiment: the experiment's name (a directory name).
        clobber: what to do with a job directory that exists: ``"error"``
            (refuse, before anything is touched), ``"overwrite"`` (remove it and
            run the job again) or ``"skip"`` (resume: a job whose last run
            completed is not run again, one still pending or running is waited
            for, any other runs again in a fresh directory). Jobs with
            ``restart=True`` keep their directories and always run.
        config: a configuration to use instead of loading one.
        fleet: a :class:`Fleet` to submit through (not closed by the controller).

    Raises:
        SpecError: bad jobs (not :class:`Job` s, no ``command``, a bad or repeated
            prefix), experiment or clobber choice.
    """

    def __init__(
        self,
        jobs: Sequence[Job],
        *,
        backend: str | None = None,
        profile: str | None = None,
        base_path: str | os.PathLike[str],
        experiment: str,
        clobber: Clobber = "error",
        config: Config | None = None,
        fleet: Fleet | None = None,
    ) -> None:
        self.jobs = _checked_jobs(jobs)
        if clobber not in CLOBBER_CHOICES:
            raise SpecError(
                "clobber", f"{shown(clobber)}; choose one of {', '.join(CLOBBER_CHOICES)}"
            )
        self.clobber = clobber
        self.experiment = check_name("experiment", experiment)
        self.base_path = Path(base_path).expanduser().absolute()
        if STREAM_PLACEHOLDER.search(str(self.base_path)):
            raise SpecError(
                "base_path",
                f"{shown(str(self.base_path))}: {{index}} and {{job_id}} would be replaced in "
                "its log paths; choose another directory",
            )
        self.backend = backend
        self._fleet = fleet
        self._config = fleet.config if fleet is not None else config
        self._profile = profile
        self._planned: list[_Entry] | None = None
        self._running: list[tuple[_Entry, JobResult]] = []
        self._post_ran: set[str] = set()

    # -- the steps ----------------------------------------------------------------------

    def paths(self) -> list[JobPaths]:
        """Where each job's files go, in the order of the jobs (nothing is touched)."""
        return [JobPaths.of(self.base_path, self.experiment, j.prefix) for j in self.jobs]

    def setup(self) -> list[JobPaths]:
        """Create the job directories and write the jobs' data (``write_data``),
        as the clobber policy says; nothing is submitted. The paths of every job.

        Raises:
            BatchError: an existing directory with ``clobber="error"``; an earlier
                run of a job still going (``"overwrite"``, restart); a hook raised.
        """
        with self._using_fleet() as fleet:
            self._planned = self._setup(fleet)
        return [e.paths for e in self._planned]

    def run(self, wait: bool = True, *, timeout_s: float | None = None) -> list[JobResult]:
        """Set up (unless :meth:`setup` just did), submit every job to run in one
        batch (its standard output and error to ``paths.stdout``/``paths.stderr``,
        its working directory ``paths.output_dir``), and with ``wait`` wait for all
        of them (:meth:`wait`). The results in the order of the jobs.

        Raises:
            BatchError, SpecError: as :meth:`setup`, or a job's ``command`` cannot
                be run; nothing was submitted then.
            WaitTimeout: ``timeout_s`` passed first (the jobs keep running: call
                :meth:`wait` again, or rerun with ``clobber="skip"``).
        """
        with self._using_fleet() as fleet:
            entries = self._planned if self._planned is not None else self._setup(fleet)
            self._planned = None
            results = self._submit(fleet, entries)
            self._running = list(zip(entries, results, strict=True))
            self._post_ran = set()
            if wait:
                return self._wait(fleet, timeout_s)
        return results

    def wait(self, *, timeout_s: float | None = None) -> list[JobResult]:
        """Wait for every job of the last :meth:`run` to end (one batched wait), call
        each one's ``post_run`` once, and return the results in the order of the jobs.

        A ``post_run`` that raises does not stop the others: its result says what it
        raised (``post_run_error``; ``ok`` is then false) and it is logged.

        Raises:
            WaitTimeout: ``timeout_s`` passed first (the jobs keep running).
        """
        if not self._running:
            raise BatchError("nothing to wait for: call run() first")
        with self._using_fleet() as fleet:
            return self._wait(fleet, timeout_s)

    # -- inside ---------------------------------------------------------------------------

    @contextmanager
    def _using_fleet(self) -> Iterator[Fleet]:
        if self._fleet is not None:
            yield self._fleet
            return
        if self._config is None:
            self._config = load_config(profile=self._profile)
        with Fleet(self._config) as fleet:
            yield fleet

    def _setup(self, fleet: Fleet) -> list[_Entry]:
        fleet.backend(self.backend)  # an unknown backend is named before anything is done
        entries = self._plan(fleet)
        for entry in entries:
            if entry.resumed is not None:
                continue
            try:
                if entry.wipe:
                    shutil.rmtree(entry.paths.job_dir)
                entry.paths.make()
            except OSError as exc:
                raise BatchError(
                    f"cannot prepare {exc.filename or entry.paths.job_dir}: "
                    f"{exc.strerror or exc} (nothing was submitted)"
                ) from None
            try:
                entry.job.write_data(entry.paths)
            except Exception as exc:
                raise BatchError(
                    f"job {entry.job.prefix!r}: write_data raised {type(exc).__name__}: {exc} "
                    "(nothing was submitted)"
                ) from exc
        return entries

    def _plan(self, fleet: Fleet) -> list[_Entry]:
        """What becomes of each job (see ``clobber``), decided before anything is touched."""
        entries = [_Entry(j, p) for j, p in zip(self.jobs, self.paths(), strict=True)]
        existing = [e for e in entries if e.paths.job_dir.exists()]
        if self.clobber == "error":
            taken = [e for e in existing if not e.job.restart]
            if taken:
                raise BatchError(taken_message([e.paths.job_dir for e in taken]))
        previous = previous_runs(fleet, [e.paths for e in existing])
        going = []
        for entry, record in zip(existing, previous, strict=True):
            if record is not None and not record.settled:
                if self.clobber == "skip":
                    entry.resumed = record
                else:
                    going.append((entry, record))
            elif entry.job.restart:
                continue
            elif self.clobber == "skip" and record is not None and record.succeeded:
                entry.resumed = record
            else:
                entry.wipe = True
        if going:
            raise BatchError(going_message([(e.job.prefix, e.paths.job_dir, r) for e, r in going]))
        return entries

    def _submit(self, fleet: Fleet, entries: list[_Entry]) -> list[JobResult]:
        config = fleet.config
        todo = [e for e in entries if e.resumed is None]
        specs = [self._spec(e, config) for e in todo]
        since = time.time() - 1.0
        records: list[JobRecord | None]
        failure = ""
        try:
            records = list(fleet.submit_many(specs, backend=self.backend)) if specs else []
        except SubmitError as exc:
            log.warning("%s; the batch goes on with the jobs that were submitted", exc)
            records = find_submitted(fleet, [e.paths for e in todo], since)
            failure = str(exc)
        token = fleet.registry.token if records else ""
        submitted: dict[str, JobResult] = {}
        for entry, record in zip(todo, records, strict=True):
            prefix = entry.job.prefix
            if record is None:
                why = f"cannot tell whether it was submitted: {failure}"
                submitted[prefix] = JobResult(prefix, entry.paths, JobState.UNKNOWN, reason=why)
                continue
            try:
                write_marker(entry.paths, record, token)
            except OSError as exc:  # the job runs all the same: its result matters more
                log.warning(
                    "job %r (jobfleet id %s): cannot write %s: %s; a rerun with "
                    "clobber='skip' finds it only while it runs",
                    prefix,
                    record.id,
                    entry.paths.marker,
                    exc.strerror or exc,
                )
            submitted[prefix] = JobResult.of(prefix, entry.paths, record, resumed=False)
        return [
            JobResult.of(e.job.prefix, e.paths, e.resumed, resumed=True)
            if e.resumed is not None
            else submitted[e.job.prefix]
            for e in entries
        ]

    def _spec(self, entry: _Entry, config: Config) -> JobSpec:
        job, paths = entry.job, entry.paths
        try:
            command = job.command(paths)
        except Exception as exc:
            raise BatchError(
                f"job {job.prefix!r}: command raised {type(exc).__name__}: {exc} "
                "(nothing was submitted)"
            ) from exc
        try:
            return JobSpec(
                command,  # a string is refused: an argv is never split by a shell
                name=job.name or f"{self.experiment}/{job.prefix}",
                workdir=str(paths.output_dir),
                env=job.env,
                stdout=str(paths.stdout),
                stderr=str(paths.stderr),
                resources=job_resources(job.resources, config.resources, job.prefix),
                environment=config.environment,
            )
        except SpecError as exc:
            raise SpecError(f"job {job.prefix!r}: {exc.field}", exc.message) from None

    def _wait(self, fleet: Fleet, timeout_s: float | None) -> list[JobResult]:
        ids = [r.job_id for _, r in self._running if r.job_id is not None]
        records = {r.id: r for r in fleet.wait(ids, timeout_s=timeout_s)} if ids else {}
        results = []
        for entry, before in self._running:
            record = records.get(before.job_id or "")
            result = (
                before
                if record is None
                else JobResult.of(before.prefix, before.paths, record, before.resumed)
            )
            results.append(self._post_run(entry.job, result))
        self._running = [(e, r) for (e, _), r in zip(self._running, results, strict=True)]
        return results

    def _post_run(self, job: Job, result: JobResult) -> JobResult:
        if not result.state.is_terminal or job.prefix in self._post_ran:
            return result
        self._post_ran.add(job.prefix)
        try:
            job.post_run(result)
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            log.warning("job %r: post_run raised %s", job.prefix, error, exc_info=True)
            return replace(result, post_run_error=error)
        return result


def _checked_jobs(jobs: Sequence[Job]) -> list[Job]:
    if isinstance(jobs, (str, bytes)) or not isinstance(jobs, Sequence):
        raise SpecError("jobs", f"expected a list of Job objects, got {shown(jobs)}")
    seen: dict[str, int] = {}
    for n, job in enumerate(jobs):
        if not isinstance(job, Job):
            raise SpecError(f"jobs[{n}]", f"expected a Job (subclass it), got {shown(job)}")
        check_name(f"jobs[{n}].prefix", job.prefix)
        if type(job).command is Job.command:
            raise SpecError(
                f"jobs[{n}].command",
                f"{type(job).__name__} does not define command(paths); "
                "override it to return the program and its arguments",
            )
        if job.prefix in seen:
            raise SpecError(
                f"jobs[{n}].prefix",
                f"{job.prefix!r} is also the prefix of jobs[{seen[job.prefix]}]; "
                "every job needs a prefix of its own (its directory)",
            )
        seen[job.prefix] = n
    return list(jobs)
