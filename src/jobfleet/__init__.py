"""jobfleet: run work on any HPC scheduler, or on one machine, with one job model."""

from jobfleet.errors import JobfleetError
from jobfleet.spec import ArraySpec, Dependency, DepKind, JobSpec, Resources, parse_array
from jobfleet.states import TERMINAL, ElementRecord, JobRecord, JobState, aggregate

__version__ = "0.1.0"

__all__ = [
    "TERMINAL",
    "ArraySpec",
    "DepKind",
    "Dependency",
    "ElementRecord",
    "JobRecord",
    "JobSpec",
    "JobState",
    "JobfleetError",
    "Resources",
    "__version__",
    "aggregate",
    "parse_array",
]
