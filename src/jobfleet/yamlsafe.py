"""Reading a YAML file a user wrote, in bounded time and memory.

``yaml.safe_load`` runs no code, but a few hundred bytes of nested aliases
("billion laughs") still expand to gigabytes once anything walks the result,
deep nesting exhausts the stack, and a later duplicate key silently wins.
:func:`read_yaml_bounded` refuses all of these, and any file over a size limit,
with a :class:`~jobfleet.errors.ConfigError` naming the file and the line.

Aliases are counted as if they were expanded, in one pass over the parser's
events before anything is built, so the check itself is linear in the file.
"""

from __future__ import annotations

import os
import select
import stat
import time
from typing import Any

import yaml

from jobfleet.errors import ConfigError, shorten

__all__ = [
    "MAX_BYTES",
    "MAX_DEPTH",
    "MAX_NODES",
    "load_yaml_bounded",
    "read_yaml_bounded",
    "shorten",
]

#: Largest file read: a configuration or study file is a few kilobytes.
MAX_BYTES = 1024 * 1024
#: Most values (scalars and collections, aliases counted as copies) in a file.
MAX_NODES = 100_000
#: Deepest nesting of collections (aliases counted as copies).
MAX_DEPTH = 50
#: The longest wait for a pipe given as a file to end.
PIPE_WAIT_S = 10.0

_Loader: type[Any] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_MERGE = "tag:yaml.org,2002:merge"


class _DuplicateKey(Exception):
    def __init__(self, key: object, first: yaml.Node, second: yaml.Node) -> None:
        super().__init__()
        self.key, self.first, self.second = key, first, second


class _StrictLoader(_Loader):  # type: ignore[misc]
    """The safe loader, refusing a key given twice in one mapping."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> Any:
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, yaml.Node] = {}
            for key_node, _ in node.value:
                if key_node.tag == _MERGE:
                    continue  # `<<: *base` then a key: overriding is what merges are for
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.setdefault(key, key_node)
                except TypeError:
                    continue  # an unhashable key: the constructor says so
                if first is not key_node:
                    raise _DuplicateKey(key, first, key_node)
        return super().construct_mapping(node, deep=deep)


def _where(node: Any) -> str:
    mark = node.start_mark
    return f"line {mark.line + 1}, column {mark.column + 1}"


def _check_shape(text: bytes | str, source: str, max_nodes: int, max_depth: int) -> None:
    """Refuse too many values or too deep nesting, aliases counted as copies."""
    # Per anchor: (values, levels) of what it names; levels count collections only.
    named: dict[str, tuple[int, int]] = {}
    # Per open collection: [anchor, levels of its deepest child, count at its start].
    stack: list[list[Any]] = []
    count = 0
    for event in yaml.parse(text, Loader=_Loader):
        if isinstance(event, yaml.DocumentStartEvent):
            named.clear()
        elif isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
            stack.append([event.anchor, 0, count])
            count += 1
            _check(count, len(stack), event, source, max_nodes, max_depth)
        elif isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
            anchor, deepest, at_start = stack.pop()
            if anchor is not None:
                named[anchor] = (count - at_start, deepest + 1)
            _deepen(stack, deepest + 1)
        elif isinstance(event, yaml.ScalarEvent):
            count += 1
            if event.anchor is not None:
                named[event.anchor] = (1, 0)
            _check(count, len(stack), event, source, max_nodes, max_depth)
        elif isinstance(event, yaml.AliasEvent):
            anchor = event.anchor or ""
            if any(entry[0] == anchor for entry in stack):
                raise ConfigError(
                    f"alias *{shorten(anchor)} at {_where(event)} is inside the "
                    "collection it names; remove the loop",
                    source=source,
                )
            size, levels = named.get(anchor, (0, 0))  # undefined: the composer says so
            count += size
            _check(count, len(stack) + levels, event, source, max_nodes, max_depth)
            _deepen(stack, levels)


def _deepen(stack: list[list[Any]], levels: int) -> None:
    if stack and levels > stack[-1][1]:
        stack[-1][1] = levels


def _check(count: int, depth: int, event: Any, source: str, max_nodes: int, max_depth: int) -> None:
    if count > max_nodes:
        raise ConfigError(
            f"too many aliases or values: more than {max_nodes} by {_where(event)} "
            "(aliases counted as copies); write out fewer values",
            source=source,
        )
    if depth > max_depth:
        raise ConfigError(
            f"nested too deeply: more than {max_depth} levels at {_where(event)} "
            "(aliases counted as copies); flatten it",
            source=source,
        )


def _read_at_most(path: str | os.PathLike[str], limit: int) -> bytes:
    """Up to ``limit`` bytes of ``path``, in bounded time: a named pipe nobody writes
    to is not waited for at opening (it reads as empty), and a pipe (``<(...)``) is
    read for at most :data:`PIPE_WAIT_S`.

    Raises:
        OSError: it cannot be read.
        TimeoutError: a pipe gave no end within :data:`PIPE_WAIT_S`.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        if not stat.S_ISFIFO(os.fstat(fd).st_mode) and not stat.S_ISSOCK(os.fstat(fd).st_mode):
            os.set_blocking(fd, True)
            with os.fdopen(os.dup(fd), "rb") as file:
                return file.read(limit)
        chunks: list[bytes] = []
        size = 0
        end = time.monotonic() + PIPE_WAIT_S
        while size < limit:
            left = end - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise TimeoutError
            try:
                chunk = os.read(fd, min(65536, limit - size))
            except BlockingIOError:
                continue
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def read_yaml_bounded(
    path: str | os.PathLike[str],
    *,
    source: str | None = None,
    max_bytes: int = MAX_BYTES,
    max_nodes: int = MAX_NODES,
    max_depth: int = MAX_DEPTH,
) -> Any:
    """The YAML document in ``path``, read with the safe loader within limits.

    Args:
        path: the file.
        source: how errors name the file (default: the path, shortened).
        max_bytes: largest file read.
        max_nodes: most values, aliases counted as copies.
        max_depth: deepest nesting of collections, aliases counted as copies.

    Raises:
        ConfigError: the file cannot be read, is too large, is not valid YAML, has
            too many values or too deep nesting, or gives a key twice in a mapping.
    """
    source = shorten(str(path), 120) if source is None else source
    try:
        text = _read_at_most(path, max_bytes + 1)
    except TimeoutError:
        raise ConfigError(
            f"cannot read: nothing more came from this pipe within {PIPE_WAIT_S:g}s; "
            "give a regular file",
            source=source,
        ) from None
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror or exc}", source=source) from None
    if len(text) > max_bytes:
        raise ConfigError(
            f"larger than {max_bytes} bytes ({max_bytes // 1024} KiB), the most read; "
            "is this the right file?",
            source=source,
        )
    return load_yaml_bounded(text, source=source, max_nodes=max_nodes, max_depth=max_depth)


def load_yaml_bounded(
    text: bytes | str,
    *,
    source: str,
    max_nodes: int = MAX_NODES,
    max_depth: int = MAX_DEPTH,
) -> Any:
    """The YAML document ``text`` (already read, within a size limit), with the checks
    of :func:`read_yaml_bounded`: a value given on the command line
    (``--set key=[1, 2]``) is held to the same bounds as a file.

    Raises:
        ConfigError: naming ``source``: not valid YAML, too many values or too deep
            nesting, or a key given twice in a mapping.
    """
    try:
        _check_shape(text, source, max_nodes, max_depth)
        return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a safe loader
    except _DuplicateKey as dup:
        raise ConfigError(
            f"key {shorten(repr(dup.key))} is given twice, at {_where(dup.first)} and "
            f"{_where(dup.second)}; keep one",
            source=source,
        ) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = shorten(exc.problem or exc.context or "syntax error", 100)
        raise ConfigError(f"invalid YAML{at}: {problem}", source=source) from None
    except ConfigError:
        raise
    # PyYAML's constructors also raise bare ValueError, KeyError, AttributeError, ...
    # for bad explicit tags (`!!bool maybe`, `!!timestamp x`) or huge integers; none
    # of them means anything but "not valid YAML".
    except Exception as exc:
        raise ConfigError(f"invalid YAML: {shorten(str(exc), 100)}", source=source) from None
