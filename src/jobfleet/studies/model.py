"""A study, checked: its steps, their points and dependencies (frozen dataclasses).

:func:`jobfleet.studies.studyfile.load_study` builds one from a study file; a step's
points are rendered when read (:class:`StepPoints`), so a step of a million points
costs its parameters, not a million rendered commands.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, overload

from jobfleet.configfile import config_error
from jobfleet.errors import SpecError, shown
from jobfleet.studies.fields import EACH
from jobfleet.studies.parameters import Point
from jobfleet.studies.points import point_dirname, point_key, render_argv, render_shell

__all__ = ["Step", "StepDependency", "StepPoints", "Study", "StudyPoint"]


@dataclass(frozen=True)
class StepDependency:
    """This step waits for step ``step``: point by point (``each``) or for all of it."""

    step: str
    kind: str  # EACH or ALL

    @property
    def per_point(self) -> bool:
        return self.kind == EACH


@dataclass(frozen=True)
class StudyPoint:
    """One point of a step: its number, parameters, rendered command (an argv tuple,
    or a shell line for a ``shell:`` step), identity and directory name."""

    index: int
    params: Mapping[str, object]
    command: tuple[str, ...] | str
    key: str
    dirname: str


@dataclass(frozen=True)
class Step:
    """One step of a study: a command template over its points.

    Attributes:
        name: the step's name (``main`` for a study without ``steps:``).
        template: the argv template (a tuple), or the shell template (a str) when
            ``shell`` is true.
        shell: the command is a shell line (values quoted by ``render_shell``).
        params: the parameter points; ``({},)`` for a step that runs once.
        resources: the study's resource keys for this step (the top level's, then the
            step's), in configuration form (``{"cores": 4, "memory": "8G"}``): layered
            over the configuration's when run (:meth:`config_overrides`).
        env: environment variables for the command.
        max_concurrent: most points running at once; None: no limit of the study's.
        after: the steps this one waits for.
        workers: run the points as pipe tasks served by this many workers (one array
            job: docs/pipe.md); None: one array element per point.
    """

    name: str
    template: tuple[str, ...] | str
    shell: bool
    params: tuple[Point, ...]
    resources: Mapping[str, Any]
    env: Mapping[str, str]
    max_concurrent: int | None
    after: tuple[StepDependency, ...]
    workers: int | None = None
    source: str = field(default="", repr=False, compare=False)
    key: str = field(default="command", repr=False, compare=False)

    @property
    def points(self) -> StepPoints:
        """The points, rendered when read (a step may have a million)."""
        return StepPoints(self)

    @property
    def runs_once(self) -> bool:
        """The step has no parameters: one point, run once."""
        return self.params == ({},)

    def config_overrides(self) -> dict[str, Any]:
        """The step's resources as ``load_config(overrides=...)`` takes them."""
        return {f"resources.{k}": v for k, v in self.resources.items()}

    def render(self, index: int) -> StudyPoint:
        """Point ``index``, rendered.

        Raises:
            ConfigError: the template does not fit this point (a format spec that
                does not fit its value), naming the file, the step's key and the point.
        """
        params = self.params[index]
        try:
            command: tuple[str, ...] | str
            if isinstance(self.template, str):
                command = render_shell(self.template, params)
            else:
                command = tuple(render_argv(self.template, params))
            return StudyPoint(
                index, params, command, point_key(params, command), point_dirname(index, params)
            )
        except SpecError as exc:
            detail = exc.field.removeprefix("command")
            at = f" (point {index}: {shown(params, 100)})" if index else ""
            raise config_error(
                f"{exc.message}{at}", source=self.source, key=self.key + detail
            ) from None


class StepPoints(Sequence[StudyPoint]):
    """A step's points, each rendered when read."""

    def __init__(self, step: Step) -> None:
        self._step = step

    def __len__(self) -> int:
        return len(self._step.params)

    @overload
    def __getitem__(self, index: int) -> StudyPoint: ...
    @overload
    def __getitem__(self, index: slice) -> list[StudyPoint]: ...
    def __getitem__(self, index: int | slice) -> StudyPoint | list[StudyPoint]:
        if isinstance(index, slice):
            return [self._step.render(i) for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(index)
        return self._step.render(index)

    def __iter__(self) -> Iterator[StudyPoint]:
        return (self._step.render(i) for i in range(len(self)))


@dataclass(frozen=True)
class Study:
    """A study file, checked.

    Attributes:
        name: the study's name (safe in a file name).
        path: the study file (absolute).
        output_dir: where its outputs go (absolute; ``output:`` is relative to the
            study file's directory, by default the study's name).
        backend, profile: as the file (or ``--set``) says; None: the configuration's.
        steps: every step, each after the steps it waits for (in the file's order
            when that is one).
    """

    name: str
    path: Path
    output_dir: Path
    backend: str | None
    profile: str | None
    steps: tuple[Step, ...]

    def step(self, name: str) -> Step:
        """The step named ``name``."""
        for step in self.steps:
            if step.name == name:
                return step
        raise KeyError(name)
