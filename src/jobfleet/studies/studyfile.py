"""Study files: a YAML file describing one or more steps, each a command over points.

::

    name: grid
    command: ["python3", "simulate.py", "--a", "{a}", "--b", "{b}"]
    parameters:
      a: [1, 2, 3]
      b: [x, y, z, w]
    output: results

:func:`load_study` reads one (with the bounds of :mod:`jobfleet.yamlsafe`), applies
``--set KEY=VALUE`` overrides and checks everything: each problem is a
:class:`~jobfleet.errors.ConfigError` naming the file, the dotted key and what would
be accepted. Nothing is submitted or written here; docs/studies.md "Study files"
lists the keys.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jobfleet.configfile import config_error
from jobfleet.errors import ConfigError, shorten, shown
from jobfleet.settings import hint
from jobfleet.studies.fields import (
    ALL,
    EACH,
    TOP_KEYS,
    apply_override,
    check_keys,
    merge_resources,
    read_after,
    read_backend,
    read_env,
    read_max_concurrent,
    read_name,
    read_resources,
    read_text,
    read_workers,
)
from jobfleet.studies.model import Step, StepDependency, Study, StudyPoint
from jobfleet.studies.parameters import Point, read_parameters
from jobfleet.yamlsafe import read_yaml_bounded

__all__ = [
    "ALL",
    "EACH",
    "MAIN",
    "STEP_KEYS",
    "TOP_KEYS",
    "Step",
    "StepDependency",
    "Study",
    "StudyPoint",
    "load_study",
]

#: The step a study without ``steps:`` has.
MAIN = "main"
#: The keys of one step.
STEP_KEYS = (
    "command", "shell", "parameters", "resources", "env", "max_concurrent", "workers", "after"
)  # fmt: skip


def load_study(path: str | os.PathLike[str], *, overrides: Sequence[str] = ()) -> Study:
    """Read, override and check a study file.

    Args:
        path: the YAML file.
        overrides: ``KEY=VALUE`` texts (``--set``): a dotted key into the file's
            mapping (``parameters.a``, ``steps.sweep.max_concurrent``) and a YAML
            value (``[1, 2]``, ``4``, ``8G``), applied in order before any check.

    Raises:
        ConfigError: naming the file (and the ``--set`` it came from), the dotted
            key, and what would be accepted.
    """
    source = shorten(os.fspath(path), 120)
    data = read_yaml_bounded(path, source=source)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise config_error(
            f"a study file is a mapping (name:, command:, parameters: ...), got "
            f"{type(data).__name__}",
            source=source,
        )
    given: list[tuple[str, str]] = []
    for text in overrides:
        given.append((apply_override(data, text, source), text))
    file = Path(os.path.abspath(path))
    try:
        return _build(data, source, file)
    except ConfigError as exc:
        for key, text in reversed(given):
            if exc.key and (exc.key.startswith(key) or key.startswith(exc.key)):
                raise config_error(
                    exc.message, source=f"{source} (--set {text})", key=exc.key
                ) from None
        raise


def _build(data: Mapping[Any, Any], source: str, file: Path) -> Study:
    check_keys(data, TOP_KEYS, "", source)
    name = read_name(data.get("name"), source)
    output = read_text(data.get("output"), "output", source) or name
    backend = read_backend(data.get("backend"), source)
    profile = read_text(data.get("profile"), "profile", source)
    top = _Defaults(
        resources=read_resources(data.get("resources"), "resources", source),
        env=read_env(data.get("env"), "env", source),
        max_concurrent=read_max_concurrent(data.get("max_concurrent"), "max_concurrent", source),
        workers=read_workers(data.get("workers"), "workers", source),
    )
    bodies: dict[str, tuple[Mapping[Any, Any], str]] = {}
    if data.get("steps") is not None:
        for key in ("command", "shell", "parameters"):
            if data.get(key) is not None:
                raise config_error(
                    "with steps:, each step has its own command (or shell) and parameters; "
                    f"move {key}: into a step",
                    source=source,
                    key=key,
                )
        steps = data["steps"]
        if not isinstance(steps, Mapping) or not steps:
            raise config_error(
                "expected a mapping of step names to steps, e.g. {prep: {command: [...]}, "
                f"sweep: {{command: [...], parameters: ..., after: prep}}}}; got {shown(steps)}",
                source=source,
                key="steps",
            )
        for step_name, body in steps.items():
            key = f"steps.{step_name}"
            read_name(step_name, source, key="steps", step=True)
            if not isinstance(body, Mapping):
                raise config_error(
                    f"expected a mapping with command: (or shell:) and, if it needs them, "
                    f"{', '.join(STEP_KEYS[2:])}; got {shown(body)}",
                    source=source,
                    key=key,
                )
            check_keys(body, STEP_KEYS, f"{key}.", source)
            bodies[step_name] = (body, f"{key}.")
    else:
        body = {k: data[k] for k in ("command", "shell", "parameters") if k in data}
        bodies[MAIN] = (body, "")
    base = file.parent
    points = _resolve_points(bodies, source, base)
    built = [_step(n, b, p, points[n], top, source) for n, (b, p) in bodies.items()]
    ordered = _order(built, source, {n: p for n, (_, p) in bodies.items()})
    for step in ordered:
        step.render(0)  # an unknown placeholder, a bad template: now, naming the key
    return Study(
        name=name,
        path=file,
        output_dir=base / Path(output).expanduser(),
        backend=backend,
        profile=profile,
        steps=tuple(ordered),
    )


@dataclass(frozen=True)
class _Defaults:
    resources: dict[str, Any]
    env: dict[str, str]
    max_concurrent: int | None
    workers: int | None


def _resolve_points(
    bodies: Mapping[str, tuple[Mapping[Any, Any], str]], source: str, base: Path
) -> dict[str, tuple[Point, ...]]:
    """Each step's points; ``parameters: STEP`` takes that step's."""
    out: dict[str, tuple[Point, ...]] = {}

    def points(name: str, seen: tuple[str, ...]) -> tuple[Point, ...]:
        if name in out:
            return out[name]
        body, prefix = bodies[name]
        value = body.get("parameters")
        key = f"{prefix}parameters"
        if value is None:
            found: tuple[Point, ...] = ({},)
        elif isinstance(value, str) and prefix:
            if value not in bodies:
                valid = list(bodies)
                raise config_error(
                    f"names no step{hint(value, valid)}: a string here names a step whose "
                    f"points to use; the steps are {', '.join(valid)}",
                    source=source,
                    key=key,
                )
            if value in seen or value == name:
                loop = " -> ".join([*seen, name, value])
                raise config_error(
                    f"parameters name each other in a loop ({loop}); give one of them its "
                    "own parameters",
                    source=source,
                    key=key,
                )
            found = points(value, (*seen, name))
        else:
            found = tuple(read_parameters(value, key, source, base))
        out[name] = found
        return found

    for name in bodies:
        points(name, ())
    return out


def _step(
    name: str,
    body: Mapping[Any, Any],
    prefix: str,
    params: tuple[Point, ...],
    top: _Defaults,
    source: str,
) -> Step:
    command, shell = body.get("command"), body.get("shell")
    if (command is None) == (shell is None):
        where = f"step {name!r}" if prefix else "the study"
        both = "gives both" if command is not None else "has neither"
        raise config_error(
            f"{where} {both} command: and shell:; give exactly one: command: an argv list "
            '(e.g. ["python3", "run.py", "--a", "{a}"]) or shell: a shell line',
            source=source,
            key=f"{prefix}command" if prefix else "command",
        )
    template: tuple[str, ...] | str
    if command is not None:
        template = _argv(command, f"{prefix}command", source)
    else:
        if not isinstance(shell, str) or not shell.strip():
            raise config_error(
                f"expected a shell command line (a string), got {shown(shell)}",
                source=source,
                key=f"{prefix}shell",
            )
        template = shell
    resources = top.resources
    if prefix:
        own = read_resources(body.get("resources"), f"{prefix}resources", source)
        resources = merge_resources(top.resources, own, f"{prefix}resources", source)
    env = {**top.env, **read_env(body.get("env"), f"{prefix}env", source)} if prefix else top.env
    limit = read_max_concurrent(body.get("max_concurrent"), f"{prefix}max_concurrent", source)
    workers = read_workers(body.get("workers"), f"{prefix}workers", source) if prefix else None
    return Step(
        name=name,
        template=template,
        shell=shell is not None,
        params=params,
        resources=resources,
        env=env,
        max_concurrent=limit if limit is not None else top.max_concurrent,
        workers=workers if workers is not None else top.workers,
        after=tuple(
            StepDependency(step, kind)
            for step, kind in read_after(body.get("after"), f"{prefix}after", source)
        ),
        source=source,
        key=f"{prefix}shell" if shell is not None else f"{prefix}command",
    )


def _argv(value: object, key: str, source: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise config_error(
            'expected an argv list, e.g. ["python3", "run.py", "--a", "{a}"] (for a shell '
            f"line, use shell:), got {shown(value)}",
            source=source,
            key=key,
        )
    for i, element in enumerate(value):
        if not isinstance(element, str):
            raise config_error(
                f'{shown(element)} is not a string: quote it ("{element}") so YAML keeps '
                "it as written"
                if isinstance(element, (int, float)) and not isinstance(element, bool)
                else f"{shown(element)} is not a string: each argv element is one string",
                source=source,
                key=f"{key}[{i}]",
            )
    if not value[0].strip():
        raise config_error("the program (the first element) is empty", source=source, key=key)
    return tuple(value)


def _order(steps: list[Step], source: str, prefixes: Mapping[str, str]) -> list[Step]:
    """The steps, each after those it waits for; checks every ``after``."""
    by_name = {s.name: s for s in steps}
    for step in steps:
        key = f"{prefixes[step.name]}after"
        for dep in step.after:
            if dep.step not in by_name:
                valid = [n for n in by_name if n != step.name]
                raise config_error(
                    f"names no step {dep.step!r}{hint(dep.step, valid)}; the other steps are "
                    f"{', '.join(valid) or '(none)'}",
                    source=source,
                    key=key,
                )
            if dep.per_point:
                _same_points(step, by_name[dep.step], f"{key}.{dep.step}", source)
    ordered: list[Step] = []
    placed: set[str] = set()
    while len(ordered) < len(steps):
        ready = next(
            (s for s in steps if s.name not in placed and all(d.step in placed for d in s.after)),
            None,
        )
        if ready is None:
            cycle = _cycle([s for s in steps if s.name not in placed], by_name)
            raise config_error(
                f"the steps wait for each other in a loop ({' -> '.join(cycle)}), so none "
                "could ever start; remove one of these after:",
                source=source,
                key=f"{prefixes[cycle[0]]}after",
            )
        ordered.append(ready)
        placed.add(ready.name)
    return ordered


def _cycle(left: list[Step], by_name: Mapping[str, Step]) -> list[str]:
    """A loop among ``left`` (each waits for another of them), as names, closed."""
    names = {s.name for s in left}
    path: list[str] = []
    name = left[0].name
    while name not in path:
        path.append(name)
        name = next(d.step for d in by_name[name].after if d.step in names)
    return [*path[path.index(name) :], name]


def _same_points(step: Step, other: Step, key: str, source: str) -> None:
    def typed(points: tuple[Point, ...]) -> list[list[tuple[str, str, object]]]:
        return [sorted((k, type(v).__name__, v) for k, v in p.items()) for p in points]

    if len(step.params) == len(other.params) and typed(step.params) == typed(other.params):
        return
    count = f"{step.name} has {len(step.params)}, {other.name} {len(other.params)}"
    if len(step.params) == len(other.params):
        count = f"{len(step.params)} each, but not the same parameters"
    raise config_error(
        f"point i of {step.name} would wait for point i of {other.name}, so both need the "
        f"same points ({count}); give {step.name} `parameters: {other.name}`, or wait for "
        f"all of it: `after: {{{other.name}: all}}`",
        source=source,
        key=key,
    )
