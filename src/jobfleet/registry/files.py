"""The registry's home directory: where it is, and the private directories in it.

The home holds the submitters' environments and their jobs' outputs, so what
jobfleet creates there is private to its owner (directories 0700, the
database 0600).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping
from contextlib import suppress
from pathlib import Path

__all__ = [
    "DB_NAME",
    "create_private_file",
    "db_file_problem",
    "default_home",
    "home_problem",
    "make_private_home",
    "new_job_dir",
]

log = logging.getLogger(__name__)

#: The database file in the home.
DB_NAME = "registry.db"
_PRIVATE_DIR = 0o700
_PRIVATE_FILE = 0o600


def default_home(env: Mapping[str, str] | None = None) -> Path:
    """Where the registry lives: ``$JOBFLEET_HOME``, else ``$XDG_DATA_HOME/jobfleet``,
    else ``~/.local/share/jobfleet``."""
    env = os.environ if env is None else env
    if env.get("JOBFLEET_HOME"):
        return Path(env["JOBFLEET_HOME"]).expanduser()
    xdg = env.get("XDG_DATA_HOME", "")
    if xdg and Path(xdg).is_absolute():  # the XDG spec says to ignore relative paths
        return Path(xdg) / "jobfleet"
    user_home = Path(env["HOME"]) if env.get("HOME") else Path.home()
    return user_home / ".local" / "share" / "jobfleet"


def make_private_home(home: Path) -> None:
    """Create ``home`` (mode 0700; its parents as usual) and ``home/jobs`` (0700).

    An existing home keeps its mode: it may be a directory the user made and
    chose the mode of.
    """
    with suppress(FileExistsError):
        home.mkdir(mode=_PRIVATE_DIR, parents=True)
    (home / "jobs").mkdir(mode=_PRIVATE_DIR, exist_ok=True)


def home_problem(home: Path) -> str | None:
    """Why ``home`` can never be a directory (it, or the nearest existing directory it
    should be in, is a file), or None."""
    for path in (home, *home.parents):
        if os.path.lexists(path):
            if path.is_dir():
                return None
            return f"{path} is a file" if path == home else f"{path}, on its path, is a file"
    return None


_SQLITE_HEADER = b"SQLite format 3\x00"


def db_file_problem(path: Path) -> str | None:
    """Why the existing ``path`` cannot be a registry's database, judged from its size and
    its 100-byte header without SQLite (which might write to it), or None.

    jobfleet never leaves an empty database file (a new one is made whole under
    another name first), so an empty file is damage, unless its write-ahead log
    holds the data (an older jobfleet's new registry, still open).

    Raises:
        OSError: the file cannot be read.
    """
    if path.is_dir():
        return "it is a directory"
    with open(path, "rb") as file:
        header = file.read(100)
        size = os.fstat(file.fileno()).st_size
    if size == 0:
        wal = path.with_name(path.name + "-wal")
        if wal.is_file() and wal.stat().st_size > 0:
            return None
        return "it is empty: 0 bytes"
    if not header.startswith(_SQLITE_HEADER):
        return "it is not an SQLite database"
    if len(header) < 100:
        return f"it is cut short ({size} bytes)"
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    pages = int.from_bytes(header[28:32], "big")
    # The header's page count is valid when its "valid-for" number is the change counter.
    # A checkpoint writes page 1 (the new count) before the file grows: judge it cut
    # short only when no write-ahead log exists before or after looking (no connection
    # is open, so no checkpoint can be under way), and twice in a row.
    if (
        pages
        and header[24:28] == header[92:96]
        and size < pages * page_size
        and not _logged(path)
        and _size_again(path) == size
        and not _logged(path)
    ):
        return f"it is cut short: {size} of its {pages * page_size} bytes"
    return None


def _logged(path: Path) -> bool:
    return path.with_name(path.name + "-wal").exists()


def _size_again(path: Path) -> int:
    time.sleep(0.05)
    return path.stat().st_size


def create_private_file(path: Path) -> None:
    """Create ``path`` empty with mode 0600 unless it exists (an empty file is a new database)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, _PRIVATE_FILE)
    except FileExistsError:
        return
    os.close(fd)


def new_job_dir(home: Path, row_id: int, name: str | None = None) -> Path:
    """Create a directory under ``home/jobs`` no job has used before, named ``name``
    (default: the job's id) if possible.

    An existing ``jobs/<id>`` belongs to another job (the database was moved
    aside and ids started again): its exit-code files must never be read as
    this job's, so the job gets ``<name>-<random>`` instead.
    """
    jobs = home / "jobs"
    job_dir = jobs / (name or str(row_id))
    made_jobs = False
    while True:
        try:
            job_dir.mkdir(mode=_PRIVATE_DIR)
        except FileExistsError:
            log.warning("job %s: %s is taken by an older job; using another name", row_id, job_dir)
            import secrets  # rare (a taken id); secrets costs a reading command start-up

            job_dir = jobs / f"{name or row_id}-{secrets.token_hex(4)}"
        except FileNotFoundError:
            if made_jobs:
                raise
            # jobs/ is made with the registry: made here only when it was removed (one
            # mkdir per job, not two: a submission of 200 jobs makes 200 directories).
            jobs.mkdir(mode=_PRIVATE_DIR, parents=True, exist_ok=True)
            made_jobs = True
        else:
            return job_dir
