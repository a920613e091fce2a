"""The PBS Pro / OpenPBS backend: its catalog entry, settings and script dialect.

Light on purpose: the catalog imports this for every configuration; the backend
(:mod:`.backend`) and its parsers (:mod:`.parse`) load when a PBS backend is created
or a saved output is read.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from jobfleet.backends.base import Backend, BackendType, lazy_names
from jobfleet.backends.pbs.directives import PBS, PbsSettings, pbs_dialect, pbs_directives
from jobfleet.backends.pbs.probe import detect_pbs, pbs_formats
from jobfleet.runner import Runner

if TYPE_CHECKING:
    from jobfleet.backends.pbs.backend import PbsBackend

__all__ = ["BACKEND", "PBS", "PbsBackend", "PbsSettings", "pbs_dialect", "pbs_directives"]


def _create(settings: PbsSettings, *, runner: Runner | None, home: Path) -> Backend:
    from jobfleet.backends.pbs.backend import PbsBackend

    return PbsBackend(runner, settings)


#: The catalog's entry (entry point ``pbs`` of the group ``jobfleet.backends``).
BACKEND = BackendType(
    "pbs",
    PbsSettings,
    _create,
    "a PBS Pro / OpenPBS cluster (qsub, qstat -x, qdel, qsig)",
    detect=detect_pbs,
    formats=pbs_formats,
)

#: What else is importable from here, from the module that defines it (loaded on use).
__getattr__ = lazy_names(
    __name__,
    {"PbsBackend": "backend", "STATE_MAP": "parse", "map_exit": "parse", "map_record": "parse"},
)
