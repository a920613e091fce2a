"""jobfleet: run work on any HPC scheduler, or on one machine, with one job model."""

from jobfleet.config import Config, load_config
from jobfleet.engine.fleet import Fleet
from jobfleet.engine.monitor import Monitor
from jobfleet.environment import Environment
from jobfleet.errors import JobfleetError
from jobfleet.spec import ArraySpec, Dependency, DepKind, JobSpec, Resources, parse_array
from jobfleet.states import TERMINAL, ElementRecord, JobRecord, JobState, aggregate

__version__ = "0.1.0"

#: Imported when first used: ``import jobfleet`` stays quick for the command line.
_FUTURES = ("Executor", "JobFailedError", "JobFuture", "RemoteError")


def __getattr__(name: str) -> object:
    if name in _FUTURES:
        from jobfleet import futures

        return getattr(futures, name)
    raise AttributeError(f"module 'jobfleet' has no attribute {name!r}")


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
    "RemoteError",
    "Resources",
    "__version__",
    "aggregate",
    "load_config",
    "parse_array",
]
