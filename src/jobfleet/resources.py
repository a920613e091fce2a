"""What a job asks for: :class:`Resources`, in canonical units (bytes, seconds).

Pure data, validated on construction; each backend translates it to its
scheduler's words.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from jobfleet.errors import SpecError
from jobfleet.units import parse_memory, parse_walltime
from jobfleet.validate import check_int, check_line, check_lines

__all__ = ["Resources"]


@dataclass(frozen=True, slots=True)
class Resources:
    """What one job (or each array element) asks for, in canonical units.

    Attributes:
        cores: CPU cores per task.
        memory_bytes: memory for the whole job on one node; None leaves it to the site.
        walltime_s: run time limit in seconds; None leaves it to the site.
        gpus: GPUs per job.
        nodes: number of nodes.
        queue: queue or partition name.
        account: account or project to charge.
        extra_directives: raw directive bodies added as-is after the generated ones,
            e.g. ``"--constraint=haswell"`` (the dialect adds ``#SBATCH``).
        directives_skip: a generated directive containing any of these strings is left out.
        extra_args: extra arguments for the submit command (e.g. ``sbatch``).

    Use :meth:`of` to build one from human units (``memory="4G"``).
    """

    cores: int = 1
    memory_bytes: int | None = None
    walltime_s: int | None = None
    gpus: int = 0
    nodes: int = 1
    queue: str | None = None
    account: str | None = None
    extra_directives: tuple[str, ...] = ()
    directives_skip: tuple[str, ...] = ()
    extra_args: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        check_int("resources.cores", self.cores, 1)
        check_int("resources.gpus", self.gpus, 0)
        check_int("resources.nodes", self.nodes, 1)
        if self.memory_bytes is not None:
            check_int("resources.memory_bytes", self.memory_bytes, 1)
        if self.walltime_s is not None:
            check_int("resources.walltime_s", self.walltime_s, 1)
        for name in ("queue", "account"):
            value = getattr(self, name)
            if value is not None:
                check_line(f"resources.{name}", value)
        for name in ("extra_directives", "directives_skip", "extra_args"):
            object.__setattr__(self, name, check_lines(f"resources.{name}", getattr(self, name)))

    #: Keys accepted by :meth:`of` and in configuration files.
    KEYS = (
        "cores",
        "memory",
        "walltime",
        "gpus",
        "nodes",
        "queue",
        "account",
        "extra_directives",
        "directives_skip",
        "extra_args",
    )

    @classmethod
    def of(cls, **values: Any) -> Resources:
        """Build from human units: ``Resources.of(cores=4, memory="8G", walltime="1h")``."""
        return cls.from_mapping(values)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], prefix: str = "resources") -> Resources:
        """Build from a mapping with the keys in :attr:`KEYS`; None values are left unset.

        Raises:
            SpecError: an unknown key (with the valid ones) or a bad value.
        """
        kwargs: dict[str, Any] = {}
        for key, value in values.items():
            if key not in cls.KEYS:
                from difflib import get_close_matches

                close = get_close_matches(str(key), cls.KEYS, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise SpecError(
                    f"{prefix}.{key}",
                    f"unknown resource{hint}; valid keys: {', '.join(cls.KEYS)}",
                )
            if value is None:
                continue
            if key == "memory":
                kwargs["memory_bytes"] = parse_memory(value, f"{prefix}.memory")
            elif key == "walltime":
                kwargs["walltime_s"] = parse_walltime(value, f"{prefix}.walltime")
            elif key in ("extra_directives", "directives_skip", "extra_args"):
                kwargs[key] = check_lines(f"{prefix}.{key}", value)
            else:
                kwargs[key] = value
        try:
            return cls(**kwargs)
        except SpecError as exc:
            raise SpecError(exc.field.replace("resources", prefix, 1), exc.message) from None

    def merged(self, **changes: Any) -> Resources:
        """A copy with some fields replaced (canonical field names)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-compatible dict in canonical units, read back by :meth:`from_dict`."""
        return {
            f.name: list(v) if isinstance(v := getattr(self, f.name), tuple) else v
            for f in dataclasses.fields(self)
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Resources:
        """Rebuild what :meth:`to_dict` stored (keys of later versions are refused)."""
        return cls(**data)
