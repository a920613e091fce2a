"""Which schedulers this machine has (jobfleet.backends.detect): each backend's look on
PATH, ``auto``'s choice and why, ``jobfleet info``. Programs on PATH answer in the
schedulers' real words (versions and pings recorded on the live clusters, PBS Pro's
``qstat --version`` from its documentation); the live clusters are asked when they run.
"""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from jobfleet import backends as catalog
from jobfleet.backends import detect
from jobfleet.backends.detect import Found, choose, find_all, resolve
from jobfleet.config import load_config
from jobfleet.engine.fleet import Fleet
from support.cli import jf


def program(bin_dir: Path, name: str, stdout: str, status: int = 0, stderr: str = "") -> None:
    """A program on PATH printing a recorded answer, whatever its arguments."""
    path = bin_dir / name
    path.write_text(
        f"#!/bin/sh\nprintf '%s' '{stdout}'\nprintf '%s' '{stderr}' >&2\nexit {status}\n"
    )
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


@pytest.fixture
def bin_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty PATH of its own: nothing but what the test puts there."""
    where = tmp_path / "bin"
    where.mkdir()
    monkeypatch.setenv("PATH", str(where))
    return where


def slurm_down(bin_dir: Path) -> None:
    program(bin_dir, "sbatch", "")
    program(bin_dir, "sinfo", "slurm-wlm 22.05.8\n")
    # What scontrol ping says with slurmctld stopped (22.05, tests/cluster recipe).
    program(bin_dir, "scontrol", "Slurmctld(primary) at vm is DOWN\n", status=1)


def test_nothing_on_path_is_local(bin_dir: Path) -> None:
    types = catalog.available()
    assert find_all(types) == []
    backend, why = resolve(types)
    assert backend == "local" and "no scheduler" in why


def test_a_scheduler_that_does_not_answer_is_not_picked(bin_dir: Path) -> None:
    slurm_down(bin_dir)
    (found,) = find_all(catalog.available())
    assert (found.backend, found.version, found.answered) == ("slurm", "22.05.8", False)
    assert "scontrol ping" in found.why and "DOWN" in found.why
    backend, why = resolve(catalog.available())
    assert backend == "local" and "slurm" in why and "DOWN" in why


def test_a_qstat_of_another_scheduler_is_not_grid_engine(bin_dir: Path) -> None:
    # PBS Pro: `qstat -help` is usage text, no Grid Engine banner.
    program(bin_dir, "qsub", "")
    program(bin_dir, "qstat", "usage:\nqstat [-f] [-J] [-p] [-t] [-x]\n", status=2)
    assert [f.backend for f in find_all(catalog.available())] == []


def test_grid_engine_is_told_by_its_banner(bin_dir: Path) -> None:
    program(bin_dir, "qsub", "")
    program(bin_dir, "qstat", "SGE 8.1.9\nusage: qstat [options]\n")
    program(bin_dir, "qconf", "vm\n")
    (found,) = find_all(catalog.available())
    assert (found.backend, found.version, found.answered) == ("sge", "SGE 8.1.9", True)
    assert found.accounting is False  # no qacct here
    assert resolve(catalog.available())[0] == "sge"


def test_why_is_one_line() -> None:
    found = Found("htcondor", "/x/condor_submit", answered=False, why="a\n\n b\n" + "c" * 400)
    assert found.why.startswith("a; b; c") and len(found.why) == 300


def test_auto_takes_the_first_that_answers_in_order() -> None:
    found = [
        Found("slurm", "/x/sbatch", "22.05.8", answered=False, why="down"),
        Found("sge", "/x/qsub", "SGE 8.1.9"),
        Found("toy", "/x/toy", None),
    ]
    assert choose(found)[0] == "sge"
    assert choose(list(reversed(found)))[0] == "sge"  # auto's order, not the listing's
    assert choose(found[2:])[0] == "toy"  # any installed backend, after the known ones
    assert choose([]) == ("local", "no scheduler's commands on PATH; this machine's own cores")


def test_a_fleet_resolves_auto_once_and_records_the_real_backend(
    bin_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    slurm_down(bin_dir)
    monkeypatch.setattr(detect, "_resolved", {})
    config = load_config(env={"HOME": str(tmp_path)}, cwd=tmp_path)
    assert config.backend == "auto"
    with Fleet(config, home=tmp_path / "home") as fleet:
        assert fleet.backend().name == "local"
        assert fleet.backend("auto") is fleet.backend("local")
    assert list(detect._resolved.values()) == [
        ("local", "no scheduler answered: slurm (scontrol ping: Slurmctld(primary) at vm is DOWN); "
         "this machine's own cores")
    ]  # fmt: skip


def test_info_names_what_it_found_and_why(jf_home: Path, bin_dir: Path) -> None:
    slurm_down(bin_dir)
    out = json.loads(jf("info", "--json").stdout)
    assert out["config"]["backend"] == "local"  # the test home pins it
    assert out["default_backend"] == "local"
    assert out["auto"]["backend"] == "local" and "DOWN" in out["auto"]["why"]
    (slurm,) = out["schedulers"]
    assert slurm["backend"] == "slurm" and slurm["answered"] is False
    text = jf("info").stdout
    assert "default backend: local (from" in text and "does not answer" in text


@pytest.mark.live_slurm
def test_info_on_the_live_clusters(slurm_home: Path) -> None:
    out = json.loads(jf("info", "--json").stdout)
    found = {s["backend"]: s for s in out["schedulers"]}
    assert found["slurm"]["answered"] is True and found["slurm"]["accounting"] is True
    assert found["slurm"]["version"].count(".") == 2
    assert "largest array index" in found["slurm"]["facts"]
    assert out["auto"]["backend"] == "slurm"  # first in auto's order, and it answers
