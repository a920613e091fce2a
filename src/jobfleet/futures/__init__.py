"""Python functions as jobs: :class:`Executor`, :class:`JobFuture` and their errors."""

from jobfleet.futures.errors import JobFailedError, RemoteError
from jobfleet.futures.executor import Executor
from jobfleet.futures.future import JobFuture

__all__ = ["Executor", "JobFailedError", "JobFuture", "RemoteError"]
