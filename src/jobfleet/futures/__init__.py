"""Python functions as jobs: :class:`Executor`, :class:`JobFuture` and their errors.

Imported when first used: a job's ``python -m jobfleet.futures.run`` loads only
the payload and run modules, not the executor and the engine behind it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

_WHERE = {
    "Call": "jobfleet.futures.payload",
    "Executor": "jobfleet.futures.executor",
    "JobFuture": "jobfleet.futures.future",
    "JobFailedError": "jobfleet.futures.errors",
    "RemoteError": "jobfleet.futures.errors",
}

if TYPE_CHECKING:
    from jobfleet.futures.errors import JobFailedError, RemoteError
    from jobfleet.futures.executor import Executor
    from jobfleet.futures.future import JobFuture
    from jobfleet.futures.payload import Call


def __getattr__(name: str) -> object:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'jobfleet.futures' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


__all__ = ["Call", "Executor", "JobFailedError", "JobFuture", "RemoteError"]
