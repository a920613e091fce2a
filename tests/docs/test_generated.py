"""The site's pages made from the code say what the code does: every configuration key of
the schema, every command and option of the command line (checked against click's own
command objects), each backend's options as ``jobfleet options`` prints them, every public
name of the API; and every page is in the site's navigation."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import click
import pytest
import yaml

# The site build's own modules (docs/_ext), as Sphinx imports them. (Not in a conftest.py:
# tests/docs is no package, and a conftest module there would shadow tests/conftest.py,
# which many tests import by name.)
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "docs" / "_ext"))
import docgen
import jobfleet_site

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"


def table_rows(markdown: str) -> list[list[str]]:
    """The cells of every table row of ``markdown`` (``|`` inside a cell escaped)."""
    rows = []
    for line in markdown.splitlines():
        if line.startswith("| ") and not line.startswith("|---"):
            cells = re.split(r"(?<!\\)\|", line.strip()[1:-1])
            rows.append([c.strip() for c in cells])
    return rows


def unmarked(cell: str) -> str:
    """A cell's text as shown: markup escapes removed, ``\\|`` back to ``|``."""
    return re.sub(r"\\(.)", r"\1", cell)


def test_the_configuration_reference_lists_every_key_with_its_default_and_doc() -> None:
    from jobfleet.configschema import schema

    rows = {r[0]: r for r in table_rows(docgen.config_reference()) if r[0] != "key"}
    settings = schema()
    assert len(rows) == len(settings)
    for setting in settings:
        key, default, doc = rows.pop(f"`{setting.dotted}`")
        if setting.default is None:
            assert default == "-", key
        else:
            # The default as shown is the YAML a file would hold for it.
            assert yaml.safe_load(default.strip("`")) == setting.default, key
        assert unmarked(doc) == " ".join(setting.doc.split()), key
    assert not rows
    # One section alone (a backend's page) is the same rows.
    slurm = table_rows(docgen.config_reference("slurm"))[1:]
    assert [r[0] for r in slurm] == [f"`{s.dotted}`" for s in settings if s.section == "slurm"]
    with pytest.raises(ValueError, match="no configuration section 'nope'"):
        docgen.config_reference("nope")


def click_commands() -> list[tuple[str, click.Command, click.Context]]:
    """Every command, walked with click's own API (not the generator's walk)."""
    from jobfleet.cli.main import cli

    found = []
    todo: list[tuple[click.Command, click.Context]] = [
        (cli, click.Context(cli, info_name="jobfleet"))
    ]
    while todo:
        command, ctx = todo.pop()
        found.append((ctx.command_path, command, ctx))
        if isinstance(command, click.Group):
            for name in command.list_commands(ctx):
                sub = command.get_command(ctx, name)
                assert sub is not None, name
                todo.append((sub, click.Context(sub, parent=ctx, info_name=name)))
    return found


def test_the_cli_reference_has_every_command_with_its_usage_options_and_help() -> None:
    reference = docgen.cli_reference()
    sections = re.split(r"^#+ `(jobfleet[^`]*)`\n", reference, flags=re.M)[1:]
    by_path = dict(zip(sections[::2], sections[1::2], strict=True))
    commands = click_commands()
    assert set(by_path) == {path for path, _, _ in commands}
    assert len(commands) > 25  # every group's commands, not only the top level
    for path, command, ctx in commands:
        section = by_path[path]
        assert command.get_usage(ctx) in section, path  # click's own usage line
        first = (command.help or "").strip().splitlines()[0]
        assert docgen.escape(first.strip()) in section, path
        cells = " ".join(unmarked(c) for row in table_rows(section) for c in row)
        for param in command.get_params(ctx):
            if isinstance(param, click.Argument):
                assert param.make_metavar(ctx) in cells, (path, param.name)
                continue
            for opt in [*param.opts, *param.secondary_opts]:
                assert re.search(rf"(^|[\s/,`]){re.escape(opt)}\b", cells), (path, opt)
            if getattr(param, "help", None):
                assert " ".join(param.help.split()) in cells, (path, param.name)


def test_help_text_is_shown_as_written() -> None:
    """click's ``\\b`` paragraphs stay as they are (a text block); other text is escaped so
    Markdown shows it as it is (a ``<job dir>`` is not taken for HTML)."""
    lines = docgen._help_markdown("Do it.\n\n\b\n  a   b\n  c   d\n\nSee <job dir>/x_y *now*.")
    assert lines == [
        "Do it.",
        "",
        "```text",
        "  a   b",
        "  c   d",
        "```",
        "",
        "See \\<job dir\\>/x\\_y \\*now\\*.",
        "",
    ]
    assert docgen.escape("a `<b>` c|d") == "a `<b>` c\\|d"


def test_each_backend_table_is_what_jobfleet_options_prints(tmp_path: Path) -> None:
    # No configuration file, as the site's build has none; HTCondor's start time is Unix
    # time, and the docs describe a machine on UTC.
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBFLEET_")}
    env.pop("XDG_CONFIG_HOME", None)
    env.update(HOME=str(tmp_path), JOBFLEET_HOME=str(tmp_path / "home"), TZ="UTC")
    for backend in ("slurm", "htcondor"):
        proc = subprocess.run(
            [sys.executable, "-m", "jobfleet", "options", "--backend", backend, "--markdown"],
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
            cwd=tmp_path,
        )
        assert proc.returncode == 0, proc.stderr
        assert docgen.options_table(backend) == proc.stdout
    assert (
        docgen.options_table()
        == (DOCS / "options.md")
        .read_text()
        .split("<!-- options table: generated -->\n")[1]
        .split("<!-- end of the generated table -->")[0]
    )
    with pytest.raises(ValueError, match="no backend 'nope'"):
        docgen.options_table("nope")


def test_the_api_reference_documents_every_public_name() -> None:
    import jobfleet

    reference = docgen.api_reference()
    first = reference.split("## ", 2)[1]
    assert ".. automodule:: jobfleet\n" in first
    members = re.search(r":members: (.*)", first)
    assert members is not None
    data = re.findall(r"^\.\. py:data:: (\w+)$", first, flags=re.M)
    documented = [*members[1].split(", "), *data]
    assert sorted(documented) == sorted(n for n in jobfleet.__all__ if n != "__version__")
    assert data == ["TERMINAL"]
    # Names the top level documents are not documented twice.
    errors = reference.split("## Errors")[1].split("## ")[0]
    assert "JobfleetError" not in errors and "ConfigError" in errors


def pages() -> dict[str, str]:
    return {p.stem: p.read_text(encoding="utf-8") for p in sorted(DOCS.glob("*.md"))}


def test_every_page_is_in_the_navigation_once() -> None:
    listed = [page for _, section in jobfleet_site.NAV for page in section]
    assert len(listed) == len(set(listed))
    assert set(listed) == set(pages()) - {"index"}


@pytest.mark.parametrize(
    "name", [n for n, text in pages().items() if jobfleet_site.generates(text)]
)
def test_every_marker_of_a_page_makes_its_part(name: str) -> None:
    text = pages()[name]
    expanded = jobfleet_site.expand(text)
    assert "<!-- generated:" not in expanded
    assert len(expanded) > len(text) or name == "options"


def test_an_unknown_marker_is_an_error() -> None:
    with pytest.raises(ValueError, match="no generator 'nope'"):
        jobfleet_site.expand("<!-- generated: nope -->\n")


def test_a_stale_name_is_told_from_a_live_one() -> None:
    for name in ("jobfleet.Fleet.submit", "jobfleet.usage.Usage.cpu_time_s", "jobfleet.cli.main"):
        assert jobfleet_site.resolves(name), name
    for name in ("jobfleet.Fleet.no_such_method", "jobfleet.no_such_module.x", "jobfleet.nope"):
        assert not jobfleet_site.resolves(name), name
