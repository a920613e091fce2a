"""Where a batch job's files go, and what its directory remembers of its last run.

Each job of a :class:`~jobfleet.studies.batch.BatchController` has a directory
``base/experiment/prefix/`` (:class:`JobPaths`) holding ``data/`` (written by its
``write_data`` hook), ``output/`` (the command's working directory), ``logs/``
(its standard output and error) and ``jobfleet-job.json``: the jobfleet id of the
job last submitted from it, written (atomically) as soon as the submission
returns. A rerun reads that file and the registry's record of the id to know
how the previous run ended (:func:`previous_runs`). The messages of the clobber
policies and a job's resources over the configuration's are here too.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jobfleet.engine.fleet import Fleet
from jobfleet.errors import JobfleetError, SpecError, UnknownJobError, shown
from jobfleet.resources import Resources
from jobfleet.states import JobRecord

__all__ = [
    "MARKER",
    "BatchError",
    "JobPaths",
    "check_name",
    "find_submitted",
    "going_message",
    "job_resources",
    "previous_runs",
    "read_marker",
    "taken_message",
    "write_marker",
]

#: The file in a job's directory naming the jobfleet job last submitted from it.
MARKER = "jobfleet-job.json"
_MARKER_VERSION = 1
#: A prefix or experiment name: one directory name that every file system and
#: shell takes as it is (no separators, no spaces, no leading dot or dash).
_NAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._=+-]*")
_MAX_NAME = 128


class BatchError(JobfleetError):
    """A batch cannot go on as asked (an existing directory, an earlier run still
    going, a hook that raised); the message says what to do. Nothing was submitted."""

    exit_status = 2


def check_name(field: str, value: object) -> str:
    """``value`` if it can name one directory (a job's prefix, an experiment).

    >>> check_name("prefix", "run-1_a=0.5")
    'run-1_a=0.5'
    >>> check_name("prefix", "../up")
    Traceback (most recent call last):
    ...
    jobfleet.errors.SpecError: prefix: '../up' cannot name a directory; use letters, digits \
and . _ = + - (not first: . = + -), at most 128 characters
    """
    if not isinstance(value, str) or not _NAME_RE.fullmatch(value) or len(value) > _MAX_NAME:
        raise SpecError(
            field,
            f"{shown(value)} cannot name a directory; use letters, digits and . _ = + - "
            f"(not first: . = + -), at most {_MAX_NAME} characters",
        )
    return value


@dataclass(frozen=True, slots=True)
class JobPaths:
    """Where one job's files go (every path absolute).

    Attributes:
        job_dir: ``base/experiment/prefix/``.
        data_dir: ``job_dir/data/``: its input data, written by ``write_data``.
        output_dir: ``job_dir/output/``: the command runs here (its working directory).
        log_dir: ``job_dir/logs/``.
        stdout: ``log_dir/stdout.log``, the command's standard output.
        stderr: ``log_dir/stderr.log``, its standard error.
    """

    job_dir: Path
    data_dir: Path
    output_dir: Path
    log_dir: Path
    stdout: Path
    stderr: Path

    @classmethod
    def of(cls, base_path: Path, experiment: str, prefix: str) -> JobPaths:
        job_dir = base_path / experiment / prefix
        logs = job_dir / "logs"
        return cls(
            job_dir=job_dir,
            data_dir=job_dir / "data",
            output_dir=job_dir / "output",
            log_dir=logs,
            stdout=logs / "stdout.log",
            stderr=logs / "stderr.log",
        )

    @property
    def marker(self) -> Path:
        """``job_dir/jobfleet-job.json``: the job last submitted from this directory."""
        return self.job_dir / MARKER

    def make(self) -> None:
        """Create the directories (those that exist are kept as they are)."""
        for directory in (self.data_dir, self.output_dir, self.log_dir):
            directory.mkdir(parents=True, exist_ok=True)


@dataclass(frozen=True, slots=True)
class Marker:
    """What ``jobfleet-job.json`` says: the job's id in the registry with this token."""

    job_id: str
    registry: str


def write_marker(paths: JobPaths, record: JobRecord, registry_token: str) -> None:
    """Record that ``record`` was submitted from ``paths.job_dir``: a temporary file
    renamed over the marker, so that a reader sees the old one or the new one whole."""
    data: dict[str, Any] = {
        "version": _MARKER_VERSION,
        "job_id": record.id,
        "registry": registry_token,
        "backend": record.backend,
        "native_id": record.native_id,
        "submitted_at": time.time(),
    }
    temp = paths.job_dir / f".{MARKER}.{os.getpid()}.tmp"
    try:
        with open(temp, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=1)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        temp.replace(paths.marker)
    finally:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()


def read_marker(paths: JobPaths) -> Marker | None:
    """The job last submitted from this directory, or None when none was.

    Raises:
        BatchError: the file is there but cannot be read as a marker.
    """
    try:
        text = paths.marker.read_text(encoding="utf-8")
    except (FileNotFoundError, NotADirectoryError):
        return None  # a file where the job directory goes: preparing it says so
    except OSError as exc:
        raise BatchError(f"cannot read {paths.marker}: {exc.strerror or exc}") from None
    try:
        data = json.loads(text)
        job_id, registry = data["job_id"], data["registry"]
        if not isinstance(job_id, str) or not isinstance(registry, str):
            raise TypeError("job_id and registry must be text")
    except (ValueError, KeyError, TypeError) as exc:
        raise BatchError(
            f"{paths.marker} is damaged ({exc}): remove it to run the job again, "
            "or use clobber='overwrite'"
        ) from None
    return Marker(job_id, registry)


def previous_runs(fleet: Fleet, paths: Sequence[JobPaths]) -> list[JobRecord | None]:
    """The record of the job last submitted from each directory (fresh from its
    scheduler, or as last known when it cannot be asked), None when there is none.

    A directory without a marker (its submitter died before writing it) is
    matched with an unfinished job of the registry whose standard output goes
    to that directory's log, so that such a job is not run twice. The marker of
    a job this registry does not know counts as none.

    Raises:
        BatchError: a marker names a job of another registry, or is damaged.
    """
    found: list[JobRecord | None] = [None] * len(paths)
    ids: dict[int, str] = {}
    token = ""
    for n, p in enumerate(paths):
        marker = read_marker(p)
        if marker is None:
            continue
        token = token or fleet.registry.token
        if marker.registry != token:
            raise BatchError(
                f"{p.job_dir} was run through another jobfleet registry (not the one at "
                f"{fleet.registry.home}): set JOBFLEET_HOME to that one, or use "
                "clobber='overwrite' to run it again here"
            )
        ids[n] = marker.job_id
    for n, record in zip(ids, _records(fleet, list(ids.values())), strict=True):
        found[n] = record
    orphans = [n for n, record in enumerate(found) if record is None]
    if orphans:
        by_stdout = {r.spec.get("stdout"): r for r in fleet.unfinished()}
        for n in orphans:
            found[n] = by_stdout.get(str(paths[n].stdout))
    known = [r for r in found if r is not None]
    if known:
        fresh = {r.id: r for r in fleet.look(known).records}
        found = [None if r is None else fresh.get(r.id, r) for r in found]
    return found


def _records(fleet: Fleet, job_ids: list[str]) -> list[JobRecord | None]:
    """The records of these ids; None for one the registry does not know."""
    try:
        return list(fleet.records(job_ids))
    except UnknownJobError:
        pass
    records: list[JobRecord | None] = []
    for job_id in job_ids:
        try:
            records.append(fleet.records([job_id])[0])
        except UnknownJobError:
            records.append(None)
    return records


def find_submitted(fleet: Fleet, paths: Sequence[JobPaths], since: float) -> list[JobRecord | None]:
    """After a batch submission that partly failed: the records created for these
    directories since ``since`` (a job's standard output names its directory),
    None for one that was not recorded."""
    wanted = {str(p.stdout): n for n, p in enumerate(paths)}
    found: list[JobRecord | None] = [None] * len(paths)
    for record in fleet.recent(len(paths) + 1000):
        n = wanted.get(record.spec.get("stdout", ""))
        if n is not None and found[n] is None and record.created_at >= since:
            found[n] = record
    return found


def job_resources(
    given: Resources | Mapping[str, Any] | None, base: Resources, prefix: str
) -> Resources:
    """A job's resources: ``given`` over ``base`` (the configuration's defaults)."""
    if given is None:
        return base
    if isinstance(given, Resources):
        return given
    if not isinstance(given, Mapping):
        raise SpecError(
            f"job {prefix!r}: resources", f"expected Resources or a mapping, got {shown(given)}"
        )
    return base.overlaid(given, prefix=f"job {prefix!r}: resources")


def taken_message(dirs: Sequence[Path]) -> str:
    """Why ``clobber="error"`` refuses these existing job directories, and the choices."""
    listed = ", ".join(str(d) for d in dirs[:3])
    more = f" and {len(dirs) - 3} more" if len(dirs) > 3 else ""
    return (
        f"job directory {listed}{more} already exists (clobber='error'); "
        "pass clobber='overwrite' to remove it and run again, or clobber='skip' "
        "to keep what completed and run the rest"
    )


def going_message(going: Sequence[tuple[str, Path, JobRecord]]) -> str:
    """Why jobs whose earlier runs have not ended cannot run again: (prefix,
    directory, record of the earlier run) each."""
    prefix, job_dir, record = going[0]
    more = f" (and {len(going) - 1} more jobs)" if len(going) > 1 else ""
    ids = " ".join(r.id for _, _, r in going)
    return (
        f"job {prefix!r} of an earlier run (jobfleet id {record.id}) is still "
        f"{record.state.value}{more} in {job_dir}: wait for it, cancel it "
        f"(jobfleet cancel {ids}), or pass clobber='skip' to wait for it here"
    )
