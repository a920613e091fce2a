"""The backends of one fleet: each made once, on first use, from the catalog
(entry points ``jobfleet.backends``) and its section of the configuration."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from jobfleet import backends as catalog
from jobfleet.backends.base import Backend
from jobfleet.config import Config
from jobfleet.runner import Runner

__all__ = ["BackendPool"]


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
        """The backend called ``name``.

        Raises:
            ConfigError: no backend of that name.
        """
        backend = self._made.get(name)
        if backend is None:
            backend = self._made[name] = self._make(name)
        return backend

    def check(self, name: str) -> None:
        """Raise :class:`ConfigError` (naming the valid ones) unless ``name`` is a
        backend, without making it."""
        if name not in self._made:
            catalog.get(name)

    def put(self, backend: Backend) -> None:
        """Use this instance for its name (a backend made by the caller)."""
        self._made[backend.name] = backend

    def made(self) -> list[Backend]:
        return list(self._made.values())

    def close(self) -> None:
        for backend in self._made.values():
            backend.close()
        self._made.clear()

    def _make(self, name: str) -> Backend:
        # The catalog names the valid backends when ``name`` is none of them.
        backend_type = catalog.get(name)
        return backend_type.create(
            self._config().settings_for(name), runner=self._runner, home=self._home
        )
