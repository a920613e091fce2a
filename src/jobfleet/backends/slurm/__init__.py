"""The SLURM backend: its catalog entry, settings and script dialect.

Light on purpose: the catalog imports this for every configuration; the backend
itself (:mod:`.backend`) and its parsers (:mod:`.parse`, :mod:`.queue`,
:mod:`.accounting`) load when a SLURM backend is created. ``SlurmBackend``, the queue
view's argv and parser and the state maps are importable from here too (loaded on use).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from jobfleet.backends.base import Backend, BackendType, lazy_names
from jobfleet.backends.slurm.directives import SLURM, SlurmSettings, slurm_directives
from jobfleet.runner import Runner

if TYPE_CHECKING:
    from jobfleet.backends.slurm.backend import SlurmBackend

__all__ = ["BACKEND", "SLURM", "SlurmBackend", "SlurmSettings", "slurm_directives"]


def _create(settings: SlurmSettings, *, runner: Runner | None, home: Path) -> Backend:
    from jobfleet.backends.slurm.backend import SlurmBackend

    return SlurmBackend(runner, settings)


def _detect(runner: Runner | None) -> Any:
    from jobfleet.backends.slurm.detect import detect

    return detect(runner)


def _formats() -> Any:
    from jobfleet.backends.slurm.formats import FORMATS

    return FORMATS


#: The catalog's entry (entry point ``slurm`` of the group ``jobfleet.backends``).
BACKEND = BackendType(
    "slurm",
    SlurmSettings,
    _create,
    "a SLURM cluster (sbatch, squeue, sacct)",
    detect=_detect,
    formats=_formats,
    usage_settles_s=120.0,  # backend.py's Capabilities (a test compares them)
)


#: What else is importable from here, from the module that defines it (loaded on use).
__getattr__ = lazy_names(
    __name__,
    {
        "SlurmBackend": "backend",
        "queue_list_argv": "backend",
        "STATE_MAP": "parse",
        "exit_code": "parse",
        "map_state": "parse",
        "parse_job_id": "parse",
        "parse_queue_list": "queue",
    },
)
