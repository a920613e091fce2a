"""Scheduler job names, and their inverse.

Every job jobfleet submits is named ``jf<token>-<id>-<name>`` on its
scheduler (``jf<token>-<id>.<attempt>-<name>`` for a retry): unique to one
registry (its random token) and one attempt of one job, so a job can be
found again by name after a crash between submitting and recording its
native id, and jobs of one registry share the head ``jf<token>-`` (Grid
Engine's accounting is asked by that pattern). A job whose resources carry a
``name_prefix`` (a site's project code, or what its owner wants to see first
in ``squeue``) has it in front: ``lab42-jf<token>-<id>-<name>``.

>>> scheduler_name("3c4080ab", "17", "train model")
'jf3c4080ab-17-train_model'
>>> parse_scheduler_name("jf3c4080ab-17.2-train_model", "3c4080ab")
ParsedName(job_id='17', attempt=2)
>>> parse_scheduler_name("lab42-jf3c4080ab-17-train_model", "3c4080ab")
ParsedName(job_id='17', attempt=1)
>>> parse_scheduler_name("someone-else", "3c4080ab") is None
True
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from jobfleet.states import JobRecord

__all__ = [
    "ADOPTED_COMMAND",
    "NAME_PREFIX_RE",
    "ParsedName",
    "name_on_scheduler",
    "name_prefix",
    "parse_scheduler_name",
    "registry_prefix",
    "scheduler_head",
    "scheduler_name",
    "spec_name_prefix",
]

#: The command recorded for a job adopted from its scheduler (its real one is unknown).
ADOPTED_COMMAND = "(adopted from the scheduler: command unknown)"

_NAME_SAFE = re.compile(r"[^A-Za-z0-9._-]+")
#: The part of a scheduler name a user's job name may fill.
_MAX_SHOWN = 40
#: A ``name_prefix``: a letter first (Grid Engine and PBS refuse names that start
#: with a digit), then at most 19 of the characters every scheduler takes in a name.
NAME_PREFIX_RE = re.compile(r"[A-Za-z][A-Za-z0-9._-]{0,19}")
#: Any registry's head in a scheduler name: ``[prefix]jf<token>``, then ``-<id>[.<n>]-``.
_HEAD_RE = re.compile(r"((?:[A-Za-z][A-Za-z0-9._-]{0,19}?)?jf[0-9a-f]{8})-[0-9]+(?:\.[0-9]+)?-")


def name_prefix(token: str) -> str:
    """What every scheduler name of the registry with this token starts with."""
    return f"jf{token}-"


def scheduler_name(
    token: str, job_id: str, name: str, attempt: int = 1, prefix: str | None = None
) -> str:
    """The name a job gets on its scheduler: ``jf<token>-<id>-<name>``, and
    ``jf<token>-<id>.<attempt>-<name>`` for its retries, after the job's
    ``name_prefix`` if it has one. Only ``[A-Za-z0-9._-]``.

    >>> scheduler_name("3c4080ab", "17", "train model", attempt=2)
    'jf3c4080ab-17.2-train_model'
    >>> scheduler_name("3c4080ab", "17", "train", prefix="lab42-")
    'lab42-jf3c4080ab-17-train'
    """
    safe = _NAME_SAFE.sub("_", name).strip("_.-")[:_MAX_SHOWN] or "job"
    which = job_id if attempt == 1 else f"{job_id}.{attempt}"
    return f"{prefix or ''}{name_prefix(token)}{which}-{safe}"


@dataclass(frozen=True, slots=True)
class ParsedName:
    """The job and attempt a scheduler name of this registry stands for."""

    job_id: str
    attempt: int


def parse_scheduler_name(name: str, token: str) -> ParsedName | None:
    """The job and attempt behind a scheduler name made by :func:`scheduler_name`
    for the registry with ``token`` (with any ``name_prefix``); None for any other name."""
    prefix = name_prefix(token)
    at = name.find(prefix)
    if at < 0 or (at and not NAME_PREFIX_RE.fullmatch(name[:at])):
        return None
    head, sep, _ = name[at + len(prefix) :].partition("-")
    if not sep:
        return None
    job_id, dot, attempt = head.partition(".")
    if not job_id.isdigit() or (dot and not (attempt.isdigit() and int(attempt) > 1)):
        return None
    return ParsedName(job_id, int(attempt) if dot else 1)


def registry_prefix(name: str) -> str | None:
    """The ``[prefix]jf<token>`` head of a scheduler name made by :func:`scheduler_name`
    (any registry's), or None: what names a registry's jobs (of one prefix) as a pattern.

    >>> registry_prefix("lab42-jf3c4080ab-17.2-train")
    'lab42-jf3c4080ab'
    """
    head, sep, _ = name.partition("-")
    if sep and head.startswith("jf"):
        return head  # no name_prefix: whatever the token looks like
    match = _HEAD_RE.match(name)
    return match[1] if match else None


def scheduler_head(name: str) -> str | None:
    """The part of a scheduler name made by :func:`scheduler_name` that tells jobs
    apart, ``[prefix]jf<token>-<id>[.<attempt>]`` (a prefix may hold ``-``), or None
    for another name: what a name cut to a scheduler's limit must keep whole.

    >>> scheduler_head("lab-42-jf3c4080ab-17.2-train")
    'lab-42-jf3c4080ab-17.2'
    """
    match = _HEAD_RE.match(name)
    return match[0][:-1] if match else None


def spec_name_prefix(spec: Mapping[str, Any]) -> str | None:
    """The ``name_prefix`` a stored spec (:meth:`JobSpec.to_dict`) asked for, if any."""
    resources = spec.get("resources")
    prefix = resources.get("name_prefix") if isinstance(resources, Mapping) else None
    return prefix if isinstance(prefix, str) else None


def name_on_scheduler(record: JobRecord, token: str) -> str:
    """The name the scheduler knows ``record`` by, on its current attempt: jobfleet's
    (:func:`scheduler_name`), or for an adopted job the name it came with."""
    if record.spec.get("command") == [ADOPTED_COMMAND]:
        return record.name
    prefix = spec_name_prefix(record.spec)
    return scheduler_name(token, record.id, record.name, record.attempt, prefix)
