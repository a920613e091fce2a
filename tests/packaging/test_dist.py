"""The release artefacts: ``python -m build`` makes an sdist and a wheel (the wheel built
from the sdist, so the sdist is complete), ``twine check --strict`` accepts both, and the
wheel installs into a fresh virtual environment where jobfleet runs a job end to end.
One version everywhere: ``jobfleet.__version__`` (pyproject.toml reads it)."""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

import jobfleet

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow

#: What a copy of the source tree leaves out (local state, never part of a release).
_LOCAL = shutil.ignore_patterns(
    ".git", ".venv*", "__pycache__", "*.egg-info", "build", "dist", ".mypy_cache",
    ".ruff_cache", ".pytest_cache", ".hypothesis",
)  # fmt: skip


def _run(argv: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=600, **kwargs)  # type: ignore[call-overload]
    assert proc.returncode == 0, f"{argv} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    return proc


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    """The sdist and the wheel, built from a copy of the source tree (the checkout is
    left as it was) with this environment's setuptools."""
    root = tmp_path_factory.mktemp("dist")
    source = root / "source"
    shutil.copytree(REPO, source, ignore=_LOCAL)
    out = root / "out"
    _run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(source)])
    (sdist,) = out.glob("jobfleet-*.tar.gz")
    (wheel,) = out.glob("jobfleet-*.whl")
    yield sdist, wheel


def test_one_version_everywhere(dist: tuple[Path, Path]) -> None:
    sdist, wheel = dist
    version = jobfleet.__version__
    assert importlib.metadata.version("jobfleet") == version  # as installed for the tests
    assert sdist.name == f"jobfleet-{version}.tar.gz"
    assert wheel.name == f"jobfleet-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel) as zf:
        metadata = zf.read(f"jobfleet-{version}.dist-info/METADATA").decode()
    assert f"\nVersion: {version}\n" in metadata


def test_twine_accepts_both(dist: tuple[Path, Path]) -> None:
    proc = _run([sys.executable, "-m", "twine", "check", "--strict", *map(str, dist)])
    assert proc.stdout.count("PASSED") == 2


def test_the_artefacts_hold_what_users_need(dist: tuple[Path, Path]) -> None:
    sdist, wheel = dist
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        info = f"jobfleet-{jobfleet.__version__}.dist-info"
        entry_points = zf.read(f"{info}/entry_points.txt").decode()
    assert "jobfleet/py.typed" in names  # typed: mypy reads jobfleet's annotations
    assert "jobfleet/backends/local/agent.py" in names
    assert not any(n.startswith(("tests/", "bench/")) for n in names)
    assert "jobfleet = jobfleet.cli.main:main" in entry_points
    for name in ("local", "slurm", "sge", "lsf", "pbs", "torque", "htcondor"):
        assert f"{name} = jobfleet.backends.{name}:BACKEND" in entry_points
    with tarfile.open(sdist) as tf:
        members = {m.name.split("/", 1)[1] for m in tf.getmembers() if "/" in m.name}
    assert {"pyproject.toml", "README.md", "src/jobfleet/py.typed"} <= members


def test_the_wheel_installs_into_a_fresh_venv_and_runs_a_job(
    dist: tuple[Path, Path], tmp_path: Path
) -> None:
    _, wheel = dist
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", str(venv)])
    python, jf = venv / "bin" / "python", venv / "bin" / "jobfleet"
    _run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", str(wheel)])
    (tmp_path / "jobfleet.yaml").write_text("backend: local\nlocal:\n  idle_exit: 5s\n")
    env = {
        "PATH": f"{venv / 'bin'}{os.pathsep}/usr/bin{os.pathsep}/bin",
        "HOME": str(tmp_path),
        "JOBFLEET_HOME": str(tmp_path / "home"),
        "JOBFLEET_CONFIG": str(tmp_path / "jobfleet.yaml"),
    }
    first = _run([str(jf), "--version"], env=env, cwd=tmp_path).stdout.splitlines()[0]
    assert first == f"jobfleet {jobfleet.__version__}"
    where = _run([str(python), "-c", "import jobfleet; print(jobfleet.__file__)"], env=env)
    assert where.stdout.startswith(str(venv))  # the installed copy, not the checkout
    job = _run([str(jf), "submit", "--", "echo", "hello from the wheel"], env=env, cwd=tmp_path)
    job_id = job.stdout.strip()
    assert _run([str(jf), "wait", job_id], env=env, cwd=tmp_path).stdout.strip() == "1 completed"
    logs = _run([str(jf), "logs", job_id], env=env, cwd=tmp_path).stdout
    assert logs == "hello from the wheel\n"
