"""Cancelling jobs or elements of an array, or sending them a signal; choosing
the registry's jobs to cancel by their names."""

from __future__ import annotations

import fnmatch
import signal as signals
from collections.abc import Iterable, Sequence

from jobfleet.engine.pool import BackendPool
from jobfleet.errors import BackendError, CommandError, SpecError, shown
from jobfleet.owner import user_name
from jobfleet.registry import Registry, StatusUpdate
from jobfleet.states import JobRecord, JobState, cancelled_by

__all__ = ["cancel", "check_indices", "check_patterns", "matching", "signal_name"]

#: The reason of elements a scheduler removed before they started (by this process,
#: hence this process's user).
_REMOVED = " before it started"


def signal_name(signal: str) -> str:
    """``TERM`` for ``TERM``, ``SIGTERM``, ``term`` or ``15``.

    Raises:
        SpecError: not a signal.
    """
    text = signal.strip().upper().removeprefix("SIG")
    try:
        return (
            signals.Signals(int(text)).name.removeprefix("SIG")
            if text.isdigit()
            else (signals.Signals[f"SIG{text}"].name.removeprefix("SIG"))
        )
    except (KeyError, ValueError):
        raise SpecError(
            "signal", f"{shown(signal)} is not a signal name; e.g. TERM, INT, USR1"
        ) from None


def check_indices(records: Sequence[JobRecord], indices: Sequence[int] | None) -> None:
    """Raise :class:`SpecError` unless ``indices`` (if any) are elements of one array."""
    if indices is None:
        return
    if len(records) != 1 or not records[0].elements:
        raise SpecError("index", "give exactly one array job with --index")
    missing = sorted(set(indices) - set(records[0].elements))
    if missing:
        raise SpecError("index", f"job {records[0].id} has no element {missing[0]}")


def check_patterns(patterns: Sequence[str]) -> None:
    """Raise :class:`SpecError` for a pattern that can match no job name (an empty one)."""
    for pattern in patterns:
        if not pattern:
            raise SpecError(
                "name", "an empty pattern matches no job; give a name or a glob: 'train-*'"
            )


def matching(records: Iterable[JobRecord], patterns: Sequence[str] | None) -> list[JobRecord]:
    """Those of ``records`` whose user-given name matches one of the shell-style
    ``patterns`` (``*``, ``?``, ``[seq]``; case-sensitive; a pattern without them
    matches that name only); every record when ``patterns`` is None."""
    if patterns is None:
        return list(records)
    return [r for r in records if any(fnmatch.fnmatchcase(r.name, p) for p in patterns)]


def cancel(
    registry: Registry,
    backends: BackendPool,
    records: Sequence[JobRecord],
    *,
    indices: Sequence[int] | None = None,
    signal: str | None = None,
) -> dict[str, CommandError]:
    """Ask each backend to cancel (or signal) its unfinished jobs among ``records``,
    and record the elements it removed at once without a trace a poll could find.

    A backend that cannot be asked does not keep the others from being asked:
    its error is returned (backend name -> error), and its jobs are as they were.

    Args:
        registry: where those removals are recorded.
        backends: the backends of the jobs.
        records: the jobs, freshly read.
        indices: only these elements (of a single array, see :func:`check_indices`).
        signal: a signal name from :func:`signal_name` to send instead.
    """
    by_backend: dict[str, list[JobRecord]] = {}
    for record in records:
        if record.native_id and not record.state.is_terminal:
            by_backend.setdefault(record.backend, []).append(record)
    if signal is not None:
        # Every backend can do it, or nothing is sent (no job signalled half-way).
        for backend_name in by_backend:
            if not backends.get(backend_name).capabilities.signals:
                raise BackendError(
                    f"the {backend_name} backend cannot send a chosen signal to a job; "
                    "cancel it instead"
                )
    gone: list[StatusUpdate] = []
    errors: dict[str, CommandError] = {}
    try:
        for backend_name, group in by_backend.items():
            native_ids = [r.native_id or "" for r in group]
            try:
                removed = backends.get(backend_name).cancel(
                    native_ids, indices=indices, signal=signal
                )
            except CommandError as exc:
                errors[backend_name] = exc
                continue
            for record in group:
                gone += _removed_updates(record, removed.get(record.native_id or "", []))
    finally:
        if gone:
            # Removed before they started: nothing else will ever say so (also
            # when a later backend raised something other than "did not answer").
            registry.apply(gone)
    return errors


def still_stopping(records: Iterable[JobRecord], indices: Sequence[int] | None) -> list[JobRecord]:
    """Those of ``records`` (just cancelled) that do not read ended yet: only the
    elements ``indices`` of an array count when given."""
    left = []
    for record in records:
        if indices is not None and record.elements:
            chosen = (record.elements[i] for i in indices if i in record.elements)
            if any(not e.state.is_terminal for e in chosen):
                left.append(record)
        elif not record.state.is_terminal:
            left.append(record)
    return left


def _removed_updates(record: JobRecord, indices: Sequence[int | None]) -> list[StatusUpdate]:
    if not indices:
        return []
    reason = cancelled_by(user_name()) + _REMOVED
    if record.elements:
        cancelled = (JobState.CANCELLED, None, reason)
        return [StatusUpdate(record.id, elements={i: cancelled for i in indices if i is not None})]
    return [StatusUpdate(record.id, JobState.CANCELLED, reason=reason)]
