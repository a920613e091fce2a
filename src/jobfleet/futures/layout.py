"""Where a Python call's files are, without loading the executor or cloudpickle: each
call's job runs ``python -m jobfleet.futures.run DIR`` with ``DIR`` under the home's
``futures/`` (``jobfleet clean`` removes it with the job's directory)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

__all__ = ["FUTURES_DIR", "RUN_MODULE", "call_directory"]

#: The module a call's job runs (``python -m jobfleet.futures.run DIR``).
RUN_MODULE = "jobfleet.futures.run"
#: The directory of the home holding the calls' payload directories.
FUTURES_DIR = "futures"


def call_directory(command: Sequence[str]) -> Path | None:
    """The payload directory of a job's command, if it runs a call of an Executor.

    >>> call_directory(["/usr/bin/python3", "-m", RUN_MODULE, "/h/futures/ab12"])
    PosixPath('/h/futures/ab12')
    >>> call_directory(["echo", "hi"]) is None
    True
    """
    parts = list(command)
    if len(parts) == 4 and parts[1:3] == ["-m", RUN_MODULE]:
        return Path(parts[3])
    return None
