"""The LSF backend: its catalog entry, settings and script dialect.

Light on purpose: the catalog imports this for every configuration; the backend
itself (:mod:`.backend`), its parsers (:mod:`.parse`, :mod:`.endings`, :mod:`.usage`)
and formats (:mod:`.formats`) load when they are used.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jobfleet.backends.base import Backend, BackendType, lazy_names
from jobfleet.backends.lsf.directives import LSF, LsfSettings, lsf_dialect, lsf_directives
from jobfleet.runner import Runner

if TYPE_CHECKING:
    from jobfleet.backends.lsf.backend import LsfBackend

__all__ = ["BACKEND", "LSF", "LsfBackend", "LsfSettings", "lsf_dialect", "lsf_directives"]


def _create(settings: LsfSettings, *, runner: Runner | None, home: Path) -> Backend:
    from jobfleet.backends.lsf.backend import LsfBackend

    return LsfBackend(runner, settings)


def _detect(runner: Runner | None) -> Any:
    from jobfleet.backends.lsf.formats import detect

    return detect(runner)


def _formats() -> Sequence[Any]:
    from jobfleet.backends.lsf.formats import formats

    return formats()


#: The catalog's entry (entry point ``lsf`` of the group ``jobfleet.backends``).
BACKEND = BackendType(
    "lsf",
    LsfSettings,
    _create,
    "an IBM Spectrum LSF cluster (bsub, bjobs, bhist, bkill)",
    detect=_detect,
    formats=_formats,
    usage_settles_s=0.0,  # backend.py's Capabilities (a test compares them)
)

#: What else is importable from here, from the module that defines it (loaded on use).
__getattr__ = lazy_names(
    __name__,
    {
        "LsfBackend": "backend",
        "STATE_MAP": "parse",
        "TERM_MAP": "endings",
        "element_of": "parse",
        "map_exit": "endings",
    },
)
