"""The persistent job registry: every job of every backend, shared by all processes.

State lives under a home directory (see :func:`default_home`)::

    registry.db             SQLite in WAL mode (tables: see :mod:`.schema`)
    jobs/<n>xxx/<id>/       one directory per job (script, logs, exit-code files),
                            in the shard of its thousand (``n = id // 1000``: job
                            12345 in ``jobs/12xxx/12345/``, job 7 in ``jobs/0xxx/7/``),
                            beside its later attempts (``<id>.<attempt>/``); never
                            reused: when the name is taken (the database was
                            replaced), the job gets ``<id>-<random>/`` there instead.
                            An older jobfleet made them flat (``jobs/<id>/``): the
                            record keeps each job's directory, so those stay where
                            they are and are read and cleaned there.

The home holds the submitters' environments and their jobs' outputs, so the
directories jobfleet creates are private to their owner (mode 0700).

Every write is one ``BEGIN IMMEDIATE`` transaction, so many processes can
write at once without losing anything, and every change is committed before
the method returns. Terminal states are final: a late or stale report never
moves a finished job, it may only fill in an exit code or reason still missing.

Modules: :mod:`.store` (the :class:`Registry`: connection and transactions),
:mod:`.schema` (tables and migrations), :mod:`.files` (the home directory),
:mod:`.merge` (how a report changes a status: pure functions), :mod:`.jobs`
and :mod:`.records` (writing and reading jobs), :mod:`.callbacks` and
:mod:`.absences` (firing callbacks once; the lost rule's counts), :mod:`.opening`
(judging a file before touching it, read-only when it cannot be written, making a
new one whole) and :mod:`.problems` (what went wrong, in one line with its fix;
docs/registry.md). No registry file is made until the first write.
"""

from __future__ import annotations

from jobfleet.registry.files import default_home
from jobfleet.registry.jobs import (
    MAYBE_SUBMITTED,
    SUBMITTING,
    NewJob,
    StatusUpdate,
    awaits_reconciling,
)
from jobfleet.registry.schema import SCHEMA_VERSION
from jobfleet.registry.store import Registry

__all__ = [
    "MAYBE_SUBMITTED",
    "SCHEMA_VERSION",
    "SUBMITTING",
    "NewJob",
    "Registry",
    "StatusUpdate",
    "awaits_reconciling",
    "default_home",
]
