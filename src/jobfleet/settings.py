"""Configuration keys as dataclass fields, and the parsers of their YAML values.

A backend's settings are a frozen dataclass whose fields say which YAML key
they are read from (:func:`option`); :mod:`jobfleet.config` builds the
backend's section from them, so a new backend brings its keys with it::

    @dataclass(frozen=True, slots=True)
    class EchoSettings:
        delay_s: float = option("delay", "0s", "pause before each job", parse=interval,
                                convert=to_seconds)

Each key has a YAML default (what ``jobfleet config show`` prints) and a
``convert`` turning a YAML value into the field's value; the field's own
default is ``convert(default)``. This module imports nothing of jobfleet but
errors, spec and units, so backends and the configuration loader both can.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from jobfleet.errors import SpecError, shown
from jobfleet.units import parse_interval, parse_memory, parse_walltime

__all__ = [
    "Option",
    "Parser",
    "as_bool",
    "auto_or",
    "checked",
    "choice",
    "duration",
    "hint",
    "interval",
    "memory",
    "name",
    "option",
    "options",
    "plain_text",
    "same",
    "to_seconds",
    "whole",
]

#: A parser gets a value (never None) and its dotted key; it returns the value in
#: YAML form (JSON-serialisable) or raises SpecError saying what is accepted.
Parser = Callable[[Any, str], Any]
#: Turns a checked YAML value into the settings field's value.
Converter = Callable[[Any, str], Any]

_OPTION = "jobfleet.option"


@dataclass(frozen=True, slots=True)
class Option:
    """One configuration key of a settings dataclass.

    Attributes:
        key: the YAML key inside the backend's section (``command_timeout``).
        parse: checks a YAML value; returns it in YAML form.
        default: the YAML default (shown by ``jobfleet config show``). A key whose
            default is None may be set to null; the others may not.
        doc: one line for ``jobfleet config show`` and the docs.
        convert: YAML value -> the field's value (``"60s"`` -> ``60``).
    """

    key: str
    parse: Parser
    default: Any
    doc: str
    convert: Converter


def same(value: Any, key: str) -> Any:
    """The YAML value as it is."""
    return value


def option(key: str, default: Any, doc: str, *, parse: Parser, convert: Converter = same) -> Any:
    """A settings dataclass field read from the YAML key ``key`` of its backend's section."""
    value = None if default is None else convert(default, key)
    return dataclasses.field(
        default=value, metadata={_OPTION: Option(key, parse, default, doc, convert)}
    )


def options(settings: type[Any]) -> list[tuple[str, Option]]:
    """(field name, option) of every configuration key of a settings dataclass, in order."""
    return [
        (f.name, f.metadata[_OPTION]) for f in dataclasses.fields(settings) if _OPTION in f.metadata
    ]


# -- value parsers ---------------------------------------------------------------------


#: Text read as a number, size or duration: printable ASCII (no "٣", no "4\n").
_PLAIN_RE = re.compile(r"[ -~]*")


def plain_text(value: Any, key: str) -> None:
    """Refuse text with characters other than printable ASCII.

    Python's ``int()`` and ``float()`` (and ``\\d`` in patterns) read other
    scripts' digits and skip surrounding whitespace such as newlines; a value
    a scheduler will see must be exactly what the user typed.
    """
    if isinstance(value, str) and not _PLAIN_RE.fullmatch(value):
        raise SpecError(
            key, f"write it with ASCII digits and letters (no other characters), got {shown(value)}"
        )


def hint(word: object, choices: list[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``choices``, or nothing."""
    text = str(word)
    if len(text) > 100:
        return ""  # no key is this long, and comparing costs its length times theirs
    from difflib import get_close_matches  # only for a misspelt name

    close = get_close_matches(text, choices, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def whole(minimum: int, maximum: int = 2**31 - 1) -> Parser:
    """Whole numbers from ``minimum`` to ``maximum`` (by default what 32 bits hold)."""

    def parse(value: Any, key: str) -> Any:
        if type(value) is not int or value < minimum:
            raise SpecError(key, f"expected a whole number >= {minimum}, got {shown(value)}")
        if value > maximum:
            raise SpecError(key, f"expected a whole number <= {maximum}, got {shown(value)}")
        return value

    return parse


def auto_or(parse: Parser) -> Parser:
    """``parse``, or the word ``auto``."""

    def parse_or_auto(value: Any, key: str) -> Any:
        if isinstance(value, str) and value.strip(" ").lower() == "auto":
            return "auto"
        try:
            return parse(value, key)
        except SpecError as exc:
            raise SpecError(key, f"{exc.message}; or write 'auto'") from None

    return parse_or_auto


def checked(check: Callable[[Any, str], object]) -> Parser:
    """A parser that validates with ``check`` and keeps the value as written.

    Text must be printable ASCII (:func:`plain_text`): ``check`` reads numbers.
    """

    def parse(value: Any, key: str) -> Any:
        plain_text(value, key)
        check(value, key)
        return value

    return parse


def name(value: Any, key: str) -> Any:
    """A name of letters, digits, ``_``, ``.`` or ``-``."""
    if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z0-9_.-]+", value):
        raise SpecError(
            key, f"expected a name of letters, digits, '_', '.' or '-', got {shown(value)}"
        )
    return value


def choice(*choices: str) -> Parser:
    """One of ``choices``."""

    def parse(value: Any, key: str) -> Any:
        if value not in choices:
            raise SpecError(key, f"choose one of {', '.join(choices)}; got {shown(value)}")
        return value

    return parse


def as_bool(value: Any, key: str) -> Any:
    """true or false."""
    if not isinstance(value, bool):
        raise SpecError(key, f"expected true or false, got {shown(value)}")
    return value


#: A memory size (``4G``), a duration (``1h30m``), an interval (``0.5s``).
memory = checked(parse_memory)
duration = checked(parse_walltime)
interval = checked(parse_interval)


def to_seconds(value: Any, key: str) -> float:
    """An interval's seconds, fractions kept."""
    return parse_interval(value, key)
