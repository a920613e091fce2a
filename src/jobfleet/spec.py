"""What to run: :class:`JobSpec`, its :class:`Resources`, arrays and dependencies.

Pure data, validated on construction, no I/O. Everything a backend needs to
build a submission is here, in canonical units (bytes, seconds); each backend
translates it to its scheduler's words.

>>> spec = JobSpec(["python", "train.py", "--lr", "0.1"], name="train",
...                resources=Resources.of(cores=4, memory="8G", walltime="2h"),
...                array=parse_array("1-10%2"))
>>> spec.resources.memory_bytes, spec.resources.walltime_s, spec.array.indices[:3]
(8589934592, 7200, (1, 2, 3))
"""

from __future__ import annotations

import dataclasses
import enum
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from jobfleet.arrays import ArraySpec, parse_array
from jobfleet.environment import Environment
from jobfleet.errors import SpecError, shown
from jobfleet.resources import Resources
from jobfleet.states import DEFAULT_RETRY_ON, RETRYABLE, JobState
from jobfleet.validate import check_line, check_lines, check_text

__all__ = [
    "ArraySpec",
    "DepKind",
    "Dependency",
    "Environment",
    "JobSpec",
    "Resources",
    "parse_array",
    "spec_from_dict",
    "spec_to_dict",
]

_ENV_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
MAX_NAME_LENGTH = 200
#: Most retries a job may ask for.
MAX_RETRIES = 100
_RETRYABLE_NAMES = tuple(s.value for s in RETRYABLE)


def _check_name(value: object) -> str:
    """A job's name: one line of text, at most MAX_NAME_LENGTH characters.

    Text means Unicode: a byte that is not UTF-8 (``--name $'x\\xff'``, which
    Python holds as a lone surrogate) cannot be recorded, shown or sent to a
    scheduler, so it is refused here, for dry runs too.
    """
    text = check_text("name", value)
    if len(text) > MAX_NAME_LENGTH:
        raise SpecError("name", f"at most {MAX_NAME_LENGTH} characters, got {len(text)}")
    check_line("name", text)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise SpecError(
            "name", f"must be text (UTF-8); {shown(text)} holds a byte that is not"
        ) from None
    return text


class DepKind(str, enum.Enum):
    """When a dependent job may start, relative to the jobs it depends on."""

    #: After every listed job completed successfully (exit 0).
    AFTER_OK = "after_ok"
    #: After every listed job ended, whatever the outcome.
    AFTER_ANY = "after_any"
    #: After every listed job ended unsuccessfully (failed, timeout, cancelled, ...).
    AFTER_NOT_OK = "after_not_ok"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, slots=True)
class Dependency:
    """Start only after the listed jobfleet job ids reached the condition ``kind``."""

    kind: DepKind
    job_ids: tuple[str, ...]

    def __post_init__(self) -> None:
        if not isinstance(self.kind, DepKind):
            try:
                object.__setattr__(self, "kind", DepKind(self.kind))
            except ValueError:
                choices = ", ".join(k.value for k in DepKind)
                raise SpecError(
                    "dependencies.kind", f"{shown(self.kind)}; choose one of {choices}"
                ) from None
        ids = check_lines("dependencies.job_ids", self.job_ids)
        if not ids:
            raise SpecError("dependencies.job_ids", "name at least one job id")
        object.__setattr__(self, "job_ids", tuple(dict.fromkeys(ids)))


@dataclass(frozen=True, slots=True)
class JobSpec:
    """One job to run: a command, where and how.

    Attributes:
        command: the program and its arguments (an argv list, never split by a shell).
            With ``shell=True`` it must be a single string, run by ``bash -c``.
        shell: run ``command[0]`` as shell code; only when asked for explicitly.
        name: a human name; defaults to the program's file name.
        workdir: directory the command runs in; None means the submitter's
            working directory at submission time.
        env: extra environment variables for the command.
        stdout: path for standard output; None puts it in the job's directory.
            ``{index}`` is replaced by the array index (empty for single jobs).
        stderr: path for standard error; None puts it in the job's directory.
        resources: what the job asks for.
        environment: how its shell is set up around the command: modules,
            prologue and epilogue lines, env files, scratch (see :class:`Environment`).
        array: the array indices, or None for a single job.
        dependencies: conditions on other jobfleet jobs.
        retries: how many times to submit the job again when it ends in one of
            ``retry_on`` (each attempt is recorded; see ``Registry.attempts``).
            Single jobs only, and no other job may depend on a job with retries.
        retry_on: the states that use up a retry: any of ``failed``, ``lost``,
            ``timeout``, ``out_of_memory`` (default: failed and lost).
    """

    command: Sequence[str]
    name: str | None = None
    workdir: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    stdout: str | None = None
    stderr: str | None = None
    resources: Resources = field(default_factory=Resources)
    array: ArraySpec | None = None
    dependencies: tuple[Dependency, ...] = ()
    shell: bool = False
    retries: int = 0
    retry_on: tuple[JobState, ...] = DEFAULT_RETRY_ON
    environment: Environment = field(default_factory=Environment)

    def __post_init__(self) -> None:
        if isinstance(self.command, str):
            if not self.shell:
                raise SpecError(
                    "command",
                    "give the command as a list of arguments, e.g. ['python', 'run.py'], "
                    "or pass shell=True to run a shell string on purpose",
                )
            command: tuple[str, ...] = (self.command,)
        elif isinstance(self.command, Iterable):
            command = tuple(self.command)
        else:
            raise SpecError("command", f"expected a list of arguments, got {shown(self.command)}")
        if not command:
            raise SpecError("command", "must not be empty; give the program to run")
        for i, arg in enumerate(command):
            check_text(f"command[{i}]", arg, allow_empty=i > 0)
        if self.shell and len(command) != 1:
            raise SpecError("command", "with shell=True give exactly one string of shell code")
        object.__setattr__(self, "command", command)
        if self.name is not None:
            _check_name(self.name)
        for name in ("workdir", "stdout", "stderr"):
            value = getattr(self, name)
            if value is not None:
                check_line(name, value)
        if not isinstance(self.env, Mapping):
            raise SpecError("env", f"expected a mapping of names to values, got {shown(self.env)}")
        env = {}
        for key, value in self.env.items():
            if not isinstance(key, str) or not _ENV_NAME_RE.fullmatch(key):
                raise SpecError("env", f"{shown(key)} is not a valid environment variable name")
            env[key] = check_text(f"env.{key}", value, allow_empty=True)
        object.__setattr__(self, "env", env)
        if not isinstance(self.resources, Resources):
            raise SpecError("resources", "expected a Resources object; use Resources.of(...)")
        if not isinstance(self.environment, Environment):
            raise SpecError(
                "environment", "expected an Environment object; use Environment.of(...)"
            )
        if self.array is not None and not isinstance(self.array, ArraySpec):
            raise SpecError("array", "expected an ArraySpec; use parse_array('1-100%10')")
        deps = tuple(self.dependencies)
        for dep in deps:
            if not isinstance(dep, Dependency):
                raise SpecError("dependencies", f"expected Dependency objects, got {shown(dep)}")
        object.__setattr__(self, "dependencies", deps)
        self._check_retries()

    def _check_retries(self) -> None:
        if isinstance(self.retries, bool) or not isinstance(self.retries, int):
            raise SpecError("retries", f"expected a whole number, got {shown(self.retries)}")
        if not 0 <= self.retries <= MAX_RETRIES:
            raise SpecError("retries", f"expected 0 to {MAX_RETRIES}, got {self.retries}")
        if self.retries and self.array is not None:
            raise SpecError(
                "retries",
                "arrays cannot be retried as a whole yet; retry inside the task, "
                "or submit the failed indices again as a new array",
            )
        if isinstance(self.retry_on, (str, JobState)):
            raise SpecError("retry_on", "expected a list of states, e.g. ['failed', 'timeout']")
        states = []
        for value in self.retry_on:
            state = JobState(value) if value in _RETRYABLE_NAMES else None
            if state is None:
                raise SpecError(
                    "retry_on",
                    f"{shown(value)} cannot be retried; choose from {', '.join(_RETRYABLE_NAMES)}",
                )
            states.append(state)
        object.__setattr__(self, "retry_on", tuple(dict.fromkeys(states)))

    @property
    def display_name(self) -> str:
        """The name, or the program's file name when none was given."""
        if self.name:
            return self.name
        if self.shell:
            return "shell"
        program = self.command[0].rsplit("/", 1)[-1] or "job"
        # A program's file name may hold bytes that are not UTF-8; a name is text.
        return program.encode("utf-8", "surrogateescape").decode("utf-8", "replace")

    def with_changes(self, **changes: Any) -> JobSpec:
        """A copy with some fields replaced, validated again."""
        return dataclasses.replace(self, **changes)

    def dependency_ids(self) -> list[str]:
        """Every job id this job depends on, in order, without repeats."""
        return list(dict.fromkeys(i for dep in self.dependencies for i in dep.job_ids))


def spec_to_dict(spec: JobSpec) -> dict[str, Any]:
    """A JSON-compatible dict of a spec, read back by :func:`spec_from_dict`."""
    return {
        "command": list(spec.command),
        "shell": spec.shell,
        "name": spec.name,
        "workdir": spec.workdir,
        "env": dict(spec.env),
        "stdout": spec.stdout,
        "stderr": spec.stderr,
        "resources": spec.resources.to_dict(),
        "environment": spec.environment.to_dict(),
        "array": None
        if spec.array is None
        else {
            "indices": spec.array.to_text().split("%")[0],
            "max_concurrent": spec.array.max_concurrent,
        },
        "dependencies": [
            {"kind": d.kind.value, "job_ids": list(d.job_ids)} for d in spec.dependencies
        ],
        "retries": spec.retries,
        "retry_on": [s.value for s in spec.retry_on],
    }


def spec_from_dict(data: Mapping[str, Any]) -> JobSpec:
    """Rebuild a spec stored by :func:`spec_to_dict`.

    Raises:
        SpecError: the dict does not describe a valid spec.
    """
    try:
        array_data = data.get("array")
        array = None
        if array_data is not None:
            array = dataclasses.replace(
                parse_array(array_data["indices"]), max_concurrent=array_data.get("max_concurrent")
            )
        return JobSpec(
            command=data["command"][0] if data.get("shell") else list(data["command"]),
            shell=bool(data.get("shell", False)),
            name=data.get("name"),
            workdir=data.get("workdir"),
            env=dict(data.get("env") or {}),
            stdout=data.get("stdout"),
            stderr=data.get("stderr"),
            resources=Resources.from_dict(data.get("resources", {})),
            # Stored by jobfleet 0.1 without one: nothing was set up then.
            environment=Environment.from_dict(data.get("environment") or {}),
            array=array,
            dependencies=tuple(
                Dependency(DepKind(d["kind"]), tuple(d["job_ids"]))
                for d in data.get("dependencies", [])
            ),
            retries=data.get("retries", 0),
            retry_on=tuple(data.get("retry_on", DEFAULT_RETRY_ON)),
        )
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, SpecError):
            raise
        raise SpecError("spec", f"stored job description is damaged: {shown(exc)}") from None
