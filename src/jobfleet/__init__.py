"""jobfleet: run work on any HPC scheduler, or on one machine, with one job model.

The names below are imported when first used, so that ``import jobfleet`` (and a
job running ``python -m jobfleet.futures.run``) pays only for what it touches.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

#: Each public name and the module it lives in.
_WHERE = {
    "Config": "jobfleet.config",
    "load_config": "jobfleet.config",
    "Fleet": "jobfleet.engine.fleet",
    "Monitor": "jobfleet.engine.monitor",
    "Environment": "jobfleet.environment",
    "JobfleetError": "jobfleet.errors",
    "ArraySpec": "jobfleet.spec",
    "Dependency": "jobfleet.spec",
    "DepKind": "jobfleet.spec",
    "JobSpec": "jobfleet.spec",
    "Resources": "jobfleet.spec",
    "parse_array": "jobfleet.spec",
    "TERMINAL": "jobfleet.states",
    "ElementRecord": "jobfleet.states",
    "JobRecord": "jobfleet.states",
    "JobState": "jobfleet.states",
    "aggregate": "jobfleet.states",
    "Executor": "jobfleet.futures.executor",
    "JobFuture": "jobfleet.futures.future",
    "JobFailedError": "jobfleet.futures.errors",
    "RemoteError": "jobfleet.futures.errors",
    "Pipe": "jobfleet.pipe.api",
}

if TYPE_CHECKING:
    from jobfleet.config import Config, load_config
    from jobfleet.engine.fleet import Fleet
    from jobfleet.engine.monitor import Monitor
    from jobfleet.environment import Environment
    from jobfleet.errors import JobfleetError
    from jobfleet.futures.errors import JobFailedError, RemoteError
    from jobfleet.futures.executor import Executor
    from jobfleet.futures.future import JobFuture
    from jobfleet.pipe.api import Pipe
    from jobfleet.spec import ArraySpec, Dependency, DepKind, JobSpec, Resources, parse_array
    from jobfleet.states import TERMINAL, ElementRecord, JobRecord, JobState, aggregate


def __getattr__(name: str) -> object:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'jobfleet' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # once
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_WHERE])


__all__ = [
    "TERMINAL",
    "ArraySpec",
    "Config",
    "DepKind",
    "Dependency",
    "ElementRecord",
    "Environment",
    "Executor",
    "Fleet",
    "JobFailedError",
    "JobFuture",
    "JobRecord",
    "JobSpec",
    "JobState",
    "JobfleetError",
    "Monitor",
    "Pipe",
    "RemoteError",
    "Resources",
    "__version__",
    "aggregate",
    "load_config",
    "parse_array",
]
