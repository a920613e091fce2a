"""Callbacks of a monitor: what they are, their keys, and how one is run.

A callback gets the job's final record and may be a plain function or a
coroutine function. Its key (``event:module.qualified_name`` unless given)
names it in the registry, which remembers across processes that it fired.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from jobfleet.errors import SpecError
from jobfleet.states import JobRecord, JobState

__all__ = [
    "Callback",
    "CallbackLedger",
    "Due",
    "Event",
    "Hook",
    "default_key",
    "fires",
    "run_to_completion",
]

#: A callback gets the job's final record; it may be a coroutine function.
Callback = Callable[[JobRecord], "Awaitable[None] | None"]
Event = Literal["success", "failure", "exit"]


class CallbackLedger(Protocol):
    """Who fired which callback, across processes (the registry)."""

    def claim_callbacks(
        self, wanted: Sequence[tuple[str, str]], claimant: str
    ) -> list[tuple[str, str]]: ...

    def release_callbacks(self, claimed: Sequence[tuple[str, str]], claimant: str) -> None: ...

    def callbacks_done(self, done: Sequence[tuple[str, str, str]]) -> None: ...


@dataclass(frozen=True, slots=True)
class Hook:
    """A callback watched for: on which event, and the key it is remembered by."""

    event: Event
    fn: Callback
    key: str


@dataclass(slots=True)
class Due:
    """A callback won by this process, to call with the job's record."""

    record: JobRecord
    hook: Hook


def default_key(fn: Callback, event: Event) -> str:
    """``event:module.qualified_name``: the same in every run of the program."""
    qualname = getattr(fn, "__qualname__", None)
    if qualname is None:  # functools.partial, a callable object: its repr changes per run
        raise SpecError(
            "key",
            f"{fn!r} has no name that stays the same from one run to the next; "
            "pass key= to name it (the registry remembers it fired by that name)",
        )
    return f"{event}:{getattr(fn, '__module__', '?')}.{qualname}"


def fires(event: Event, record: JobRecord) -> bool:
    """Whether a callback for ``event`` fires for a job that ended as ``record`` says."""
    if event == "exit":
        return True
    return (record.state is JobState.COMPLETED) == (event == "success")


async def _awaited(awaitable: Awaitable[None]) -> None:
    await awaitable


def run_to_completion(awaitable: Awaitable[None]) -> None:
    """Run a coroutine callback from the blocking API, raising what it raises.

    Where an event loop already runs in this thread (a Jupyter notebook), it cannot
    be run there: it gets a loop of its own in a helper thread.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(_awaited(awaitable))
        return
    failure: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(_awaited(awaitable))
        except BaseException as exc:  # handed to the caller's thread below
            failure.append(exc)

    helper = threading.Thread(target=run, name="jobfleet-callback")
    helper.start()
    helper.join()
    if failure:
        raise failure[0]
