"""Where a Python call's files are, without loading the executor or cloudpickle: each
call's job runs ``python -m jobfleet.futures.run DIR`` with ``DIR`` under the home's
``futures/`` (``jobfleet clean`` removes it with the job's directory)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from pathlib import Path

__all__ = ["FUTURES_DIR", "RUN_MODULE", "call_directory", "is_call_shard", "new_call_directory"]

#: The module a call's job runs (``python -m jobfleet.futures.run DIR``).
RUN_MODULE = "jobfleet.futures.run"
#: The directory of the home holding the calls' payload directories.
FUTURES_DIR = "futures"
_SHARD = re.compile(r"[0-9a-f]{2}")


def new_call_directory(home: Path) -> Path:
    """A new payload directory's path (not made): ``<home>/futures/<ab>/<abcd...>``, in
    one of 256 shards by its random name's first two hex digits, so that 100,000 calls'
    directories are about 400 a shard (older homes' flat ``futures/<name>`` are read and
    cleaned where they are)."""
    name = uuid.uuid4().hex
    return home / FUTURES_DIR / name[:2] / name


def is_call_shard(name: str) -> bool:
    """Whether ``name`` is a shard of ``futures/`` (two hex digits), never a call's.

    >>> is_call_shard("ab"), is_call_shard("ab12"), is_call_shard("1xxx")
    (True, False, False)
    """
    return _SHARD.fullmatch(name) is not None


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
