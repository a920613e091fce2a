"""Layered configuration: built-in defaults, a YAML file, a profile, command-line overrides.

The file is the first of these that exists:

1. the path given explicitly (``jobfleet --config PATH``);
2. ``$JOBFLEET_CONFIG``;
3. ``./jobfleet.yaml``;
4. ``$XDG_CONFIG_HOME/jobfleet/config.yaml`` (``~/.config/jobfleet/config.yaml``).

A missing file named by 1 or 2 is an error; 3 and 4 are optional. Values merge
key by key: defaults, then the file, then the named profile from the file's
``profiles:`` mapping, then the command line::

    backend: local
    resources: {cores: 2, memory: 4G, walltime: 1h}
    environment: {modules: [gcc/12], prologue: ["ulimit -c 0"], scratch: true}
    local: {cores: auto, cancel_grace: 10s}
    wait: {poll_interval: 0.5s}
    profiles:
      big: {resources: {cores: 16, memory: 64G}}

Every key is one row of :func:`schema` (:mod:`jobfleet.configschema`, which
checks each layer against them). Each backend's section (``slurm:``) comes
from its settings dataclass, whose fields declare their keys
(:func:`jobfleet.settings.option`): an installed backend brings its section
with it, and ``Config.backends`` holds each one's settings. Every problem
raises :class:`~jobfleet.errors.ConfigError` naming the file, the dotted key
and what would be accepted.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jobfleet import backends as catalog
from jobfleet.configfile import config_error, find_config_file, locate, read_config_yaml
from jobfleet.configschema import (
    COMMAND_LINE,
    RESOURCE_DEFAULTS,
    Setting,
    core_table,
    mapping,
    read_layer,
    read_overrides,
    schema,
    section_rows,
)
from jobfleet.environment import Environment
from jobfleet.errors import ConfigError, SpecError, shown
from jobfleet.resources import Resources
from jobfleet.settings import hint, options
from jobfleet.units import parse_interval, parse_walltime

if TYPE_CHECKING:
    from jobfleet.backends.local import LocalSettings
    from jobfleet.backends.sge import SgeSettings
    from jobfleet.backends.slurm import SlurmSettings

__all__ = [  # noqa: F822 - SCHEMA and the *Settings come from the module's __getattr__
    "SCHEMA",
    "Config",
    "LocalSettings",
    "Setting",
    "SgeSettings",
    "SlurmSettings",
    "WaitConfig",
    "describe",
    "find_config_file",
    "load_config",
    "schema",
]

DEFAULT = "default"


#: Keys that say the same thing in other words: a layer giving one of them (a
#: profile's memory_per_core) replaces what an earlier layer gave for the others.
_ALTERNATIVES = (
    ("memory", "memory_per_core"),
    ("tasks", "tasks_per_node"),
    ("gpus", "gpus_per_node", "gpus_per_task"),
)


def _layered(flat: dict[str, Any], layer: dict[str, Any], source: str) -> dict[str, Any]:
    """``layer`` with cores_per_task read as cores; resets in ``flat`` what it replaces."""
    layer = dict(layer)
    alias = layer.pop("resources.cores_per_task", None)
    if alias is not None:
        cores = layer.get("resources.cores")
        if cores is not None and cores != alias:
            raise config_error(
                f"is {shown(alias)} but resources.cores is {shown(cores)}; give one of them",
                source=source,
                key="resources.cores_per_task",
            )
        layer["resources.cores"] = alias
    for group in _ALTERNATIVES:
        if any(layer.get(f"resources.{k}") is not None for k in group):
            for k in group:
                flat[f"resources.{k}"] = RESOURCE_DEFAULTS.get(k)
    return layer


#: The built-in backends' settings classes this module offers, where they live.
_SETTINGS = {
    "LocalSettings": "jobfleet.backends.local",
    "SgeSettings": "jobfleet.backends.sge",
    "SlurmSettings": "jobfleet.backends.slurm",
}


def __getattr__(name: str) -> Any:
    # SCHEMA follows the installed backends: computed on use, not at import. The
    # settings classes too: importing them imports their backends.
    if name == "SCHEMA":
        return schema()
    if name in _SETTINGS:
        import importlib

        return getattr(importlib.import_module(_SETTINGS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@dataclass(frozen=True, slots=True)
class WaitConfig:
    """How jobs are watched (section ``wait:``); see :class:`jobfleet.engine.monitor.Monitor`."""

    poll_interval_s: float = 1.0
    first_poll_s: float = 0.1
    min_gap_s: float = 1.0
    lost_after_s: int = 300
    status_timeout_s: float = 5.0


@dataclass(frozen=True, slots=True)
class Config:
    """The merged configuration.

    Attributes:
        backend: default backend name.
        resources: default resources for every job.
        environment: every job's environment set-up (the command line's
            ``jobfleet submit`` puts a job's own after it: :meth:`Environment.then`).
        backends: each installed backend's settings (an instance of its settings
            dataclass), by name. Also read as attributes: ``config.local``,
            ``config.slurm``, ``config.sge``, ``config.<any installed backend>``.
        wait: how jobs are watched.
        profile: the profile applied, if any.
        path: the file read, if any.
        values: merged values in YAML form, JSON-serialisable.
        sources: dotted key -> ``"default"``, the file, ``"<file> (profile NAME)"``
            or ``"command line"``.
        profiles: profile names defined in the file.

    When no layer sets a key of any backend's section (no file, or a file of
    jobfleet's own keys only), each backend's settings are made at their defaults
    when first read, importing that backend only then: ``jobfleet status`` imports
    none. ``values`` and ``sources`` list every section all the same.
    """

    backend: str
    resources: Resources
    environment: Environment
    backends: Mapping[str, Any]
    wait: WaitConfig
    profile: str | None
    path: str | None
    # ``values`` and ``sources``, less the backend sections left at their defaults
    # when ``backends`` makes those on use (:class:`_Defaults`).
    _values: dict[str, Any]
    _sources: dict[str, str]
    profiles: tuple[str, ...]

    @property
    def values(self) -> dict[str, Any]:
        values = dict(self._values)
        for name, rows in self._default_sections():
            values[name] = {s.name: s.default for s in rows}
        return values

    @property
    def sources(self) -> dict[str, str]:
        sources = dict(self._sources)
        for _, rows in self._default_sections():
            sources.update((s.dotted, DEFAULT) for s in rows)
        return sources

    def _default_sections(self) -> list[tuple[str, list[Setting]]]:
        if not isinstance(self.backends, _Defaults):
            return []
        return [
            (name, section_rows(name, backend.settings))
            for name, backend in catalog.available().items()
        ]

    # A backend's section as an attribute: config.py names no backend, so a newly
    # installed one reads like the built-in ones (``config.local.cancel_grace_s``).
    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or name == "backends":
            raise AttributeError(name)  # not set yet (copy, unpickling): no recursion
        try:
            return self.backends[name]
        except KeyError:
            raise AttributeError(
                f"{type(self).__name__!r} object has no attribute {name!r}"
            ) from None

    def settings_for(self, backend: str) -> Any:
        """The settings of ``backend``: configured, or its defaults when it was
        installed after this configuration was loaded."""
        found = self.backends.get(backend)
        return found if found is not None else catalog.get(backend).settings()


class _Defaults(Mapping[str, Any]):
    """Each installed backend's settings at their defaults, by name, each made (and its
    backend imported) when first read: the ``backends`` of a configuration in which
    no layer set a key of any backend's section."""

    def __init__(self) -> None:
        self._made: dict[str, Any] = {}

    def __getitem__(self, name: str) -> Any:
        made = self._made.get(name)
        if made is None:
            backend = catalog.find(name)
            if backend is None:
                raise KeyError(name)
            rows = section_rows(name, backend.settings)
            made = _settings(backend.settings, name, {s.dotted: s.default for s in rows})
            self._made[name] = made  # two threads at once make equal ones: harmless
        return made

    def __iter__(self) -> Iterator[str]:
        return iter(catalog.available())

    def __len__(self) -> int:
        return len(catalog.available())

    def __repr__(self) -> str:
        return f"{type(self).__name__}({dict(self)!r})"


def load_config(
    path: str | os.PathLike[str] | None = None,
    *,
    profile: str | None = None,
    overrides: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> Config:
    """Find, read and merge the configuration.

    Args:
        path: explicit file (``--config``); else the search path is used.
        profile: name of a profile in the file's ``profiles:`` mapping.
        overrides: dotted keys to values, e.g. ``{"resources.cores": 4}``; None values
            are ignored so that unset command-line options can be passed as they are.
        env: environment to read ``$JOBFLEET_CONFIG`` and ``$XDG_CONFIG_HOME`` from.
        cwd: directory for ``./jobfleet.yaml`` and relative paths.

    Raises:
        ConfigError: a missing, unreadable or invalid file, profile or override.
    """
    try:
        return _load(path, profile, overrides, env, cwd)
    except ConfigError as exc:
        # Every ConfigError is built short already; this keeps it so whatever a
        # parser from elsewhere put in its message.
        raise config_error(exc.message, source=exc.source, key=exc.key) from None


def _load(
    path: str | os.PathLike[str] | None,
    profile: str | None,
    overrides: Mapping[str, Any] | None,
    env: Mapping[str, str] | None,
    cwd: Path | None,
) -> Config:
    found_at = locate(path, env, cwd)
    found = found_at[0] if found_at is not None else None
    source = str(found_at[0]) if found_at is not None else COMMAND_LINE
    data = mapping(read_config_yaml(*found_at) if found_at else None, source, "")
    base = dict(data)
    raw_profiles = mapping(base.pop("profiles", None), source, "profiles")
    profiles: dict[str, dict[str, Any]] = {}
    for name, body in raw_profiles.items():
        if not isinstance(name, str):
            raise config_error("profile names must be text", source=source, key=f"profiles.{name}")
        where = f"profiles.{name}"
        profiles[name] = read_layer(mapping(body, source, where), source, f"{where}.")
    layers = [(read_layer(base, source, "", extra=["profiles"]), source)]
    if profile is not None:
        if profile not in profiles:
            raise config_error(_unknown_profile(profile, list(profiles), found), source=source)
        layers.append((profiles[profile], f"{source} (profile {profile})"))
    layers.append((read_overrides(overrides or {}), COMMAND_LINE))

    # A configuration that sets none of a backend's keys (most: no file) needs no
    # backend now; each one's settings are made at their defaults when read.
    own = core_table()
    lazy = all(key in own.by_key for layer, _ in layers for key in layer)
    rows = own.rows if lazy else schema()
    flat = {s.dotted: s.default for s in rows}
    sources = dict.fromkeys(flat, DEFAULT)
    for layer, layer_source in layers:
        layer = _layered(flat, layer, layer_source)
        flat.update(layer)
        sources.update(dict.fromkeys(layer, layer_source))
    values: dict[str, Any] = {}
    for s in rows:
        (values.setdefault(s.section, {}) if s.section else values)[s.name] = flat[s.dotted]

    try:
        return Config(
            backend=flat["backend"],
            resources=Resources.from_mapping(values["resources"]),
            environment=Environment.from_mapping(values["environment"]),
            backends=_Defaults()
            if lazy
            else {
                name: _settings(backend.settings, name, flat)
                for name, backend in catalog.available().items()
            },
            wait=WaitConfig(
                poll_interval_s=parse_interval(flat["wait.poll_interval"], "wait.poll_interval"),
                first_poll_s=parse_interval(flat["wait.first_poll"], "wait.first_poll"),
                min_gap_s=parse_interval(flat["wait.min_gap"], "wait.min_gap"),
                lost_after_s=parse_walltime(flat["wait.lost_after"], "wait.lost_after"),
                status_timeout_s=parse_interval(flat["wait.status_timeout"], "wait.status_timeout"),
            ),
            profile=profile,
            path=str(found) if found is not None else None,
            _values=values,
            _sources=sources,
            profiles=tuple(profiles),
        )
    except SpecError as exc:  # keys that contradict each other (tasks and tasks_per_node)
        raise config_error(exc.message, source=sources.get(exc.field), key=exc.field) from None
    except (ValueError, OverflowError, TypeError) as exc:  # pragma: no cover - as above
        raise config_error(f"invalid value: {shown(str(exc))}", source=source) from None


def _settings(settings: type[Any], section: str, flat: Mapping[str, Any]) -> Any:
    """A backend's settings dataclass from the merged (checked) values of its section."""
    fields = {}
    for field_name, opt in options(settings):
        key = f"{section}.{opt.key}"
        value = flat[key]
        fields[field_name] = None if value is None else opt.convert(value, key)
    return settings(**fields)


def describe(config: Config) -> list[tuple[str, Any, str]]:
    """(dotted key, value, source) rows in schema order, for ``jobfleet config show``."""
    rows = []
    for s in schema():
        value = config.values[s.section][s.name] if s.section else config.values[s.name]
        rows.append((s.dotted, value, config.sources[s.dotted]))
    return rows


def _unknown_profile(name: str, defined: list[str], found: Path | None) -> str:
    if found is None:
        return f"unknown profile {name!r}: no configuration file was found to define it"
    if not defined:
        return f"unknown profile {name!r}: the file defines no profiles"
    return f"unknown profile {name!r}{hint(name, defined)}; defined: {', '.join(defined)}"
