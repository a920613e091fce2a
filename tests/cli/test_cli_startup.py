"""The command line imports what a command uses, and no more (issue 16): the table of
commands ``jobfleet --help`` lists without importing them matches the commands, and a
child process shows which heavy modules ``--help`` and ``status ID --json`` import.
No timings here: those are bench/cli_startup.py's."""

from __future__ import annotations

import importlib
import json
import os
import pkgutil
import subprocess
import sys
import time
from pathlib import Path

import click
import pytest

import jobfleet.cli
from jobfleet.cli.main import COMMANDS, cli
from jobfleet.config import load_config, schema
from jobfleet.registry import NewJob, Registry, StatusUpdate
from jobfleet.spec import JobSpec
from jobfleet.states import JobState
from jobfleet.usage import Usage

SRC = Path(jobfleet.cli.__file__).resolve().parents[2]


def real_commands() -> dict[tuple[str, str], click.Command]:
    """Every top-level command defined in jobfleet.cli, by (module, attribute): each
    click command of a module that is not a subcommand of one of the groups."""
    found: dict[tuple[str, str], click.Command] = {}
    for info in pkgutil.iter_modules(jobfleet.cli.__path__):
        if info.name == "main":
            continue
        module = importlib.import_module(f"jobfleet.cli.{info.name}")
        for attribute, value in vars(module).items():
            defined_here = getattr(value, "callback", None) is not None and (
                value.callback.__module__ == module.__name__
            )
            if isinstance(value, click.Command) and defined_here:
                found[(info.name, attribute)] = value
    subcommands = {
        id(sub)
        for command in found.values()
        if isinstance(command, click.Group)
        for sub in command.commands.values()
    }
    return {key: command for key, command in found.items() if id(command) not in subcommands}


def test_the_table_names_exactly_the_commands_there_are() -> None:
    real = real_commands()
    assert {(module, attribute) for module, attribute, _ in COMMANDS.values()} == set(real)
    for name, (module, attribute, _) in COMMANDS.items():
        assert real[(module, attribute)].name == name


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_the_tables_one_line_help_is_the_commands_own(name: str) -> None:
    module, attribute, short = COMMANDS[name]
    command = getattr(importlib.import_module(f"jobfleet.cli.{module}"), attribute)
    assert short == command.get_short_help_str(10**6)
    for limit in range(20, 200, 7):  # as click shortens it to the terminal's width
        stand_in = click.Command(name, help=short)
        assert stand_in.get_short_help_str(limit) == command.get_short_help_str(limit)


@pytest.mark.parametrize("width", [40, 80, 200])
def test_help_lists_what_an_eager_group_of_the_real_commands_lists(width: int) -> None:
    eager = click.Group("jobfleet", help=cli.help, params=cli.params)
    eager.context_settings = cli.context_settings
    for (_, _), command in real_commands().items():
        eager.add_command(command)

    def shown(group: click.Group) -> str:
        # As the command makes its context: with its settings (``-h``), whichever test
        # ran the real command before (click keeps the help option it made then).
        settings = {**group.context_settings, "terminal_width": width}
        with click.Context(group, info_name="jobfleet", **settings) as ctx:
            return group.get_help(ctx)

    assert shown(cli) == shown(eager)
    assert "\n  status      Show jobs" in shown(cli)  # the listing is there to compare


def child(code: str, env: dict[str, str], cwd: Path) -> list[str]:
    """The modules a child process running ``code`` (then printing its sys.modules as
    JSON on the last line) ended up importing."""
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=cwd, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    return list(json.loads(proc.stdout.splitlines()[-1]))


#: Runs the command line in-process (arguments: sys.argv[1:]), then lists sys.modules.
RUN = """
import json, sys
from jobfleet.cli.main import main
try:
    main(sys.argv[1:])
except SystemExit as exc:
    assert exc.code in (0, None), exc.code
print()
print(json.dumps(sorted(sys.modules)))
"""

#: What neither `jobfleet --help` nor `jobfleet status ID --json` of an ended job needs.
HEAVY = (
    "yaml",
    "rich",
    "asyncio",
    "importlib.metadata",
    "jobfleet.yamlsafe",
    "jobfleet.script",
    "jobfleet.spec",
    "jobfleet.backends.",  # any backend, and base (the catalog itself is light)
    "jobfleet.engine.submission",
    "jobfleet.engine.recovery",
    "jobfleet.engine.monitor",
    "jobfleet.engine.cleanup",
    "jobfleet.futures",
    "jobfleet.studies",
    "jobfleet.pipe",
    "jobfleet.report",
    "jobfleet.cli.show",
    "jobfleet.cli.submit",
    "jobfleet.cli.queue",
    "jobfleet.cli.study",
)


def heavy(modules: list[str]) -> list[str]:
    return [m for m in modules if m.startswith(HEAVY) or m in HEAVY]


@pytest.fixture
def clean_env(tmp_path: Path) -> dict[str, str]:
    """A child's environment with no configuration file anywhere and a fresh home."""
    env = {k: v for k, v in os.environ.items() if k not in ("JOBFLEET_CONFIG", "JOBFLEET_PROFILE")}
    env.update(
        JOBFLEET_HOME=str(tmp_path / "home"),
        HOME=str(tmp_path),
        XDG_CONFIG_HOME=str(tmp_path / "config"),
        PYTHONPATH=os.pathsep.join(p for p in (str(SRC), env.get("PYTHONPATH")) if p),
    )
    return env


def test_help_imports_no_command(clean_env: dict[str, str], tmp_path: Path) -> None:
    modules = child(RUN.replace("sys.argv[1:]", "['--help']"), clean_env, tmp_path)
    assert heavy(modules) == []
    commands = {f"jobfleet.cli.{module}" for module, _, _ in COMMANDS.values()}
    assert commands.isdisjoint(modules)
    later = {"jobfleet.cli.common", "jobfleet.states", "jobfleet.config", "jobfleet.registry"}
    assert later.isdisjoint(modules)
    assert {"jobfleet.engine", "sqlite3"}.isdisjoint(modules)


def finished_job(home: Path) -> str:
    """A local job recorded, submitted and ended completed with what it used."""
    ended = time.time() - 60
    usage = Usage(ended - 2, ended - 1, ended, ("localhost",), 4_000_000, 0.01, 1.0)
    with Registry(home) as registry:
        (made,) = registry.create_jobs([NewJob("done", "local", JobSpec(["true"]))], ["4242"])
        registry.apply([StatusUpdate(made.id, JobState.COMPLETED, exit_code=0, usage=usage)])
    return made.id


def test_status_of_an_ended_job_imports_no_backend(
    clean_env: dict[str, str], tmp_path: Path
) -> None:
    job_id = finished_job(tmp_path / "home")
    code = RUN.replace("sys.argv[1:]", f"['status', {job_id!r}, '--json']")
    modules = child(code, clean_env, tmp_path)
    assert heavy(modules) == []
    assert "jobfleet.cli.jobs" in modules  # the command did run, through the registry
    assert "sqlite3" in modules


def test_status_of_an_ended_job_without_usage_makes_no_backend(
    clean_env: dict[str, str], tmp_path: Path
) -> None:
    """Usage missing: the refresh asks how long the backend's usage takes to settle,
    which its catalog entry tells without making (and importing) the backend."""
    with Registry(tmp_path / "home") as registry:
        (made,) = registry.create_jobs([NewJob("bare", "local", JobSpec(["true"]))], ["4243"])
        registry.apply([StatusUpdate(made.id, JobState.COMPLETED, exit_code=0)])
    code = RUN.replace("sys.argv[1:]", f"['status', {made.id!r}, '--json']")
    modules = child(code, clean_env, tmp_path)
    assert "jobfleet.cli.jobs" in modules
    assert [m for m in modules if m.startswith("jobfleet.backends.local.")] == []


def test_each_catalog_entry_tells_its_backends_usage_settling_time(tmp_path: Path) -> None:
    from jobfleet import backends as catalog

    told = 0
    for name, entry in catalog.available().items():
        if entry.usage_settles_s is None:
            continue
        told += 1
        made = entry.create(entry.settings(), runner=None, home=tmp_path)
        try:
            assert made.capabilities.usage_settles_s == entry.usage_settles_s, name
        finally:
            made.close()
    assert told >= 7  # every built-in backend (torque shares pbs's entry maker)


def test_status_of_an_ended_job_says_what_it_said_before(
    clean_env: dict[str, str], tmp_path: Path
) -> None:
    job_id = finished_job(tmp_path / "home")
    proc = subprocess.run(
        [sys.executable, "-m", "jobfleet", "status", job_id, "--json"],
        capture_output=True,
        text=True,
        env=clean_env,
        cwd=tmp_path,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    (shown,) = json.loads(proc.stdout)
    assert (shown["id"], shown["state"], shown["exit_code"]) == (job_id, "completed", 0)
    assert shown["refreshed"] is True and shown["not_refreshed_because"] is None


def test_a_configuration_without_backend_keys_loads_no_backend(
    clean_env: dict[str, str], tmp_path: Path
) -> None:
    code = (
        "import json, sys\n"
        "from jobfleet.config import load_config\n"
        "config = load_config()\n"
        "before = sorted(sys.modules)\n"
        "grace = config.local.cancel_grace_s\n"
        "print(json.dumps([before, sorted(sys.modules)]))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=clean_env, cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    before, after = json.loads(proc.stdout)
    assert not any(
        m.startswith(("jobfleet.backends.", "yaml", "importlib.metadata")) for m in before
    )
    assert "jobfleet.backends.local" in after  # read: made then, with its backend
    assert "jobfleet.backends.slurm" not in after


def test_settings_made_on_use_equal_those_made_at_once(tmp_path: Path) -> None:
    # A file setting one backend key (to its default) takes the path that makes every
    # backend's settings at once; without it, they are made on use: the same values.
    row = next(s for s in schema() if s.section == "local")
    config_file = tmp_path / "jobfleet.yaml"
    config_file.write_text(f"local:\n  {row.name}: {json.dumps(row.default)}\n")
    at_once = load_config(config_file)
    on_use = load_config(env={}, cwd=tmp_path / "nowhere")
    assert dict(on_use.backends) == dict(at_once.backends)
    assert on_use.values == at_once.values
    sources = dict(at_once.sources, **{row.dotted: "default"})
    assert on_use.sources == sources
    assert on_use.settings_for("sge") == at_once.settings_for("sge")


def test_find_is_the_catalogs_get_or_none() -> None:
    from jobfleet import backends as catalog

    assert catalog.find("local") is catalog.get("local")
    assert catalog.find("no-such-backend") is None
