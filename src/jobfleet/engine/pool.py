"""The backends of one fleet: each made once, on first use, from the catalog
(entry points ``jobfleet.backends``) and its section of the configuration."""

from __future__ import annotations

import contextvars
import logging
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from jobfleet import backends as catalog
from jobfleet.errors import BackendError, CommandError
from jobfleet.runner import Runner, time_left

if TYPE_CHECKING:
    from jobfleet.backends.base import Backend
    from jobfleet.config import Config

__all__ = ["BackendPool"]

T = TypeVar("T")

log = logging.getLogger(__name__)

#: How long past its bound a backend's answer is still waited for.
_GRACE_S = 1.0


class BackendPool:
    """Backend instances by name, made once each.

    Args:
        config: gives the configuration whose backend sections configure them
            (read when a backend is made: a fleet's configuration may be replaced).
        home: the registry directory (the local backend keeps its queue there).
        runner: how scheduler commands are run (tests inject a scripted one).
    """

    def __init__(self, config: Callable[[], Config], home: Path, runner: Runner | None):
        self._config = config
        self._home = home
        self._runner = runner
        self._made: dict[str, Backend] = {}

    def get(self, name: str) -> Backend:
        """The backend called ``name`` (``auto``: :meth:`resolve`).

        Raises:
            ConfigError: no backend of that name.
        """
        name = self.resolve(name)
        backend = self._made.get(name)
        if backend is None:
            backend = self._made[name] = self._make(name)
        return backend

    def usage_settles_s(self, name: str) -> float:
        """The backend's ``Capabilities.usage_settles_s``, from its catalog entry when
        that tells it (nothing is made), else from the backend itself.

        Raises:
            ConfigError: no backend of that name.
        """
        made = self._made.get(name)
        if made is None and name != catalog.AUTO:
            backend_type = catalog.find(name) or catalog.get(name)
            if backend_type.usage_settles_s is not None:
                return backend_type.usage_settles_s
        return (made or self.get(name)).capabilities.usage_settles_s

    def check(self, name: str) -> None:
        """Raise :class:`ConfigError` (naming the valid ones) unless ``name`` is a
        backend, without making it."""
        if name not in self._made and name != catalog.AUTO:
            catalog.get(name)

    def resolve(self, name: str) -> str:
        """``name``, or for ``auto`` the backend it stands for on this machine (the
        first scheduler that answers, else local: :mod:`jobfleet.backends.detect`),
        looked for once per process."""
        if name != catalog.AUTO:
            return name
        from jobfleet.backends import detect  # asks schedulers: only for auto

        chosen, why = detect.resolve_cached(catalog.available())
        log.info("backend auto: %s (%s)", chosen, why)
        return chosen

    def put(self, backend: Backend) -> None:
        """Use this instance for its name (a backend made by the caller)."""
        self._made[backend.name] = backend

    def ask_each(self, calls: Mapping[str, Callable[[Backend], T]]) -> dict[str, T | CommandError]:
        """Call each backend named in ``calls`` with its function, all at once (a
        thread each when there are several): one that is slow to answer (its
        controller is down) delays none of the others, nor eats their share of a
        bound set with :func:`jobfleet.runner.within`.

        Returns:
            By name (in the order given): what the call returned, or the
            :class:`CommandError` it raised (the backend could not be asked).
            Any other error is raised again here.
        """
        made = {name: self.get(name) for name in calls}  # made here, never in two threads
        answers: dict[str, T | CommandError] = {}
        bugs: list[BaseException] = []

        def ask(name: str) -> None:
            try:
                answers[name] = calls[name](made[name])
            except CommandError as exc:
                answers[name] = exc
            except BackendError as exc:  # e.g. its queue is locked: this one cannot answer
                answers[name] = CommandError((name,), str(exc))
            except BaseException as exc:  # raised again below, in the caller's thread
                bugs.append(exc)

        if len(calls) <= 1 and time_left() is None:
            for name in calls:
                ask(name)
        else:
            threads = {
                name: threading.Thread(
                    target=contextvars.copy_context().run,
                    args=(ask, name),
                    name=f"jobfleet-ask-{name}",
                    daemon=True,
                )
                for name in calls
            }
            for thread in threads.values():
                thread.start()
            for name, thread in threads.items():
                # Work outside the runner (a local agent starting, a file system that
                # hangs) is not stopped by the bound: it is left to finish unheard.
                bound = time_left()
                thread.join(None if bound is None else max(bound[0], 0.0) + _GRACE_S)
                if bound is not None and thread.is_alive():
                    answers[name] = CommandError(
                        (name,), f"{name} did not answer within {bound[1]:g}s", transient=True
                    )
        if bugs:
            raise bugs[0]
        return {name: answers[name] for name in calls}

    def made(self) -> list[Backend]:
        return list(self._made.values())

    def close(self) -> None:
        for backend in self._made.values():
            backend.close()
        self._made.clear()

    def _make(self, name: str) -> Backend:
        # Only this backend is loaded; the catalog names the valid ones when ``name``
        # is none of them.
        backend_type = catalog.find(name) or catalog.get(name)
        return backend_type.create(
            self._config().settings_for(name), runner=self._runner, home=self._home
        )
