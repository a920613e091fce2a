"""``jobfleet options``: the option table is read off dry runs, so it says what the code
does; docs/options.md is the same table, for a machine with 64 cores, 256 GiB and 8 GPUs."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from jobfleet import backends as catalog
from jobfleet.config import load_config, schema
from jobfleet.engine.fleet import Fleet
from jobfleet.engine.options import (
    OPTION_SECTIONS,
    SAMPLES,
    TABLE_MACHINE,
    OptionRow,
    option_rows,
    options_markdown,
)
from support.cli import jf

DOC = Path(__file__).resolve().parents[2] / "docs" / "options.md"
BACKENDS = ["local", "slurm", "sge", "lsf", "pbs", "torque", "htcondor"]
#: The machine docs/options.md describes for the local backend (the command's too).
DOC_MACHINE = TABLE_MACHINE


@pytest.fixture
def rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[OptionRow]]:
    # HTCondor's deferral_time is Unix time: the sample begin (a local time) depends on
    # the zone. The page describes a machine on UTC.
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    config = load_config(overrides=DOC_MACHINE, env={"HOME": str(tmp_path)}, cwd=tmp_path)
    with Fleet(config, home=tmp_path / "home") as fleet:
        yield option_rows(fleet.dry_run, lambda n: fleet.backend(n).option_notes, BACKENDS)
    monkeypatch.undo()
    time.tzset()


def test_every_job_option_is_tried_and_shown() -> None:
    keys = [s.dotted for s in schema() if s.section in OPTION_SECTIONS]
    missing = [k for k in keys if k not in SAMPLES]
    assert not missing, f"give these options a sample value in engine/options.py: {missing}"
    assert not set(SAMPLES) - set(keys), "samples of options that no longer exist"


def test_the_table_is_what_a_dry_run_renders(rows: list[OptionRow]) -> None:
    by_key = {r.key: r for r in rows}
    assert by_key["resources.memory"].becomes("slurm") == "#SBATCH --mem=4096M"
    assert by_key["resources.memory"].becomes("sge") == "#$ -l h_vmem=4096M"  # one slot
    assert by_key["resources.cores"].becomes("slurm") == "#SBATCH --cpus-per-task=4"  # not =1
    assert by_key["resources.extra_args"].becomes("slurm") == "sbatch --hold"
    assert by_key["resources.nodes"].becomes("local").startswith("refused: ")
    assert (
        by_key["resources.directives_skip"]
        .becomes("slurm")
        .startswith("leaves out #SBATCH --time=")
    )
    assert (
        by_key["resources.directives_skip"].becomes("sge")
        == "leaves out #$ -l h_rt=1:00:00,s_rt=0:59:00"
    )
    # What the local backend does without a directive is said, never left blank.
    assert "cores are free" in by_key["resources.cores"].becomes("local")
    assert all(r.becomes(b) for r in rows for b in BACKENDS)


def test_docs_options_md_is_the_generated_table(rows: list[OptionRow]) -> None:
    table = options_markdown(rows, BACKENDS)
    text = DOC.read_text()
    start = text.index("<!-- options table: generated -->\n") + len(
        "<!-- options table: generated -->\n"
    )
    end = text.index("<!-- end of the generated table -->")
    if os.environ.get("JOBFLEET_REGENERATE"):
        DOC.write_text(text[:start] + table + text[end:])
        text = DOC.read_text()
        end = text.index("<!-- end of the generated table -->")
    assert text[start:end] == table, (
        "docs/options.md is stale: run JOBFLEET_REGENERATE=1 pytest tests/engine/test_options.py"
    )


def test_the_command_prints_it(jf_home: Path) -> None:
    listed = json.loads(jf("options", "--json", "--backend", "slurm").stdout)
    memory = next(r for r in listed if r["key"] == "resources.memory")
    assert memory["becomes"] == {"slurm": "#SBATCH --mem=4096M"}
    assert memory["sample"] == "4G" and "memory" in memory["doc"]
    assert {r["key"] for r in listed} == set(SAMPLES)
    table = jf("options", env={"COLUMNS": "200"}).stdout  # every backend a column
    for name in catalog.names():
        assert name.upper() in table
    proc = jf("options", "--backend", "nope", expect=2)
    assert "unknown backend 'nope'" in proc.stderr and len(proc.stderr.splitlines()) == 1


def test_the_command_does_not_depend_on_this_machines_cores(jf_home: Path) -> None:
    # jf_home's configuration gives the local backend 2 cores; the samples ask for 4.
    listed = json.loads(jf("options", "--json", "--backend", "local").stdout)
    becomes = {r["key"]: r["becomes"]["local"] for r in listed}
    refused = [
        k
        for k, text in becomes.items()
        if "machine has" in text or ("local.cores" in text and text.startswith("refused"))
    ]
    assert not refused, refused
    assert becomes["resources.cores"].startswith("cores held: tasks x cores")
