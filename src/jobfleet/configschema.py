"""The configuration's keys, and one layer of values checked against them.

:func:`schema` lists every key: jobfleet's own (``resources``, ``environment``,
``wait``) and each installed backend's section, built from its settings dataclass.
:func:`read_layer` and :func:`read_overrides` check one layer (a file's base or a
profile; the command line's overrides) key by key, each problem a
:class:`~jobfleet.errors.ConfigError` naming its source and dotted key;
:mod:`jobfleet.config` finds the layers and merges them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from jobfleet import backends as catalog
from jobfleet import environment
from jobfleet.configfile import config_error
from jobfleet.environment import Environment
from jobfleet.errors import SpecError, shown
from jobfleet.resources import KEY_DOCS, Resources
from jobfleet.settings import Parser, duration, hint, interval, options, plain_text
from jobfleet.units import parse_begin

AUTO = catalog.AUTO

__all__ = [
    "COMMAND_LINE",
    "RESOURCE_DEFAULTS",
    "Schema",
    "Setting",
    "core_table",
    "mapping",
    "read_layer",
    "read_overrides",
    "schema",
    "table",
]

#: The source of a value given on the command line (``jobfleet config show`` names it).
COMMAND_LINE = "command line"


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
    # known(): jobfleet's own without a scan; another's entry point alone is loaded
    if isinstance(value, str) and (value == AUTO or catalog.known(value)):
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


#: The resources every job has unless a layer says otherwise.
RESOURCE_DEFAULTS: dict[str, Any] = {"cores": 1, "exclusive": False}


#: The keys of jobfleet itself, before the backends' sections.
_CORE: tuple[Setting, ...] = (
    *(
        Setting("resources", k, _resource, RESOURCE_DEFAULTS.get(k), KEY_DOCS[k])
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
class Schema:
    rows: tuple[Setting, ...]
    by_key: dict[str, Setting]
    by_place: dict[tuple[str, str], Setting]
    top_keys: list[str]
    sections: list[str]


#: (the catalog it was built for, the schema): rebuilt when the catalog is scanned again.
_cached: list[tuple[Mapping[str, Any], Schema]] = []


def table() -> Schema:
    """The schema of the installed backends (built once per catalog scan)."""
    backends = catalog.available()
    if _cached and _cached[0][0] is backends:
        return _cached[0][1]
    rows = [_backend_row(", ".join(backends)), *_CORE]
    for name, backend in backends.items():
        rows += section_rows(name, backend.settings)
    built = _schema(rows)
    _cached[:] = [(backends, built)]
    return built


def core_table() -> Schema:
    """The schema of jobfleet's own keys only (no backend section), built without
    loading any backend: enough for a layer that sets none of their keys."""
    return _CORE_TABLE


def section_rows(name: str, settings: type[Any]) -> list[Setting]:
    """The keys of one backend's section, from its settings dataclass."""
    return [Setting(name, opt.key, opt.parse, opt.default, opt.doc) for _, opt in options(settings)]


def _backend_row(names: str) -> Setting:
    doc = f"default backend: {AUTO} (the scheduler found here, else local)"
    return Setting("", "backend", _backend, AUTO, f"{doc}, {names}" if names else doc)


def _schema(rows: list[Setting]) -> Schema:
    return Schema(
        tuple(rows),
        {s.dotted: s for s in rows},
        {(s.section, s.name): s for s in rows},
        [s.name for s in rows if not s.section],
        list(dict.fromkeys(s.section for s in rows if s.section)),
    )


_CORE_TABLE = _schema([_backend_row(""), *_CORE])


def schema() -> tuple[Setting, ...]:
    """Every configuration key, in the order `jobfleet config show` lists them:
    jobfleet's own, then each installed backend's section."""
    return table().rows


def mapping(value: object, source: str, key: str) -> Mapping[Any, Any]:
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


def read_layer(
    data: Mapping[Any, Any], source: str, prefix: str, extra: list[str] | None = None
) -> dict[str, Any]:
    """Check one layer (the file's base or a profile); its values by dotted key."""
    core = core_table()
    mine = all(str(n) in core.top_keys or str(n) in core.sections for n in data)
    known = core if mine else table()  # a backend's section (or a typo): every backend
    out: dict[str, Any] = {}
    for name, value in data.items():
        name = str(name)
        if name in known.sections:
            section = mapping(value, source, prefix + name)
            items = [(name, str(sub), sub_value) for sub, sub_value in section.items()]
        else:
            items = [("", name, value)]
        for section_name, sub, item in items:
            key = f"{section_name}.{sub}" if section_name else sub
            setting = known.by_place.get((section_name, sub))
            if setting is None:
                if section_name:
                    what, valid = "key", [s.name for s in known.rows if s.section == section_name]
                else:
                    what, valid = "section or key", known.top_keys + known.sections + (extra or [])
                message = f"unknown {what}{hint(sub, valid)}; valid keys: {', '.join(valid)}"
                raise config_error(message, source=source, key=prefix + key)
            out[key] = _parse(setting, item, source, prefix + key)
    return out


def read_overrides(overrides: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in overrides.items():
        if value is None:
            continue
        setting = core_table().by_key.get(str(key)) or table().by_key.get(str(key))
        if setting is None:
            valid = list(table().by_key)
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
