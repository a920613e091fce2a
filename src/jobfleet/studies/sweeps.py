"""Parameter sweeps: lists of points (``dict`` of parameter name to value), always in
the same order for the same input.

Names and values follow :mod:`jobfleet.studies.points` (values: ``str``, ``int``,
finite ``float``, ``bool``). Every function refuses what would silently give no
point (an empty list of values) and more than :data:`MAX_POINTS` points.

This module's ``zip`` and ``random`` are not the built-in ones: use them through the
module (``sweeps.zip(...)``).

>>> product(a=[1, 2], b=["x", "y"])
[{'a': 1, 'b': 'x'}, {'a': 1, 'b': 'y'}, {'a': 2, 'b': 'x'}, {'a': 2, 'b': 'y'}]
>>> zip(a=[1, 2], b=["x", "y"])
[{'a': 1, 'b': 'x'}, {'a': 2, 'b': 'y'}]
>>> random(3, seed=1, layers=randint(1, 4), act=["relu", "tanh"])
[{'layers': 2, 'act': 'relu'}, {'layers': 3, 'act': 'relu'}, {'layers': 4, 'act': 'tanh'}]
>>> shard(list(range(10)), 0, 3), shard(list(range(10)), 2, 3)
([0, 1, 2, 3], [7, 8, 9])
"""

from __future__ import annotations

import builtins
import csv
import itertools
import math
import os
import re
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from random import Random
from typing import TypeVar

from jobfleet.errors import SpecError, shown
from jobfleet.studies.points import check_name, check_value

__all__ = [
    "MAX_CSV_BYTES",
    "MAX_POINTS",
    "from_csv",
    "loguniform",
    "product",
    "randint",
    "random",
    "shard",
    "uniform",
    "zip",
]

#: The most points one sweep may make (and rows one CSV file may have).
MAX_POINTS = 1_000_000
#: The largest CSV file :func:`from_csv` reads.
MAX_CSV_BYTES = 100 * 2**20

T = TypeVar("T")
Point = dict[str, object]


def _values(name: str, given: object, function: str) -> list[object]:
    """The values listed for parameter ``name``, checked."""
    check_name(name, function)
    if not isinstance(given, (list, tuple, range)):
        why = " (a set has no fixed order)" if isinstance(given, (set, frozenset)) else ""
        raise SpecError(
            name, f"{shown(given)} is not a list of values{why}: give {function}() a list"
        )
    if not given:
        raise SpecError(name, f"has no values: every parameter of {function}() needs at least one")
    return [check_value(name, v) for v in given]


def product(**grid: Sequence[object]) -> list[Point]:
    """Every combination of the values (a grid), the first parameter varying slowest,
    as :func:`itertools.product` over the parameters in the order given.

    Without parameters, one point without parameters.

    Raises:
        SpecError: a parameter without values (naming it), values that are not a list,
            a bad name or value, or more than :data:`MAX_POINTS` points.
    """
    values = {name: _values(name, given, "product") for name, given in grid.items()}
    total = math.prod(len(v) for v in values.values())
    if total > MAX_POINTS:
        sizes = " x ".join(f"{n} ({len(v)})" for n, v in values.items())
        raise SpecError(
            "product", f"{sizes} make {total:,} points; a sweep has at most {MAX_POINTS:,}"
        )
    names = list(values)
    return [
        dict(builtins.zip(names, combo, strict=True))
        for combo in itertools.product(*values.values())
    ]


def zip(**lists: Sequence[object]) -> list[Point]:
    """Point ``i`` takes the ``i``-th value of every parameter.

    Raises:
        SpecError: lists of different lengths (naming each parameter and its length),
            an empty list, no parameter at all, or a bad name or value.
    """
    if not lists:
        raise SpecError("zip", "needs at least one parameter")
    values = {name: _values(name, given, "zip") for name, given in lists.items()}
    lengths = {len(v) for v in values.values()}
    if len(lengths) > 1:
        each = ", ".join(f"{n} has {len(v)}" for n, v in values.items())
        raise SpecError(
            "zip",
            f"the parameters have different numbers of values ({each}); zip pairs the "
            "i-th values of each, so give them all the same number (or use product)",
        )
    if max(lengths) > MAX_POINTS:
        raise SpecError("zip", f"{max(lengths):,} points; a sweep has at most {MAX_POINTS:,}")
    names = list(values)
    return [
        dict(builtins.zip(names, row, strict=True))
        for row in builtins.zip(*values.values(), strict=True)
    ]


def _number(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SpecError(what, f"{shown(value)} is not a number")
    if not math.isfinite(value):
        raise SpecError(what, f"{value!r} is not a finite number")
    return float(value)


@dataclass(frozen=True)
class uniform:  # lower case: it reads as a call, random(n, seed=1, x=uniform(0, 1))
    """A float drawn uniformly between ``lo`` and ``hi`` (``lo < hi``).

    >>> uniform(0, 1).draw(Random(1))
    0.13436424411240122
    """

    lo: float
    hi: float

    def __post_init__(self) -> None:
        lo, hi = _number(self.lo, "uniform(lo, hi)"), _number(self.hi, "uniform(lo, hi)")
        if not lo < hi or not math.isfinite(hi - lo):
            raise SpecError("uniform(lo, hi)", f"needs lo < hi (got {lo!r}, {hi!r})")

    def draw(self, rng: Random) -> float:
        """One value, from ``rng``."""
        return rng.uniform(self.lo, self.hi)


@dataclass(frozen=True)
class loguniform:
    """A float whose logarithm is uniform between ``log(lo)`` and ``log(hi)``
    (``0 < lo < hi``): as many values between 0.001 and 0.01 as between 0.01 and 0.1.

    Its last digit goes through the C library's ``exp`` and ``log``, which may
    round differently on another platform; ``uniform`` and ``randint`` are exact.
    """

    lo: float
    hi: float

    def __post_init__(self) -> None:
        lo, hi = _number(self.lo, "loguniform(lo, hi)"), _number(self.hi, "loguniform(lo, hi)")
        if not 0 < lo < hi:
            raise SpecError("loguniform(lo, hi)", f"needs 0 < lo < hi (got {lo!r}, {hi!r})")

    def draw(self, rng: Random) -> float:
        """One value, from ``rng`` (never outside ``[lo, hi]``)."""
        value = math.exp(rng.uniform(math.log(self.lo), math.log(self.hi)))
        return min(max(value, float(self.lo)), float(self.hi))


@dataclass(frozen=True)
class randint:
    """An integer drawn uniformly from ``lo`` to ``hi``, both included (``lo <= hi``)."""

    lo: int
    hi: int

    def __post_init__(self) -> None:
        for value in (self.lo, self.hi):
            if isinstance(value, bool) or not isinstance(value, int):
                raise SpecError("randint(lo, hi)", f"{shown(value)} is not an integer")
            check_value("randint(lo, hi)", value)
        if self.lo > self.hi:
            raise SpecError(
                "randint(lo, hi)", f"needs lo <= hi (got {shown(self.lo)}, {shown(self.hi)})"
            )

    def draw(self, rng: Random) -> int:
        """One value, from ``rng``."""
        return rng.randint(self.lo, self.hi)


def random(
    n: int, /, *, seed: int, **distributions: uniform | loguniform | randint | Sequence[object]
) -> list[Point]:
    """``n`` points drawn with ``random.Random(seed)``: the same seed gives the same
    points in every run (a study can be resumed).

    Each parameter is a list of choices (one drawn uniformly), or :class:`uniform`,
    :class:`loguniform` or :class:`randint`. Draws go point by point, parameter by
    parameter in the order given, so the first ``k`` points of ``random(n, ...)`` are
    ``random(k, ...)`` with the same seed. Points may repeat. No parameter can be named
    ``seed`` here (the keyword is the seed's).

    Args:
        n: how many points (1 to :data:`MAX_POINTS`).
        seed: an integer, 0 or more (Python's random reads -5 as 5).
        distributions: parameter name -> choices or distribution.

    Raises:
        SpecError: a bad ``n``, seed, name, distribution or choice.
    """
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_POINTS:
        raise SpecError("random", f"n = {shown(n)}: draw from 1 to {MAX_POINTS:,} points")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise SpecError(
            "random",
            f"seed = {shown(seed)}: the seed is an integer, 0 or more (the same seed draws "
            "the same points, so a study can be resumed)",
        )
    if not distributions:
        raise SpecError("random", "needs at least one parameter to draw")
    draws: dict[str, uniform | loguniform | randint | list[object]] = {}
    for name, dist in distributions.items():
        if isinstance(dist, (uniform, loguniform, randint)):
            draws[check_name(name, "random")] = dist
        else:
            draws[name] = _values(name, dist, "random")
    rng = Random(seed)  # noqa: S311 (draws to repeat, not secrets)
    return [
        {
            name: rng.choice(dist) if isinstance(dist, list) else dist.draw(rng)
            for name, dist in draws.items()
        }
        for _ in range(n)
    ]


def shard(items: Sequence[T], i: int, n: int) -> list[T]:
    """Shard ``i`` (from 0) of ``n`` contiguous shards of ``items``: sizes differ by at
    most one (the first ``len(items) % n`` shards have one more), and the shards in
    order are ``items``. A shard may be empty when there are more shards than items.

    Raises:
        SpecError: ``n`` below 1, ``i`` outside ``0..n-1``, or items that are not a list.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise SpecError("shard", f"n = {shown(n)}: the number of shards is 1 or more")
    if isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < n:
        raise SpecError("shard", f"i = {shown(i)}: with {n} shards, i is 0 to {n - 1}")
    if not isinstance(items, Sequence):
        raise SpecError("shard", f"{shown(items)} is not a list")
    size, extra = divmod(len(items), n)
    start = i * size + min(i, extra)
    stop = start + size + (1 if i < extra else 0)
    return list(items[start:stop])


_INT = re.compile(r"-?[0-9]{1,300}\Z")
_FLOAT = re.compile(r"-?([0-9]+\.[0-9]*|\.[0-9]+|[0-9]+(?=[eE]))([eE][-+]?[0-9]+)?\Z")


def _cell(value: str) -> object:
    """A CSV cell's value: an int if written as Python writes one, else a float if
    written as a decimal number, else the text."""
    if _INT.match(value) and str(int(value)) == value:
        return int(value)
    if _FLOAT.match(value):
        number = float(value)
        if math.isfinite(number):
            return number
    return value


def from_csv(path: str | os.PathLike[str]) -> list[Point]:
    """The points of a CSV file (UTF-8, a byte-order mark allowed): its first line
    names the parameters, each further row is a point; blank lines are skipped.

    A cell becomes an ``int`` when written as Python writes one (``42``, ``-7``; not
    ``007``, ``+7``, ``1_000`` or ``-0``), else a ``float`` when written as a decimal
    number (``0.5``, ``1e-3``, ``2.``), else it stays text, as it is (``nan``,
    ``inf``, ``true``, `` 1`` with its space, an empty cell as ``""``).

    Raises:
        SpecError: naming the file (and the line): a missing or unreadable file, one over
            :data:`MAX_CSV_BYTES` or :data:`MAX_POINTS` rows, not UTF-8, an empty or bad
            header (a column without a name, a name twice, a name that is not a
            parameter name), a row with more or fewer fields than the header, or no row.
    """
    where = os.fspath(path)
    try:
        info = Path(path).stat()
    except OSError as exc:
        raise SpecError(where, f"cannot be read: {exc.strerror or exc}") from None
    if not stat.S_ISREG(info.st_mode):
        raise SpecError(where, "is not a file")
    if info.st_size > MAX_CSV_BYTES:
        raise SpecError(
            where,
            f"is {info.st_size:,} bytes; a CSV of points is at most {MAX_CSV_BYTES:,} "
            "(split it, or generate the points in Python)",
        )
    line = 0
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle, strict=True)
            header = next(reader, None)
            line = reader.line_num
            names = _header(header, f"{where}: line 1")
            points: list[Point] = []
            for row in reader:
                line = reader.line_num
                if not row:
                    continue
                if len(points) == MAX_POINTS:
                    raise SpecError(where, f"line {line}: more than {MAX_POINTS:,} rows")
                if len(row) != len(names):
                    fields = f"{len(row)} field" + ("s" if len(row) != 1 else "")
                    raise SpecError(
                        where,
                        f"line {line}: {fields}, but the header names {len(names)} "
                        f"({', '.join(names)})",
                    )
                cells = builtins.zip(names, row, strict=True)
                points.append(
                    {n: check_value(f"{where}: line {line}: {n}", _cell(c)) for n, c in cells}
                )
    except UnicodeDecodeError:
        raise SpecError(where, "is not UTF-8 text: save it as UTF-8") from None
    except csv.Error as exc:
        raise SpecError(where, f"line {line + 1}: {exc}") from None
    except OSError as exc:
        raise SpecError(where, f"cannot be read: {exc.strerror or exc}") from None
    if not points:
        raise SpecError(where, "has a header but no rows: a study needs at least one point")
    return points


def _header(header: list[str] | None, where: str) -> list[str]:
    """The parameter names of a CSV header row, checked."""
    if header is None:
        raise SpecError(where, "the file is empty: its first line must name the parameters")
    if not header:
        raise SpecError(where, "is empty: the first line must name the parameters")
    seen: dict[str, int] = {}
    for column, name in enumerate(header, 1):
        if not name:
            raise SpecError(where, f"column {column} has no name")
        if name in seen:
            raise SpecError(
                where, f"column {shown(name)} appears twice (columns {seen[name]} and {column})"
            )
        check_name(name, where)
        seen[name] = column
    return header
