"""The files a Python call travels in: its payload, and its outcome.

A *call* is a function with its arguments. A job runs one or more calls (one per
``submit``; ``chunksize`` of them per element of a ``map`` array). Its calls are
one payload file; what became of them is one outcome file beside it, written by
the job (temp file, then rename: a reader never sees half of one).

Both files start with one line of JSON and go on with pickles, so what matters for
a person or another tool (versions, which calls failed, their exception type,
message and traceback) reads without unpickling anything::

    payload:  {"format": "jobfleet-call/1", "python": "3.11", "cloudpickle": "3.1.1",
               "calls": 2}\\n<cloudpickle of [(fn, args, kwargs), ...]>
    outcome:  {"format": "jobfleet-outcome/1", "calls": [{"ok": true, "size": 21},
               {"ok": false, "type": "builtins.ValueError", "message": "...",
                "traceback": "...", "size": 310}]}\\n<one pickle per call, back to back>

A call's pickle is its return value, or its exception when the exception pickles
(``size`` 0 when it does not: the type name, message and traceback still tell).
cloudpickle is only safe between identical versions, so the job checks its
Python's major.minor and its cloudpickle against the payload's before it
unpickles anything (see :mod:`jobfleet.futures.run`).
"""

from __future__ import annotations

import json
import os
import pickle
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import cloudpickle  # type: ignore[import-untyped]

__all__ = [
    "CALL_FORMAT",
    "OUTCOME_FORMAT",
    "Call",
    "Outcome",
    "PayloadTooLarge",
    "read_calls",
    "read_outcomes",
    "read_payload_header",
    "versions",
    "write_atomically",
    "write_calls",
    "write_outcomes",
]

CALL_FORMAT = "jobfleet-call/1"
OUTCOME_FORMAT = "jobfleet-outcome/1"
#: A header line longer than this is not one of ours (bounded reads of bad files).
_HEADER_LIMIT = 16 * 1024 * 1024


@dataclass(frozen=True)
class Call:
    """A function and its arguments."""

    fn: Callable[..., Any]
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] | None = None

    @classmethod
    def of(cls, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Call:
        """``Call.of(fn, 1, b=2)``: what a ``checkpoint`` method returns."""
        return cls(fn, args, kwargs)


@dataclass(frozen=True)
class Outcome:
    """What became of one call, as its outcome file tells it.

    Attributes:
        ok: it returned (``blob`` is its return value pickled).
        blob: the pickled return value, or the pickled exception (empty when the
            exception would not pickle).
        type_name: the exception's ``module.qualname``; None when ``ok``.
        message: ``str()`` of the exception.
        traceback: the remote traceback, formatted.
    """

    ok: bool
    blob: bytes = b""
    type_name: str | None = None
    message: str = ""
    traceback: str = ""

    def value(self) -> Any:
        """The unpickled return value (or exception); raises what unpickling raises."""
        return pickle.loads(self.blob)  # noqa: S301 - our own job's result file

    def to_json(self) -> dict[str, Any]:
        """The JSON form of the outcome file's header (and ``jobfleet result --json``)."""
        if self.ok:
            return {"ok": True, "size": len(self.blob)}
        return {
            "ok": False,
            "type": self.type_name,
            "message": self.message,
            "traceback": self.traceback,
            "size": len(self.blob),
        }


class PayloadTooLarge(ValueError):
    """A payload larger than the executor's limit."""


def versions() -> dict[str, str]:
    """What a payload must be unpickled with: Python major.minor, cloudpickle."""
    return {
        "python": f"{sys.version_info.major}.{sys.version_info.minor}",
        "cloudpickle": cloudpickle.__version__,
    }


def write_atomically(path: Path, write: Callable[[IO[bytes]], None]) -> None:
    """Write ``path`` through ``write`` into a temporary file beside it, then rename:
    readers see the whole file or none (also on NFS: rename within a directory)."""
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            write(out)
            out.flush()
            os.fsync(out.fileno())
        Path(temp).replace(path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def write_calls(path: Path, calls: Sequence[Call], limit: int | None = None) -> int:
    """Pickle ``calls`` into ``path``; their size in bytes.

    Functions defined in ``__main__`` (a script, a notebook) pickle by value,
    imported ones by reference (cloudpickle's rule).

    Raises:
        PayloadTooLarge: more than ``limit`` bytes (nothing is written).
        pickle.PicklingError (and what pickling raises): a call that cannot pickle.
    """
    body = cloudpickle.dumps([(c.fn, tuple(c.args), dict(c.kwargs or {})) for c in calls])
    if limit is not None and len(body) > limit:
        raise PayloadTooLarge(
            f"the call pickles to {len(body):,} bytes, over the executor's limit of "
            f"{limit:,} (max_payload): pass large data as files, or raise max_payload"
        )
    header = {"format": CALL_FORMAT, **versions(), "calls": len(calls)}

    def write(out: IO[bytes]) -> None:
        out.write(json.dumps(header).encode() + b"\n")
        out.write(body)

    write_atomically(path, write)
    return len(body)


def _header(stream: IO[bytes], path: Path, fmt: str) -> dict[str, Any]:
    line = stream.readline(_HEADER_LIMIT)
    try:
        header = json.loads(line)
    except ValueError:
        header = None
    if not isinstance(header, dict) or header.get("format") != fmt:
        raise ValueError(f"{path}: not a {fmt} file")
    return header


def read_payload_header(path: Path) -> dict[str, Any]:
    """The JSON header of a payload file (ValueError: not one; OSError: unreadable)."""
    with path.open("rb") as stream:
        return _header(stream, path, CALL_FORMAT)


def read_calls(path: Path) -> tuple[dict[str, Any], list[Call]]:
    """The header and the calls of a payload file (only after checking versions)."""
    with path.open("rb") as stream:
        header = _header(stream, path, CALL_FORMAT)
        raw = pickle.load(stream)  # noqa: S301 - the submitter's own payload
    return header, [Call(fn, tuple(args), dict(kwargs)) for fn, args, kwargs in raw]


def write_outcomes(path: Path, outcomes: Sequence[Outcome]) -> None:
    """Write the outcome file of a job's calls (atomically)."""
    header = {"format": OUTCOME_FORMAT, **versions(), "calls": [o.to_json() for o in outcomes]}

    def write(out: IO[bytes]) -> None:
        out.write(json.dumps(header).encode() + b"\n")
        for outcome in outcomes:
            out.write(outcome.blob)

    write_atomically(path, write)


def read_outcomes(path: Path) -> list[Outcome] | None:
    """The outcomes of a job's calls; None when the job wrote none (yet).

    Raises:
        ValueError: the file is not an outcome file, or it is cut short.
    """
    try:
        stream = path.open("rb")
    except FileNotFoundError:
        return None
    with stream:
        header = _header(stream, path, OUTCOME_FORMAT)
        found = []
        for entry in header.get("calls", []):
            size = int(entry.get("size", 0))
            blob = stream.read(size)
            if len(blob) != size:
                raise ValueError(f"{path}: cut short ({len(blob)} of {size} bytes)")
            found.append(
                Outcome(
                    ok=bool(entry.get("ok")),
                    blob=blob,
                    type_name=entry.get("type"),
                    message=str(entry.get("message", "")),
                    traceback=str(entry.get("traceback", "")),
                )
            )
    return found
