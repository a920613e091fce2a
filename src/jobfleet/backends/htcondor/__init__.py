"""The HTCondor backend: its catalog entry, settings and script dialect.

Light on purpose: the catalog imports this for every configuration; the backend
itself (:mod:`.backend`), its parsers (:mod:`.parse`, :mod:`.eventlog`) and its
detection (:mod:`.probe`) load when they are used.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jobfleet.backends.base import Backend, BackendType, lazy_names
from jobfleet.backends.htcondor.submitfile import (
    HTCONDOR,
    HTCondorSettings,
    htcondor_dialect,
    htcondor_directives,
)
from jobfleet.runner import Runner

if TYPE_CHECKING:
    from jobfleet.backends.htcondor.backend import HTCondorBackend

__all__ = [
    "BACKEND",
    "HTCONDOR",
    "HTCondorBackend",
    "HTCondorSettings",
    "htcondor_dialect",
    "htcondor_directives",
]


def _create(settings: HTCondorSettings, *, runner: Runner | None, home: Path) -> Backend:
    from jobfleet.backends.htcondor.backend import HTCondorBackend

    return HTCondorBackend(runner, settings)


def _detect(runner: Runner | None) -> Any:
    from jobfleet.backends.htcondor.probe import detect

    return detect(runner)


def _formats() -> Sequence[Any]:
    from jobfleet.backends.htcondor.probe import output_formats

    return output_formats()


#: The catalog's entry (entry point ``htcondor`` of the group ``jobfleet.backends``).
BACKEND = BackendType(
    "htcondor",
    HTCondorSettings,
    _create,
    "an HTCondor pool (condor_submit, condor_q, condor_history)",
    detect=_detect,
    formats=_formats,
    usage_settles_s=0.0,  # backend.py's Capabilities (a test compares them)
)


#: What else is importable from here, from the module that defines it (loaded on use).
__getattr__ = lazy_names(
    __name__,
    {
        "HTCondorBackend": "backend",
        "queue_list_argv": "backend",
        "STATUS": "parse",
        "map_ad": "parse",
        "parse_queue_list": "parse",
    },
)
