"""The PBS Pro / OpenPBS backend: its catalog entry, settings and script dialect.

Light on purpose: the catalog imports this for every configuration; the backend
(:mod:`.backend`), its parsers (:mod:`.parse`) and the reading of a record
(:mod:`.outcome`) load when a PBS backend is created or a saved output is read.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from jobfleet.backends.pbs.catalog import lazy_exports, qstat_backend
from jobfleet.backends.pbs.directives import PBS, PbsSettings, pbs_dialect, pbs_directives
from jobfleet.backends.pbs.probe import detect_pbs, pbs_formats

if TYPE_CHECKING:
    from jobfleet.backends.pbs.backend import PbsBackend

__all__ = ["BACKEND", "PBS", "PbsBackend", "PbsSettings", "pbs_dialect", "pbs_directives"]

#: The catalog's entry (entry point ``pbs`` of the group ``jobfleet.backends``).
BACKEND = qstat_backend(
    "pbs",
    PbsSettings,
    "jobfleet.backends.pbs.backend:PbsBackend",
    "a PBS Pro / OpenPBS cluster (qsub, qstat -x, qdel, qsig)",
    detect_pbs,
    pbs_formats,
)

#: What else is importable from here, from the module that defines it (loaded on use).
__getattr__ = lazy_exports(__name__, "PbsBackend", "outcome")
