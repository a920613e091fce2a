"""The documentation site builds with warnings as errors (as ``bash scripts/docs.sh`` does),
outside the checkout, and holds what the code makes; a broken page fails the build."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from html import unescape
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"


def sphinx(source: Path, out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """``python -m sphinx -W --keep-going -n -E`` of ``source`` into ``out`` (its doctrees
    too), with docs/conf.py."""
    argv = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-n", "-E", "-q"]
    argv += ["-b", "html", "-c", str(DOCS), "-d", str(out / ".doctrees"), *extra]
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run(
        [*argv, str(source), str(out)], capture_output=True, text=True, timeout=600, env=env
    )


def files(root: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(root)): (p.stat().st_mtime_ns, p.stat().st_size)
        for p in root.rglob("*")
        if p.is_file()
    }


def text_of(html: str) -> str:
    """A page's text, as a reader sees it (tags dropped, entities read)."""
    return unescape(re.sub(r"<[^>]+>", "", html))


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    out = tmp_path_factory.mktemp("site")
    before = files(DOCS)
    proc = sphinx(DOCS, out)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "WARNING" not in proc.stderr, proc.stderr
    assert files(DOCS) == before, "the build wrote into docs/"
    yield out


@pytest.mark.slow
def test_every_page_is_built(site: Path) -> None:
    pages = {p.stem for p in DOCS.glob("*.md")}
    built = {p.stem for p in site.glob("*.html")}
    assert pages <= built, pages - built
    home = (site / "index.html").read_text(encoding="utf-8")
    for caption in ("Getting started", "Concepts", "Schedulers", "Reference"):
        assert caption in home  # the sidebar's sections


@pytest.mark.slow
def test_the_generated_pages_are_in_the_site(site: Path) -> None:
    from jobfleet.configschema import schema

    config = text_of((site / "configuration.html").read_text(encoding="utf-8"))
    for setting in schema():
        assert setting.dotted in config, setting.dotted
    cli = text_of((site / "cli.html").read_text(encoding="utf-8"))
    for command in ("jobfleet submit", "jobfleet pipe create", "jobfleet config show"):
        assert f"Usage: {command} [OPTIONS]" in cli
    assert "--name-prefix TEXT" in cli and "--no-export-env" in cli
    slurm = text_of((site / "slurm.html").read_text(encoding="utf-8"))
    assert "#SBATCH --mem=4096M" in slurm  # its options table, read off a dry run
    assert "slurm.kill_invalid_dependents" in slurm  # its settings
    api = (site / "api.html").read_text(encoding="utf-8")
    import jobfleet

    for name in jobfleet.__all__:
        if not name.startswith("_"):
            assert f'id="jobfleet.{name}"' in api, name


@pytest.mark.slow
def test_a_broken_page_fails_the_build(tmp_path: Path) -> None:
    """Each kind of rot the site guards against is an error, named with its page."""
    source = tmp_path / "src"
    source.mkdir()
    (source / "other.md").write_text("# Other\n\n## A heading\n")
    (source / "broken.md").write_text(
        "# Broken\n\n"
        "[a page that is gone](gone.md), [a heading that is gone](other.md#no-such-heading),\n"
        "[a file that is gone](../no-such-file.yaml), `jobfleet.studies.no_such_name`,\n"
        "{py:func}`jobfleet.no_such_function`, a <job dir> outside backticks.\n\n"
        "```{toctree}\nother\n```\n"
    )
    proc = sphinx(source, tmp_path / "out", "-D", "root_doc=broken")
    assert proc.returncode != 0
    for said in (
        "'gone.md'",
        "'no-such-heading'",
        "'../no-such-file.yaml'",
        "`jobfleet.studies.no_such_name`: no such name in jobfleet",
        "jobfleet.no_such_function: no such name in jobfleet",
        "raw HTML '<job dir>'",
    ):
        assert said in proc.stderr, (said, proc.stderr)
    assert "broken.md" in proc.stderr
