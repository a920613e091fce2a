"""What ``future.result()`` raises when a call did not return a value.

* The call raised: its own exception, of its own type, with the remote traceback
  attached (a note on Python 3.11+, else the ``__cause__``); a
  :class:`RemoteError` when that exception cannot be rebuilt here (its class is
  not importable, it would not pickle, it was ``SystemExit``).
* The job ended without saying what became of the call (timeout, out of memory,
  cancelled, lost, killed, a crash of the interpreter): :class:`JobFailedError`,
  naming the state, the exit code and where the logs are. Never a hang, never None.
"""

from __future__ import annotations

import sys

from jobfleet.errors import JobfleetError

__all__ = ["JobFailedError", "RemoteError", "RemoteTraceback", "with_remote_traceback"]


class RemoteError(JobfleetError):
    """A call raised an exception that cannot be rebuilt in this process.

    Attributes:
        type_name: the exception's ``module.qualname`` in the job.
        message: its ``str()``.
        traceback: the remote traceback, formatted.
    """

    def __init__(self, type_name: str, message: str, traceback: str) -> None:
        self.type_name = type_name
        self.message = message
        self.traceback = traceback
        super().__init__(f"{type_name}: {message}" if message else type_name)

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.type_name, self.message, self.traceback))


class RemoteTraceback(Exception):
    """The traceback of an exception raised in a job (the ``__cause__`` on Python 3.10)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class JobFailedError(JobfleetError):
    """The job of a call ended without a result.

    Attributes:
        job_id: the jobfleet job.
        index: the array element, or None.
        state: how it ended (``timeout``, ``out_of_memory``, ``cancelled``, ...).
        exit_code: its exit code, if known.
        reason: what the scheduler said.
        stdout, stderr: where its output went.
    """

    def __init__(
        self,
        job_id: str,
        index: int | None,
        state: str,
        exit_code: int | None,
        reason: str | None,
        stdout: str,
        stderr: str,
    ) -> None:
        self.job_id = job_id
        self.index = index
        self.state = state
        self.exit_code = exit_code
        self.reason = reason
        self.stdout = stdout
        self.stderr = stderr
        where = job_id if index is None else f"{job_id}[{index}]"
        code = "" if exit_code is None else f", exit code {exit_code}"
        why = f" ({reason})" if reason else ""
        logs = stdout if stdout == stderr else f"{stdout} and {stderr}"
        super().__init__(
            f"job {where} ended {state}{code}{why} without a result; its output: {logs}"
        )

    def __reduce__(self) -> tuple[object, ...]:
        fields = (self.job_id, self.index, self.state, self.exit_code, self.reason)
        return (type(self), (*fields, self.stdout, self.stderr))


def with_remote_traceback(exc: BaseException, where: str, text: str) -> BaseException:
    """``exc`` carrying the remote traceback ``text`` of job ``where``."""
    if not text:
        return exc
    if sys.version_info >= (3, 11):
        exc.add_note(f"\nRemote traceback (jobfleet job {where}):\n{text.rstrip()}")
    else:  # pragma: no cover - Python 3.10
        exc.__cause__ = RemoteTraceback(f"\n(jobfleet job {where})\n{text.rstrip()}")
    return exc
