"""Checks of the values a job description holds: whole numbers, text, one-line
text, lists of lines. Each raises :class:`~jobfleet.errors.SpecError` naming the
field; pure, no I/O."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from difflib import get_close_matches

from jobfleet.errors import SpecError, shown

__all__ = [
    "MAX_COUNT",
    "check_count",
    "check_int",
    "check_key",
    "check_line",
    "check_lines",
    "check_text",
]

#: Most cores, GPUs, tasks or nodes: schedulers count them in 32-bit integers.
MAX_COUNT = 2**31 - 1

_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")


def check_int(field_name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise SpecError(field_name, f"expected a whole number, got {shown(value)}")
    if value < minimum:
        raise SpecError(field_name, f"must be at least {minimum}, got {value}")
    return value


def check_count(field_name: str, value: object, minimum: int) -> int:
    """A whole number of cores, GPUs, tasks or nodes: at least ``minimum``, at most
    :data:`MAX_COUNT`."""
    count = check_int(field_name, value, minimum)
    if count > MAX_COUNT:
        raise SpecError(
            field_name, f"{shown(count)} is more than any scheduler gives (at most {MAX_COUNT})"
        )
    return count


def check_text(field_name: str, value: object, *, allow_empty: bool = False) -> str:
    if not isinstance(value, str):
        raise SpecError(field_name, f"expected text, got {type(value).__name__}")
    if not value and not allow_empty:
        raise SpecError(field_name, "must not be empty")
    if "\x00" in value:
        raise SpecError(field_name, "must not contain a NUL character")
    return value


def check_line(field_name: str, value: object) -> str:
    text = check_text(field_name, value)
    if _CONTROL_RE.search(text):
        raise SpecError(
            field_name, f"must be one line without control characters, got {shown(text)}"
        )
    return text


def check_lines(field_name: str, values: object) -> tuple[str, ...]:
    if isinstance(values, str) or not isinstance(values, Iterable):
        raise SpecError(field_name, f"expected a list of strings, got {shown(values)}")
    return tuple(check_line(f"{field_name}[{i}]", v) for i, v in enumerate(values))


def check_key(key: object, keys: Sequence[str], prefix: str, what: str) -> None:
    """Refuse a key of a mapping that is none of ``keys``, naming the closest one and
    the valid ones (``what``: "resource", "environment key")."""
    if key not in keys:
        close = get_close_matches(str(key), keys, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise SpecError(f"{prefix}.{key}", f"unknown {what}{hint}; valid keys: {', '.join(keys)}")
