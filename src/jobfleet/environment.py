"""How a job's shell is set up around its command: :class:`Environment`.

Pure data, validated on construction; :func:`jobfleet.script.render_script`
turns it into shell, the same way on every backend. In the job script, in order:
``env_files`` are sourced, ``modules`` loaded, the ``scratch`` directory made
(exported as ``TMPDIR``), the ``prologue`` lines run; then the command, its exit
status recorded; then the ``epilogue`` lines, whatever that status, and the
scratch directory removed. A step before the command that fails ends the job
with :data:`jobfleet.script.EXIT_SETUP_FAILED` and says why.

>>> env = Environment.of(modules=["gcc/12"], setup=["ulimit -c 0"], scratch=True)
>>> env.modules, env.prologue, env.scratch
(('gcc/12',), ('ulimit -c 0',), True)
>>> Environment.of(modules=["gcc"]).then(Environment.of(modules=["mpi"])).modules
('gcc', 'mpi')
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from jobfleet.errors import SpecError, shown
from jobfleet.validate import check_key, check_line, check_lines

__all__ = ["DOCS", "Environment", "parse_setting", "path_parts"]

# What `module load` accepts as one name: no spaces, no shell syntax (it is quoted
# anyway), no option-like leading "-".
_MODULE_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+:/@=,-]*")
_LIST_FIELDS = ("modules", "prologue", "epilogue", "env_files")
# The variable references a scratch or env-file path may hold, expanded in the job.
_REF_RE = re.compile(r"\$(?:([A-Za-z_][A-Za-z0-9_]*)|\{([A-Za-z_][A-Za-z0-9_]*)\})")
#: Most entries of a list in the configuration (each one is a line of every job script).
MAX_LIST = 1000


@dataclass(frozen=True, slots=True)
class Environment:
    """The set-up of a job's shell, before and after its command.

    Attributes:
        modules: ``module load`` each, in order (Environment Modules or Lmod);
            one that cannot be loaded fails the job before its command.
        prologue: lines of shell run before the command in the job's own shell
            (``export``, ``source``, ``ulimit`` take effect); the first that
            fails ends the job. Config key and :meth:`of` also accept ``setup``.
        epilogue: lines of shell run after the command, whatever its exit status,
            in a subshell: they never change the recorded exit code; a failing
            line is reported on stderr and the next one runs.
        env_files: files sourced (``.``) in order; relative to the workdir. One
            that cannot be read fails the job; what it returns is not checked.
            ``$NAME``, ``${NAME}`` and a leading ``~`` are expanded in the job
            (:func:`path_parts`), nothing else.
        export_env: carry the submitter's environment into the job (True), or
            not (False); None leaves each backend's default, which carries it
            (SLURM ``--export=ALL``, Grid Engine ``-V``, the local agent).
        scratch: give the job its own temporary directory, exported as
            ``TMPDIR`` and ``JOBFLEET_SCRATCH``: True makes it under ``$TMPDIR``
            (or /tmp), a path makes it under that directory: an absolute one, or one
            beginning with ``$NAME``, ``${NAME}`` or ``~``, expanded in the job.
        keep_scratch: leave the scratch directory in place when the job ends.
    """

    modules: tuple[str, ...] = ()
    prologue: tuple[str, ...] = ()
    epilogue: tuple[str, ...] = ()
    env_files: tuple[str, ...] = ()
    export_env: bool | None = None
    scratch: bool | str = False
    keep_scratch: bool = False

    def __post_init__(self) -> None:
        for name in _LIST_FIELDS:
            object.__setattr__(self, name, check_lines(f"environment.{name}", getattr(self, name)))
        for i, module in enumerate(self.modules):
            if not _MODULE_RE.fullmatch(module):
                raise SpecError(
                    f"environment.modules[{i}]",
                    f"{shown(module)} is not a module name; write one name per entry, "
                    "e.g. 'gcc/12.2' (letters, digits and _ . + : / @ = , -)",
                )
        if self.export_env is not None and not isinstance(self.export_env, bool):
            raise SpecError(
                "environment.export_env",
                f"expected true, false or null, got {shown(self.export_env)}",
            )
        for i, path in enumerate(self.env_files):
            _check_path(f"environment.env_files[{i}]", path)
        if not isinstance(self.scratch, bool):
            check_line("environment.scratch", self.scratch)
            _check_path("environment.scratch", self.scratch)
            if self.scratch.startswith("-"):
                raise SpecError(
                    "environment.scratch",
                    f"{shown(self.scratch)} begins with '-' (mktemp would read an option); "
                    "give an absolute path",
                )
            if not self.scratch.startswith(("/", "$", "~")):
                raise SpecError(
                    "environment.scratch",
                    f"{shown(self.scratch)} is not an absolute path; give one (e.g. /scratch, "
                    "$SCRATCH or ~/scratch, expanded in the job), or true for $TMPDIR",
                )
        if not isinstance(self.keep_scratch, bool):
            raise SpecError(
                "environment.keep_scratch",
                f"expected true or false, got {shown(self.keep_scratch)}",
            )

    #: Keys accepted by :meth:`of` and in the configuration's ``environment:`` section
    #: (``setup`` is another name for ``prologue``).
    KEYS = (
        "modules",
        "prologue",
        "setup",
        "epilogue",
        "env_files",
        "export_env",
        "scratch",
        "keep_scratch",
    )

    @property
    def is_empty(self) -> bool:
        """Nothing to set up: the job script is as without an environment."""
        return self == Environment()

    @classmethod
    def of(cls, **values: Any) -> Environment:
        """Build from keyword arguments: ``Environment.of(modules=["gcc"], scratch=True)``."""
        return cls.from_mapping(values)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], prefix: str = "environment") -> Environment:
        """Build from a mapping with the keys in :attr:`KEYS`; None values are left unset.

        Raises:
            SpecError: an unknown key (with the valid ones) or a bad value.
        """
        kwargs: dict[str, Any] = {}
        for key, value in values.items():
            check_key(key, cls.KEYS, prefix, "environment key")
            if value is None:
                continue
            name = "prologue" if key == "setup" else key
            if name in kwargs:
                raise SpecError(f"{prefix}.{key}", "give either setup or prologue, not both")
            kwargs[name] = value
        try:
            return cls(**kwargs)
        except SpecError as exc:
            raise SpecError(exc.field.replace("environment", prefix, 1), exc.message) from None

    def then(self, job: Environment) -> Environment:
        """This set-up (a configuration's), then ``job``'s: lists are this one's
        entries followed by the job's; a value the job sets replaces this one's."""
        return Environment(
            modules=self.modules + job.modules,
            prologue=self.prologue + job.prologue,
            epilogue=self.epilogue + job.epilogue,
            env_files=self.env_files + job.env_files,
            export_env=self.export_env if job.export_env is None else job.export_env,
            scratch=job.scratch if job.scratch is not False else self.scratch,
            keep_scratch=self.keep_scratch or job.keep_scratch,
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-compatible dict, read back by :meth:`from_dict`."""
        return {
            f.name: list(v) if isinstance(v := getattr(self, f.name), tuple) else v
            for f in dataclasses.fields(self)
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Environment:
        """Rebuild what :meth:`to_dict` stored (keys of later versions are refused)."""
        return cls(**data)


#: One line per key of the configuration's ``environment:`` section.
DOCS = {
    "modules": "modules every job loads first (module load), in order",
    "prologue": "lines of shell every job runs before its command",
    "setup": "another name for prologue",
    "epilogue": "lines of shell every job runs after its command, whatever its exit status",
    "env_files": "files every job sources first, in order",
    "export_env": "carry the submitter's environment into jobs (null: the backend's default)",
    "scratch": "a temporary directory per job as TMPDIR: true, or the absolute directory to make "
    "it in ($NAME, ${NAME} and ~ expanded in the job)",
    "keep_scratch": "leave each job's scratch directory in place when it ends",
}


def path_parts(path: str) -> list[tuple[str, str]]:
    """A scratch or env-file path as ``("text", ...)`` and ``("var", NAME)`` parts: its
    ``$NAME`` and ``${NAME}`` references, and a leading ``~`` (``$HOME``), are expanded in
    the job when it runs; the rest is taken as it is.

    >>> path_parts("~/scratch/$USER.d")
    [('var', 'HOME'), ('text', '/scratch/'), ('var', 'USER'), ('text', '.d')]
    """
    parts: list[tuple[str, str]] = []
    if path == "~" or path.startswith("~/"):
        parts.append(("var", "HOME"))
        path = path[1:]
    at = 0
    for ref in _REF_RE.finditer(path):
        if ref.start() > at:
            parts.append(("text", path[at : ref.start()]))
        parts.append(("var", ref.group(1) or ref.group(2)))
        at = ref.end()
    if at < len(path):
        parts.append(("text", path[at:]))
    return parts


def _check_path(field: str, path: str) -> None:
    """Refuse what a path would need a shell to mean: only $NAME, ${NAME} and a leading
    ~ are expanded, so no command substitution, no default values, no ~user."""
    if "$" in _REF_RE.sub("", path):
        raise SpecError(
            field,
            f"{shown(path)}: only $NAME, ${{NAME}} and a leading ~ are expanded (in the job, "
            "when it runs); write the rest of the path out, without $( ), ${NAME:-...} or $1",
        )
    if path.startswith("~") and not (path == "~" or path.startswith("~/")):
        raise SpecError(field, f"{shown(path)}: ~user is not expanded; write the path out")


def parse_setting(value: Any, key: str) -> Any:
    """A value of the configuration's ``environment.<name>`` key, checked (YAML form)."""
    section, _, name = key.rpartition(".")
    if name in (*_LIST_FIELDS, "setup"):
        if isinstance(value, str) or not isinstance(value, (list, tuple)):
            raise SpecError(key, f"expected a list of strings, got {shown(value)}")
        if len(value) > MAX_LIST:
            raise SpecError(key, f"has {len(value)} entries; at most {MAX_LIST} are accepted")
        value = list(value)
    Environment.from_mapping({name: value}, prefix=section)
    return value
