"""The pages of the documentation site made from the code, as Markdown.

Each function reads what the command or the library itself uses, so that a page can never
say something the code no longer does: the configuration reference from
:func:`jobfleet.configschema.schema`, the command-line reference from the click commands
of :data:`jobfleet.cli.main.cli`, each backend's option table from the dry runs of
``jobfleet options``, and the Python API from ``jobfleet.__all__`` (autodoc).
The site's build (``jobfleet_site.py``) puts them where a page says
``<!-- generated: NAME [ARG] -->``; the tests in tests/docs/ read them directly.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import json
import logging
import os
import re
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
import yaml

#: The backends in the order of docs/options.md (``jobfleet options``).
BACKENDS = ("local", "slurm", "sge", "lsf", "pbs", "torque", "htcondor")

#: Characters Markdown would read as markup in text that is not Markdown (a click help
#: text, a setting's doc): each is escaped outside backticks. ``<`` matters most: MyST
#: passes ``<job dir>`` through as raw HTML, which a browser then hides.
_MARKUP = re.compile(r"([\\*_<>\[\]|#])")


def escape(text: str) -> str:
    """``text`` as Markdown that shows it as it is; backtick spans stay code."""
    parts = re.split(r"(`[^`]*`)", text)
    return "".join(p if p.startswith("`") else _MARKUP.sub(r"\\\1", p) for p in parts)


def cell(text: str) -> str:
    """``text`` for a Markdown table cell: one line, ``|`` escaped even inside code."""
    return escape(" ".join(text.split())).replace("`|`", "`\\|`")


def _yaml(value: Any) -> str:
    """A default as it is written in a YAML configuration file."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_yaml(v) for v in value) + "]"
    if isinstance(value, str) and yaml.safe_load(value) != value:
        return json.dumps(value)  # quoted: YAML reads a bare NO as false, 1.0 as a number
    return str(value)


# --- the configuration ------------------------------------------------------------------


def config_reference(section: str | None = None) -> str:
    """Every configuration key of :func:`jobfleet.configschema.schema`: one table per
    section (top-level keys first), with its default as YAML and what it means; or the
    table of one ``section`` alone (a backend's settings), without its heading."""
    from jobfleet.configschema import schema

    rows = [s for s in schema() if section is None or s.section == section]
    if not rows:
        raise ValueError(f"no configuration section {section!r}")
    out: list[str] = []
    current = None
    for setting in rows:
        if setting.section != current or not out:
            current = setting.section
            if section is None:
                title = f"`{current}:`" if current else "Top-level keys"
                out += ["", f"### {title}", ""]
            out += ["| key | default | meaning |", "|---|---|---|"]
        default = "-" if setting.default is None else f"`{_yaml(setting.default)}`"
        out.append(f"| `{setting.dotted}` | {default} | {cell(setting.doc)} |")
    return "\n".join(out).lstrip("\n") + "\n"


# --- the command line -------------------------------------------------------------------


def commands() -> Iterator[tuple[str, click.Command, click.Context]]:
    """Every command of ``jobfleet``, the group itself first, then each in the order of
    its group's listing, depth first: ``(path, command, context)``."""
    from jobfleet.cli.main import cli

    def walk(command: click.Command, ctx: click.Context) -> Iterator[Any]:
        yield ctx.command_path, command, ctx
        if isinstance(command, click.Group):
            for name in command.list_commands(ctx):
                sub = command.get_command(ctx, name)
                if sub is not None and not sub.hidden:
                    yield from walk(sub, click.Context(sub, parent=ctx, info_name=name))

    yield from walk(cli, click.Context(cli, info_name="jobfleet"))


def _help_markdown(text: str) -> list[str]:
    """A click help text as Markdown: its paragraphs re-flowed as click does, its
    ``\\b`` paragraphs (kept as written by click) as text blocks."""
    text = inspect.cleandoc(text.split("\f", 1)[0])
    out: list[str] = []
    for para in re.split(r"\n\s*\n", text):
        lines = para.splitlines()
        if lines and lines[0].strip() == "\b":
            out += ["```text", *lines[1:], "```", ""]
        else:
            out += [escape(" ".join(line.strip() for line in lines)), ""]
    return out


def _metavar(param: click.Parameter, ctx: click.Context) -> str:
    try:
        return param.make_metavar(ctx)  # click >= 8.2
    except TypeError:  # pragma: no cover - click 8.1
        return param.make_metavar()  # type: ignore[call-arg]


def cli_reference() -> str:
    """Every command: a heading with its full name, its usage line and help as
    ``jobfleet ... --help`` prints them, and a table of its arguments and options (each
    with its help, default and choices, from click's own help record)."""
    out: list[str] = []
    for path, command, ctx in commands():
        depth = path.count(" ")
        out += [f"{'#' * min(2 + depth, 4)} `{path}`", ""]
        usage = " ".join([path, *command.collect_usage_pieces(ctx)])
        out += ["```text", f"Usage: {usage}", "```", ""]
        out += _help_markdown(command.help or "")
        rows = []
        for param in command.get_params(ctx):
            if isinstance(param, click.Argument):
                what = "required" if param.required else "optional"
                many = ", any number" if param.nargs == -1 else ""
                rows.append((f"`{_metavar(param, ctx)}`", f"argument ({what}{many})"))
            else:
                record = param.get_help_record(ctx)
                if record is not None:
                    rows.append((f"`{record[0]}`", record[1]))
        if rows:
            out += ["| argument or option | meaning |", "|---|---|"]
            out += [f"| {cell(opts)} | {cell(help_)} |" for opts, help_ in rows]
            out.append("")
        if isinstance(command, click.Group):
            subs = [n for n in command.list_commands(ctx) if n]
            out += ["Commands: " + ", ".join(f"`{path} {n}`" for n in subs) + ".", ""]
    return "\n".join(out)


# --- the job options --------------------------------------------------------------------


@contextmanager
def _utc() -> Iterator[None]:
    """HTCondor's start time is Unix time: the table describes a machine on UTC
    (as docs/options.md does)."""
    before = os.environ.get("TZ")
    os.environ["TZ"] = "UTC"
    time.tzset()
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("TZ", None)
        else:
            os.environ["TZ"] = before
        time.tzset()


@functools.lru_cache(maxsize=1)
def option_rows() -> tuple[Any, ...]:
    """What every job option becomes on every backend, read off dry runs as
    ``jobfleet options`` does, with a fresh home and no configuration file (the local
    backend taken as :data:`jobfleet.engine.options.TABLE_MACHINE`)."""
    from jobfleet.config import load_config
    from jobfleet.engine.fleet import Fleet
    from jobfleet.engine.options import TABLE_MACHINE
    from jobfleet.engine.options import option_rows as rows_of

    with tempfile.TemporaryDirectory(prefix="jobfleet-docs-") as tmp, _utc():
        config = load_config(overrides=TABLE_MACHINE, env={"HOME": tmp}, cwd=Path(tmp))
        with Fleet(config, home=Path(tmp) / "home") as fleet:
            # The dry runs warn of options a backend ignores: the table says so instead
            # (as `jobfleet options` does).
            logging.disable(logging.WARNING)
            try:
                rows = rows_of(fleet.dry_run, lambda n: fleet.backend(n).option_notes, BACKENDS)
            finally:
                logging.disable(logging.NOTSET)
    return tuple(rows)


def options_table(backend: str | None = None) -> str:
    """The table of docs/options.md (every backend), or one backend's column of it."""
    from jobfleet.engine.options import options_markdown

    if backend is not None and backend not in BACKENDS:
        raise ValueError(f"no backend {backend!r}; the backends are {', '.join(BACKENDS)}")
    return options_markdown(option_rows(), [backend] if backend else list(BACKENDS))


# --- the Python API ---------------------------------------------------------------------


#: The reference's sections: a title, a module, and the names documented (None: its
#: ``__all__``, less the names the `jobfleet` package documents already). Past the
#: public packages, the types their signatures name that a user holds: a reference to
#: any other name of jobfleet is shown as text if it exists, and fails the build if it
#: does not (jobfleet_site.py).
API: tuple[tuple[str, str, tuple[str, ...] | None], ...] = (
    ("The `jobfleet` package", "jobfleet", None),
    ("Errors: `jobfleet.errors`", "jobfleet.errors", None),
    ("Studies: `jobfleet.studies`", "jobfleet.studies", None),
    ("Reports: `jobfleet.report`", "jobfleet.report", None),
    ("Checkpoints: `jobfleet.futures.Call`", "jobfleet.futures", ("Call",)),
    (
        "What a fleet shows: `jobfleet.engine.views`",
        "jobfleet.engine.views",
        ("FleetViews", "Report", "QueueReport", "QueueRow"),
    ),
    (
        "What `Fleet.clean` did: `jobfleet.engine.cleanup`",
        "jobfleet.engine.cleanup",
        ("CleanReport", "Removed", "Skipped"),
    ),
    ("What a job used: `jobfleet.usage`", "jobfleet.usage", ("Usage",)),
    ("Settings: `jobfleet.config`", "jobfleet.config", ("WaitConfig",)),
    ("Pipe runs: `jobfleet.pipe.api`", "jobfleet.pipe.api", ("PipeStatus", "TaskResult")),
    ("Pipe tasks: `jobfleet.pipe.model`", "jobfleet.pipe.model", ("TaskSpec",)),
)


def api_names(module: str, names: tuple[str, ...] | None) -> list[str]:
    """The names one section of :data:`API` documents."""
    import jobfleet

    if names is not None:
        return list(names)
    public = importlib.import_module(module).__all__
    if module == "jobfleet":
        return [n for n in public if not n.startswith("_")]
    return [n for n in public if n not in jobfleet.__all__]


def data_doc(module: str, name: str) -> list[str]:
    """The doc comment (``#:``) of a module's data, read in the module that assigns it
    (``jobfleet.TERMINAL`` is ``jobfleet.states``'): autodoc reads it only in the module
    shown, and would show the docstring of its type instead."""
    from sphinx.pycode import ModuleAnalyzer

    value = getattr(importlib.import_module(module), name)
    for where, loaded in sorted(sys.modules.items()):
        if where.startswith("jobfleet") and vars(loaded).get(name) is value:
            docs = ModuleAnalyzer.for_module(where).find_attr_docs()
            if ("", name) in docs:
                return [line for line in docs["", name] if line]
    return []


def _shown(value: Any) -> str:
    """A data's value on one line; a set's members sorted (their order is the hash's)."""
    if isinstance(value, (set, frozenset)):
        return f"{type(value).__name__}({{{', '.join(sorted(map(repr, value)))}}})"
    return " ".join(repr(value).split())


def api_reference() -> str:
    """autodoc's directives for each section of :data:`API`: the module's docstring,
    then each name; a module's data (``jobfleet.TERMINAL``) as ``py:data`` with its doc
    comment (:func:`data_doc`)."""
    out: list[str] = []
    for title, module, names in API:
        members = api_names(module, names)
        where = importlib.import_module(module)
        data = [n for n in members if not callable(getattr(where, n)) and n.isupper()]
        code = [n for n in members if n not in data]
        out += [f"## {title}", "", "```{eval-rst}", f".. automodule:: {module}"]
        out += [f"   :members: {', '.join(code)}", ""]
        for name in data:
            out += [f".. py:data:: {name}", f"   :value: {_shown(getattr(where, name))}", ""]
            out += [f"   {line}" for line in data_doc(module, name)] + [""]
        out += ["```", ""]
    return "\n".join(out)
