"""What each job option becomes on each backend (``jobfleet options``, docs/options.md).

Read off the code itself, so the table cannot drift from it: every option of the
job sections of the configuration is set to a sample value, and a dry run on
each backend shows what that changed in the job script and in the submit
command, compared with the same job without it. A backend that refuses the
value says why; what a backend does without showing it in either (the local
agent's cores, say) is its :attr:`~jobfleet.backends.base.Backend.option_notes`.
Options without any of these are shown as having no effect there, which is
how a silently dropped option would show up.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from jobfleet.configschema import Setting, schema
from jobfleet.environment import Environment
from jobfleet.errors import JobfleetError, SpecError
from jobfleet.resources import Resources
from jobfleet.spec import JobSpec

__all__ = [
    "CONTEXT",
    "OPTION_SECTIONS",
    "SAMPLES",
    "TABLE_MACHINE",
    "Effect",
    "OptionRow",
    "option_rows",
    "options_markdown",
]

#: The sections of the configuration that describe a job.
OPTION_SECTIONS = ("resources", "environment")

#: The local backend's capacity the table is read off (``jobfleet options``,
#: docs/options.md): large enough for every sample, so the table says what each option
#: does rather than whether this machine has 4 cores.
TABLE_MACHINE: dict[str, Any] = {"local.cores": 64, "local.memory": "256G", "local.gpus": 8}

#: The value each option is tried with (every option of OPTION_SECTIONS needs one).
SAMPLES: dict[str, Any] = {
    "resources.cores": 4,
    "resources.memory": "4G",
    "resources.walltime": "1h30m",
    "resources.gpus": 1,
    "resources.nodes": 2,
    "resources.queue": "short",
    "resources.account": "proj42",
    "resources.extra_directives": ["--comment=from-the-config"],
    "resources.directives_skip": ["--time", "h_rt"],
    "resources.extra_args": ["--hold"],
    "resources.tasks": 4,
    "resources.tasks_per_node": 2,
    "resources.cores_per_task": 2,
    "resources.gpus_per_node": 2,
    "resources.gpus_per_task": 1,
    "resources.memory_per_core": "2G",
    "resources.exclusive": True,
    "resources.launcher": "mpirun",
    "resources.qos": "high",
    "resources.constraint": "haswell",
    "resources.reservation": "1234",
    "resources.mail_to": "me@example.org",
    "resources.mail_on": ["begin", "end"],
    "resources.licenses": ["matlab:1"],
    "resources.priority": -10,
    "resources.begin": "2030-01-02T03:04:05",
    "resources.name_prefix": "lab42-",
    "environment.modules": ["gcc/12.2"],
    "environment.prologue": ["ulimit -c 0"],
    "environment.setup": ["ulimit -c 0"],
    "environment.epilogue": ["cp out.dat ~/results/"],
    "environment.env_files": ["site.env"],
    "environment.export_env": False,
    "environment.scratch": True,
    "environment.keep_scratch": True,
}

#: Options that only mean something beside another: both jobs compared have these.
CONTEXT: dict[str, dict[str, Any]] = {
    "resources.directives_skip": {"walltime": "1h"},
    "resources.mail_on": {"mail_to": "me@example.org"},
    "resources.launcher": {"tasks": 4},
    "environment.keep_scratch": {"scratch": True},
}

#: What a script line shows of an option whose value is not text (a flag).
SHOWN_AS: dict[str, list[str]] = {"environment.scratch": ["mktemp", "TMPDIR="]}

#: The program of the jobs tried (no backend looks at it).
_PROGRAM = "prog"
#: The most changed lines shown for one option and backend.
_MAX_LINES = 4

#: Builds a job of one section's options set to values (the options' sections).
_JOBS: dict[str, Callable[[Mapping[str, Any]], JobSpec]] = {
    "resources": lambda values: JobSpec([_PROGRAM], resources=Resources.from_mapping(values)),
    "environment": lambda values: JobSpec([_PROGRAM], environment=Environment.from_mapping(values)),
}


@dataclass(frozen=True, slots=True)
class Effect:
    """One thing an option does on a backend.

    Attributes:
        text: a directive or submit argument, or words.
        literal: whether ``text`` is script or command text (a directive, arguments).
        words: words before it ("leaves out ").
    """

    text: str
    literal: bool = False
    words: str = ""

    def __str__(self) -> str:
        return self.words + self.text


@dataclass(frozen=True, slots=True)
class OptionRow:
    """One option and what it becomes on each backend.

    Attributes:
        key: its dotted configuration key (``resources.memory``).
        default: its default value (None: left to the site).
        doc: what it means, with its units.
        sample: the value it was tried with.
        effects: backend name -> what the sample became there.
    """

    key: str
    default: Any
    doc: str
    sample: Any
    effects: dict[str, tuple[Effect, ...]]

    def becomes(self, backend: str) -> str:
        """What the sample became on ``backend``, in one line."""
        return "; ".join(str(e) for e in self.effects[backend])

    def to_dict(self) -> dict[str, Any]:
        """The JSON form of ``jobfleet options --json``."""
        return {
            "key": self.key,
            "default": self.default,
            "doc": self.doc,
            "sample": self.sample,
            "becomes": {name: self.becomes(name) for name in self.effects},
        }


def option_rows(
    dry_run: Callable[..., Any],
    notes: Callable[[str], Mapping[str, str]],
    backends: Sequence[str],
) -> list[OptionRow]:
    """Every job option, and what its sample becomes on each of ``backends``.

    Args:
        dry_run: ``Fleet.dry_run`` (a spec and ``backend=`` -> its DryRun).
        notes: a backend's :attr:`~jobfleet.backends.base.Backend.option_notes`.
        backends: the backends to try, in the order shown.

    Raises:
        KeyError: an option without a sample in :data:`SAMPLES` (a test keeps it so).
    """
    plain = {name: dry_run(JobSpec([_PROGRAM]), backend=name) for name in backends}
    rows = []
    for setting in _settings():
        sample = SAMPLES[setting.dotted]
        context = CONTEXT.get(setting.dotted, {})
        job = _JOBS[setting.section]
        effects = {}
        for name in backends:
            base = _dry(dry_run, job(context), name) if context else plain[name]
            tried = _dry(dry_run, job({**context, setting.name: sample}), name)
            if isinstance(base, Effect):  # what it needs beside it is refused there
                tried = base
            words = SHOWN_AS.get(setting.dotted) or _words(sample)
            effects[name] = _effects(tried, base, notes(name).get(setting.dotted), words)
        rows.append(OptionRow(setting.dotted, setting.default, setting.doc, sample, effects))
    return rows


def _dry(dry_run: Callable[..., Any], spec: JobSpec | None, backend: str) -> Any:
    """The dry run of ``spec``, or the refusal (an Effect) saying why."""
    try:
        return dry_run(spec, backend=backend)
    except JobfleetError as exc:
        words = exc.message if isinstance(exc, SpecError) else str(exc)
        return Effect(f"refused: {words}")


def _settings() -> list[Setting]:
    return [s for s in schema() if s.section in OPTION_SECTIONS]


def _words(sample: Any) -> list[str]:
    """The texts a value shows up as in a script (not for booleans and numbers)."""
    values = sample if isinstance(sample, list) else [sample]
    return [v for v in values if isinstance(v, str) and len(v) > 2]


def _effects(tried: Any, plain: Any, note: str | None, words: list[str]) -> tuple[Effect, ...]:
    if isinstance(tried, Effect):
        return (tried,)
    plain_lines = [line for line in plain.script.splitlines() if "DRY-RUN" not in line]
    tried_lines = [line for line in tried.script.splitlines() if "DRY-RUN" not in line]
    added: list[str] = []
    dropped: list[str] = []
    # A line the option replaced (--cpus-per-task=1 by =4; the command by the launched
    # one) is shown by its new form; one it removed, as left out.
    matcher = difflib.SequenceMatcher(None, plain_lines, tried_lines, autojunk=False)
    for op, a1, a2, b1, b2 in matcher.get_opcodes():
        if op in ("replace", "insert"):
            added += [line.strip() for line in tried_lines[b1:b2] if line.strip()]
        elif op == "delete":
            dropped += [line.strip() for line in plain_lines[a1:a2] if line.strip()]
    # Comments and set-up boilerplate say little: the lines naming the value say it.
    added = [line for line in added if not line.startswith("# ")]
    named = [line for line in added if any(word in line for word in words)]
    if named:
        added = named
    argv_added = _argv_added(tried.argv or [], plain.argv or [])
    effects = []
    if argv_added and tried.argv:
        effects.append(Effect(f"{tried.argv[0]} {' '.join(argv_added)}", literal=True))
    effects += [Effect(line, literal=True) for line in added[:_MAX_LINES]]
    if len(added) > _MAX_LINES:
        effects.append(Effect(f"... ({len(added) - _MAX_LINES} more lines)"))
    effects += [Effect(line, literal=True, words="leaves out ") for line in dropped[:_MAX_LINES]]
    if note:
        effects.append(Effect(note))
    return tuple(effects) or (Effect("no effect on this backend"),)


def _argv_added(tried: Sequence[str], plain: Sequence[str]) -> list[str]:
    """The submit arguments an option added, each value with the flag it follows
    (``-N name``, not a bare ``name``)."""
    added: list[str] = []
    for i, arg in enumerate(tried):
        if arg in plain:
            continue
        flag = tried[i - 1] if i else ""
        if (
            not arg.startswith("-")
            and flag.startswith("-")
            and "=" not in flag
            and (not added or added[-1] != flag)
        ):
            added.append(flag)
        added.append(arg)
    return added


def options_markdown(rows: Sequence[OptionRow], backends: Sequence[str]) -> str:
    """The table of docs/options.md."""

    def cell(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")

    def shown(effects: Sequence[Effect]) -> str:
        return "; ".join(
            cell(e.words) + (f"`{cell(e.text)}`" if e.literal else cell(e.text)) for e in effects
        )

    head = ["option", "default", "meaning", *backends]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        default = "-" if row.default is None else f"`{row.default!r}`"
        cells = [
            f"`{row.key}` (e.g. `{row.sample!r}`)",
            default,
            cell(row.doc),
            *(shown(row.effects[b]) for b in backends),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
