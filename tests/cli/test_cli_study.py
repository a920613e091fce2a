"""``jobfleet run STUDY.yaml`` and ``jobfleet study status DIR`` on the local backend."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

PY = sys.executable

GRID = """\
name: grid
command: ["sh", "-c", "echo {a} {b} > out.txt; test {a}{b} != 2y", "point"]
parameters:
  a: [1, 2, 3]
  b: [x, y, z, w]
output: results
"""


def jf(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PY, "-m", "jobfleet", *args], capture_output=True, text=True, timeout=180, cwd=cwd
    )


def test_run_reports_the_failed_point_and_exits_1(jf_home: Path, tmp_path: Path) -> None:
    (tmp_path / "grid.yaml").write_text(GRID)
    dry = jf("run", "grid.yaml", "--dry-run", cwd=tmp_path)
    assert dry.returncode == 0, dry.stderr
    assert "main: 12 to run, 0 kept, 0 running, 0 blocked" in dry.stdout
    assert not (tmp_path / "results").exists()

    proc = jf("run", "grid.yaml", cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert "a=2, b=y" in proc.stdout and "failed" in proc.stdout
    status = jf("study", "status", "results", "--json", cwd=tmp_path)
    assert status.returncode == 1
    doc = json.loads(status.stdout)
    assert doc["counts"] == {"completed": 11, "failed": 1}
    (bad,) = doc["not_completed"]
    assert {k: bad[k] for k in ("step", "index", "params", "state", "exit_code")} == {
        "step": "main",
        "index": 5,
        "params": {"a": 2, "b": "y"},
        "state": "failed",
        "exit_code": 1,
    }
    assert Path(bad["log"]).is_file()

    # --set changes the study: a new command is a new point for each of them.
    fixed = jf("run", "grid.yaml", "--json", "--set", 'command=["true"]', cwd=tmp_path)
    assert fixed.returncode == 0, fixed.stderr
    doc = json.loads(fixed.stdout)
    assert doc["ok"] is True and doc["counts"] == {"completed": 12}
    assert len(doc["submitted"]) == 1


def test_bad_input_gets_a_clear_error(jf_home: Path, tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text(GRID.replace("parameters:", "paramters:"))
    proc = jf("run", "bad.yaml", cwd=tmp_path)
    assert proc.returncode == 2
    assert "bad.yaml" in proc.stderr and "paramters" in proc.stderr
    assert "Traceback" not in proc.stderr
    both = jf("run", "bad.yaml", "--rerun-failed", "--rerun-all", cwd=tmp_path)
    assert both.returncode == 2 and "not both" in both.stderr
    nothing = jf("study", "status", str(tmp_path), cwd=tmp_path)
    assert nothing.returncode == 2 and "holds no study" in nothing.stderr


def test_report_draws_every_job_of_a_study(jf_home: Path, tmp_path: Path) -> None:
    (tmp_path / "grid.yaml").write_text(GRID)
    assert jf("run", "grid.yaml", cwd=tmp_path).returncode == 1  # one point fails
    proc = jf("report", "--study", "results", "--html", "r.html", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "wrote r.html (12 jobs and elements: 11 completed, 1 failed)\n"
    assert (tmp_path / "r.html").stat().st_size > 100_000  # the plotting library inlined
    both = jf("report", "1", "--study", "results", "--html", "x.html", cwd=tmp_path)
    assert both.returncode == 2 and "or --study DIR" in both.stderr
