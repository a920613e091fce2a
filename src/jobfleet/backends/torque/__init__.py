"""The Torque backend: its catalog entry, settings and script dialect.

Light on purpose: the catalog imports this for every configuration; the backend
(:mod:`.backend`) and its parsers (:mod:`.parse`, and PBS's text form) load when a
Torque backend is created or a saved output is read.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from jobfleet.backends.pbs.catalog import lazy_exports, qstat_backend
from jobfleet.backends.torque.directives import (
    TORQUE,
    TorqueSettings,
    torque_dialect,
    torque_directives,
)
from jobfleet.backends.torque.probe import detect_torque, torque_formats

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

#: The catalog's entry (entry point ``torque`` of the group ``jobfleet.backends``).
BACKEND = qstat_backend(
    "torque",
    TorqueSettings,
    "jobfleet.backends.torque.backend:TorqueBackend",
    "a Torque cluster (qsub, qstat -x, qdel, qsig)",
    detect_torque,
    torque_formats,
)

#: What else is importable from here, from the module that defines it (loaded on use).
__getattr__ = lazy_exports(__name__, "TorqueBackend", "parse")
