"""Memory sizes and durations: parsing to integers, formatting back.

Memory is stored as bytes. Suffixes follow the convention of the HPC
schedulers rather than of disk vendors, except where the user spells out the
SI form:

==========================  =====================  ============
Written                     Meaning                Base
==========================  =====================  ============
``512``                     512 bytes              --
``512K`` ``512M`` ``4G``    kibi/mebi/gibi/tebi    1024 (as in SLURM, PBS, SGE)
``4KiB`` ``4MiB`` ``4GiB``  kibi/mebi/gibi/tebi    1024
``4KB`` ``4MB`` ``4GB``     kilo/mega/giga/tera    1000 (SI, as written)
==========================  =====================  ============

Case does not matter and a trailing ``B`` alone means bytes (``100B``).
Fractions are allowed (``1.5T``) and rounded up to a whole byte.

>>> parse_memory("4G")
4294967296
>>> parse_memory("4GB")
4000000000
>>> parse_memory("1.5T") == 3 * 2**39
True
>>> format_memory(4 * 2**30)
'4G'

Durations are stored as whole seconds:

>>> parse_walltime("90s"), parse_walltime("45m"), parse_walltime("1h30m")
(90, 2700, 5400)
>>> parse_walltime("01:30:00"), parse_walltime("1-00:00:00"), parse_walltime(3600)
(5400, 86400, 3600)
>>> format_walltime(5400)
'01:30:00'
>>> format_walltime(90061)
'1-01:01:01'

``MM:SS`` with a single colon is rejected: SLURM reads ``10:00`` as ten
minutes, PBS reads it as ten hours, so jobfleet asks which one was meant.

Start times are here too, with each scheduler's form of them; the schedulers'
own forms of sizes and durations are in :mod:`jobfleet.nativeunits`.
"""

from __future__ import annotations

import math
import re
from datetime import date, datetime, timedelta
from decimal import Context, Decimal, InvalidOperation

from jobfleet.errors import UnitError, shown

__all__ = [
    "begin_delay_s",
    "begin_time",
    "format_memory",
    "format_sge_begin",
    "format_slurm_begin",
    "format_walltime",
    "parse_begin",
    "parse_interval",
    "parse_memory",
    "parse_walltime",
    "short_duration",
]

_BINARY = {"": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40, "p": 2**50}
_SI = {"k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12, "p": 10**15}

_MEMORY_RE = re.compile(
    # Spaces and tabs only: other scripts' whitespace or a newline is not a size.
    r"[ \t]*(?P<num>[0-9]+(?:\.[0-9]*)?|\.[0-9]+)[ \t]*(?P<prefix>[kmgtp]?)(?P<unit>ib|b)?[ \t]*",
    re.IGNORECASE,
)
# Largest value we accept: 1 EiB is already far beyond any node.
_MAX_BYTES = 2**60
_MAX_SECONDS = 365 * 86400 * 100
# Longer texts are not sizes or durations (and int() refuses > 4300 digits).
_MAX_TEXT = 64
# Exact arithmetic for any number that fits in _MAX_TEXT characters.
_EXACT = Context(prec=2 * _MAX_TEXT)


def parse_memory(value: str | int, field: str = "memory") -> int:
    """Parse a memory size to bytes.

    Args:
        value: ``"4G"``, ``"512MiB"``, ``"4GB"``, ``"1.5T"`` or a number of bytes.
        field: field name used in the error message.

    Returns:
        The size in bytes, at least 1.

    Raises:
        UnitError: the value is not a size, is zero or negative, or is absurdly large.
    """
    if isinstance(value, bool):
        raise UnitError(field, f"expected a size like '4G', got {value!r}")
    if isinstance(value, int):
        nbytes = value
    elif isinstance(value, str):
        match = _MEMORY_RE.fullmatch(value) if len(value) <= _MAX_TEXT else None
        if match is None:
            raise UnitError(
                field,
                f"cannot read {value!r} as a memory size; write e.g. '512M', '4G', "
                "'4GiB' (1024-based) or '4GB' (1000-based)",
            )
        prefix = match["prefix"].lower()
        unit = (match["unit"] or "").lower()
        if unit == "b" and prefix:
            factor = _SI[prefix]
        elif unit == "ib" and not prefix:
            raise UnitError(field, f"{value!r}: 'iB' needs a prefix, e.g. '4GiB'")
        else:
            factor = _BINARY[prefix]
        try:
            amount = Decimal(match["num"])
        except InvalidOperation:  # pragma: no cover - regex guarantees a number
            raise UnitError(field, f"cannot read {value!r} as a number") from None
        nbytes = math.ceil(_EXACT.multiply(amount, factor))
    else:
        raise UnitError(field, f"expected a size like '4G', got {type(value).__name__}")
    if nbytes <= 0:
        raise UnitError(field, f"must be more than 0 bytes, got {shown(value)}")
    if nbytes > _MAX_BYTES:
        raise UnitError(field, f"{shown(value)} is larger than 1 EiB; check the unit")
    return nbytes


def format_memory(nbytes: int) -> str:
    """Format bytes with the largest 1024-based suffix that divides them exactly.

    >>> format_memory(1536 * 2**20), format_memory(1000)
    ('1536M', '1000')
    """
    if nbytes <= 0:
        return str(nbytes)
    for suffix, factor in (("P", 2**50), ("T", 2**40), ("G", 2**30), ("M", 2**20), ("K", 2**10)):
        if nbytes % factor == 0:
            return f"{nbytes // factor}{suffix}"
    return str(nbytes)


_DURATION_PART_RE = re.compile(r"([0-9]+(?:\.[0-9]*)?|\.[0-9]+)([dhms])", re.IGNORECASE)
_DURATION_RE = re.compile(r"(?:(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)[dhms])+", re.IGNORECASE)
_CLOCK_RE = re.compile(r"(?:(?P<days>[0-9]+)-)?(?P<h>[0-9]+):(?P<m>[0-9]{1,2}):(?P<s>[0-9]{1,2})")
_UNIT_SECONDS = {"d": 86400, "h": 3600, "m": 60, "s": 1}


def parse_walltime(value: str | int | float, field: str = "walltime") -> int:
    """Parse a duration to whole seconds (fractions round up).

    Args:
        value: ``"90s"``, ``"45m"``, ``"1h30m"``, ``"2d"``, ``"HH:MM:SS"``,
            ``"D-HH:MM:SS"`` or a number of seconds.
        field: field name used in the error message.

    Raises:
        UnitError: unreadable, ambiguous (``MM:SS``), zero, negative or absurd values.
    """
    if isinstance(value, bool):
        raise UnitError(field, f"expected a duration like '1h30m', got {value!r}")
    if isinstance(value, (int, float)):
        if isinstance(value, float) and not math.isfinite(value):
            raise UnitError(field, f"expected a finite number of seconds, got {shown(value)}")
        seconds = math.ceil(value)
    elif isinstance(value, str):
        seconds = _parse_duration_text(value.strip(), field)
    else:
        raise UnitError(field, f"expected a duration like '1h30m', got {type(value).__name__}")
    if seconds <= 0:
        raise UnitError(field, f"must be longer than 0 seconds, got {shown(value)}")
    if seconds > _MAX_SECONDS:
        raise UnitError(field, f"{shown(value)} is longer than 100 years; check the unit")
    return seconds


def _parse_duration_text(text: str, field: str) -> int:
    if len(text) > _MAX_TEXT:
        raise UnitError(field, f"{text[:20]!r}... is too long to be a duration")
    if re.fullmatch(r"[0-9]+", text):
        return int(text)
    if re.fullmatch(r"[0-9]+:[0-9]+", text):
        raise UnitError(
            field,
            f"{text!r} is ambiguous (minutes:seconds or hours:minutes?); "
            "write 'HH:MM:SS' or e.g. '10m'",
        )
    clock = _CLOCK_RE.fullmatch(text)
    if clock is not None:
        minutes, secs = int(clock["m"]), int(clock["s"])
        if minutes >= 60 or secs >= 60:
            raise UnitError(field, f"{text!r}: minutes and seconds must be below 60")
        days = int(clock["days"] or 0)
        return days * 86400 + int(clock["h"]) * 3600 + minutes * 60 + secs
    if _DURATION_RE.fullmatch(text):
        total = Decimal(0)
        seen: set[str] = set()
        for number, unit in _DURATION_PART_RE.findall(text):
            unit = unit.lower()
            if unit in seen:
                raise UnitError(field, f"{text!r} gives {unit!r} twice")
            seen.add(unit)
            total = _EXACT.add(total, _EXACT.multiply(Decimal(number), _UNIT_SECONDS[unit]))
        return math.ceil(total)
    raise UnitError(
        field,
        f"cannot read {text!r} as a duration; write e.g. '90s', '45m', '1h30m', "
        "'HH:MM:SS', 'D-HH:MM:SS' or a number of seconds",
    )


def short_duration(seconds: float) -> str:
    """A short duration for tables and labels, whole seconds: ``45s``, ``3m05s``,
    ``2h03m``, ``4d02h`` (negative counts as 0).

    >>> short_duration(45.9), short_duration(185), short_duration(7380), short_duration(353000)
    ('45s', '3m05s', '2h03m', '4d02h')
    """
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def format_walltime(seconds: int) -> str:
    """Format seconds as ``HH:MM:SS`` or ``D-HH:MM:SS`` (SLURM's form)."""
    days, rest = divmod(int(seconds), 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    clock = f"{hours:02d}:{minutes:02d}:{secs:02d}"
    return f"{days}-{clock}" if days else clock


# -- intervals: fractions of a second kept (configuration's poll and retry pauses) ----

# The digits 0-9 and spaces only (\d and \s would take "٣" and a newline).
_INTERVAL_RE = re.compile(
    r"[ \t]*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)[ \t]*(ms|s|m|h)?[ \t]*", re.IGNORECASE
)
_INTERVAL_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
# Longer intervals are a unit mistake, and would overflow time.sleep() if huge.
_MAX_INTERVAL_S = 86400.0


def parse_interval(value: object, field: str = "interval") -> float:
    """Seconds from a number or ``"0.5s"``, ``"250ms"``, ``"2m"``; fractions are kept.

    >>> parse_interval("250ms"), parse_interval(2), parse_interval("1m")
    (0.25, 2.0, 60.0)

    Raises:
        UnitError: not above 0 and at most one day, or unreadable.
    """
    seconds: int | float = math.nan
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = value
    elif isinstance(value, str) and len(value) <= 64 and (match := _INTERVAL_RE.fullmatch(value)):
        seconds = float(match[1]) * _INTERVAL_UNITS[(match[2] or "s").lower()]
    # Written so that NaN fails too; ints are compared before float() can overflow.
    if not 0 < seconds <= _MAX_INTERVAL_S:
        shown = repr(value)
        shown = shown if len(shown) <= 60 else shown[:57] + "..."
        raise UnitError(
            field,
            f"expected a time above 0 and at most 1 day, e.g. 2, 0.5, '0.5s', '250ms' or '1m'; "
            f"got {shown}",
        )
    return float(seconds)


# -- start times -------------------------------------------------------------------------


#: The years a start time may have once in local time (a scheduler takes four digits).
_BEGIN_YEARS = (1970, 9999)


def parse_begin(value: object, field: str = "begin") -> str:
    """A start time, canonical: ISO 8601 (``2030-01-31T14:00:00``, an offset kept if
    given) or ``+<seconds>s`` for a delay after submission.

    >>> parse_begin("+2h"), parse_begin("2030-01-31T14:00"), parse_begin("2030-01-31 14:00Z")
    ('+7200s', '2030-01-31T14:00:00', '2030-01-31T14:00:00+00:00')

    Raises:
        UnitError: neither a time nor a ``+duration``, or a time outside 1970..9999.
    """
    if isinstance(value, datetime):  # YAML reads an unquoted ISO time itself
        return _in_range(value, value, field).isoformat(timespec="seconds")
    if isinstance(value, date):
        at = datetime(value.year, value.month, value.day)
        return _in_range(at, value, field).isoformat(timespec="seconds")
    if not isinstance(value, str) or not value.strip() or len(value) > _MAX_TEXT:
        raise UnitError(
            field, f"expected a time like '2030-01-31T14:00' or '+2h', got {shown(value)}"
        )
    text = value.strip()
    if text.startswith("+"):
        return f"+{parse_walltime(text[1:], field)}s"
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise UnitError(
            field,
            f"cannot read {shown(value)} as a time; write ISO 8601 ('2030-01-31T14:00', "
            "local time unless an offset is given) or a delay like '+2h'",
        ) from None
    return _in_range(at, value, field).isoformat(timespec="seconds")


def _in_range(at: datetime, value: object, field: str) -> datetime:
    """``at``, if this machine's local time of it is in 1970..9999 (schedulers take
    four-digit years; an offset can push 9999-12-31 or 0001-01-01 out of range)."""
    try:
        local = at.astimezone().replace(tzinfo=None) if at.tzinfo is not None else at
    except (OverflowError, ValueError, OSError):
        local = None
    if local is None or not _BEGIN_YEARS[0] <= local.year <= _BEGIN_YEARS[1]:
        raise UnitError(
            field,
            f"{shown(value)} is out of range: write a time between the years "
            f"{_BEGIN_YEARS[0]} and {_BEGIN_YEARS[1]} (in local time), e.g. '2030-01-31T14:00'",
        )
    return at


def begin_delay_s(begin: str) -> int | None:
    """The delay of a canonical ``+<seconds>s`` start, or None for a time of day."""
    return int(begin[1:-1]) if begin.startswith("+") else None


def begin_time(begin: str, now: datetime) -> datetime:
    """A canonical start as a naive local time (a delay counts from ``now``, naive local)."""
    delay = begin_delay_s(begin)
    if delay is not None:
        return now + timedelta(seconds=delay)
    at = datetime.fromisoformat(begin)
    return at.astimezone().replace(tzinfo=None) if at.tzinfo is not None else at


def format_slurm_begin(begin: str) -> str:
    """``sbatch --begin``: ``now+<seconds>`` or a local ``YYYY-MM-DDTHH:MM:SS``.

    >>> format_slurm_begin("+7200s"), format_slurm_begin("2030-01-31T14:00:00")
    ('now+7200', '2030-01-31T14:00:00')
    """
    delay = begin_delay_s(begin)
    if delay is not None:
        return f"now+{delay}"
    return begin_time(begin, datetime.now()).isoformat(timespec="seconds")


def format_sge_begin(begin: str, now: datetime) -> str:
    """``qsub -a``: ``CCYYMMDDhhmm.SS`` in local time (a delay counts from ``now``).

    >>> format_sge_begin("+90s", datetime(2030, 1, 31, 14, 0))
    '203001311401.30'
    """
    return begin_time(begin, now).strftime("%Y%m%d%H%M.%S")
