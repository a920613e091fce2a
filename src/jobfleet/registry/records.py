"""Reading jobs back: ids, stored states, records with their elements, history.

Functions over a :class:`sqlite3.Connection` in a transaction the caller opened
(see :class:`~jobfleet.registry.store.Registry`). Lists of values are passed as
one JSON parameter (``json_each``), so no SQL is built at run time.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Iterable, Mapping, Sequence, Set
from dataclasses import replace
from typing import Any

from jobfleet.errors import UnknownJobError
from jobfleet.registry import usage
from jobfleet.states import (
    DEFAULT_RETRY_ON,
    RETRYABLE,
    TERMINAL,
    ElementRecord,
    JobRecord,
    JobState,
    element_json,
)
from jobfleet.usage import iso_utc

__all__ = [
    "UNFINISHED",
    "attempts",
    "element_counts",
    "elements_json",
    "events",
    "find_native",
    "first_indices",
    "get_many",
    "get_with_element",
    "job_row",
    "load",
    "load_patched",
    "parse_id",
    "recent",
    "recent_summaries",
    "row_id",
    "stored_state",
    "uncleaned",
    "unfinished",
]

log = logging.getLogger(__name__)

#: The values of the states that are not terminal.
UNFINISHED = tuple(s.value for s in JobState if s not in TERMINAL)
_STATE_OF = {s.value: s for s in JobState}  # JobState(value) is slow over 100,000 elements
_TERMINAL_VALUES = frozenset(s.value for s in TERMINAL)
_SELECT_JOBS = (
    "SELECT id, name, backend, native_id, state, exit_code, reason, submitted, job_dir,"
    " created_at, updated_at, spec, attempt, is_array, submitted_at, started_at, ended_at,"
    " hosts, max_memory_bytes, cpu_time_s, wall_time_s, cleaned_at FROM jobs"
)
_ELEMENT_COLUMNS = (
    "SELECT job_id, idx, state, exit_code, reason, submitted_at, started_at, ended_at, hosts,"
    " max_memory_bytes, cpu_time_s, wall_time_s FROM elements"
)
# Constants only: nothing in these strings comes from outside.
_SELECT_ELEMENTS = (
    f"{_ELEMENT_COLUMNS} WHERE job_id IN (SELECT value FROM json_each(?))"  # noqa: S608
    " ORDER BY job_id, idx"
)
_SELECT_ONE_ELEMENT = f"{_ELEMENT_COLUMNS} WHERE job_id = ? AND idx = ?"
_SELECT_JSON_ELEMENTS = (
    "SELECT idx, state, exit_code, reason, submitted_at, started_at, ended_at, hosts,"
    " max_memory_bytes, cpu_time_s, wall_time_s FROM elements WHERE job_id = ? ORDER BY idx"
)
_SELECT_SOME_ELEMENTS = (
    f"{_ELEMENT_COLUMNS} WHERE job_id = ? AND idx IN (SELECT value FROM json_each(?))"  # noqa: S608
)
# One array at a time: by its primary key, faster than one query over json_each.
_COUNT_ELEMENTS = "SELECT state, count(*) FROM elements WHERE job_id = ? GROUP BY state"
_BY_IDS = " WHERE id IN (SELECT value FROM json_each(?))"
_BY_NAMES = " WHERE name IN (SELECT value FROM json_each(?)) ORDER BY id"
_UNCLEANED = " WHERE state IN (SELECT value FROM json_each(?)) AND cleaned_at IS NULL ORDER BY id"
# Unfinished: not terminal, or ended in a way its spec retries with retries left
# (JobRecord.retry_due). Parameters: UNFINISHED, RETRYABLE, DEFAULT_RETRY_ON (for
# specs stored without retry_on), then the backend twice.
_UNFINISHED_OF_BACKEND = (
    " WHERE (state IN (SELECT value FROM json_each(?)) OR (state IN"
    " (SELECT value FROM json_each(?)) AND is_array = 0"
    " AND attempt <= coalesce(json_extract(spec, '$.retries'), 0)"
    " AND state IN (SELECT value FROM json_each("
    "coalesce(json_extract(spec, '$.retry_on'), ?)))))"
    " AND (? IS NULL OR backend = ?)"
)
_UNFINISHED_PARAMS = (
    json.dumps(UNFINISHED),
    json.dumps([s.value for s in RETRYABLE]),
    json.dumps([s.value for s in DEFAULT_RETRY_ON]),
)


#: SQLite's largest row id, 2**63 - 1, has 19 digits.
_MAX_ID_DIGITS = 19


def parse_id(job_id: str) -> int | None:
    """The row id of a jobfleet id, or None when it cannot be one ("01", "x", or
    longer than any SQLite row id: int() refuses 4,300 digits and more)."""
    if not (job_id.isascii() and job_id.isdigit()) or len(job_id) > _MAX_ID_DIGITS:
        return None
    if job_id != str(int(job_id)):
        return None
    return int(job_id)


def row_id(job_id: str) -> int:
    """The row id of a jobfleet id.

    Raises:
        UnknownJobError: ``job_id`` cannot be the id of a job.
    """
    found = parse_id(job_id)
    if found is None:
        raise UnknownJobError(job_id)
    return found


def stored_state(value: str, job_id: object, where: str = "") -> JobState:
    """The state stored as ``value``; UNKNOWN (with a warning) for a value this
    version does not know, such as a state added by a newer jobfleet."""
    state = _STATE_OF.get(value)
    if state is None:
        _warn_unknown_state(job_id, where, repr(value))
        return JobState.UNKNOWN
    return state


def _warn_unknown_state(job_id: object, where: str, value: str) -> None:
    log.warning(
        "job %s: unknown state %s%s in the registry (written by a newer jobfleet?); "
        "reading it as unknown",
        job_id,
        value,
        f" of {where}" if where else "",
    )


def job_row(conn: sqlite3.Connection, job_id: str) -> tuple[Any, ...]:
    """``(state, exit_code, reason, is_array, native_id)`` of a job as stored.

    Raises:
        UnknownJobError: no such job.
    """
    row = conn.execute(
        "SELECT state, exit_code, reason, is_array, native_id FROM jobs WHERE id = ?",
        (row_id(job_id),),
    ).fetchone()
    if row is None:
        raise UnknownJobError(job_id)
    return tuple(row)


def _records(
    conn: sqlite3.Connection,
    sql: str,
    *params: Any,
    only: tuple[int, ...] | None = None,
    ended_elements: bool = True,
) -> list[JobRecord]:
    """Jobs selected by ``sql`` (which starts with ``_SELECT_JOBS``), with their elements;
    with ``only`` (``sql`` selecting one job), just those of them it has (``()``: none);
    without ``ended_elements``, none of an array that ended (see :func:`element_counts`).

    Two queries in all, however many jobs: no query per job.
    """
    rows = conn.execute(sql, params).fetchall()
    elements: dict[int, dict[int, ElementRecord]] = {}
    array_ids = [
        row[0] for row in rows if row[13] and (ended_elements or row[4] not in _TERMINAL_VALUES)
    ]
    if array_ids and only != ():
        found = (
            conn.execute(_SELECT_ELEMENTS, (json.dumps(array_ids),)).fetchall()
            if only is None
            else [
                row
                for index in only
                for row in conn.execute(_SELECT_ONE_ELEMENT, (array_ids[0], index))
            ]
        )
        _elements(found, elements)
    return [
        JobRecord(
            id=str(row[0]),
            name=row[1],
            backend=row[2],
            native_id=row[3],
            state=stored_state(row[4], row[0]),
            exit_code=row[5],
            reason=row[6],
            submitted=bool(row[7]),
            job_dir=row[8],
            created_at=row[9],
            updated_at=row[10],
            spec=json.loads(row[11]),
            elements=elements.get(row[0], {}),
            attempt=row[12],
            usage=usage.from_row(row[14:21]),
            cleaned_at=row[21],
        )
        for row in rows
    ]


def _elements(rows: Iterable[Sequence[Any]], into: dict[int, dict[int, ElementRecord]]) -> None:
    """The element records of ``_ELEMENT_COLUMNS`` rows, into ``{job: {index: record}}``
    (an unknown state is UNKNOWN, and warned about once a job)."""
    strange: dict[int, set[str]] = {}  # job -> unknown element states, warned once
    for job_id, idx, state, exit_code, reason, *used in rows:
        known = _STATE_OF.get(state)
        if known is None:
            strange.setdefault(job_id, set()).add(state)
            known = JobState.UNKNOWN
        by_index = into.setdefault(job_id, {})
        by_index[idx] = ElementRecord(idx, known, exit_code, reason, usage.from_row(used))
    for job_id, states in strange.items():
        _warn_unknown_state(job_id, "elements", ", ".join(map(repr, sorted(states))))


def load_patched(
    conn: sqlite3.Connection,
    ids: Sequence[int],
    known: Mapping[int, JobRecord],
    written: Mapping[int, Set[int]],
) -> list[JobRecord]:
    """:func:`load`, where an array of ``known`` (its record exactly as the database
    held it before this transaction) costs what changed, not its size: its job row
    is read, and of its elements only those ``written`` in this transaction; the
    others are the known ones (a poll of a 100,000-element array read them all)."""
    patched = [i for i in ids if i in known and known[i].elements]
    if not patched:
        return load(conn, ids)
    others = [i for i in ids if i not in set(patched)]
    by_id = {int(r.id): r for r in _records(conn, _SELECT_JOBS + _BY_IDS, json.dumps(others))}
    heads = _records(conn, _SELECT_JOBS + _BY_IDS, json.dumps(patched), only=())
    for head in heads:
        job = int(head.id)
        fresh: dict[int, dict[int, ElementRecord]] = {}
        indices = json.dumps(sorted(written.get(job, ())))
        _elements(conn.execute(_SELECT_SOME_ELEMENTS, (job, indices)), fresh)
        elements = known[job].elements
        by_id[job] = replace(head, elements={**elements, **fresh[job]} if fresh else elements)
    return [by_id[i] for i in ids]


def elements_json(conn: sqlite3.Connection, job_id: str) -> list[tuple[int, str]]:
    """Each element of ``job_id`` in index order with its ``--json`` object encoded on
    one line (:func:`jobfleet.states.element_json`), from its row: no record, usage or
    dict is made for it (``status ID --json`` of an ended 100,000-element array spent
    most of its time making them). An unknown state is ``unknown``, warned about once."""
    out = []
    strange = set()
    for idx, state, code, reason, sub, start, end, *rest in conn.execute(
        _SELECT_JSON_ELEMENTS, (row_id(job_id),)
    ):
        if state not in _STATE_OF:
            strange.add(state)
            state = JobState.UNKNOWN.value
        times = (iso_utc(sub), iso_utc(start), iso_utc(end))
        out.append((idx, element_json(state, code, reason, times, *rest)))
    if strange:
        _warn_unknown_state(job_id, "elements", ", ".join(map(repr, sorted(strange))))
    return out


def load(conn: sqlite3.Connection, ids: Sequence[int]) -> list[JobRecord]:
    """The records of row ids ``ids`` (all present), in that order."""
    found = _records(conn, _SELECT_JOBS + _BY_IDS, json.dumps(list(ids)))
    by_id = {int(record.id): record for record in found}
    return [by_id[i] for i in ids]


def get_many(
    conn: sqlite3.Connection, job_ids: Sequence[str], *, ended_elements: bool = True
) -> list[JobRecord]:
    """The records of ``job_ids``, in the order asked (``ended_elements``: see
    :func:`recent`).

    Raises:
        UnknownJobError: for the first id not in the registry.
    """
    wanted = {job_id: parse_id(job_id) for job_id in job_ids}
    ids = [i for i in dict.fromkeys(wanted.values()) if i is not None]
    found = _records(conn, _SELECT_JOBS + _BY_IDS, json.dumps(ids), ended_elements=ended_elements)
    by_id: dict[int | None, JobRecord] = {int(record.id): record for record in found}
    for job_id in job_ids:
        if wanted[job_id] not in by_id:
            raise UnknownJobError(job_id)
    return [by_id[wanted[job_id]] for job_id in job_ids]


def get_with_element(conn: sqlite3.Connection, job_id: str, index: int | None) -> JobRecord:
    """The record of ``job_id`` with, of its elements, only ``index`` (none when it has
    no such element, or for None): rows by primary key whatever the array's size.

    Raises:
        UnknownJobError: no such job.
    """
    only = () if index is None else (index,)
    found = _records(conn, _SELECT_JOBS + " WHERE id = ?", row_id(job_id), only=only)
    if not found:
        raise UnknownJobError(job_id)
    return found[0]


def first_indices(conn: sqlite3.Connection, job_id: str, limit: int) -> list[int]:
    """The ``limit`` lowest element indices of ``job_id`` (none for a single job)."""
    rows = conn.execute(
        "SELECT idx FROM elements WHERE job_id = ? ORDER BY idx LIMIT ?", (row_id(job_id), limit)
    )
    return [idx for (idx,) in rows]


def recent(conn: sqlite3.Connection, limit: int, *, ended_elements: bool = True) -> list[JobRecord]:
    """The ``limit`` most recently created jobs, newest first; without
    ``ended_elements``, an array that ended comes without its elements (for views that
    only count them: :func:`element_counts`)."""
    return _records(
        conn, _SELECT_JOBS + " ORDER BY id DESC LIMIT ?", limit, ended_elements=ended_elements
    )


def recent_summaries(conn: sqlite3.Connection, limit: int) -> list[tuple[str, str, str]]:
    """``(id, name, state value)`` of the ``limit`` most recent jobs, newest first."""
    rows = conn.execute("SELECT id, name, state FROM jobs ORDER BY id DESC LIMIT ?", (limit,))
    return [(str(i), name, stored_state(state, i).value) for i, name, state in rows]


def element_counts(conn: sqlite3.Connection, job_ids: Sequence[str]) -> dict[str, dict[str, int]]:
    """How many elements of each array among ``job_ids`` are in each state (state
    values; a value this version does not know counts as ``unknown``), counted by
    SQLite without reading the elements: ``{job_id: {state: count}}``, arrays only."""
    counts: dict[str, dict[str, int]] = {}
    for job_id in job_ids:
        found = parse_id(job_id)
        if found is None:
            continue
        by_state: dict[str, int] = {}
        for state, count in conn.execute(_COUNT_ELEMENTS, (found,)):
            known = _STATE_OF.get(state, JobState.UNKNOWN).value
            by_state[known] = by_state.get(known, 0) + count
        if by_state:
            counts[job_id] = by_state
    return counts


def named(conn: sqlite3.Connection, names: Sequence[str]) -> list[JobRecord]:
    """The jobs with one of these names, oldest first."""
    return _records(conn, _SELECT_JOBS + _BY_NAMES, json.dumps(list(names)))


def unfinished(conn: sqlite3.Connection, backend: str | None) -> list[JobRecord]:
    """Jobs not settled (of ``backend``, or of all with None), oldest first."""
    return _records(
        conn,
        _SELECT_JOBS + _UNFINISHED_OF_BACKEND + " ORDER BY id",
        *_UNFINISHED_PARAMS,
        backend,
        backend,
    )


def find_native(conn: sqlite3.Connection, backend: str, native_id: str) -> JobRecord | None:
    """The newest job of ``backend`` with this scheduler id."""
    found = _records(
        conn,
        _SELECT_JOBS + " WHERE backend = ? AND native_id = ? ORDER BY id DESC LIMIT 1",
        backend,
        native_id,
    )
    return found[0] if found else None


def events(conn: sqlite3.Connection, job_id: str) -> list[dict[str, Any]]:
    """The history of a job and its elements, oldest first (see ``Registry.events``).

    Raises:
        UnknownJobError: no such job.
    """
    keys = ("job_id", "idx", "at", "old_state", "new_state", "exit_code", "reason")
    job_row(conn, job_id)
    rows = conn.execute(
        "SELECT job_id, idx, at, old_state, new_state, exit_code, reason FROM events"
        " WHERE job_id = ? ORDER BY id",
        (row_id(job_id),),
    ).fetchall()
    history = []
    for job, idx, at, old_state, new_state, exit_code, reason in rows:
        where = "an event" if idx is None else f"an event of element {idx}"
        if old_state is not None:
            old_state = stored_state(old_state, job, where).value
        new_state = stored_state(new_state, job, where).value
        values = (str(job), idx, at, old_state, new_state, exit_code, reason)
        history.append(dict(zip(keys, values, strict=True)))
    return history


def attempts(conn: sqlite3.Connection, job_id: str) -> list[dict[str, Any]]:
    """The ended earlier attempts of a job, oldest first (see ``Registry.attempts``).

    Raises:
        UnknownJobError: no such job.
    """
    keys = ("attempt", "native_id", "state", "exit_code", "reason", "job_dir", "ended_at")
    job_row(conn, job_id)
    rows = conn.execute(
        "SELECT attempt, native_id, state, exit_code, reason, job_dir, ended_at"
        " FROM attempts WHERE job_id = ? ORDER BY attempt",
        (row_id(job_id),),
    ).fetchall()
    return [dict(zip(keys, row, strict=True)) for row in rows]


def uncleaned(conn: sqlite3.Connection) -> list[tuple[JobRecord, list[str]]]:
    """Every job that ended (terminal, a retry may still be due) whose files ``jobfleet
    clean`` has not removed, oldest first, each with the directories of its earlier
    attempts (see ``Registry.uncleaned``)."""
    terminal = json.dumps([s.value for s in TERMINAL])
    found = _records(conn, _SELECT_JOBS + _UNCLEANED, terminal)
    earlier: dict[int, list[str]] = {}
    for job_id, job_dir in conn.execute(
        "SELECT job_id, job_dir FROM attempts WHERE job_id IN (SELECT value FROM json_each(?))"
        " ORDER BY job_id, attempt",
        (json.dumps([int(r.id) for r in found]),),
    ):
        earlier.setdefault(job_id, []).append(job_dir)
    return [(r, earlier.get(int(r.id), [])) for r in found]
