"""Every error jobfleet raises on purpose derives from :class:`JobfleetError`.

The tree::

    JobfleetError
    ├── SpecError            bad input in a job description (field, value, how to fix)
    │   └── UnitError        a memory size or duration that cannot be read
    ├── ConfigError          bad configuration file or value (file, key, choices)
    ├── RegistryError        the persistent registry cannot be read or written (disk
    │   │                    full, locked, not writable)
    │   ├── UnknownJobError  no job with that id in the registry
    │   └── RegistryUnusableError  the registry cannot be used as it is (damaged, not a
    │       │                registry, its home not a directory); nothing was changed
    │       └── NewerRegistryError  written by a newer jobfleet
    ├── FilesRemovedError    a job's files were removed by ``jobfleet clean``
    ├── BackendError         a scheduler backend cannot do what was asked
    │   ├── SubmitError      a submission failed (argv, exit code, stdout, stderr)
    │   └── CommandError     a scheduler command failed or timed out
    └── WaitTimeout          a wait ran out of time before every job ended

Messages are written for the person at the terminal: they name the field or
file and say what would be accepted instead. The CLI prints ``str(error)`` on
one line and exits with status 2 (bad input) or 1 (operation failed).
"""

from __future__ import annotations

import time
from collections.abc import Sequence

__all__ = [
    "BackendError",
    "CommandError",
    "ConfigError",
    "FilesRemovedError",
    "JobfleetError",
    "NewerRegistryError",
    "RegistryError",
    "RegistryUnusableError",
    "SpecError",
    "SubmitError",
    "UnitError",
    "UnknownJobError",
    "WaitTimeout",
    "shorten",
    "shown",
]


class JobfleetError(Exception):
    """Root of every error jobfleet raises on purpose."""

    #: CLI exit status for this kind of error: 2 for bad input, 1 for a failed operation.
    exit_status: int = 1


def shown(value: object, limit: int = 60) -> str:
    """``repr(value)`` for an error message, shortened: a message quotes what was
    wrong without repeating a 100,000-character value (or a huge number) whole.

    >>> shown("x" * 1000, limit=12)
    "'xxxxxxxxx... (1000 characters)"
    >>> shown(10**50), shown(10**5000)
    ('a 51-digit number', 'a number of more than 4,000 digits')
    """
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 10**30:
        # repr() refuses ints of more than 4,300 digits; showing them must not.
        if abs(value) >= 10**4000:
            return "a number of more than 4,000 digits"
        return f"a {len(str(abs(value)))}-digit number"
    if isinstance(value, (list, tuple, dict, set)) and len(value) > 10:
        return f"a {type(value).__name__} of {len(value)} entries"
    try:
        text = repr(value)
    except ValueError:  # a huge int inside a small collection
        return f"a {type(value).__name__} holding a huge number"
    if len(text) <= limit:
        return text
    size = f" ({len(value)} characters)" if isinstance(value, str) else ""
    return text[: max(limit - 3, 10)] + "..." + size


def shorten(text: str, limit: int = 60) -> str:
    """``text`` if at most ``limit`` characters, else its start, its end and its
    length in at most ``limit`` characters (``limit`` at least 40): a path keeps its
    file name, a message the fix it ends with.

    >>> shorten("/very/long/" + "d/" * 100 + "config.yaml", 48)
    '/very/long/d/d.../d/config.yaml (222 characters)'
    """
    if len(text) <= limit:
        return text
    suffix = f" ({len(text)} characters)"
    room = max(limit, 40) - len(suffix) - 3
    tail = room // 2
    return f"{text[: room - tail]}...{text[len(text) - tail :]}{suffix}"


class SpecError(JobfleetError, ValueError):
    """A job description field has a value that cannot be used.

    Args:
        field: dotted name of the field, e.g. ``resources.memory``.
        message: what is wrong and how to fix it.
    """

    exit_status = 2

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")


class UnitError(SpecError):
    """A memory size or a duration could not be parsed."""


class ConfigError(JobfleetError, ValueError):
    """A configuration file or value is invalid.

    Args:
        message: what is wrong and how to fix it.
        source: the file (or ``--option`` / ``$VAR``) the value came from.
        key: dotted key inside the configuration.
    """

    exit_status = 2

    def __init__(self, message: str, *, source: str | None = None, key: str | None = None) -> None:
        self.source = source
        self.key = key
        self.message = message
        where = ": ".join(p for p in (source, key) if p)
        super().__init__(f"{where}: {message}" if where else message)


class RegistryError(JobfleetError):
    """The persistent job registry cannot be opened, read or written."""


class UnknownJobError(RegistryError, KeyError):
    """No job with this id is in the registry."""

    exit_status = 2

    def __init__(self, job_id: str) -> None:
        self.job_id = job_id
        super().__init__(job_id)

    def __str__(self) -> str:
        return f"no job with id {shown(self.job_id)} in the registry (see `jobfleet status`)"


class RegistryUnusableError(RegistryError):
    """The registry cannot be used as it is: its file is damaged or is not a jobfleet
    registry, or its home is not a directory. jobfleet changed nothing; the message
    says what to do (trying again will not help)."""

    exit_status = 2


class NewerRegistryError(RegistryUnusableError):
    """The registry was written by a newer jobfleet (a schema this one does not know).

    Args:
        db_path: the registry's database file.
        version: its schema version.
        known: the newest schema version this jobfleet knows.
    """

    def __init__(self, db_path: str, version: int, known: int) -> None:
        self.db_path = db_path
        self.version = version
        self.known = known
        super().__init__(
            f"registry {db_path} was written by a newer jobfleet (schema {version}; this one "
            f"knows up to {known}): upgrade jobfleet, or set JOBFLEET_HOME to another directory"
        )


class FilesRemovedError(JobfleetError):
    """A job's files (logs, a Python call's result) were removed by ``jobfleet clean``;
    its record is kept.

    Args:
        job_id: the job.
        cleaned_at: when they were removed (Unix time).
        detail: what was asked for, e.g. ``its stdout was /h/jobs/0xxx/7/stdout``.
    """

    def __init__(self, job_id: str, cleaned_at: float, detail: str = "") -> None:
        self.job_id = job_id
        self.cleaned_at = cleaned_at
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(cleaned_at))
        more = f" ({detail})" if detail else ""
        super().__init__(f"job {job_id}: its files were removed by jobfleet clean on {when}{more}")


class BackendError(JobfleetError):
    """A backend cannot do what was asked (unknown backend, unsupported feature, ...)."""


class CommandError(BackendError):
    """A scheduler command failed, could not be started or timed out.

    ``transient`` is true when trying again later may succeed (time-outs,
    "socket timed out", submission limits): callers retry those and must not
    conclude anything about job states from them.
    """

    def __init__(
        self,
        argv: Sequence[str],
        message: str,
        *,
        returncode: int | None = None,
        stdout: str = "",
        stderr: str = "",
        transient: bool = False,
    ) -> None:
        self.argv = list(argv)
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        self.transient = transient
        super().__init__(message)


class SubmitError(BackendError):
    """A job could not be submitted.

    Args:
        job_name: name of the job that was being submitted.
        message: why, and what to do about it.
        maybe_submitted: the scheduler may have accepted the job anyway (a
            submission that timed out, or was refused for a passing reason and
            then could not be checked): its outcome is unknown, not a failure.
    """

    def __init__(self, job_name: str, message: str, *, maybe_submitted: bool = False) -> None:
        self.job_name = job_name
        self.detail = message
        self.maybe_submitted = maybe_submitted
        super().__init__(f"job {job_name!r}: {message}")


class WaitTimeout(JobfleetError):
    """A wait ran out of time while some jobs had not reached a terminal state."""

    def __init__(self, pending: Sequence[str], timeout_s: float) -> None:
        self.pending = list(pending)
        self.timeout_s = timeout_s
        shown = ", ".join(self.pending[:10]) + (" ..." if len(self.pending) > 10 else "")
        super().__init__(f"timed out after {timeout_s:g}s; not finished: {shown}")
