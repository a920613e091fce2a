"""The ``parameters:`` of a study file (or of one of its steps), checked, as points.

A mapping of parameter names to lists of values is a grid. Otherwise the mapping has
exactly one key saying how the points are made::

    parameters: {grid: {a: [1, 2], b: [x, y]}}          # every combination
    parameters: {zip: {a: [1, 2], b: [x, y]}}           # a=1,b=x then a=2,b=y
    parameters: {random: {n: 20, seed: 1, lr: {loguniform: [1e-4, 0.1]},
                          layers: {randint: [1, 4]}, act: [relu, tanh]}}
    parameters: {points: [{a: 1, b: x}, {a: 5, b: y}]}
    parameters: {csv: points.csv}                       # relative to the study file

Every problem is a :class:`~jobfleet.errors.ConfigError` naming the study file, the
dotted key (``steps.sweep.parameters.grid.a``) and what would be accepted.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from jobfleet.configfile import config_error
from jobfleet.errors import SpecError, shown
from jobfleet.studies import sweeps
from jobfleet.studies.points import check_point

__all__ = ["DISTRIBUTIONS", "FORMS", "Point", "read_parameters"]

Point = dict[str, object]

#: The keys that say how points are made (the short form cannot name a parameter so).
FORMS = ("grid", "zip", "random", "points", "csv")
#: ``random:`` distributions, written ``{uniform: [lo, hi]}``; a list is choices.
DISTRIBUTIONS: dict[str, Callable[[Any, Any], Any]] = {
    "uniform": sweeps.uniform,
    "loguniform": sweeps.loguniform,
    "randint": sweeps.randint,
}
_FORMS_TEXT = (
    "a mapping of parameter names to lists of values (a grid), or one of grid:, zip:, "
    "random:, points:, csv:"
)


def read_parameters(value: object, key: str, source: str, base: Path) -> list[Point]:
    """The points ``value`` (the YAML under ``key``) describes.

    Args:
        value: the YAML value of ``parameters``.
        key: its dotted key, for errors.
        source: the study file, for errors.
        base: the study file's directory (a ``csv:`` file is relative to it).

    Raises:
        ConfigError: naming ``source`` and the key of the problem.
    """
    if not isinstance(value, Mapping):
        raise config_error(f"expected {_FORMS_TEXT}; got {shown(value)}", source=source, key=key)
    if not value:
        raise config_error(
            "is empty: name at least one parameter, or remove `parameters` to run the command once",
            source=source,
            key=key,
        )
    forms = [k for k in value if k in FORMS]
    if not forms:
        return _sweep(sweeps.product, value, key, source)
    form = forms[0]
    if len(value) > 1:
        others = ", ".join(shown(k) if not isinstance(k, str) else k for k in value if k != form)
        raise config_error(
            f"{form}: says how the points are made, so it is the only key here (also "
            f"given: {others}); put the parameters inside it (e.g. {key}.{form}.NAME), "
            f"and a parameter cannot be named {', '.join(FORMS)} in the short form",
            source=source,
            key=key,
        )
    where = f"{key}.{form}"
    body = value[form]
    if form == "csv":
        return _csv(body, where, source, base)
    if form == "points":
        return _points(body, where, source)
    if not isinstance(body, Mapping) or not body:
        what = "parameter names to lists of values"
        if form == "random":
            what = "n, seed and parameter names to distributions"
        raise config_error(
            f"expected a mapping of {what}, got {shown(body)}", source=source, key=where
        )
    if form == "random":
        return _random(body, where, source)
    return _sweep(sweeps.product if form == "grid" else sweeps.zip, body, where, source)


def _names(body: Mapping[Any, Any], where: str, source: str) -> None:
    """Refuse a key that cannot name a parameter, before it becomes a keyword."""
    for name in body:
        try:
            check_point({name: 0})
        except SpecError as exc:
            raise config_error(exc.message, source=source, key=f"{where}.{name}") from None


def _lists(body: Mapping[str, Any], where: str, source: str) -> None:
    for name, values in body.items():
        if not isinstance(values, list):
            raise config_error(
                f"expected a list of values, e.g. [1, 2, 3] (for one value: [{_flow(values)}]), "
                f"got {shown(values)}",
                source=source,
                key=f"{where}.{name}",
            )
        if not values:
            raise config_error(
                "has no values: give at least one (a parameter without values would make "
                "no point at all)",
                source=source,
                key=f"{where}.{name}",
            )


def _flow(value: object) -> str:
    """How one value reads inside ``[...]`` in a hint."""
    if isinstance(value, (str, int, float)) and not isinstance(value, bool):
        shown_value = str(value)
        if len(shown_value) < 30 and "," not in shown_value:
            return shown_value
    return "x"


def _sweep(
    function: Callable[..., list[Point]], body: Mapping[Any, Any], where: str, source: str
) -> list[Point]:
    _names(body, where, source)
    _lists(body, where, source)
    return _call(function, (), dict(body), where, source)


def _call(
    function: Callable[..., list[Point]],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    where: str,
    source: str,
) -> list[Point]:
    try:
        return function(*args, **kwargs)
    except SpecError as exc:
        key = f"{where}.{exc.field}" if exc.field in kwargs else where
        raise config_error(exc.message, source=source, key=key) from None


def _random(body: Mapping[Any, Any], where: str, source: str) -> list[Point]:
    missing = [k for k in ("n", "seed") if body.get(k) is None]
    if missing:
        raise config_error(
            f"needs {' and '.join(missing)}: n is how many points to draw, seed an integer "
            "(the same seed draws the same points, so a study can be resumed)",
            source=source,
            key=where,
        )
    for name in ("n", "seed"):
        value = body[name]
        if isinstance(value, bool) or not isinstance(value, int):
            raise config_error(
                f"expected a whole number, got {shown(value)}", source=source, key=f"{where}.{name}"
            )
    given = {k: v for k, v in body.items() if k not in ("n", "seed")}
    if not given:
        raise config_error(
            "names no parameter to draw (n and seed are not parameters)", source=source, key=where
        )
    _names(given, where, source)
    drawn = {name: _distribution(dist, f"{where}.{name}", source) for name, dist in given.items()}
    return _call(sweeps.random, (body["n"],), {"seed": body["seed"], **drawn}, where, source)


def _distribution(value: object, key: str, source: str) -> object:
    choices = ", ".join(f"{{{d}: [lo, hi]}}" for d in DISTRIBUTIONS)
    if isinstance(value, list):
        if not value:
            raise config_error("has no choices: give at least one", source=source, key=key)
        return value
    if isinstance(value, Mapping) and len(value) == 1:
        ((kind, bounds),) = value.items()
        if kind in DISTRIBUTIONS:
            if not isinstance(bounds, list) or len(bounds) != 2:
                raise config_error(
                    f"{kind} takes two bounds, [lo, hi]; got {shown(bounds)}",
                    source=source,
                    key=f"{key}.{kind}",
                )
            try:
                return DISTRIBUTIONS[kind](*(_bound(b) for b in bounds))
            except SpecError as exc:
                raise config_error(exc.message, source=source, key=f"{key}.{kind}") from None
    raise config_error(
        f"expected a list of choices or one of {choices}; got {shown(value)}",
        source=source,
        key=key,
    )


#: A number YAML 1.1 reads as text: ``1e-4`` (it wants ``1.0e-4``).
_EXPONENT = re.compile(r"[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)[eE][-+]?[0-9]+\Z")


def _bound(value: object) -> object:
    """A bound, with ``1e-4`` read as the number YAML 1.1 leaves as text."""
    if isinstance(value, str) and _EXPONENT.match(value):
        return float(value)
    return value


def _points(body: object, where: str, source: str) -> list[Point]:
    if not isinstance(body, list) or not body:
        raise config_error(
            f"expected a non-empty list of points, e.g. [{{a: 1, b: x}}, {{a: 2, b: y}}]; "
            f"got {shown(body)}",
            source=source,
            key=where,
        )
    out: list[Point] = []
    for i, point in enumerate(body):
        key = f"{where}[{i}]"
        if not isinstance(point, Mapping) or not point:
            raise config_error(
                f"expected a mapping of parameter names to values, e.g. {{a: 1, b: x}}; got "
                f"{shown(point)}",
                source=source,
                key=key,
            )
        try:
            checked = check_point(point)
        except SpecError as exc:
            raise config_error(exc.message, source=source, key=f"{key}.{exc.field}") from None
        if out and set(checked) != set(out[0]):
            raise config_error(
                f"names {', '.join(checked)} but the first point names {', '.join(out[0])}: "
                "every point names the same parameters",
                source=source,
                key=key,
            )
        out.append(checked)
    return out


def _csv(body: object, where: str, source: str, base: Path) -> list[Point]:
    if not isinstance(body, str) or not body or "\0" in body:
        raise config_error(
            f"expected the path of a CSV file (relative to the study file), got {shown(body)}",
            source=source,
            key=where,
        )
    try:
        return sweeps.from_csv(base / Path(body).expanduser())
    except SpecError as exc:
        raise config_error(str(exc), source=source, key=where) from None
    except (OSError, ValueError) as exc:  # pragma: no cover - from_csv says why
        raise config_error(f"cannot read {body}: {exc}", source=source, key=where) from None
