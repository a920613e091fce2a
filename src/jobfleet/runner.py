"""The one seam through which jobfleet runs scheduler commands.

Backends never call :mod:`subprocess` themselves: they hand an argv list to a
:class:`Runner`. The real one is :class:`SubprocessRunner`; tests inject a
:class:`ScriptedRunner` that answers from recorded output and counts calls.
Always argv lists, never a shell.
"""

from __future__ import annotations

import contextlib
import contextvars
import locale
import logging
import math
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import TYPE_CHECKING, Protocol

from jobfleet.errors import CommandError

if TYPE_CHECKING:
    import subprocess

__all__ = [
    "CommandResult",
    "Runner",
    "ScriptedRunner",
    "SubprocessRunner",
    "argv_chunks",
    "bounded_timeout",
    "time_left",
    "unbounded",
    "within",
]

log = logging.getLogger(__name__)

#: When the commands of the current step must have answered (time.monotonic()), if ever.
_deadline: contextvars.ContextVar[tuple[float, float] | None] = contextvars.ContextVar(
    "jobfleet_command_deadline", default=None
)


@contextlib.contextmanager
def within(seconds: float | None) -> Iterator[None]:
    """Bound every scheduler command run inside (in this thread, or in threads
    started with a copy of its context) to end ``seconds`` from now at the latest.

    ``jobfleet status`` asks the schedulers this way: a controller that is down
    makes its client retry for many seconds, and the user must see the last
    known states meanwhile, not wait. A nested bound can only shorten the time
    left. None: no bound.
    """
    if seconds is None:
        yield
        return
    end = time.monotonic() + max(0.0, seconds)
    outer = _deadline.get()
    token = _deadline.set((end, seconds) if outer is None or end < outer[0] else outer)
    try:
        yield
    finally:
        _deadline.reset(token)


def time_left() -> tuple[float, float] | None:
    """(seconds left, seconds in all) of the bound of :func:`within`, or None."""
    bound = _deadline.get()
    return None if bound is None else (bound[0] - time.monotonic(), bound[1])


@contextlib.contextmanager
def unbounded() -> Iterator[None]:
    """Lift the bound of :func:`within` inside: for commands that must not be cut
    short (a submission stopped half-way could not tell whether it happened)."""
    token = _deadline.set(None)
    try:
        yield
    finally:
        _deadline.reset(token)


def bounded_timeout(argv: Sequence[str], timeout_s: float) -> tuple[float, float]:
    """``timeout_s``, shortened to the time left of the bound of :func:`within`;
    and the time-out to name in a message (the bound's, when it is the shorter).

    Raises:
        CommandError: (transient) the bound has passed: ``argv`` is not run.
    """
    bound = _deadline.get()
    if bound is None:
        return timeout_s, timeout_s
    left = bound[0] - time.monotonic()
    if left <= 0:
        raise CommandError(
            tuple(argv), f"{argv[0]} did not answer within {bound[1]:g}s", transient=True
        )
    return (left, bound[1]) if left < timeout_s else (timeout_s, timeout_s)


@dataclass(frozen=True, slots=True)
class CommandResult:
    """What a finished command returned."""

    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    duration_s: float = 0.0

    @property
    def ok(self) -> bool:
        return self.returncode == 0


class Runner(Protocol):
    """Runs one command to completion."""

    def run(
        self,
        argv: Sequence[str],
        *,
        timeout_s: float,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
    ) -> CommandResult:
        """Run ``argv`` (in ``cwd``, if given); a non-zero exit is a result, not an error.

        Raises:
            CommandError: the program is missing, could not start, or timed out
                (``transient`` is True for a time-out).
        """
        ...


class SubprocessRunner:
    """Runs commands as child processes: no shell, no stdin, a time-out."""

    def run(
        self,
        argv: Sequence[str],
        *,
        timeout_s: float,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
    ) -> CommandResult:
        import subprocess  # here: a command that asks no scheduler starts without it

        argv = tuple(argv)
        timeout_s, named_s = bounded_timeout(argv, timeout_s)
        start = time.monotonic()
        try:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=None if env is None else dict(env),
                cwd=cwd,
            )
        except FileNotFoundError:
            raise CommandError(argv, f"{argv[0]}: command not found on PATH") from None
        except OSError as exc:
            # E.g. too long an argument list or no process slot: not "no such
            # program", so nothing may be concluded from it (transient).
            raise CommandError(argv, f"{argv[0]}: cannot run: {exc}", transient=True) from exc
        with proc:  # on the way out: its pipes closed, and it is reaped
            try:
                out, err = _communicate(proc, timeout_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                raise CommandError(
                    argv, f"{argv[0]} did not answer within {named_s:g}s", transient=True
                ) from None
            except BaseException:  # KeyboardInterrupt, or reading its output failed
                proc.kill()
                raise
        elapsed = time.monotonic() - start
        log.debug("ran %s -> %s in %.3fs", argv, proc.returncode, elapsed)
        return CommandResult(argv, proc.returncode, _text(out), _text(err), elapsed)


def _communicate(proc: subprocess.Popen[bytes], timeout_s: float) -> tuple[bytes, bytes]:
    """Its output and error, read to their end, once it has exited; within ``timeout_s``.

    Waits for its exit on a pidfd (Linux): ``Popen.communicate(timeout=...)`` polls
    for it with sleeps of 1 ms and more after its output ended, which made each
    ``sbatch`` a third slower (3.2 ms without the time-out, 4.2 ms with it). Where
    there is no pidfd, that is what it uses.
    """
    import select
    import subprocess

    assert proc.stdout is not None and proc.stderr is not None  # both are PIPE
    try:
        pidfd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):  # not Linux, or a kernel before 5.3
        return proc.communicate(timeout=timeout_s)
    end = time.monotonic() + timeout_s
    read: dict[int, list[bytes]] = {proc.stdout.fileno(): [], proc.stderr.fileno(): []}
    waiting = {*read, pidfd}
    poller = select.poll()
    for fd in waiting:
        poller.register(fd, select.POLLIN)
    try:
        while waiting:
            left = end - time.monotonic()
            if left <= 0:
                raise subprocess.TimeoutExpired(proc.args, timeout_s)
            for fd, _ in poller.poll(math.ceil(left * 1000)):
                # The pidfd is readable once the process has exited; a pipe at its end
                # reads empty.
                data = os.read(fd, 65536) if fd != pidfd else b""
                if data:
                    read[fd].append(data)
                else:
                    poller.unregister(fd)
                    waiting.discard(fd)
    finally:
        os.close(pidfd)
    proc.wait()  # it has exited: this only reaps it
    return b"".join(read[proc.stdout.fileno()]), b"".join(read[proc.stderr.fileno()])


def _text(data: bytes) -> str:
    """A command's output as text, as ``subprocess.run(text=True, errors="replace")`` has it."""
    text = data.decode(locale.getpreferredencoding(False), "replace")
    return text.replace("\r\n", "\n").replace("\r", "\n")


Responder = Callable[[tuple[str, ...]], CommandResult | CommandError]


@dataclass
class ScriptedRunner:
    """A runner for tests: answers each command from a function, records every call.

    Args:
        respond: given the argv, returns the result (or an error to raise).
    """

    respond: Responder
    calls: list[tuple[str, ...]] = field(default_factory=list)

    def run(
        self,
        argv: Sequence[str],
        *,
        timeout_s: float,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
    ) -> CommandResult:
        argv = tuple(argv)
        bounded_timeout(argv, timeout_s)  # a passed bound of within() runs nothing
        self.calls.append(argv)
        answer = self.respond(argv)
        if isinstance(answer, CommandError):
            raise answer
        return answer

    def count(self, program: str) -> int:
        """How many calls ran ``program``."""
        return sum(1 for argv in self.calls if PurePath(argv[0]).name == program)


#: Room left for the program's own environment and fixed arguments.
_ARG_MAX_MARGIN = 64 * 1024


def argv_chunks(items: Sequence[str], fixed_len: int, sep_len: int = 1) -> list[list[str]]:
    """Split ``items`` (joined by a separator into one argument) so each command
    stays under the operating system's argument limit.

    Only past that limit is a batched call split in two: one call for all
    tracked jobs is the rule.
    """
    try:
        limit = os.sysconf("SC_ARG_MAX")
    except (ValueError, OSError):  # pragma: no cover - every POSIX system has it
        limit = 2 * 1024 * 1024
    budget = max(limit // 2 - fixed_len - _ARG_MAX_MARGIN, 4096)
    # Linux also caps one argument at 32 pages (MAX_ARG_STRLEN).
    budget = min(budget, 32 * 4096 - 1)
    if sum(map(len, items)) + len(items) * sep_len <= budget:
        return [list(items)]  # the rule: one call
    chunks: list[list[str]] = []
    current: list[str] = []
    size = 0
    for item in items:
        extra = len(item) + sep_len
        if current and size + extra > budget:
            chunks.append(current)
            current, size = [], 0
        current.append(item)
        size += extra
    if current:
        chunks.append(current)
    return chunks
