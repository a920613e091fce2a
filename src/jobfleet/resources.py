"""What a job asks for: :class:`Resources`, in canonical units (bytes, seconds).

Pure data, validated on construction; each backend translates it to its
scheduler's words (``backends/*/directives.py`` hold each one's mapping table,
docs/job-model.md shows them side by side). :data:`KEY_DOCS` says in one line
what each key of ``resources:`` means.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from jobfleet.errors import SpecError, shown
from jobfleet.naming import NAME_PREFIX_RE
from jobfleet.units import parse_begin, parse_memory, parse_walltime
from jobfleet.validate import MAX_COUNT, check_count, check_int, check_key, check_line, check_lines

__all__ = ["KEY_DOCS", "LAUNCHERS", "MAIL_EVENTS", "PRIORITY_RANGE", "Resources", "license_parts"]

#: ``launcher`` values: how the job script starts the command.
LAUNCHERS = ("none", "srun", "mpirun", "mpiexec")
#: ``mail_on`` values.
MAIL_EVENTS = ("begin", "end", "fail", "requeue", "all")
#: The range of ``priority`` every backend takes (Grid Engine's ``-p``).
PRIORITY_RANGE = (-1023, 1024)

#: One line per key of ``resources:`` (configuration, ``Resources.of``), in KEYS order.
KEY_DOCS = {
    "cores": "CPU cores per task",
    "memory": "memory per node, e.g. 4G (1024-based) or 4GB (1000-based)",
    "walltime": "run time limit, e.g. 1h30m or 01:30:00",
    "gpus": "GPUs for the whole job (or gpus_per_node / gpus_per_task)",
    "nodes": "number of nodes (1: the whole job on one node)",
    "queue": "queue or partition",
    "account": "account or project to charge",
    "extra_directives": "raw scheduler directives added to every job script",
    "directives_skip": "leave out generated directives containing any of these strings",
    "extra_args": "extra arguments for the submit command",
    "tasks": "number of tasks (MPI ranks) in total (or tasks_per_node)",
    "tasks_per_node": "tasks on each node (or tasks in total)",
    "cores_per_task": "another name for cores (CPU cores per task)",
    "gpus_per_node": "GPUs on each node",
    "gpus_per_task": "GPUs for each task",
    "memory_per_core": "memory per CPU core (or memory per node), e.g. 2G",
    "exclusive": "the job's nodes for this job alone (true/false)",
    "launcher": "start the command with srun, mpirun or mpiexec over the tasks (or none)",
    "qos": "quality of service (SLURM)",
    "constraint": "node features the job needs, e.g. haswell&ib (SLURM)",
    "reservation": "run inside this advance reservation",
    "mail_to": "mail job events to this address (off unless set)",
    "mail_on": "events to mail: begin, end, fail, requeue, all (default: end, fail)",
    "licenses": "licenses the job needs: name or name:count (SLURM remote: name@server)",
    "priority": "relative priority among your jobs, -1023..1024 (negative: later)",
    "begin": "start no earlier than: ISO 8601 local time, or a delay like +2h",
    "name_prefix": "put this in front of the job's name on the scheduler, e.g. lab42-",
}

_LIST_FIELDS = ("extra_directives", "directives_skip", "extra_args", "mail_on", "licenses")
#: A name a directive holds as one word: no spaces, quotes, or shell syntax.
_WORD_RE = re.compile(r"[A-Za-z0-9_.:@+%=/-]+")
#: SLURM's feature expressions: names joined by & | , * and brackets.
_CONSTRAINT_RE = re.compile(r"[A-Za-z0-9_.:&|,*\[\]()!-]+")
_LICENSE_RE = re.compile(r"([A-Za-z0-9_.-]+(?:@[A-Za-z0-9_.-]+)?)(?::([0-9]+))?")


def _word(field: str, value: object, pattern: re.Pattern[str] = _WORD_RE) -> str:
    text = check_line(field, value)
    if not pattern.fullmatch(text):
        raise SpecError(field, f"{shown(text)} is not a plain name (no spaces or quotes)")
    return text


def license_parts(text: str) -> tuple[str, int]:
    """``("matlab", 2)`` for ``"matlab:2"``; a license without a count is one."""
    match = _LICENSE_RE.fullmatch(text)
    if match is None:  # pragma: no cover - checked on construction
        raise SpecError("resources.licenses", f"{shown(text)}: write name or name:count")
    return match[1], int(match[2] or 1)


@dataclass(frozen=True, slots=True)
class Resources:
    """What one job (or each array element) asks for, in canonical units.

    Attributes:
        cores: CPU cores per task (key ``cores`` or ``cores_per_task``).
        memory_bytes: memory per node; None leaves it to the site.
        walltime_s: run time limit in seconds; None leaves it to the site.
        gpus: GPUs for the whole job.
        nodes: number of nodes; 1 keeps the whole job on one node.
        queue: queue or partition name.
        account: account or project to charge.
        extra_directives: raw directive bodies added as-is after the generated ones,
            e.g. ``"--constraint=haswell"`` (the dialect adds ``#SBATCH``).
        directives_skip: a generated directive containing any of these strings is left out.
        extra_args: extra arguments for the submit command (e.g. ``sbatch``).
        tasks: tasks in total; None: one, or ``tasks_per_node`` on each node.
        tasks_per_node: tasks on each node (instead of ``tasks``).
        gpus_per_node: GPUs on each node (instead of ``gpus``).
        gpus_per_task: GPUs for each task (instead of ``gpus``).
        memory_per_core_bytes: memory per CPU core (instead of ``memory_bytes``).
        exclusive: nodes for this job alone.
        launcher: ``none``, or ``srun`` / ``mpirun`` / ``mpiexec`` around the command.
        qos, constraint, reservation: a site's quality of service, node features
            and advance reservation.
        mail_to: where job events are mailed; None: no mail.
        mail_on: which events (:data:`MAIL_EVENTS`); empty: end and fail.
        licenses: ``name`` or ``name:count`` each.
        priority: relative priority among the user's jobs, 0 the scheduler's default;
            negative runs later (raising it is for operators on most sites).
        begin: not before this time: ISO 8601 text, or ``+<seconds>s`` after submission.
        name_prefix: what the job's scheduler name starts with (before jobfleet's
            ``jf<token>-<id>-``): a letter, then at most 19 of ``A-Za-z0-9._-``.

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
    tasks: int | None = None
    tasks_per_node: int | None = None
    gpus_per_node: int = 0
    gpus_per_task: int = 0
    memory_per_core_bytes: int | None = None
    exclusive: bool = False
    launcher: str = "none"
    qos: str | None = None
    constraint: str | None = None
    reservation: str | None = None
    mail_to: str | None = None
    mail_on: tuple[str, ...] = ()
    licenses: tuple[str, ...] = ()
    priority: int = 0
    begin: str | None = None
    name_prefix: str | None = None

    def __post_init__(self) -> None:
        for name in ("cores", "nodes"):
            check_count(f"resources.{name}", getattr(self, name), 1)
        for name in ("gpus", "gpus_per_node", "gpus_per_task"):
            check_count(f"resources.{name}", getattr(self, name), 0)
        for name in ("tasks", "tasks_per_node"):
            if getattr(self, name) is not None:
                check_count(f"resources.{name}", getattr(self, name), 1)
        for name in ("memory_bytes", "walltime_s"):
            if getattr(self, name) is not None:
                check_int(f"resources.{name}", getattr(self, name), 1)
        if self.memory_per_core_bytes is not None:
            check_int("resources.memory_per_core", self.memory_per_core_bytes, 1)
        for name in ("queue", "account"):
            value = getattr(self, name)
            if value is not None:
                check_line(f"resources.{name}", value)
        for name in _LIST_FIELDS:
            object.__setattr__(self, name, check_lines(f"resources.{name}", getattr(self, name)))
        self._check_layout()
        self._check_site()

    def _check_layout(self) -> None:
        if self.total_cores > MAX_COUNT:
            raise SpecError(
                "resources.cores",
                f"tasks x cores is {self.total_cores}, more than any scheduler gives "
                f"(at most {MAX_COUNT})",
            )
        if self.tasks is not None and self.tasks_per_node is not None:
            raise SpecError("resources.tasks", "give tasks (in total) or tasks_per_node, not both")
        if self.tasks is not None and self.tasks < self.nodes:
            raise SpecError(
                "resources.tasks",
                f"{self.tasks} tasks cannot fill {self.nodes} nodes; ask for more tasks "
                "or fewer nodes",
            )
        gpu_keys = [k for k in ("gpus", "gpus_per_node", "gpus_per_task") if getattr(self, k)]
        if len(gpu_keys) > 1:
            raise SpecError(f"resources.{gpu_keys[1]}", f"give only one of {' / '.join(gpu_keys)}")
        if self.memory_bytes is not None and self.memory_per_core_bytes is not None:
            raise SpecError(
                "resources.memory_per_core", "give memory (per node) or memory_per_core, not both"
            )
        if not isinstance(self.exclusive, bool):
            raise SpecError(
                "resources.exclusive", f"expected true or false, got {shown(self.exclusive)}"
            )
        if self.launcher not in LAUNCHERS:
            raise SpecError(
                "resources.launcher",
                f"{shown(self.launcher)} is unknown; use one of {', '.join(LAUNCHERS)}",
            )

    def _check_site(self) -> None:
        for name in ("qos", "reservation", "mail_to"):
            if getattr(self, name) is not None:
                _word(f"resources.{name}", getattr(self, name))
        if self.constraint is not None:
            _word("resources.constraint", self.constraint, _CONSTRAINT_RE)
        for i, event in enumerate(self.mail_on):
            if event not in MAIL_EVENTS:
                raise SpecError(
                    f"resources.mail_on[{i}]",
                    f"{shown(event)} is unknown; use some of {', '.join(MAIL_EVENTS)}",
                )
        if self.mail_on and self.mail_to is None:
            raise SpecError("resources.mail_on", "mail goes nowhere: set mail_to too")
        for i, text in enumerate(self.licenses):
            if not _LICENSE_RE.fullmatch(text) or text.endswith(":0"):
                raise SpecError(
                    f"resources.licenses[{i}]",
                    f"{shown(text)}: write name or name:count (count >= 1)",
                )
        low, high = PRIORITY_RANGE
        check_int("resources.priority", self.priority, low)
        if self.priority > high:
            raise SpecError("resources.priority", f"must be at most {high}, got {self.priority}")
        if self.begin is not None:
            object.__setattr__(self, "begin", parse_begin(self.begin, "resources.begin"))
        if self.name_prefix is not None:
            text = check_line("resources.name_prefix", self.name_prefix)
            if not NAME_PREFIX_RE.fullmatch(text):
                raise SpecError(
                    "resources.name_prefix",
                    f"{shown(text)}: start with a letter, then at most 19 letters, digits, "
                    "'.', '_' or '-' (what every scheduler takes in a job name)",
                )

    #: Keys accepted by :meth:`of` and in configuration files.
    KEYS = tuple(KEY_DOCS)

    @property
    def total_tasks(self) -> int:
        """Tasks in the whole job (1 unless ``tasks`` or ``tasks_per_node`` say more)."""
        if self.tasks is not None:
            return self.tasks
        return self.nodes * (self.tasks_per_node or 1)

    @property
    def total_cores(self) -> int:
        """CPU cores of the whole job: tasks times cores per task."""
        return self.total_tasks * self.cores

    @property
    def is_layout(self) -> bool:
        """Whether the job asks for more than one task or node."""
        return self.total_tasks > 1 or self.nodes > 1

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
            check_key(key, cls.KEYS, prefix, "resource")
            if value is None:
                continue
            if key in ("memory", "memory_per_core"):
                name = "memory_bytes" if key == "memory" else "memory_per_core_bytes"
                kwargs[name] = parse_memory(value, f"{prefix}.{key}")
            elif key == "walltime":
                kwargs["walltime_s"] = parse_walltime(value, f"{prefix}.walltime")
            elif key == "begin":
                kwargs["begin"] = parse_begin(value, f"{prefix}.begin")
            elif key in _LIST_FIELDS:
                kwargs[key] = check_lines(f"{prefix}.{key}", value)
            elif key == "cores_per_task":
                continue  # below, with cores
            else:
                kwargs[key] = value
        alias = values.get("cores_per_task")
        if alias is not None:
            check_count(f"{prefix}.cores_per_task", alias, 1)
            if kwargs.get("cores", alias) != alias:
                raise SpecError(
                    f"{prefix}.cores_per_task",
                    f"is {shown(alias)} but cores is {shown(kwargs['cores'])}; they are one "
                    "setting: give one of them",
                )
            kwargs["cores"] = alias
        try:
            return cls(**kwargs)
        except SpecError as exc:
            field = exc.field.replace("resources", prefix, 1).replace("_bytes", "")
            raise SpecError(field, exc.message) from None

    def merged(self, **changes: Any) -> Resources:
        """A copy with some fields replaced (canonical field names)."""
        return dataclasses.replace(self, **changes)

    def overlaid(self, given: Mapping[str, Any], prefix: str = "resources") -> Resources:
        """This (e.g. a configuration's defaults) with the keys of ``given`` (human
        units, as :meth:`from_mapping` reads them) over it: only the keys given change.

        Raises:
            SpecError: as :meth:`from_mapping`.
        """
        changes = Resources.from_mapping(given, prefix=prefix)
        default = Resources()
        changed = {
            f.name: getattr(changes, f.name)
            for f in dataclasses.fields(self)
            if getattr(changes, f.name) != getattr(default, f.name)
        }
        return self.merged(**changed)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-compatible dict in canonical units, read back by :meth:`from_dict`."""
        return {
            f.name: list(v) if isinstance(v := getattr(self, f.name), tuple) else v
            for f in dataclasses.fields(self)
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Resources:
        """Rebuild what :meth:`to_dict` stored; keys an older version did not store
        take their defaults (keys of later versions are refused)."""
        return cls(**data)
