"""Studies: many runs of one command over parameter points.

Imported when first used. :mod:`jobfleet.studies.sweeps` makes the points
(``product``, ``zip``, ``random``, ``shard``, ``from_csv``);
:mod:`jobfleet.studies.points` turns one point into its command, its identity and its
directory (``render_argv``, ``render_shell``, ``point_key``, ``point_dirname``);
:mod:`jobfleet.studies.batch` runs jobs of one's own, each in a directory of its own
(``BatchController``, ``Job``, ``JobPaths``, ``JobResult``);
:mod:`jobfleet.studies.studyfile` reads a study file (``load_study``) and
:mod:`jobfleet.studies.plan` says what it would run (``describe``);
:mod:`jobfleet.studies.execute` runs it and tells how it stands (``run_study``,
``study_status``).

``zip`` and ``random`` are reachable here (``studies.zip(...)``) but left out of
``__all__``: ``from jobfleet.studies import *`` must not hide the built-in ``zip``
and the ``random`` module.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

_WHERE = {
    "run_study": "jobfleet.studies.execute",
    "study_status": "jobfleet.studies.execute",
    "BatchController": "jobfleet.studies.batch",
    "Job": "jobfleet.studies.batch",
    "JobPaths": "jobfleet.studies.batchdirs",
    "JobResult": "jobfleet.studies.batch",
    "Study": "jobfleet.studies.model",
    "describe": "jobfleet.studies.plan",
    "from_csv": "jobfleet.studies.sweeps",
    "load_study": "jobfleet.studies.studyfile",
    "loguniform": "jobfleet.studies.sweeps",
    "point_dirname": "jobfleet.studies.points",
    "point_key": "jobfleet.studies.points",
    "product": "jobfleet.studies.sweeps",
    "randint": "jobfleet.studies.sweeps",
    "random": "jobfleet.studies.sweeps",
    "render_argv": "jobfleet.studies.points",
    "render_shell": "jobfleet.studies.points",
    "shard": "jobfleet.studies.sweeps",
    "uniform": "jobfleet.studies.sweeps",
    "zip": "jobfleet.studies.sweeps",
}

if TYPE_CHECKING:
    from jobfleet.studies.batch import BatchController, Job, JobResult
    from jobfleet.studies.batchdirs import JobPaths
    from jobfleet.studies.execute import run_study, study_status
    from jobfleet.studies.model import Study
    from jobfleet.studies.plan import describe
    from jobfleet.studies.points import point_dirname, point_key, render_argv, render_shell
    from jobfleet.studies.studyfile import load_study
    from jobfleet.studies.sweeps import from_csv, loguniform, product, randint, shard, uniform
    from jobfleet.studies.sweeps import random as random
    from jobfleet.studies.sweeps import zip as zip


def __getattr__(name: str) -> object:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'jobfleet.studies' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


__all__ = [
    "BatchController",
    "Job",
    "JobPaths",
    "JobResult",
    "Study",
    "describe",
    "from_csv",
    "load_study",
    "loguniform",
    "point_dirname",
    "point_key",
    "product",
    "randint",
    "render_argv",
    "render_shell",
    "run_study",
    "shard",
    "study_status",
    "uniform",
]
