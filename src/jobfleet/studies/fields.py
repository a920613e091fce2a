"""The keys of a study file other than parameters, each checked; ``--set`` overrides.

Each reader takes the YAML value (None when the key is absent or null), its dotted
key and the study file, and returns the value checked or raises a
:class:`~jobfleet.errors.ConfigError` naming the file, the key and what would be
accepted. ``resources:`` is checked key by key as the configuration's
``resources:`` is (:func:`jobfleet.configschema.read_layer`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from jobfleet import backends as catalog
from jobfleet.backends.detect import AUTO
from jobfleet.config import _ALTERNATIVES
from jobfleet.configfile import config_error
from jobfleet.configschema import mapping, read_layer
from jobfleet.errors import SpecError, shown
from jobfleet.settings import hint
from jobfleet.spec import Resources
from jobfleet.studies.points import check_name, text
from jobfleet.validate import MAX_COUNT, check_line
from jobfleet.yamlsafe import load_yaml_bounded

__all__ = [
    "ALL",
    "EACH",
    "TOP_KEYS",
    "apply_override",
    "check_keys",
    "merge_resources",
    "read_after",
    "read_backend",
    "read_env",
    "read_max_concurrent",
    "read_name",
    "read_resources",
    "read_text",
    "read_workers",
]

#: The keys of a study file.
TOP_KEYS = (
    "name",
    "output",
    "backend",
    "profile",
    "resources",
    "env",
    "max_concurrent",
    "workers",
    "command",
    "shell",
    "parameters",
    "steps",
)
#: ``after: {sweep: each}``: point i of this step waits for point i of ``sweep``.
EACH = "each"
#: ``after: {sweep: all}`` (or ``after: sweep``): wait for every point of ``sweep``.
ALL = "all"

_STUDY_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}\Z")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
#: The longest step name (it goes into job names and directory names).
MAX_STEP_NAME = 64
#: The longest ``--set`` value read.
MAX_OVERRIDE = 64 * 1024


def check_keys(body: Mapping[Any, Any], valid: tuple[str, ...], prefix: str, source: str) -> None:
    """Refuse a key that is not one of ``valid``, suggesting the closest."""
    for key in body:
        if key not in valid:
            raise config_error(
                f"unknown key{hint(key, list(valid))}; valid keys: {', '.join(valid)}",
                source=source,
                key=f"{prefix}{key}",
            )


def read_name(value: object, source: str, *, key: str = "name", step: bool = False) -> str:
    """The study's name (safe in a file name), or a step's (a parameter-like name)."""
    if step:
        where = f"{key}.{value}"
        try:
            name = check_name(value, where)
        except SpecError as exc:
            raise config_error(
                exc.message.replace("a parameter", "a step"), source=source, key=where
            ) from None
        if len(name) > MAX_STEP_NAME:
            raise config_error(
                f"a step name has at most {MAX_STEP_NAME} characters", source=source, key=where
            )
        return name
    if value is None:
        raise config_error(
            "every study has a name (letters, digits, '.', '_' and '-'): add e.g. `name: grid`",
            source=source,
            key=key,
        )
    if not isinstance(value, str) or not _STUDY_NAME.match(value):
        raise config_error(
            f"{shown(value)} cannot name a study: use 1 to 100 letters, digits, '.', '_' "
            "and '-', starting with a letter or digit (it names directories and jobs)",
            source=source,
            key=key,
        )
    return value


def read_text(value: object, key: str, source: str) -> str | None:
    """One line of text, or None."""
    if value is None:
        return None
    try:
        return check_line(key, value)
    except SpecError as exc:
        raise config_error(exc.message, source=source, key=key) from None


def read_backend(value: object, source: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, str) and (value in catalog.available() or value == AUTO):
        return value
    raise config_error(catalog.unknown_backend(value), source=source, key="backend")


def _read_count(value: object, key: str, source: str, meaning: str) -> int | None:
    """A whole number from 1 to :data:`MAX_COUNT`, or None when not given."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_COUNT:
        raise config_error(
            f"expected a whole number from 1 to {MAX_COUNT} ({meaning}), got {shown(value)}",
            source=source,
            key=key,
        )
    return value


def read_workers(value: object, key: str, source: str) -> int | None:
    """``workers: N``: the step's points as pipe tasks served by N workers."""
    return _read_count(value, key, source, "workers serving the points as pipe tasks")


def read_max_concurrent(value: object, key: str, source: str) -> int | None:
    return _read_count(value, key, source, "most points running at once")


def read_env(value: object, key: str, source: str) -> dict[str, str]:
    """Environment variables: names to strings (numbers are written as text)."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise config_error(
            f"expected a mapping of variable names to values, e.g. {{OMP_NUM_THREADS: 4}}; "
            f"got {shown(value)}",
            source=source,
            key=key,
        )
    out: dict[str, str] = {}
    for name, item in value.items():
        where = f"{key}.{name}"
        if not isinstance(name, str) or not _ENV_NAME.match(name):
            raise config_error(
                f"{shown(name)} is not an environment variable name (letters, digits and _, "
                "not starting with a digit)",
                source=source,
                key=where,
            )
        ok = isinstance(item, (str, int, float)) and not isinstance(item, bool)
        if not ok or (isinstance(item, str) and "\0" in item):
            raise config_error(
                f"expected a string or a number, got {shown(item)} (quote it in YAML)",
                source=source,
                key=where,
            )
        out[name] = text(item) if isinstance(item, float) else str(item)
    return out


def read_after(value: object, key: str, source: str) -> list[tuple[str, str]]:
    """``after:``: a step, a list of steps (all of each), or ``{step: each|all}``."""
    if value is None:
        return []
    pairs: list[tuple[object, object]]
    if isinstance(value, str):
        pairs = [(value, ALL)]
    elif isinstance(value, list) and value:
        pairs = [(v, ALL) for v in value]
    elif isinstance(value, Mapping) and value:
        pairs = list(value.items())
    else:
        pairs = []
    if not pairs:
        raise config_error(
            f"expected a step name, a list of step names, or {{STEP: {EACH}}} / "
            f"{{STEP: {ALL}}}; got {shown(value)}",
            source=source,
            key=key,
        )
    seen: set[str] = set()
    out: list[tuple[str, str]] = []
    for step, kind in pairs:
        if not isinstance(step, str):
            raise config_error(f"{shown(step)} is not a step name", source=source, key=key)
        if step in seen:
            raise config_error(f"names step {step!r} twice", source=source, key=key)
        if kind not in (EACH, ALL):
            raise config_error(
                f"{shown(kind)}: expected {EACH} (point i after point i of {step}, same "
                f"points) or {ALL} (after every point of {step})",
                source=source,
                key=f"{key}.{step}",
            )
        seen.add(step)
        out.append((step, str(kind)))
    return out


def read_resources(value: object, key: str, source: str) -> dict[str, Any]:
    """``resources:`` in configuration form, each key checked as the configuration does."""
    if value is None:
        return {}
    section = mapping(value, source, key)
    prefix = key.removesuffix("resources")
    layer = read_layer({"resources": section}, source, prefix)
    out = {k.removeprefix("resources."): v for k, v in layer.items() if v is not None}
    _check_together(out, key, source)
    return out


def merge_resources(
    top: Mapping[str, Any], own: Mapping[str, Any], key: str, source: str
) -> dict[str, Any]:
    """A step's resources over the study's: a step's ``memory_per_core`` replaces the
    study's ``memory`` (and so on, as configuration layers do)."""
    merged = dict(top)
    groups = [*_ALTERNATIVES, ("cores", "cores_per_task")]
    for group in groups:
        if any(k in own for k in group):
            for k in group:
                merged.pop(k, None)
    merged.update(own)
    _check_together(merged, key, source)
    return merged


def _check_together(values: Mapping[str, Any], key: str, source: str) -> None:
    """Keys that contradict each other (tasks and tasks_per_node); mail_to may come
    from the configuration."""
    companions = {"mail_to": "someone"} if values.get("mail_on") and "mail_to" not in values else {}
    try:
        Resources.from_mapping({**values, **companions}, prefix=key)
    except SpecError as exc:
        raise config_error(exc.message, source=source, key=exc.field) from None


def apply_override(data: dict[Any, Any], given: str, source: str) -> str:
    """Set ``KEY=VALUE`` (a dotted key, a YAML value) in ``data``; returns the key.

    Mappings along the key are copied before they change (YAML aliases share them),
    and made when missing; a null value is as if the key were absent.
    """
    where = f"{source} (--set)"
    key, equals, raw = given.partition("=")
    parts = key.split(".")
    if not equals or not all(p.strip() for p in parts):
        raise config_error(
            f"expected KEY=VALUE with a dotted key, e.g. resources.cores=4 or "
            f"parameters.a=[1,2]; got {shown(given)}",
            source=where,
        )
    if len(raw) > MAX_OVERRIDE:
        raise config_error(
            f"the value is {len(raw):,} characters; at most {MAX_OVERRIDE:,}", source=where, key=key
        )
    value = load_yaml_bounded(raw, source=f"{source} (--set {key})")
    node = data
    for i, part in enumerate(parts[:-1]):
        child = node.get(part)
        if child is None:
            child = {}
        elif isinstance(child, Mapping):
            child = dict(child)
        else:
            above = ".".join(parts[: i + 1])
            raise config_error(
                f"{above} is {shown(child)}, not a mapping: set it whole (--set {above}=...)",
                source=where,
                key=key,
            )
        node[part] = child
        node = child
    node[parts[-1]] = value
    return key
