"""The Grid Engine backend: its catalog entry, settings and script dialect.

Light on purpose: the catalog imports this for every configuration; the backend
itself (:mod:`.backend`) and its parsers (:mod:`.parse`) load when a Grid Engine
backend is created. ``SgeBackend``, the queue view's argv and parser and the state maps are
importable from here too (loaded on use).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from jobfleet.backends.base import Backend, BackendType, lazy_names
from jobfleet.backends.sge.directives import SGE, SgeSettings, sge_dialect, sge_directives
from jobfleet.runner import Runner

if TYPE_CHECKING:
    from jobfleet.backends.sge.backend import SgeBackend

__all__ = ["BACKEND", "SGE", "SgeBackend", "SgeSettings", "sge_dialect", "sge_directives"]


def _create(settings: SgeSettings, *, runner: Runner | None, home: Path) -> Backend:
    from jobfleet.backends.sge.backend import SgeBackend

    return SgeBackend(runner, settings)


def _detect(runner: Runner | None) -> Any:
    from jobfleet.backends.sge.detect import detect

    return detect(runner)


def _formats() -> Any:
    from jobfleet.backends.sge.formats import FORMATS

    return FORMATS


#: The catalog's entry (entry point ``sge`` of the group ``jobfleet.backends``).
BACKEND = BackendType(
    "sge",
    SgeSettings,
    _create,
    "a Grid Engine cluster (qsub, qstat, qacct)",
    detect=_detect,
    formats=_formats,
    usage_settles_s=60.0,  # backend.py's Capabilities (a test compares them)
)


#: What else is importable from here, from the module that defines it (loaded on use).
__getattr__ = lazy_names(
    __name__,
    {
        "SgeBackend": "backend",
        "queue_list_argv": "backend",
        "STATE_LETTERS": "parse",
        "map_failed": "parse",
        "map_state": "parse",
        "parse_queue_list": "parse",
    },
)
