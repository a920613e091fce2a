"""Scheduler job names, and their inverse.

Every job jobfleet submits is named ``jf<token>-<id>-<name>`` on its
scheduler (``jf<token>-<id>.<attempt>-<name>`` for a retry): unique to one
registry (its random token) and one attempt of one job, so a job can be
found again by name after a crash between submitting and recording its
native id, and jobs of one registry share the prefix ``jf<token>-`` (Grid
Engine's accounting is asked by that pattern).

>>> scheduler_name("3c4080ab", "17", "train model")
'jf3c4080ab-17-train_model'
>>> parse_scheduler_name("jf3c4080ab-17.2-train_model", "3c4080ab")
ParsedName(job_id='17', attempt=2)
>>> parse_scheduler_name("someone-else", "3c4080ab") is None
True
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from jobfleet.states import JobRecord

__all__ = [
    "ADOPTED_COMMAND",
    "ParsedName",
    "name_on_scheduler",
    "name_prefix",
    "parse_scheduler_name",
    "registry_prefix",
    "scheduler_name",
]

#: The command recorded for a job adopted from its scheduler (its real one is unknown).
ADOPTED_COMMAND = "(adopted from the scheduler: command unknown)"

_NAME_SAFE = re.compile(r"[^A-Za-z0-9._-]+")
#: The part of a scheduler name a user's job name may fill.
_MAX_SHOWN = 40


def name_prefix(token: str) -> str:
    """What every scheduler name of the registry with this token starts with."""
    return f"jf{token}-"


def scheduler_name(token: str, job_id: str, name: str, attempt: int = 1) -> str:
    """The name a job gets on its scheduler: ``jf<token>-<id>-<name>``, and
    ``jf<token>-<id>.<attempt>-<name>`` for its retries. Only ``[A-Za-z0-9._-]``.

    >>> scheduler_name("3c4080ab", "17", "train model", attempt=2)
    'jf3c4080ab-17.2-train_model'
    """
    safe = _NAME_SAFE.sub("_", name).strip("_.-")[:_MAX_SHOWN] or "job"
    which = job_id if attempt == 1 else f"{job_id}.{attempt}"
    return f"{name_prefix(token)}{which}-{safe}"


@dataclass(frozen=True, slots=True)
class ParsedName:
    """The job and attempt a scheduler name of this registry stands for."""

    job_id: str
    attempt: int


def parse_scheduler_name(name: str, token: str) -> ParsedName | None:
    """The job and attempt behind a scheduler name made by :func:`scheduler_name`
    for the registry with ``token``; None for any other name."""
    prefix = name_prefix(token)
    if not name.startswith(prefix):
        return None
    head, sep, _ = name[len(prefix) :].partition("-")
    if not sep:
        return None
    job_id, dot, attempt = head.partition(".")
    if not job_id.isdigit() or (dot and not (attempt.isdigit() and int(attempt) > 1)):
        return None
    return ParsedName(job_id, int(attempt) if dot else 1)


def registry_prefix(name: str) -> str | None:
    """The ``jf<token>`` head of a scheduler name made by :func:`scheduler_name`
    (any registry's), or None: what names a registry's jobs as a pattern."""
    head, sep, _ = name.partition("-")
    return head if sep and head.startswith("jf") else None


def name_on_scheduler(record: JobRecord, token: str) -> str:
    """The name the scheduler knows ``record`` by, on its current attempt: jobfleet's
    (:func:`scheduler_name`), or for an adopted job the name it came with."""
    if record.spec.get("command") == [ADOPTED_COMMAND]:
        return record.name
    return scheduler_name(token, record.id, record.name, record.attempt)
