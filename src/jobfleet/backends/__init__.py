"""The catalog of backends: every :class:`~jobfleet.backends.base.BackendType` installed.

Backends are found through the entry-point group ``jobfleet.backends``; the
built-in ones are registered there the same way another package registers its
own (pyproject.toml)::

    [project.entry-points."jobfleet.backends"]
    slurm = "jobfleet.backends.slurm:BACKEND"

An entry point names a light descriptor; the backend's module is imported only
when a backend is created. An entry point that cannot be loaded is skipped with
a warning naming it: a broken plugin never breaks jobfleet. See docs/backends.md.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING

from jobfleet.errors import ConfigError

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

    from jobfleet.backends.base import BackendType

__all__ = ["AUTO", "BUILTIN", "GROUP", "available", "find", "get", "known", "names", "refresh"]

log = logging.getLogger(__name__)

#: The entry-point group backends register in.
GROUP = "jobfleet.backends"

#: The backend name that stands for this machine's scheduler (:mod:`.detect`).
AUTO = "auto"

#: jobfleet's own backends, registered by its own package (pyproject.toml; a test holds
#: this to its entry points): :func:`known` needs no scan for them.
BUILTIN = frozenset({"local", "slurm", "sge", "lsf", "pbs", "torque", "htcondor"})

_lock = threading.Lock()
_catalog: Mapping[str, BackendType] | None = None


def available() -> Mapping[str, BackendType]:
    """Every installed backend by name: jobfleet's own first, then the others (by name).

    Scanned once (:func:`refresh` scans again).
    """
    global _catalog
    with _lock:
        if _catalog is None:
            _catalog = MappingProxyType(_scan())
        return _catalog


def find(name: str) -> BackendType | None:
    """The backend called ``name``, or None: ``available().get(name)``, but before the
    catalog is scanned only the entry points called ``name`` are loaded, and for one
    of jobfleet's own (:data:`BUILTIN`, which win over another package's of the same
    name) only its module (a status of ended jobs reads no entry point)."""
    with _lock:
        if _catalog is not None:
            return _catalog.get(name)
    if name in BUILTIN:  # ours: from its module, without reading the entry points
        import importlib

        found: BackendType = importlib.import_module(f"{__name__}.{name}").BACKEND
        return found
    return _scan(only=name).get(name)


def known(name: str) -> bool:
    """Whether a backend called ``name`` is installed: jobfleet's own without scanning
    the entry points (a configuration saying ``backend: slurm`` costs no scan and no
    import; one that cannot be loaded is still reported when it is made)."""
    return name in BUILTIN or find(name) is not None


def names() -> list[str]:
    """The names of the installed backends, in catalog order."""
    return list(available())


def get(name: str) -> BackendType:
    """The backend called ``name``.

    Raises:
        ConfigError: no such backend; the message lists the installed ones.
    """
    found = available().get(name)
    if found is None:
        raise ConfigError(unknown_backend(name), key="backend")
    return found


def unknown_backend(name: object) -> str:
    """The message for a backend name the catalog does not hold."""
    valid = names()
    if not valid:
        return (
            f"unknown backend {name!r}: no backend is installed "
            "(reinstall jobfleet: its own backends are registered as entry points)"
        )
    shown = repr(name) if len(repr(name)) <= 60 else repr(name)[:57] + "..."
    from jobfleet.settings import hint

    suggestion = hint(name, [*valid, AUTO]) if isinstance(name, str) else ""
    return f"unknown backend {shown}{suggestion}; choose one of {', '.join(valid)}, or auto"


def refresh() -> None:
    """Forget the scan: the next look finds newly installed backends."""
    global _catalog
    with _lock:
        _catalog = None


def _scan(only: str | None = None) -> dict[str, BackendType]:
    """Every installed backend (``only``: those called so; the same rules per name)."""
    # Imported here: ``import jobfleet.backends`` (the engine's) scans nothing and
    # loads no backend until one is needed (``jobfleet status`` of ended jobs: none).
    from importlib.metadata import entry_points

    found: dict[str, tuple[bool, BackendType]] = {}
    for ep in entry_points(group=GROUP):
        if only is not None and ep.name != only:
            continue
        builtin = _is_builtin(ep)
        backend = _load(ep)
        if backend is None:
            continue
        if ep.name in found:
            kept_builtin, _ = found[ep.name]
            if kept_builtin or not builtin:
                log.warning("backend %r: a second entry point (%s) is ignored", ep.name, ep.value)
                continue
        found[ep.name] = (builtin, backend)
    # jobfleet's own first, in their registration order; then the others by name.
    ordered = sorted(
        found.items(), key=lambda item: (not item[1][0], "" if item[1][0] else item[0])
    )
    return {name: backend for name, (_, backend) in ordered}


def _is_builtin(ep: EntryPoint) -> bool:
    return ep.value.startswith("jobfleet.")


def _load(ep: EntryPoint) -> BackendType | None:
    from jobfleet.backends.base import BackendType

    try:
        backend = ep.load()
    except Exception as exc:  # a plugin's import may fail in any way
        log.warning("backend %r (%s) cannot be loaded; skipped: %s", ep.name, ep.value, exc)
        return None
    if not isinstance(backend, BackendType):
        log.warning(
            "backend %r (%s) is a %s, not a jobfleet BackendType; skipped",
            ep.name,
            ep.value,
            type(backend).__name__,
        )
        return None
    if backend.name != ep.name:
        log.warning("backend %r (%s) calls itself %r; skipped", ep.name, ep.value, backend.name)
        return None
    return backend
