"""One point of a study: its parameters, its command, its identity and its directory.

A point is a mapping of parameter names to values. A name is letters, digits, ``_``
and ``-``, starting with a letter or ``_`` (so ``{name}`` in a template is never
read as an attribute or an index). A value is a ``str``, an ``int``, a finite
``float`` or a ``bool``; ``None`` is refused (it has no text form a program would
agree on: write a string such as ``"none"``), and so are NaN and the infinities
(NaN is not equal to itself, so a point holding it could never be found again).

The text a value becomes in a command: a string as it is; an integer in decimal; a
float by ``repr`` (``0.1`` stays ``0.1``, ``1e-05`` stays ``1e-05``); a boolean as
``true`` / ``false``, as YAML and JSON write it.

>>> render_argv(["simulate", "--a={a}", "--lr", "{lr:.0e}", "{name}"],
...             {"a": 1, "lr": 0.001, "name": "two words", "fast": True})
['simulate', '--a=1', '--lr', '1e-03', 'two words']
>>> render_shell("simulate --name {name} > {name}.log", {"name": "two words"})
"simulate --name 'two words' > 'two words'.log"
>>> point_key({"a": 1}, ["simulate", "--a=1"]) == point_key({"a": 1.0}, ["simulate", "--a=1"])
False
>>> point_dirname(7, {"a": 1, "b": "x/y z", "flag": False})
'0007-a=1,b=x_y_z,flag=false'
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import string
from collections.abc import Mapping, Sequence
from shlex import quote

from jobfleet.errors import SpecError, shown

__all__ = [
    "MAX_DIRNAME",
    "POINT_SHARD",
    "check_name",
    "check_point",
    "check_value",
    "point_dirname",
    "point_key",
    "point_shard",
    "render_argv",
    "render_shell",
    "text",
]

#: The longest directory name :func:`point_dirname` returns (far below the 255 bytes
#: file systems allow, so a path of several of them stays readable).
MAX_DIRNAME = 80

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*\Z")
_NAME_RULE = "letters, digits, _ and -, starting with a letter or _"
#: Larger integers (about 300 digits) are refused: no program reads them as numbers,
#: and Python cannot even print one of more than 4,300 digits.
_MAX_INT_BITS = 1000
_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]")
_FORMATTER = string.Formatter()


def check_name(name: object, where: str = "parameters") -> str:
    """``name`` if it can name a parameter, else a :class:`SpecError` saying why.

    Args:
        name: the parameter's name.
        where: what the error names (a file and line, a function).
    """
    if not isinstance(name, str) or not _NAME.match(name):
        hint = " (a space after a comma is part of the name)" if isinstance(name, str) else ""
        raise SpecError(where, f"{shown(name)} cannot name a parameter: use {_NAME_RULE}{hint}")
    return name


def check_value(name: str, value: object) -> object:
    """``value`` if it can be the value of parameter ``name``, else a :class:`SpecError`
    naming the parameter."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        if value.bit_length() > _MAX_INT_BITS:
            raise SpecError(name, f"{shown(value)} is too large an integer for a parameter")
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise SpecError(
                name,
                f"{value!r} is not a usable value: NaN and the infinities are refused "
                "(write the string 'nan' or 'inf' if the program reads it)",
            )
        return value
    if isinstance(value, str):
        if "\0" in value:
            raise SpecError(name, f"{shown(value)} holds a NUL character, which no argv can")
        return value
    kind = "has no text form" if value is None else f"is a {type(value).__name__}"
    raise SpecError(
        name,
        f"{shown(value)} {kind}: a parameter value is a string, an integer, a float or a "
        "boolean" + (" (write a string such as 'none')" if value is None else ""),
    )


def check_point(params: Mapping[str, object]) -> dict[str, object]:
    """A copy of ``params`` (in its order) once every name and value is checked."""
    if not isinstance(params, Mapping):
        raise SpecError(
            "parameters", f"{shown(params)} is not a mapping of parameter names to values"
        )
    return {check_name(k): check_value(k, v) for k, v in params.items()}


def text(value: object) -> str:
    """The text a checked value becomes in a command.

    >>> [text(v) for v in ("x", 3, 0.1, 1e-05, 2.0, True, False)]
    ['x', '3', '0.1', '1e-05', '2.0', 'true', 'false']
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _fields(template: str, where: str) -> list[tuple[str, str | None, str]]:
    """``template`` as (literal text, parameter name or None, format spec) pieces."""
    if "\0" in template:
        raise SpecError(where, f"{shown(template)} holds a NUL character, which no argv can")
    try:
        parsed = list(_FORMATTER.parse(template))
    except ValueError as exc:
        raise SpecError(
            where, f"{shown(template)}: {exc} (write {{{{ and }}}} for a literal brace)"
        ) from None
    pieces: list[tuple[str, str | None, str]] = []
    for literal, field, spec, conversion in parsed:
        if field is None:
            pieces.append((literal, None, ""))
            continue
        placeholder = "{" + field + (f"!{conversion}" if conversion else "")
        placeholder += (f":{spec}" if spec else "") + "}"
        if field == "" or field.isdigit():
            problem = "a placeholder names a parameter, e.g. {a}; positions are not allowed"
        elif conversion is not None:
            problem = "conversions (!r, !s, !a) are not allowed"
        elif "." in field or "[" in field:
            problem = "attribute and index access are not allowed: {name} is the whole value"
        elif "{" in (spec or ""):
            problem = "a format spec cannot hold another placeholder"
        else:
            pieces.append((literal, field, spec or ""))
            continue
        raise SpecError(where, f"{placeholder} in {shown(template)}: {problem}")
    return pieces


def _render(
    pieces: list[tuple[str, str | None, str]],
    params: Mapping[str, object],
    template: str,
    where: str,
    quoted: bool,
) -> str:
    """The pieces with each placeholder replaced by its value's text (quoted for a shell)."""
    out: list[str] = []
    for literal, field, spec in pieces:
        out.append(literal)
        if field is None:
            continue
        if field not in params:
            known = ", ".join(params) if params else "(none)"
            raise SpecError(
                where,
                f"unknown parameter {{{field}}} in {shown(template)}; the parameters are: {known}",
            )
        value = params[field]
        if spec:
            # Numbers take the spec as numbers; a boolean reads as its text, like a string.
            number = isinstance(value, (int, float)) and not isinstance(value, bool)
            subject = value if number else text(value)
            try:
                piece = format(subject, spec)
            except (ValueError, TypeError) as exc:
                raise SpecError(
                    where,
                    f"{{{field}:{spec}}} in {shown(template)} cannot format {shown(value)}: {exc}",
                ) from None
        else:
            piece = text(value)
        out.append(quote(piece) if quoted else piece)
    return "".join(out)


def render_argv(template: Sequence[str], params: Mapping[str, object]) -> list[str]:
    """The argv of one point: each element of ``template`` with its ``{name}``
    placeholders replaced by the parameters' text.

    Each element stays ONE argv element, whatever its value holds (spaces, quotes,
    ``$``): no shell reads it. ``{{`` and ``}}`` are literal braces. A placeholder may
    carry a format spec, applied by Python's :func:`format`: to the number for an
    ``int`` or ``float`` (``{lr:.3f}``), to the text for a string or a boolean
    (``{name:>8}``). Conversions (``{a!r}``), attributes (``{a.b}``), indexes
    (``{a[0]}``) and positional fields (``{}``, ``{0}``) are refused. Parameters the
    template does not name are allowed (they still tell points apart).

    Args:
        template: the command, one string per argv element.
        params: the point.

    Raises:
        SpecError: an unknown placeholder (naming it, the element and the parameters),
            a refused one, a bad name or value, or a spec that does not fit the value.
    """
    if isinstance(template, str) or not isinstance(template, Sequence):
        raise SpecError(
            "command",
            f"{shown(template)} is not a list of argv elements (for a shell command line, "
            "use render_shell)",
        )
    if not template:
        raise SpecError("command", "is empty: an argv needs at least the program")
    point = check_point(params)
    argv: list[str] = []
    for i, element in enumerate(template):
        where = f"command[{i}]"
        if not isinstance(element, str):
            raise SpecError(where, f"{shown(element)} is not a string")
        argv.append(_render(_fields(element, where), point, element, where, quoted=False))
    return argv


def render_shell(template: str, params: Mapping[str, object]) -> str:
    """A shell command line for one point: ``template`` with each ``{name}`` replaced
    by the parameter's text quoted with :func:`shlex.quote`; the template's own text is
    left as it is (its pipes and redirections work).

    Write placeholders bare, never inside quotes of your own: ``echo "{a}"`` would
    print the quotes :func:`shlex.quote` adds. Placeholders follow
    :func:`render_argv`'s rules.

    Raises:
        SpecError: as :func:`render_argv`.
    """
    if not isinstance(template, str):
        raise SpecError("command", f"{shown(template)} is not a shell command line (a string)")
    if not template.strip():
        raise SpecError("command", "is empty")
    point = check_point(params)
    return _render(_fields(template, "command"), point, template, "command", quoted=True)


def _canonical(document: object) -> bytes:
    """One JSON text per document, whatever the process: sorted keys, no spaces,
    ASCII (``1``, ``1.0``, ``"1"`` and ``true`` stay four different texts)."""
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return text.encode("ascii")


def point_key(params: Mapping[str, object], command: Sequence[str] | str) -> str:
    """The identity of a point: 16 hex characters of the SHA-256 of its parameters and
    its command (the rendered argv, or the rendered shell command line).

    A point is its parameters plus its command: change either and it is a new point. The
    key is the same in every process and every Python run (it never uses ``hash()``);
    ``1``, ``1.0``, ``"1"`` and ``True`` are four different values, so four different
    points; the order in which the parameters are given does not matter.

    Args:
        params: the point.
        command: its rendered argv (a list) or its rendered shell command line (a str).
    """
    point = check_point(params)
    if isinstance(command, str):
        rendered: dict[str, object] = {"shell": command}
    elif isinstance(command, Sequence) and all(isinstance(a, str) for a in command):
        rendered = {"argv": list(command)}
    else:
        raise SpecError("command", f"{shown(command)} is not an argv (a list of strings)")
    document = {"jobfleet-point": 1, "params": point, **rendered}
    return hashlib.sha256(_canonical(document)).hexdigest()[:16]


def point_dirname(index: int, params: Mapping[str, object]) -> str:
    """A readable directory name for point number ``index`` of a study.

    The index (4 digits at least) keeps names unique within a study and sorted in the
    points' order; then ``name=value`` for each parameter, in the point's order,
    joined by commas. Only ASCII letters, digits and ``._+-`` of a value are kept;
    anything else (``/``, spaces, ``=``, ``,``, accents) becomes ``_``. A name longer
    than :data:`MAX_DIRNAME` is cut and ends with ``~`` and 8 hex characters of the
    parameters' digest, so two long names that start alike still differ.

    >>> point_dirname(12, {})
    '0012'
    >>> point_dirname(3, {"s": "x" * 100})[-20:]
    'xxxxxxxxxxx~80ca53c4'
    """
    if isinstance(index, bool) or not isinstance(index, int) or index < 0:
        raise SpecError("index", f"{shown(index)} is not a point number (0 or more)")
    point = check_point(params)
    name = f"{index:04d}"
    if point:
        name += "-" + ",".join(f"{k}={_UNSAFE.sub('_', text(v))}" for k, v in point.items())
    if len(name) > MAX_DIRNAME:
        digest = hashlib.sha256(_canonical(point)).hexdigest()[:8]
        name = name[: MAX_DIRNAME - len(digest) - 1] + "~" + digest
    return name


#: Points per shard of a step whose points' directories are sharded (``<index // 1000>xxx``).
POINT_SHARD = 1000


def point_shard(index: int) -> str:
    """The shard directory point number ``index`` goes in, in a step whose points are
    sharded (those of 10,000 points or more): ``<index // 1000>xxx``, a name no
    :func:`point_dirname` gives (those are digits, then nothing or ``-``).

    >>> point_shard(7), point_shard(12345)
    ('0xxx', '12xxx')
    """
    return f"{index // POINT_SHARD}xxx"
