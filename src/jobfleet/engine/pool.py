"""The backends of one fleet: each made once, on first use, from the configuration."""

from __future__ import annotations

import dataclasses
import os

from jobfleet.backends import KNOWN_BACKENDS
from jobfleet.backends.base import Backend
from jobfleet.config import Config
from jobfleet.errors import ConfigError
from jobfleet.runner import Runner

__all__ = ["BackendPool"]


class BackendPool:
    """Backend instances by name, made once each.

    Args:
        config: whose backend sections configure them.
        home: the registry directory (the local backend keeps its queue there).
        runner: how scheduler commands are run (tests inject a scripted one).
    """

    def __init__(self, config: Config, home: str | os.PathLike[str], runner: Runner | None):
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
        if name not in KNOWN_BACKENDS:
            raise ConfigError(
                f"unknown backend {name!r}; choose one of {', '.join(KNOWN_BACKENDS)}",
                key="backend",
            )
        if name == "sge":
            from jobfleet.backends.sge import SgeBackend, SgeSettings

            return SgeBackend(self._runner, SgeSettings(**dataclasses.asdict(self._config.sge)))
        if name == "slurm":
            from jobfleet.backends.slurm import SlurmBackend, SlurmSettings

            settings = SlurmSettings(**dataclasses.asdict(self._config.slurm))
            return SlurmBackend(self._runner, settings)
        if name == "local":
            from jobfleet.backends.local import LocalBackend, detect_capacity, queue_directory

            local = self._config.local
            return LocalBackend(
                queue_directory(self._home),
                detect_capacity(local.cores, local.memory_bytes, local.gpus),
                cancel_grace_s=local.cancel_grace_s,
                idle_exit_s=local.idle_exit_s,
            )
        # A name added to KNOWN_BACKENDS without a case here must not silently run locally.
        raise ConfigError(
            f"backend {name!r} is not available in this jobfleet; "
            f"choose one of {', '.join(KNOWN_BACKENDS)}",
            key="backend",
        )
