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

Every key is one row of :func:`schema`. Each backend's section (``slurm:``) comes
from its settings dataclass, whose fields declare their keys
(:func:`jobfleet.settings.option`): an installed backend brings its section
with it, and ``Config.backends`` holds each one's settings. Every problem
raises :class:`~jobfleet.errors.ConfigError` naming the file, the dotted key
and what would be accepted.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from jobfleet import backends as catalog
from jobfleet import environment
from jobfleet.backends.detect import AUTO
from jobfleet.backends.local import LocalSettings
from jobfleet.backends.sge import SgeSettings
from jobfleet.backends.slurm import SlurmSettings
from jobfleet.configfile import config_error, find_config_file, locate, read_config_yaml
from jobfleet.environment import Environment
from jobfleet.errors import ConfigError, SpecError, shown
from jobfleet.resources import KEY_DOCS
from jobfleet.settings import Parser, duration, hint, interval, options, plain_text
from jobfleet.spec import Resources
from jobfleet.units import parse_begin, parse_interval, parse_walltime

__all__ = [  # noqa: F822 - SCHEMA comes from the module's __getattr__
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

COMMAND_LINE = "command line"
DEFAULT = "default"


@dataclass(frozen=True, slots=True)
class Setting:
    """One configuration key: ``section`` is ``""`` for a top-level key.

    A key whose default is None may be set to null; the others may not.
    """

    section: str
    name: str
    parse: Parser
    default: Any
    doc: str

    @property
    def dotted(self) -> str:
        return f"{self.section}.{self.name}" if self.section else self.name


def _backend(value: Any, key: str) -> Any:
    if isinstance(value, str) and (value in catalog.available() or value == AUTO):
        return value
    raise SpecError(key, catalog.unknown_backend(value))


_LIST_KEYS = ("extra_directives", "directives_skip", "extra_args", "mail_on", "licenses")
_NAME_KEYS = ("queue", "account", "qos", "reservation", "constraint")
#: Most entries of a list setting: raw directives and arguments are a handful, and
#: every one is checked and written into each job script or submit command.
MAX_LIST = 1000


def _resource(value: Any, key: str) -> Any:
    name = key.rpartition(".")[2]
    if name in _NAME_KEYS and type(value) is int:
        value = str(value)  # YAML reads `account: 12345` as a number
    if name in _LIST_KEYS:
        if not isinstance(value, (list, tuple)):
            raise SpecError(key, f"expected a list of strings, got {shown(value)}")
        if len(value) > MAX_LIST:
            raise SpecError(key, f"has {len(value)} entries; at most {MAX_LIST} are accepted")
        value = list(value)
    elif name in ("memory", "walltime", "memory_per_core", "begin"):
        if name == "begin" and isinstance(value, (datetime, date)):
            value = parse_begin(value, key)  # YAML read an unquoted time: keep it as text
        plain_text(value, key)
    # Checked alone: the keys it goes with (mail_to for mail_on) may come from another layer.
    companions = {"mail_to": "x"} if name == "mail_on" else {}
    Resources.from_mapping({name: value, **companions}, prefix=key.rpartition(".")[0])
    return value


_RESOURCE_DEFAULTS: dict[str, Any] = {"cores": 1, "exclusive": False}
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
                flat[f"resources.{k}"] = _RESOURCE_DEFAULTS.get(k)
    return layer


#: The keys of jobfleet itself, before the backends' sections.
_CORE: tuple[Setting, ...] = (
    *(
        Setting("resources", k, _resource, _RESOURCE_DEFAULTS.get(k), KEY_DOCS[k])
        for k in Resources.KEYS
    ),
    # Every job's set-up; a job's own entries come after these (Environment.then).
    *(
        Setting("environment", k, environment.parse_setting, None, environment.DOCS[k])
        for k in Environment.KEYS
    ),
    Setting("wait", "poll_interval", interval, "1s", "longest time between status polls"),
    Setting("wait", "first_poll", interval, "0.1s", "first time between polls (then grows)"),
    Setting(
        "wait",
        "min_gap",
        interval,
        "1s",
        "least time between two polls of a scheduler (keeps clear of its rate limit)",
    ),
    Setting(
        "wait",
        "lost_after",
        duration,
        "5m",
        "a job missing from queue, accounting and exit files this long (in answered polls) is lost",
    ),
    Setting(
        "wait",
        "status_timeout",
        interval,
        "5s",
        "longest wait of status and queue for a scheduler (then: its last known states)",
    ),
)


@dataclass(frozen=True, slots=True)
class _Schema:
    rows: tuple[Setting, ...]
    by_key: dict[str, Setting]
    by_place: dict[tuple[str, str], Setting]
    top_keys: list[str]
    sections: list[str]


#: (the catalog it was built for, the schema): rebuilt when the catalog is scanned again.
_cached: list[tuple[Mapping[str, Any], _Schema]] = []


def _schema() -> _Schema:
    """The schema of the installed backends (built once per catalog scan)."""
    backends = catalog.available()
    if _cached and _cached[0][0] is backends:
        return _cached[0][1]
    rows = [
        Setting(
            "",
            "backend",
            _backend,
            AUTO,
            f"default backend: {AUTO} (the scheduler found here, else local), "
            + ", ".join(backends),
        ),
        *_CORE,
    ]
    for name, backend in backends.items():
        rows += [
            Setting(name, opt.key, opt.parse, opt.default, opt.doc)
            for _, opt in options(backend.settings)
        ]
    built = _Schema(
        tuple(rows),
        {s.dotted: s for s in rows},
        {(s.section, s.name): s for s in rows},
        [s.name for s in rows if not s.section],
        list(dict.fromkeys(s.section for s in rows if s.section)),
    )
    _cached[:] = [(backends, built)]
    return built


def schema() -> tuple[Setting, ...]:
    """Every configuration key, in the order `jobfleet config show` lists them:
    jobfleet's own, then each installed backend's section."""
    return _schema().rows


def __getattr__(name: str) -> Any:
    # SCHEMA follows the installed backends: computed on use, not at import.
    if name == "SCHEMA":
        return schema()
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
    """

    backend: str
    resources: Resources
    environment: Environment
    backends: Mapping[str, Any]
    wait: WaitConfig
    profile: str | None
    path: str | None
    values: dict[str, Any]
    sources: dict[str, str]
    profiles: tuple[str, ...]

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
    data = _mapping(read_config_yaml(*found_at) if found_at else None, source, "")
    base = dict(data)
    raw_profiles = _mapping(base.pop("profiles", None), source, "profiles")
    profiles: dict[str, dict[str, Any]] = {}
    for name, body in raw_profiles.items():
        if not isinstance(name, str):
            raise config_error("profile names must be text", source=source, key=f"profiles.{name}")
        where = f"profiles.{name}"
        profiles[name] = _read_layer(_mapping(body, source, where), source, f"{where}.")
    layers = [(_read_layer(base, source, "", extra=["profiles"]), source)]
    if profile is not None:
        if profile not in profiles:
            raise config_error(_unknown_profile(profile, list(profiles), found), source=source)
        layers.append((profiles[profile], f"{source} (profile {profile})"))
    layers.append((_read_overrides(overrides or {}), COMMAND_LINE))

    table = _schema()
    flat = {s.dotted: s.default for s in table.rows}
    sources = dict.fromkeys(flat, DEFAULT)
    for layer, layer_source in layers:
        layer = _layered(flat, layer, layer_source)
        flat.update(layer)
        sources.update(dict.fromkeys(layer, layer_source))
    values: dict[str, Any] = {}
    for s in table.rows:
        (values.setdefault(s.section, {}) if s.section else values)[s.name] = flat[s.dotted]

    try:
        return Config(
            backend=flat["backend"],
            resources=Resources.from_mapping(values["resources"]),
            environment=Environment.from_mapping(values["environment"]),
            backends={
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
            values=values,
            sources=sources,
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


def _mapping(value: object, source: str, key: str) -> Mapping[Any, Any]:
    """A YAML mapping; an empty section (or an empty file) is an empty mapping."""
    if value is None:
        return {}
    if isinstance(value, Mapping):
        return value
    what = f"section {key!r}" if key else "the file"
    raise config_error(
        f"{what} must be a mapping of keys to values, got {type(value).__name__}",
        source=source,
        key=key or None,
    )


def _read_layer(
    data: Mapping[Any, Any], source: str, prefix: str, extra: list[str] | None = None
) -> dict[str, Any]:
    """Check one layer (the file's base or a profile); its values by dotted key."""
    table = _schema()
    out: dict[str, Any] = {}
    for name, value in data.items():
        name = str(name)
        if name in table.sections:
            section = _mapping(value, source, prefix + name)
            items = [(name, str(sub), sub_value) for sub, sub_value in section.items()]
        else:
            items = [("", name, value)]
        for section_name, sub, item in items:
            key = f"{section_name}.{sub}" if section_name else sub
            setting = table.by_place.get((section_name, sub))
            if setting is None:
                if section_name:
                    what, valid = "key", [s.name for s in table.rows if s.section == section_name]
                else:
                    what, valid = "section or key", table.top_keys + table.sections + (extra or [])
                message = f"unknown {what}{hint(sub, valid)}; valid keys: {', '.join(valid)}"
                raise config_error(message, source=source, key=prefix + key)
            out[key] = _parse(setting, item, source, prefix + key)
    return out


def _read_overrides(overrides: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in overrides.items():
        if value is None:
            continue
        setting = _schema().by_key.get(str(key))
        if setting is None:
            valid = list(_schema().by_key)
            message = f"unknown key{hint(key, valid)}; `jobfleet config show` lists them all"
            raise config_error(message, source=COMMAND_LINE, key=str(key))
        out[setting.dotted] = _parse(setting, value, COMMAND_LINE, setting.dotted)
    return out


def _parse(setting: Setting, value: Any, source: str, key: str) -> Any:
    if value is None:
        if setting.default is None:
            return None
        raise config_error(
            f"null is not allowed here; remove the line to get the default ({setting.default})",
            source=source,
            key=key,
        )
    try:
        return setting.parse(value, setting.dotted)
    except SpecError as exc:
        # Keep the detail of a list item's field (`extra_args[2]`) under the full key.
        detail = exc.field[len(setting.dotted) :] if exc.field.startswith(setting.dotted) else ""
        raise config_error(exc.message, source=source, key=key + detail) from None
    # A parser from a backend may let through what Python raises on odd values
    # (a huge number, an unhashable one); it is still this key's problem.
    except (ValueError, OverflowError, TypeError, ArithmeticError) as exc:
        raise config_error(
            f"cannot use {shown(value)}: {shown(str(exc))}", source=source, key=key
        ) from None


def _unknown_profile(name: str, defined: list[str], found: Path | None) -> str:
    if found is None:
        return f"unknown profile {name!r}: no configuration file was found to define it"
    if not defined:
        return f"unknown profile {name!r}: the file defines no profiles"
    return f"unknown profile {name!r}{hint(name, defined)}; defined: {', '.join(defined)}"
