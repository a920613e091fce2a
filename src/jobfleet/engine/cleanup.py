"""``jobfleet clean``: remove the files of ended jobs, keep their records.

What goes, for each job chosen: its directory (``<home>/jobs/<id // 1000>xxx/<id>/``,
or ``<home>/jobs/<id>/`` for one an older jobfleet made: script, logs, exit-code
files, the submitter's environment), the directories of its earlier attempts
(``<id>.<n>/`` beside it), and for a Python call of an Executor its
payload directory (``<home>/futures/<id>/``). What stays: the record, so that
``status``, ``show`` and ``report`` still work (it is marked ``cleaned_at``, and
``logs``/``result`` say the files were removed), and any output path the job's spec
named outside its directory (its ``stdout``/``stderr``): those are the user's.

Which jobs: those that ended (a terminal state) and are not about to be retried,
whose files were not removed before, and on which no unfinished job depends (a job
script may read its predecessors' exit-code files when it starts). Unfinished jobs,
jobs being submitted (``unknown``) and jobs with a retry due are never touched.

Safety: a path is removed only when it is a directory directly inside this home's
``jobs/`` (or ``futures/``), or directly inside a shard of ``jobs/`` (a directory
``<n>xxx`` directly in it), each resolved, and is not itself a symbolic link nor a
shard; removal never follows a link inside it. A shard is never removed, even once
its last job's directory is gone: a submitter on another host may be making a job's
directory in it at that moment (on NFS its cached handle of a shard removed
meanwhile fails with ESTALE, not only ENOENT), and the empty shards left are at most
one per thousand job ids ever given. A path that is already gone counts as
removed (nothing freed), so a second ``clean`` at the same time, or one after a
crash, does no harm. A path that cannot be removed (permissions) is reported for
its job, which keeps its mark unset; the others go on.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jobfleet.errors import SpecError, shown
from jobfleet.futures.layout import FUTURES_DIR, call_directory, is_call_shard
from jobfleet.registry import Registry
from jobfleet.registry.files import JOBS_DIR, is_shard_name
from jobfleet.states import TERMINAL, JobRecord, JobState

__all__ = ["CleanReport", "Removed", "Skipped", "clean", "ended_at", "parse_states"]

#: The ended states, in the order error messages list them.
ENDED: tuple[JobState, ...] = tuple(s for s in JobState if s in TERMINAL)
#: How many removed jobs are marked in one registry transaction.
_MARK_EVERY = 200


@dataclass(frozen=True, slots=True)
class Removed:
    """A directory removed (or, in a dry run, that would be): its job, path and size."""

    job_id: str
    path: str
    bytes: int

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.job_id, "path": self.path, "bytes": self.bytes}


@dataclass(frozen=True, slots=True)
class Skipped:
    """A job chosen by the filters whose files were kept, and why; ``failed`` when
    removing them went wrong (e.g. permissions), not by choice."""

    job_id: str
    reason: str
    failed: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.job_id, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class CleanReport:
    """What :func:`clean` removed (or would remove, ``dry_run``) and what it kept."""

    removed: list[Removed] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    dry_run: bool = False

    @property
    def bytes_freed(self) -> int:
        """The size of the files removed (would be, in a dry run), in bytes."""
        return sum(r.bytes for r in self.removed)

    @property
    def job_ids(self) -> list[str]:
        """The jobs whose files were removed, in order."""
        return list(dict.fromkeys(r.job_id for r in self.removed))

    @property
    def failed(self) -> list[Skipped]:
        """The jobs whose files could not be removed."""
        return [s for s in self.skipped if s.failed]

    def to_dict(self) -> dict[str, Any]:
        """The JSON form of ``jobfleet clean --json`` (a stable contract)."""
        return {
            "dry_run": self.dry_run,
            "removed": [r.to_dict() for r in self.removed],
            "skipped": [s.to_dict() for s in self.skipped],
            "bytes_freed": self.bytes_freed,
        }


def parse_states(states: Iterable[JobState | str] | None) -> frozenset[JobState]:
    """The ended states chosen (None: every one).

    Raises:
        SpecError: a value that is no state, or a state of jobs that have not ended.
    """
    if states is None:
        return frozenset(ENDED)
    valid = ", ".join(s.value for s in ENDED)
    chosen: set[JobState] = set()
    for value in states:
        state = value if isinstance(value, JobState) else _STATES.get(str(value))
        if state is None:
            raise SpecError("state", f"{shown(value)} is no job state; choose among {valid}")
        if state not in TERMINAL:
            raise SpecError(
                "state",
                f"{state.value} jobs have not ended and are never cleaned; choose among {valid}",
            )
        chosen.add(state)
    return frozenset(chosen)


_STATES = {s.value: s for s in JobState}


def ended_at(record: JobRecord) -> float:
    """When a job ended: as its scheduler reported (an array: its last element), else
    when the registry recorded its last change."""
    if record.elements:
        times = [e.usage.ended_at for e in record.elements.values()]
        if all(t is not None for t in times):
            return max(t for t in times if t is not None)
        return record.updated_at
    return record.usage.ended_at if record.usage.ended_at is not None else record.updated_at


def clean(
    registry: Registry,
    *,
    states: Iterable[JobState | str] | None = None,
    older_than_s: float | None = None,
    dry_run: bool = False,
    now: float | None = None,
) -> CleanReport:
    """Remove the files of the ended jobs of ``registry`` (see the module's docstring).

    Args:
        states: only jobs that ended in these states (default: every ended state).
        older_than_s: only jobs that ended at least this many seconds before ``now``.
        dry_run: remove nothing; report what would be removed.
        now: the time to compare with (default: now).

    Raises:
        SpecError: a state that is none, or not an ended one.
        RegistryError: the registry cannot be written (nothing is removed then).
    """
    chosen = parse_states(states)
    now = time.time() if now is None else now
    if not dry_run and registry.read_only is not None:
        raise registry.read_only
    roots = {
        JOBS_DIR: (registry.home / JOBS_DIR).resolve(),
        FUTURES_DIR: (registry.home / FUTURES_DIR).resolve(),
    }
    waiting = _waited_on(registry.unfinished())
    report = CleanReport(dry_run=dry_run)
    done: list[tuple[str, int]] = []
    try:
        for record, earlier in registry.uncleaned():
            if record.state not in chosen:
                continue
            if older_than_s is not None and ended_at(record) > now - older_than_s:
                continue
            why = _kept(record, waiting)
            if why is not None:
                report.skipped.append(Skipped(record.id, why))
                continue
            if _clean_one(record, [*earlier, record.job_dir], roots, report) and not dry_run:
                done.append((record.id, record.attempt))
                if len(done) >= _MARK_EVERY:
                    registry.mark_cleaned(done)
                    done = []
    finally:
        if done:
            registry.mark_cleaned(done)
    return report


def _waited_on(unfinished: Sequence[JobRecord]) -> dict[str, str]:
    """Job id (or a call's payload directory, ``payload:DIR``) -> an unfinished job that
    depends on it (or runs the same payload: a job submitted again by hand)."""
    waiting: dict[str, str] = {}
    for record in unfinished:
        for dep in record.spec.get("dependencies") or ():
            for job_id in dep.get("job_ids") or ():
                waiting.setdefault(str(job_id), record.id)
        payload = call_directory(record.spec.get("command") or ())
        if payload is not None:
            waiting.setdefault(f"payload:{payload}", record.id)
    return waiting


def _kept(record: JobRecord, waiting: dict[str, str]) -> str | None:
    """Why an ended job's files must stay for now, or None."""
    if record.retry_due:
        return (
            f"a retry is due (attempt {record.attempt} ended {record.state.value}); "
            "it is submitted again at the next status"
        )
    if record.id in waiting:
        return f"unfinished job {waiting[record.id]} depends on it"
    payload = call_directory(record.spec.get("command") or ())
    if payload is not None and f"payload:{payload}" in waiting:
        return f"unfinished job {waiting[f'payload:{payload}']} runs the same call ({payload})"
    return None


def _clean_one(
    record: JobRecord, dirs: list[str], roots: dict[str, Path], report: CleanReport
) -> bool:
    """Remove a job's directories (in a dry run: measure them); True when all are gone."""
    # (path, the directory it must be in, what names that one's shards have)
    targets = [(path, roots[JOBS_DIR], is_shard_name) for path in dirs]
    payload = call_directory(record.spec.get("command") or ())
    if payload is not None:
        targets.append((str(payload), roots[FUTURES_DIR], is_call_shard))
    for path, root, shard in targets:
        problem = _unsafe(path, root, shard)
        if problem is not None:
            report.skipped.append(Skipped(record.id, f"{path} {problem}: left alone"))
            return False
    for path, _, _ in targets:
        size = _size(path)
        if not report.dry_run:
            errors = _remove(path)
            if errors:
                more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
                why = f"could not remove {errors[0]}{more}"
                report.skipped.append(Skipped(record.id, why, failed=True))
                return False
        report.removed.append(Removed(record.id, path, size))
    return True


def _unsafe(path: str, root: Path, shard: Callable[[str], bool]) -> str | None:
    """Why ``path`` must not be removed, or None: it must be a directory (or nothing)
    directly inside ``root`` (resolved), or directly inside a shard (a directory whose
    name ``shard`` accepts) directly inside it, and no symbolic link nor a shard itself."""
    where = Path(path)
    if not where.is_absolute() or where.name in ("", ".", ".."):
        return "is not a job's directory"
    if where.is_symlink():
        return "is a symbolic link"
    try:
        parent = where.parent.resolve()
    except (OSError, RuntimeError):  # a loop of links
        parent = None
    if shard(where.name):
        return f"is named as a shard of {root}, not as a job's directory"
    inside = parent == root or (parent is not None and parent.parent == root and shard(parent.name))
    if not inside:
        return f"is not directly in {root} nor in a shard of it"
    if where.exists() and not where.is_dir():
        return "is not a directory"
    return None


def _size(path: str) -> int:
    """The bytes of the files under ``path`` (0 when it is gone); links not followed."""
    total = 0
    for top, dirs, files in os.walk(path):
        here = Path(top)
        for name in files + [d for d in dirs if (here / d).is_symlink()]:
            with suppress(OSError):  # removed meanwhile
                total += (here / name).lstat().st_size
    return total


def _remove(path: str) -> list[str]:
    """Remove the directory ``path`` and everything in it; what could not be removed
    (``path: why``). What is gone already (another ``clean``) is no error."""
    errors: list[str] = []

    def failed(_func: object, where: str, exc: BaseException) -> None:
        if not isinstance(exc, FileNotFoundError):
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            errors.append(f"{where}: {why}")

    if sys.version_info >= (3, 12):
        shutil.rmtree(path, onexc=failed)
    else:
        shutil.rmtree(path, onerror=lambda func, where, info: failed(func, where, info[1]))
    return errors
