"""The catalog entry of a qstat-family backend: PBS Pro and Torque have the same shape
(settings, a backend class loaded on use, detection, saved-output formats, and names
importable from the package that load on first use). Light: imports no parser.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from jobfleet.backends.base import Backend, BackendType, lazy_names
from jobfleet.runner import Runner

__all__ = ["lazy_exports", "qstat_backend"]


def qstat_backend(
    name: str,
    settings: type[Any],
    backend: str,
    summary: str,
    detect: Callable[[Runner | None], Any],
    formats: Callable[[], Sequence[Any]],
) -> BackendType:
    """The catalog's entry for a backend whose class is ``backend``
    (``package.module:Class``, imported when one is created, built as
    ``Class(runner, settings)``)."""
    module, _, class_name = backend.partition(":")

    def create(configured: Any, *, runner: Runner | None, home: Path) -> Backend:
        made: Backend = getattr(importlib.import_module(module), class_name)(runner, configured)
        return made

    return BackendType(
        name, settings, create, summary, detect=detect, formats=formats, usage_settles_s=0.0
    )


def lazy_exports(package: str, backend_class: str, states: str) -> Callable[[str], Any]:
    """The package's ``__getattr__``: its backend class (from ``.backend``) and its state
    map and mapping functions (from ``states``, a submodule), loaded on first use."""
    names = {"STATE_MAP": states, "map_exit": states, "map_record": states}
    return lazy_names(package, {backend_class: "backend", **names})
