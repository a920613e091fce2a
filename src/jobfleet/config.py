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
    local: {cores: auto, cancel_grace: 10s}
    wait: {poll_interval: 0.5s}
    profiles:
      big: {resources: {cores: 16, memory: 64G}}

Every key is one row of :data:`SCHEMA`; a new section (``slurm:``) is a few
more rows. Every problem raises :class:`~jobfleet.errors.ConfigError` naming
the file, the dotted key and what would be accepted.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from difflib import get_close_matches
from pathlib import Path
from typing import Any

import yaml

from jobfleet.backends import KNOWN_BACKENDS
from jobfleet.errors import ConfigError, SpecError
from jobfleet.spec import Resources
from jobfleet.units import parse_interval, parse_memory, parse_walltime

__all__ = [
    "SCHEMA",
    "Config",
    "LocalSettings",
    "Setting",
    "SgeConfig",
    "SlurmConfig",
    "WaitConfig",
    "describe",
    "find_config_file",
    "load_config",
]

ENV_VAR = "JOBFLEET_CONFIG"
COMMAND_LINE = "command line"
DEFAULT = "default"

#: A parser gets a value (never None) and its dotted key; it returns the value in
#: YAML form (JSON-serialisable) or raises SpecError saying what is accepted.
Parser = Callable[[Any, str], Any]


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


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _hint(word: object, choices: list[str]) -> str:
    close = get_close_matches(str(word), choices, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _backend(value: Any, key: str) -> Any:
    if isinstance(value, str) and value in KNOWN_BACKENDS:
        return value
    hint = _hint(value, list(KNOWN_BACKENDS)) if isinstance(value, str) else ""
    raise SpecError(
        key, f"unknown backend {_show(value)}{hint}; choose one of {', '.join(KNOWN_BACKENDS)}"
    )


_LIST_KEYS = ("extra_directives", "directives_skip", "extra_args")


def _resource(value: Any, key: str) -> Any:
    name = key.rpartition(".")[2]
    if name in ("queue", "account") and type(value) is int:
        value = str(value)  # YAML reads `account: 12345` as a number
    if name in _LIST_KEYS:
        if not isinstance(value, (list, tuple)):
            raise SpecError(key, f"expected a list of strings, got {_show(value)}")
        value = list(value)
    Resources.from_mapping({name: value}, prefix=key.rpartition(".")[0])
    return value


def _whole(minimum: int) -> Parser:
    def parse(value: Any, key: str) -> Any:
        if type(value) is not int or value < minimum:
            raise SpecError(key, f"expected a whole number >= {minimum}, got {_show(value)}")
        return value

    return parse


def _or_auto(parse: Parser) -> Parser:
    def parse_or_auto(value: Any, key: str) -> Any:
        if isinstance(value, str) and value.strip().lower() == "auto":
            return "auto"
        try:
            return parse(value, key)
        except SpecError as exc:
            raise SpecError(key, f"{exc.message}; or write 'auto'") from None

    return parse_or_auto


def _checked(check: Callable[[Any, str], object]) -> Parser:
    """A parser that validates with ``check`` and keeps the value as written."""

    def parse(value: Any, key: str) -> Any:
        check(value, key)
        return value

    return parse


def _interval_seconds(value: Any, key: str) -> float:
    return parse_interval(value, key)


_RESOURCE_DOCS = {
    "cores": "CPU cores per task",
    "memory": "memory per job, e.g. 4G (1024-based) or 4GB (1000-based)",
    "walltime": "run time limit, e.g. 1h30m or 01:30:00",
    "gpus": "GPUs per job",
    "nodes": "number of nodes",
    "queue": "queue or partition",
    "account": "account or project to charge",
    "extra_directives": "raw scheduler directives added to every job script",
    "directives_skip": "leave out generated directives containing any of these strings",
    "extra_args": "extra arguments for the submit command",
}


def _name(value: Any, key: str) -> Any:
    if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z0-9_.-]+", value):
        raise SpecError(
            key, f"expected a name of letters, digits, '_', '.' or '-', got {_show(value)}"
        )
    return value


def _choice(*choices: str) -> Parser:
    def parse(value: Any, key: str) -> Any:
        if value not in choices:
            raise SpecError(key, f"choose one of {', '.join(choices)}; got {_show(value)}")
        return value

    return parse


def _bool(value: Any, key: str) -> Any:
    if not isinstance(value, bool):
        raise SpecError(key, f"expected true or false, got {_show(value)}")
    return value


_memory = _checked(parse_memory)
_duration = _checked(parse_walltime)
_interval = _checked(_interval_seconds)

#: Every configuration key, in the order `jobfleet config show` lists them.
SCHEMA: tuple[Setting, ...] = (
    Setting("", "backend", _backend, "local", f"default backend: {', '.join(KNOWN_BACKENDS)}"),
    *(
        Setting("resources", k, _resource, 1 if k == "cores" else None, _RESOURCE_DOCS[k])
        for k in Resources.KEYS
    ),
    Setting("local", "cores", _or_auto(_whole(1)), "auto", "cores the local backend may use"),
    Setting("local", "memory", _or_auto(_memory), "auto", "memory the local backend may use"),
    Setting("local", "gpus", _or_auto(_whole(0)), "auto", "GPUs the local backend may use"),
    Setting("local", "cancel_grace", _duration, "10s", "how long a cancelled job may take to exit"),
    Setting("local", "idle_exit", _duration, "60s", "the local agent exits after this idle time"),
    Setting("wait", "poll_interval", _interval, "1s", "longest time between status polls"),
    Setting("wait", "first_poll", _interval, "0.1s", "first time between polls (then grows)"),
    Setting(
        "wait",
        "min_gap",
        _interval,
        "1s",
        "least time between two polls of a scheduler (keeps clear of its rate limit)",
    ),
    Setting(
        "wait",
        "lost_after",
        _duration,
        "5m",
        "a job missing from queue, accounting and exit files this long (in answered polls) is lost",
    ),
    Setting("slurm", "command_timeout", _duration, "60s", "longest wait for one SLURM command"),
    Setting(
        "slurm", "submit_retries", _whole(0), 5, "retries of a submission SLURM refused for now"
    ),
    Setting("slurm", "retry_backoff", _interval, "1s", "first pause before a retry (doubles)"),
    Setting("sge", "command_timeout", _duration, "60s", "longest wait for one Grid Engine command"),
    Setting("sge", "submit_retries", _whole(0), 5, "retries of a submission refused for now"),
    Setting("sge", "retry_backoff", _interval, "1s", "first pause before a retry (doubles)"),
    Setting("sge", "parallel_environment", _name, "smp", "PE giving a job several slots on a host"),
    Setting(
        "sge",
        "memory_resource",
        _choice("h_vmem", "mem_free"),
        "h_vmem",
        "h_vmem (enforced limit, per slot) or mem_free (free memory the host needs, whole job)",
    ),
    Setting("sge", "gpu_resource", _name, "gpu", "the consumable this site uses for GPUs"),
    Setting("sge", "verify_requests", _bool, True, "qsub -w e: refuse what could never run"),
    Setting(
        "slurm",
        "kill_invalid_dependents",
        _bool,
        True,
        "cancel a job whose dependency can never be met (--kill-on-invalid-dep)",
    ),
)

_BY_KEY = {s.dotted: s for s in SCHEMA}
_BY_PLACE = {(s.section, s.name): s for s in SCHEMA}
_TOP_KEYS = [s.name for s in SCHEMA if not s.section]
_SECTIONS = list(dict.fromkeys(s.section for s in SCHEMA if s.section))


@dataclass(frozen=True, slots=True)
class LocalSettings:
    """Settings of the local backend; None means detect automatically."""

    cores: int | None = None
    memory_bytes: int | None = None
    gpus: int | None = None
    cancel_grace_s: int = 10
    idle_exit_s: int = 60


@dataclass(frozen=True, slots=True)
class SlurmConfig:
    """Settings of the SLURM backend (section ``slurm:``)."""

    command_timeout_s: int = 60
    submit_retries: int = 5
    retry_backoff_s: float = 1.0
    kill_invalid_dependents: bool = True


@dataclass(frozen=True, slots=True)
class SgeConfig:
    """Settings of the Grid Engine backend (section ``sge:``)."""

    command_timeout_s: int = 60
    submit_retries: int = 5
    retry_backoff_s: float = 1.0
    parallel_environment: str = "smp"
    memory_resource: str = "h_vmem"
    gpu_resource: str = "gpu"
    verify_requests: bool = True


@dataclass(frozen=True, slots=True)
class WaitConfig:
    """How jobs are watched (section ``wait:``); see :class:`jobfleet.monitor.Monitor`."""

    poll_interval_s: float = 1.0
    first_poll_s: float = 0.1
    min_gap_s: float = 1.0
    lost_after_s: int = 300


@dataclass(frozen=True, slots=True)
class Config:
    """The merged configuration.

    Attributes:
        backend: default backend name.
        resources: default resources for every job.
        local: settings of the local backend.
        slurm: settings of the SLURM backend.
        sge: settings of the Grid Engine backend.
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
    local: LocalSettings
    slurm: SlurmConfig
    sge: SgeConfig
    wait: WaitConfig
    profile: str | None
    path: str | None
    values: dict[str, Any]
    sources: dict[str, str]
    profiles: tuple[str, ...]


def find_config_file(
    explicit: str | os.PathLike[str] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> Path | None:
    """The configuration file to read, or None when there is none.

    Relative paths are taken from ``cwd``. ``env`` defaults to ``os.environ``.

    Raises:
        ConfigError: the explicit path or ``$JOBFLEET_CONFIG`` names no file.
    """
    env = os.environ if env is None else env
    if cwd is None:
        try:
            cwd = Path.cwd()
        except FileNotFoundError:
            # The current directory was deleted: relative names find nothing
            # there, and the configuration still loads from the other places.
            cwd = Path()
    if explicit is not None:
        path = cwd / explicit
        if not path.exists():
            raise ConfigError("no such configuration file", source=str(explicit))
        return path
    if named := env.get(ENV_VAR):
        path = cwd / named
        if not path.exists():
            raise ConfigError(f"{named} does not exist; fix or unset it", source=f"${ENV_VAR}")
        return path
    xdg = env.get("XDG_CONFIG_HOME", "")
    # The XDG spec says to ignore a relative XDG_CONFIG_HOME.
    user_dir = (
        Path(xdg) if Path(xdg).is_absolute() else Path(env.get("HOME") or Path.home()) / ".config"
    )
    for path in (cwd / "jobfleet.yaml", user_dir / "jobfleet" / "config.yaml"):
        if path.exists():
            return path
    return None


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
    found = find_config_file(path, env=env, cwd=cwd)
    source = str(found) if found is not None else COMMAND_LINE
    data = _mapping(_read_yaml(found) if found else None, source, "")
    base = dict(data)
    raw_profiles = _mapping(base.pop("profiles", None), source, "profiles")
    profiles: dict[str, dict[str, Any]] = {}
    for name, body in raw_profiles.items():
        if not isinstance(name, str):
            raise ConfigError("profile names must be text", source=source, key=f"profiles.{name}")
        where = f"profiles.{name}"
        profiles[name] = _read_layer(_mapping(body, source, where), source, f"{where}.")
    layers = [(_read_layer(base, source, "", extra=["profiles"]), source)]
    if profile is not None:
        if profile not in profiles:
            raise ConfigError(_unknown_profile(profile, list(profiles), found), source=source)
        layers.append((profiles[profile], f"{source} (profile {profile})"))
    layers.append((_read_overrides(overrides or {}), COMMAND_LINE))

    flat = {s.dotted: s.default for s in SCHEMA}
    sources = dict.fromkeys(flat, DEFAULT)
    for layer, layer_source in layers:
        flat.update(layer)
        sources.update(dict.fromkeys(layer, layer_source))
    values: dict[str, Any] = {}
    for s in SCHEMA:
        (values.setdefault(s.section, {}) if s.section else values)[s.name] = flat[s.dotted]

    def auto(key: str, convert: Callable[[Any, str], int]) -> int | None:
        return None if flat[key] == "auto" else convert(flat[key], key)

    try:
        return Config(
            backend=flat["backend"],
            resources=Resources.from_mapping(values["resources"]),
            local=LocalSettings(
                cores=auto("local.cores", _whole(1)),
                memory_bytes=auto("local.memory", parse_memory),
                gpus=auto("local.gpus", _whole(0)),
                cancel_grace_s=parse_walltime(flat["local.cancel_grace"], "local.cancel_grace"),
                idle_exit_s=parse_walltime(flat["local.idle_exit"], "local.idle_exit"),
            ),
            slurm=SlurmConfig(
                command_timeout_s=parse_walltime(
                    flat["slurm.command_timeout"], "slurm.command_timeout"
                ),
                submit_retries=flat["slurm.submit_retries"],
                retry_backoff_s=_interval_seconds(
                    flat["slurm.retry_backoff"], "slurm.retry_backoff"
                ),
                kill_invalid_dependents=flat["slurm.kill_invalid_dependents"],
            ),
            sge=SgeConfig(
                command_timeout_s=parse_walltime(
                    flat["sge.command_timeout"], "sge.command_timeout"
                ),
                submit_retries=flat["sge.submit_retries"],
                retry_backoff_s=_interval_seconds(flat["sge.retry_backoff"], "sge.retry_backoff"),
                parallel_environment=flat["sge.parallel_environment"],
                memory_resource=flat["sge.memory_resource"],
                gpu_resource=flat["sge.gpu_resource"],
                verify_requests=flat["sge.verify_requests"],
            ),
            wait=WaitConfig(
                poll_interval_s=_interval_seconds(flat["wait.poll_interval"], "wait.poll_interval"),
                first_poll_s=_interval_seconds(flat["wait.first_poll"], "wait.first_poll"),
                min_gap_s=_interval_seconds(flat["wait.min_gap"], "wait.min_gap"),
                lost_after_s=parse_walltime(flat["wait.lost_after"], "wait.lost_after"),
            ),
            profile=profile,
            path=str(found) if found is not None else None,
            values=values,
            sources=sources,
            profiles=tuple(profiles),
        )
    except SpecError as exc:  # pragma: no cover - every layer was checked key by key
        raise ConfigError(exc.message, source=sources.get(exc.field), key=exc.field) from None


def describe(config: Config) -> list[tuple[str, Any, str]]:
    """(dotted key, value, source) rows in schema order, for ``jobfleet config show``."""
    rows = []
    for s in SCHEMA:
        value = config.values[s.section][s.name] if s.section else config.values[s.name]
        rows.append((s.dotted, value, config.sources[s.dotted]))
    return rows


def _read_yaml(path: Path) -> Any:
    try:
        text = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror or exc}", source=str(path)) from None
    try:
        return yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = exc.problem or exc.context or "syntax error"
        raise ConfigError(f"invalid YAML{at}: {problem}", source=str(path)) from None
    # PyYAML's constructors also raise bare ValueError, KeyError, AttributeError, ...
    # for bad explicit tags (`!!bool maybe`, `!!timestamp x`) and RecursionError for
    # deep nesting; none of them means anything but "not valid YAML".
    except Exception as exc:
        raise ConfigError(f"invalid YAML: {_show(str(exc))}", source=str(path)) from None


def _mapping(value: object, source: str, key: str) -> Mapping[Any, Any]:
    """A YAML mapping; an empty section (or an empty file) is an empty mapping."""
    if value is None:
        return {}
    if isinstance(value, Mapping):
        return value
    what = f"section {key!r}" if key else "the file"
    raise ConfigError(
        f"{what} must be a mapping of keys to values, got {type(value).__name__}",
        source=source,
        key=key or None,
    )


def _read_layer(
    data: Mapping[Any, Any], source: str, prefix: str, extra: list[str] | None = None
) -> dict[str, Any]:
    """Check one layer (the file's base or a profile); its values by dotted key."""
    out: dict[str, Any] = {}
    for name, value in data.items():
        name = str(name)
        if name in _SECTIONS:
            section = _mapping(value, source, prefix + name)
            items = [(name, str(sub), sub_value) for sub, sub_value in section.items()]
        else:
            items = [("", name, value)]
        for section_name, sub, item in items:
            key = f"{section_name}.{sub}" if section_name else sub
            setting = _BY_PLACE.get((section_name, sub))
            if setting is None:
                if section_name:
                    what, valid = "key", [s.name for s in SCHEMA if s.section == section_name]
                else:
                    what, valid = "section or key", _TOP_KEYS + _SECTIONS + (extra or [])
                message = f"unknown {what}{_hint(sub, valid)}; valid keys: {', '.join(valid)}"
                raise ConfigError(message, source=source, key=prefix + key)
            out[key] = _parse(setting, item, source, prefix + key)
    return out


def _read_overrides(overrides: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in overrides.items():
        if value is None:
            continue
        setting = _BY_KEY.get(str(key))
        if setting is None:
            valid = list(_BY_KEY)
            message = f"unknown key{_hint(key, valid)}; valid keys: {', '.join(valid)}"
            raise ConfigError(message, source=COMMAND_LINE, key=str(key))
        out[setting.dotted] = _parse(setting, value, COMMAND_LINE, setting.dotted)
    return out


def _parse(setting: Setting, value: Any, source: str, key: str) -> Any:
    if value is None:
        if setting.default is None:
            return None
        raise ConfigError(
            f"null is not allowed here; remove the line to get the default ({setting.default})",
            source=source,
            key=key,
        )
    try:
        return setting.parse(value, setting.dotted)
    except SpecError as exc:
        # Keep the detail of a list item's field (`extra_args[2]`) under the full key.
        detail = exc.field[len(setting.dotted) :] if exc.field.startswith(setting.dotted) else ""
        raise ConfigError(exc.message, source=source, key=key + detail) from None


def _unknown_profile(name: str, defined: list[str], found: Path | None) -> str:
    if found is None:
        return f"unknown profile {name!r}: no configuration file was found to define it"
    if not defined:
        return f"unknown profile {name!r}: the file defines no profiles"
    return f"unknown profile {name!r}{_hint(name, defined)}; defined: {', '.join(defined)}"
