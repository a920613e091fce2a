"""Every code block of docs/*.md runs here, or says why it cannot, so the pages cannot
drift from the code (as the README's blocks, tests/cli/test_docs.py).

What a fenced block's language means:

- ``python``: run as a script (``__main__``) in a fresh directory, with a fresh jobfleet
  home and the local backend (the ``jf_home`` fixture); it must exit 0.
- ``bash``: run the same way with ``bash -euo pipefail``, ``jobfleet`` on PATH.
- ``console``: commands after ``$``; each ``jobfleet ...`` in them is parsed by the real
  command line (click), so a command or option that no longer exists fails; none is run.
- ``yaml``: a configuration file, read with ``load_config`` (with each of its profiles).
- ``toml``: read with ``tomllib``.
- ``text``: shown as it is. A block without a language is an error: say which.

An HTML comment on the line before a block changes that (invisible on GitHub and on the
site):

- ``<!-- docs: output -->`` before a ``text`` block: it is exactly what the nearest
  ``python`` or ``bash`` block above it printed.
- ``<!-- docs: study -->`` before a ``yaml`` block: a study file, read with ``load_study``.
- ``<!-- docs: run by tests/PATH.py -->``: a test of its own runs it (that file must exist
  and name the page).
- ``<!-- docs: not run: REASON -->``: it cannot run here (a cluster, an install, minutes);
  the reason is required.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import click
import pytest

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"

LANGUAGES = {"python", "bash", "console", "yaml", "toml", "text"}
MARKER = re.compile(r"^<!-- docs: (?P<what>output|study|run by \S+|not run: .+?) -->$")


@dataclass(frozen=True)
class Block:
    page: str
    line: int  # of the opening fence, from 1
    lang: str
    body: str
    marker: str | None  # the comment before it, without "<!-- docs: " and " -->"

    @property
    def id(self) -> str:
        return f"{self.page}:{self.line}-{self.lang or 'none'}"


def blocks_of(page: Path) -> list[Block]:
    """The fenced blocks of a page, each with the ``docs:`` comment just before it."""
    found = []
    lines = page.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        opening = re.match(r"^(\s*)(`{3,}|~{3,})(.*)$", lines[i])
        if not opening:
            i += 1
            continue
        indent, fence, info = opening.groups()
        end = i + 1
        while end < len(lines) and not lines[end].strip().startswith(fence):
            end += 1
        before = lines[i - 1].strip() if i else ""
        marked = MARKER.match(before)
        if before.startswith("<!-- docs:") and not marked:
            raise AssertionError(f"{page.name}:{i}: unknown marker {before!r}")
        body = "\n".join(line.removeprefix(indent) for line in lines[i + 1 : end])
        what = marked["what"] if marked else None
        found.append(Block(page.name, i + 1, info.strip().split(" ")[0], body + "\n", what))
        i = end + 1
    return found


BLOCKS = [b for page in sorted(DOCS.glob("*.md")) for b in blocks_of(page)]


def runs(block: Block) -> bool:
    return block.lang in ("python", "bash") and block.marker is None


def env_with_venv() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    return env


def run(block: Block, cwd: Path) -> subprocess.CompletedProcess[str]:
    argv = {"python": [sys.executable, "-c"], "bash": ["bash", "-euo", "pipefail", "-c"]}
    proc = subprocess.run(
        [*argv[block.lang], block.body],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env=env_with_venv(),
    )
    assert proc.returncode == 0, f"{block.id} exited {proc.returncode}:\n{proc.stderr}"
    return proc


def shown_output(block: Block) -> Block | None:
    """The ``output`` block that follows ``block`` (before any other runnable block)."""
    after = [b for b in BLOCKS if b.page == block.page and b.line > block.line]
    for other in after:
        if other.marker == "output":
            return other
        if runs(other):
            return None
    return None


def test_every_block_says_what_it_is() -> None:
    for block in BLOCKS:
        assert block.lang in LANGUAGES, f"{block.id}: a block's language is one of {LANGUAGES}"
        if block.marker == "output":
            assert block.lang == "text", block.id
            source = [b for b in BLOCKS if b.page == block.page and b.line < block.line]
            assert source and runs(source[-1]), f"{block.id}: no block above prints it"
        if block.marker == "study":
            assert block.lang == "yaml", block.id
    # Every runnable block is either run below, or marked with why not.
    assert sum(runs(b) for b in BLOCKS) >= 10


@pytest.mark.parametrize("block", [b for b in BLOCKS if runs(b)], ids=lambda b: b.id)
def test_the_block_runs(block: Block, jf_home: Path, tmp_path: Path) -> None:
    proc = run(block, tmp_path)
    shown = shown_output(block)
    if shown is not None:
        assert proc.stdout == shown.body, f"{block.id} printed:\n{proc.stdout}"


@pytest.mark.parametrize(
    "block",
    [b for b in BLOCKS if (b.marker or "").startswith(("run by", "not run"))],
    ids=lambda b: b.id,
)
def test_a_block_not_run_here_says_why(block: Block) -> None:
    assert block.marker is not None
    if block.marker.startswith("not run: "):
        assert len(block.marker.removeprefix("not run: ").split()) >= 3, f"{block.id}: say why"
    else:
        test = REPO / block.marker.removeprefix("run by ")
        assert test.is_file(), f"{block.id}: no {test}"
        assert block.page in test.read_text(encoding="utf-8"), f"{test} does not read {block.page}"


def jobfleet_commands(block: Block) -> list[list[str]]:
    """The ``jobfleet ...`` commands of a console block's ``$`` lines."""
    commands = []
    for line in block.body.splitlines():
        if not line.startswith("$ "):
            continue
        words = shlex.split(line[2:], comments=True)
        command: list[str] = []
        for word in [*words, "&&"]:
            if word in ("&&", "||", ";", "|"):
                if command and command[0] == "jobfleet":
                    commands.append(command[1:])
                command = []
            else:
                command.append(word)
    return commands


def parse(args: list[str]) -> click.Command:
    """Parse ``jobfleet ARGS`` as the command line would, without running it."""
    from jobfleet.cli.main import cli

    command: click.Command = cli
    ctx = click.Context(cli, info_name="jobfleet")
    while isinstance(command, click.Group):
        name, *args = args
        sub = command.get_command(ctx, name)
        assert sub is not None, f"no command {ctx.command_path} {name}"
        command, ctx = sub, click.Context(sub, parent=ctx, info_name=name)
    command.make_context(ctx.info_name, args, parent=ctx.parent)  # raises on a bad option
    return command


@pytest.mark.parametrize("block", [b for b in BLOCKS if b.lang == "console"], ids=lambda b: b.id)
def test_a_console_block_is_what_the_command_line_takes(block: Block) -> None:
    commands = jobfleet_commands(block)
    assert commands, f"{block.id}: no jobfleet command"
    for args in commands:
        try:
            parse(args)
        except click.UsageError as exc:
            pytest.fail(f"{block.id}: jobfleet {shlex.join(args)}: {exc.format_message()}")


def test_the_console_parser_refuses_what_the_command_line_refuses() -> None:
    assert parse(["pipe", "status", "run1", "--json"]).name == "status"
    with pytest.raises(click.UsageError):
        parse(["pipe", "status", "run1", "--no-such-option"])
    with pytest.raises(AssertionError, match="no command jobfleet nope"):
        parse(["nope"])


@pytest.mark.parametrize(
    "block",
    [b for b in BLOCKS if b.lang in ("yaml", "toml") and b.marker in (None, "study")],
    ids=lambda b: b.id,
)
def test_a_file_block_is_read(block: Block, tmp_path: Path) -> None:
    path = tmp_path / f"block.{block.lang}"
    path.write_text(block.body, encoding="utf-8")
    if block.lang == "toml":
        tomllib = pytest.importorskip("tomllib")  # Python 3.11+
        tomllib.loads(block.body)
    elif block.marker == "study":
        from jobfleet.studies import load_study

        assert load_study(path).steps
    else:
        from jobfleet.config import load_config

        config = load_config(path, env={"HOME": str(tmp_path)}, cwd=tmp_path)
        for profile in config.profiles:
            load_config(path, profile=profile, env={"HOME": str(tmp_path)}, cwd=tmp_path)
