"""The Torque backend: its catalog entry, settings and script dialect.

Light on purpose: the catalog imports this for every configuration; the backend
(:mod:`.backend`) and its parsers (:mod:`.parse`, and PBS's text form) load when a
Torque backend is created or a saved output is read.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from jobfleet.backends.base import Backend, BackendType, lazy_names
from jobfleet.backends.torque.directives import (
    TORQUE,
    TorqueSettings,
    torque_dialect,
    torque_directives,
)
from jobfleet.backends.torque.probe import detect_torque, torque_formats
from jobfleet.runner import Runner

if TYPE_CHECKING:
    from jobfleet.backends.torque.backend import TorqueBackend

__all__ = [
    "BACKEND",
    "TORQUE",
    "TorqueBackend",
    "TorqueSettings",
    "torque_dialect",
    "torque_directives",
]


def _create(settings: TorqueSettings, *, runner: Runner | None, home: Path) -> Backend:
    from jobfleet.backends.torque.backend import TorqueBackend

    return TorqueBackend(runner, settings)


#: The catalog's entry (entry point ``torque`` of the group ``jobfleet.backends``).
BACKEND = BackendType(
    "torque",
    TorqueSettings,
    _create,
    "a Torque cluster (qsub, qstat -x, qdel, qsig)",
    detect=detect_torque,
    formats=torque_formats,
)

#: What else is importable from here, from the module that defines it (loaded on use).
__getattr__ = lazy_names(
    __name__,
    {"TorqueBackend": "backend", "STATE_MAP": "parse", "map_exit": "parse", "map_record": "parse"},
)
