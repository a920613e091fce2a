"""The local backend: jobs on this machine, no scheduler needed.

This module is the catalog's entry and the settings (section ``local:``); the
client (:mod:`.client`), the per-user agent (:mod:`.agent`), its queue
(:mod:`.queue`) and planner (:mod:`.plan`) load when a local backend is created.
The client's names are importable from here too (loaded on use).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jobfleet.backends.base import Backend, BackendType, lazy_names
from jobfleet.runner import Runner
from jobfleet.settings import as_bool, auto_or, duration, memory, option, same, whole
from jobfleet.units import parse_memory, parse_walltime

if TYPE_CHECKING:
    from jobfleet.backends.local.client import (
        LocalBackend,
        LocalCapacity,
        detect_capacity,
        queue_directory,
        queue_entries,
    )

__all__ = [
    "BACKEND",
    "LocalBackend",
    "LocalCapacity",
    "LocalSettings",
    "detect_capacity",
    "queue_directory",
    "queue_entries",
]


def _auto(convert: Any) -> Any:
    def read(value: Any, key: str) -> Any:
        return None if value == "auto" else convert(value, key)

    return read


def _count(value: Any, key: str) -> int:
    return int(value)


@dataclass(frozen=True, slots=True)
class LocalSettings:
    """Settings of the local backend (section ``local:``); None means detect automatically."""

    cores: int | None = option(
        "cores",
        "auto",
        "cores the local backend may use",
        parse=auto_or(whole(1)),
        convert=_auto(_count),
    )
    memory_bytes: int | None = option(
        "memory",
        "auto",
        "memory the local backend may use",
        parse=auto_or(memory),
        convert=_auto(parse_memory),
    )
    gpus: int | None = option(
        "gpus",
        "auto",
        "GPUs the local backend may use",
        parse=auto_or(whole(0)),
        convert=_auto(_count),
    )
    pin_cpus: bool | None = option(
        "pin_cpus",
        "auto",
        "pin each job to CPUs of its own (JOBFLEET_CPUS); auto: when there is one per core",
        parse=auto_or(as_bool),
        convert=_auto(same),
    )
    cancel_grace_s: int = option(
        "cancel_grace",
        "10s",
        "how long a cancelled job may take to exit",
        parse=duration,
        convert=parse_walltime,
    )
    idle_exit_s: int = option(
        "idle_exit",
        "60s",
        "the local agent exits after this idle time",
        parse=duration,
        convert=parse_walltime,
    )


def _create(settings: LocalSettings, *, runner: Runner | None, home: Path) -> Backend:
    from jobfleet.backends.local.client import LocalBackend, detect_capacity, queue_directory

    return LocalBackend(
        queue_directory(home),
        detect_capacity(settings.cores, settings.memory_bytes, settings.gpus, settings.pin_cpus),
        cancel_grace_s=settings.cancel_grace_s,
        idle_exit_s=settings.idle_exit_s,
    )


#: The catalog's entry (entry point ``local`` of the group ``jobfleet.backends``).
BACKEND = BackendType(
    "local",
    LocalSettings,
    _create,
    "this machine, through a per-user agent",
    usage_settles_s=0.0,  # the agent knows what each job used when it ends
)

#: The client's names are importable from here too (loaded on use).
__getattr__ = lazy_names(
    __name__,
    dict.fromkeys(
        ("LocalBackend", "LocalCapacity", "detect_capacity", "queue_directory", "queue_entries"),
        "client",
    ),
)
