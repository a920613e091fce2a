"""The job directory: what lives in it, and reading it back.

Every job has a directory of its own (``<home>/jobs/<id // 1000>xxx/<id>/``, or
``<home>/jobs/<id>/`` for a job an older jobfleet recorded; the record keeps which,
see :mod:`jobfleet.registry`)::

    job.sh              the rendered job script (scheduler backends submit it)
    exit_code[.<i>]     the command's exit status, one line, written by the script; on
                        the local backend also the once-guard: created exclusively as
                        the script starts, holding "pid N" (no code yet) until then
    never[.<i>]         why a dependency can never be met (the command did not run)
    setup_failed[.<i>]  why the environment set-up failed (the command did not run)
    started[.<i>]       made as the script starts (its time is the run's start), holding
                        "pid N"; not on the local backend, whose agent knows the start
    stdout[.<i>]        the job's output streams, unless the spec names other paths
    stderr[.<i>]
    submit-env.json     the first submitter's environment, for retries (mode 0600)

``.<i>`` is an array element's index; a single job has none. An array element's
files are in a subdirectory of the job directory named by ``i // 1000``
(:data:`SHARD`): ``<job_dir>/12/exit_code.12345``, so no directory holds more than a
few thousand entries however large the array (the submitter makes these directories
before the job runs: :func:`make_element_dirs`). The job script computes the same
paths at run time with shell arithmetic (:mod:`jobfleet.script`): keep the two in step.

Jobs written before this layout kept every element's files flat in the job
directory (``<job_dir>/exit_code.12345``); the readers here fall back to that path
when the sharded one does not exist (:func:`legacy_path`), so their exit codes and
logs are still read.

>>> exit_code_path("/j/7", None), exit_code_path("/j/7", 3), exit_code_path("/j/7", 4321)
('/j/7/exit_code', '/j/7/0/exit_code.3', '/j/7/4/exit_code.4321')
>>> legacy_path("/j/7/4/exit_code.4321"), legacy_path("/j/7/exit_code")
('/j/7/exit_code.4321', None)
>>> stream_path(JobSpec(["echo"], stdout="out.{index}"), "/j/7", "stdout", 3)
'out.3'
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from jobfleet.spec import JobSpec

__all__ = [
    "ENV_FILE",
    "SCRIPT_NAME",
    "SHARD",
    "STREAM_PLACEHOLDER",
    "Guard",
    "element_dir",
    "exit_code_path",
    "legacy_path",
    "located",
    "make_element_dirs",
    "never_met_path",
    "output_path",
    "read_env",
    "read_exit_code",
    "read_guard",
    "read_never_met",
    "read_number",
    "read_setup_failed",
    "script_path",
    "setup_failed_path",
    "started_path",
    "stream_path",
    "user_stream",
    "workdir_prefix",
    "write_env",
]

#: The job script's file name.
SCRIPT_NAME = "job.sh"
#: The first submitter's environment (JSON), kept for retries.
ENV_FILE = "submit-env.json"
#: ``{index}`` and ``{job_id}`` in a user's output path.
STREAM_PLACEHOLDER = re.compile(r"\{(index|job_id)\}")


#: Array elements per subdirectory of the job directory (``<job_dir>/<i // SHARD>/``).
SHARD = 1000


def _suffix(index: int | None) -> str:
    return "" if index is None else f".{index}"


def element_dir(job_dir: str, index: int | None) -> str:
    """The directory of the files of the job (``index`` None) or of array element
    ``index``: the job directory, or its subdirectory ``<index // SHARD>``."""
    return job_dir if index is None else f"{job_dir}/{index // SHARD}"


def _path(job_dir: str, name: str, index: int | None) -> str:
    return f"{element_dir(job_dir, index)}/{name}{_suffix(index)}"


def make_element_dirs(job_dir: str, indices: Iterable[int]) -> None:
    """Make the subdirectories the elements ``indices`` of an array write their files
    in (mode 0700), before the job runs: the job script does not make them (a fork
    per element)."""
    for shard in sorted({i // SHARD for i in indices}):
        Path(f"{job_dir}/{shard}").mkdir(mode=0o700, parents=True, exist_ok=True)


def legacy_path(path: str) -> str | None:
    """Where an element's file was in a job directory written before elements were
    sharded (``<job_dir>/<name>.<i>`` for ``<job_dir>/<i // SHARD>/<name>.<i>``); None
    for a path that is not an element's."""
    head, _, name = path.rpartition("/")
    job_dir, _, shard = head.rpartition("/")
    index = name.rpartition(".")[2]
    if not (job_dir and shard.isdigit() and index.isdigit()):
        return None
    return f"{job_dir}/{name}" if int(index) // SHARD == int(shard) else None


def located(path: str) -> str:
    """``path``, or its :func:`legacy_path` when its directory does not exist (a job
    written before elements were sharded)."""
    old = legacy_path(path)
    if old is None or Path(path).parent.is_dir():
        return path
    return old


def script_path(job_dir: str) -> str:
    """Where a job's script is written."""
    return f"{job_dir}/{SCRIPT_NAME}"


def exit_code_path(job_dir: str, index: int | None) -> str:
    """Where the script writes the exit code of the job, or of array element ``index``."""
    return _path(job_dir, "exit_code", index)


def read_exit_code(path: str) -> int | None:
    """The code in an exit-code file; None when there is none (yet), or it is not
    completely written."""
    return read_number(path)


def read_number(path: str) -> int | None:
    """The number in an exit-code or marker file, which the job script writes in
    one go ending with a newline; None until then. An element's file written before
    elements were sharded is read from its old place (:func:`legacy_path`)."""
    try:
        with open(path, encoding="ascii") as fh:
            text = fh.read()
    except FileNotFoundError:
        old = legacy_path(path)
        return None if old is None else read_number(old)
    except (OSError, ValueError):
        return None
    if not text.endswith("\n"):
        return None  # not completely written yet
    try:
        return int(text)
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class Guard:
    """What the local once-guard's file (the exit-code file) says: the script's pid
    while it runs, its command's exit code once recorded (one of the two)."""

    pid: int | None
    code: int | None


def read_guard(job_dir: str, index: int | None) -> Guard | None:
    """The local once-guard of the job or element: None when the script has not
    started (or its first write is not complete yet).

    Scripts written before the guard moved into the exit-code file made
    ``started[.<i>]`` holding a bare pid: that is read too.
    """
    path = exit_code_path(job_dir, index)
    try:
        with open(path, encoding="ascii") as fh:
            text = fh.read()
    except FileNotFoundError:
        old = legacy_path(path)
        text = None
        if old is not None:
            with suppress(OSError, ValueError), open(old, encoding="ascii") as fh:
                text = fh.read()
    except (OSError, ValueError):
        text = None
    if text is not None and text.endswith("\n"):
        with suppress(ValueError):
            if text.startswith("pid "):
                return Guard(int(text[4:]), None)
            return Guard(None, int(text))
    pid = read_number(started_path(job_dir, index))  # an older script's marker
    return None if pid is None else Guard(pid, read_number(path))


def never_met_path(job_dir: str, index: int | None) -> str:
    """Where a job script says why a dependency of it can never be met."""
    return _path(job_dir, "never", index)


def read_never_met(job_dir: str, index: int | None) -> str | None:
    """Why the job's script found a dependency never met; None if it did not say."""
    return _read_reason(never_met_path(job_dir, index))


def setup_failed_path(job_dir: str, index: int | None) -> str:
    """Where a job script says which step of its environment set-up failed."""
    return _path(job_dir, "setup_failed", index)


def read_setup_failed(job_dir: str, index: int | None) -> str | None:
    """Why the job's environment set-up failed (``module X could not be loaded``);
    None if it did not say."""
    return _read_reason(setup_failed_path(job_dir, index))


def _read_reason(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            # A reason is one short line; a bound keeps a damaged file from flooding status.
            return fh.read(1000).strip() or None
    except FileNotFoundError:
        old = legacy_path(path)
        return None if old is None else _read_reason(old)
    except OSError:
        return None


def output_path(job_dir: str, stream: Literal["stdout", "stderr"], index: int | None) -> str:
    """Where a stream of the job (or of element ``index``) goes by default."""
    return _path(job_dir, stream, index)


def started_path(job_dir: str, index: int | None) -> str:
    """The once-guard's marker for the job, or for array element ``index``."""
    return _path(job_dir, "started", index)


def user_stream(spec: JobSpec, stream: str) -> str | None:
    """The path the spec gives for ``stream`` (None: the job directory's default)."""
    if stream == "stdout":
        return spec.stdout
    if stream == "stderr":
        return spec.stderr
    raise ValueError(f"stream must be 'stdout' or 'stderr', not {stream!r}")


def workdir_prefix(spec: JobSpec, path: str) -> str:
    """What goes before a user's output path: nothing, or the workdir for a relative one."""
    if path.startswith("/") or not spec.workdir:
        return ""
    return spec.workdir if spec.workdir.endswith("/") else spec.workdir + "/"


def stream_path(
    spec: JobSpec,
    job_dir: str,
    stream: Literal["stdout", "stderr"],
    index: int | None,
    *,
    job_id: str = "0",
) -> str:
    """Where the script sends ``stream`` of the job, or of array element ``index``.

    Without a user path: ``<job_dir>/stdout`` or ``<job_dir>/<index // SHARD>/stdout.<index>``.
    A user path has ``{index}`` replaced by the index (empty for a single job)
    and ``{job_id}`` by ``job_id``; no other expansion happens (no ``~``, no
    ``$VAR``). A relative user path is relative to the spec's workdir when it
    has one, otherwise to the directory the script starts in.

    Args:
        spec: the job.
        job_dir: the job's directory, as given to the script.
        stream: ``"stdout"`` or ``"stderr"``.
        index: the array index, None for a single job.
        job_id: the id given to the script (only matters for ``{job_id}``).
    """
    user = user_stream(spec, stream)
    if user is None:
        return output_path(job_dir, stream, index)
    values = {"index": "" if index is None else str(index), "job_id": job_id}
    return workdir_prefix(spec, user) + STREAM_PLACEHOLDER.sub(lambda m: values[m[1]], user)


def write_env(job_dir: str, env: Mapping[str, str]) -> None:
    """Keep the submitter's environment beside the job (private: it may hold secrets)."""
    path = Path(job_dir) / ENV_FILE
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8", errors="surrogateescape") as fh:
        json.dump(dict(env), fh)


def read_env(job_dir: str) -> dict[str, str] | None:
    """The environment a job was first submitted in, if it was stored."""
    try:
        with open(Path(job_dir) / ENV_FILE, encoding="utf-8", errors="surrogateescape") as fh:
            data = json.load(fh)
    except (OSError, ValueError):
        return None
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else None
