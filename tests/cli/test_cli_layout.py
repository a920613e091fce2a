"""``jobfleet submit``'s layout and site flags (issue 11), shown by dry runs: no cluster."""

from __future__ import annotations

from pathlib import Path

import pytest

from support.cli import jf


def directives(backend: str, *flags: str) -> list[str]:
    proc = jf("submit", "--backend", backend, "--dry-run", *flags, "--", "./app", "x y")
    assert proc.returncode == 0, proc.stderr
    return [
        # The command's line, without the status record after it.
        line.removesuffix(" || __jf_rc=$?")
        for line in proc.stdout.splitlines()
        if line.startswith(("#SBATCH", "#$", "( "))
    ]


@pytest.mark.parametrize(
    ("flags", "line"),
    [
        (["--tasks", "4"], "#SBATCH --ntasks=4"),
        (["--tasks-per-node", "2", "--nodes", "2"], "#SBATCH --ntasks-per-node=2"),
        (["--nodes", "3", "--tasks", "3"], "#SBATCH --nodes=3"),
        (["--cores-per-task", "3"], "#SBATCH --cpus-per-task=3"),
        (["--exclusive"], "#SBATCH --exclusive"),
        (["--qos", "high"], "#SBATCH --qos=high"),
        (["--constraint", "haswell"], "#SBATCH --constraint=haswell"),
        (["--tasks", "2", "--launcher", "srun"], "( srun --cpus-per-task=1 './app' 'x y' )"),
    ],
)
def test_each_flag_reaches_the_slurm_script(jf_home: Path, flags: list[str], line: str) -> None:
    assert line in directives("slurm", *flags)


def test_layout_flags_on_grid_engine(jf_home: Path) -> None:
    lines = directives("sge", "--tasks", "2", "--cores-per-task", "2", "--launcher", "mpirun")
    assert "#$ -pe smp 4" in lines
    assert "( mpirun -np \"$((${NSLOTS:-2} / 2))\" './app' 'x y' )" in lines


def test_without_the_flags_nothing_changes(jf_home: Path) -> None:
    lines = directives("slurm")
    assert lines == ["#SBATCH --cpus-per-task=1", "( './app' 'x y' )"]


@pytest.mark.parametrize(
    ("flags", "words"),
    [
        (["--cores", "2", "--cores-per-task", "3"], "resources.cores_per_task"),
        (["--tasks", "2", "--tasks-per-node", "2"], "resources.tasks"),
        (["--launcher", "aprun"], "'aprun' is not one of"),
        (["--qos", "high"], "resources.qos: Grid Engine has no quality of service"),
    ],
)
def test_bad_combinations_are_one_line_errors(jf_home: Path, flags: list[str], words: str) -> None:
    proc = jf("submit", "--backend", "sge", "--dry-run", *flags, "--", "true", expect=2)
    assert words in proc.stderr and proc.stdout == ""


@pytest.mark.parametrize(
    "begin",
    ["9999-12-31T23:59:59-01:00", "0001-01-01T00:30:00+01:00", "0001-01-01T00:00:00"],
)
def test_a_start_time_out_of_range_is_a_one_line_error(jf_home: Path, begin: str) -> None:
    config = jf_home.parent / "begin.yaml"
    config.write_text(f'resources:\n  begin: "{begin}"\n')
    env = {"JOBFLEET_CONFIG": str(config)}
    proc = jf("submit", "--backend", "sge", "--dry-run", "--", "true", expect=None, env=env)
    assert proc.returncode != 0 and "internal error" not in proc.stderr, proc.stderr
    assert "resources.begin" in proc.stderr and "between the years 1970 and 9999" in proc.stderr
