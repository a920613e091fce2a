"""``jobfleet report ID... --html PATH [--png PATH]`` on the local backend: real jobs
(completed, failed, cancelled, an array with a failing element) drawn; the errors a
user can make; and the optional extra, missing, said in one line."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from jobfleet.report.png import DPI, WIDTH_IN, png_height_in
from jobfleet.report.rows import STATE_COLOURS
from jobfleet.states import JobState
from support.cli import jf
from support.pictures import colours, png_size, rgb

PY = sys.executable


def submit(*args: str) -> str:
    return jf("submit", *args).stdout.strip()


@pytest.fixture
def jobs(jf_home: Path) -> list[str]:
    """Four local jobs, ended: completed, failed (exit 3), cancelled, an array of 3."""
    ok = submit("--name", "ok", "--", "true")
    bad = submit("--name", "bad", "--", "sh", "-c", "exit 3")
    slow = submit("--name", "slow", "--", "sleep", "60")
    array = submit(
        "--name", "sweep", "--array", "0-2", "--shell", "--", '[ "$JOBFLEET_ARRAY_INDEX" != 1 ]'
    )
    jf("wait", ok, bad, array, "--timeout", "60", expect=1)
    jf("cancel", slow)
    jf("wait", slow, "--timeout", "30", expect=1)
    return [ok, bad, slow, array]


def test_report_draws_local_jobs_as_html_and_png(jobs: list[str], tmp_path: Path) -> None:
    ok, bad, slow, array = jobs
    html, png = tmp_path / "r.html", tmp_path / "r.png"
    proc = jf("report", *jobs, "--html", str(html), "--png", str(png))
    what = "6 jobs and elements: 3 completed, 2 failed, 1 cancelled"
    assert proc.stdout.splitlines() == [f"wrote {html} ({what})", f"wrote {png} ({what})"]
    page = html.read_text(encoding="utf-8")
    # A bar per job and element, each with its times (the local backend records them all).
    labels = {ok, bad, slow, f"{array}[0]", f"{array}[1]", f"{array}[2]"}
    timeline = page[page.index('"jobfleet-timeline",') : page.index('"jobfleet-counts",')]
    for label in labels:
        assert f'"{label}"' in timeline, label
    assert "had no submit time recorded" not in page and "without a recorded" not in page
    # The table of what did not complete: the failures' exit codes, the cancel's reason.
    assert f'<tr><td>{bad}</td><td>bad</td><td>failed</td><td class="n">3</td>' in page
    assert f'<tr><td>{array}[1]</td><td>sweep</td><td>failed</td><td class="n">1</td>' in page
    assert re.search(rf"<tr><td>{slow}</td><td>slow</td><td>cancelled</td>.*?cancelled by ", page)
    assert "<h2>Did not complete: 3</h2>" in page
    # The PNG: its size for 6 rows, the states' colours.
    assert png_size(png) == (int(WIDTH_IN * DPI), int(png_height_in(6) * DPI))
    seen = colours(png)
    for state in (JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED):
        assert rgb(STATE_COLOURS[state]) in seen, state


def test_report_without_refresh_of_one_job_and_into_a_missing_directory(
    jf_home: Path, tmp_path: Path
) -> None:
    ok = submit("--", "true")
    jf("wait", ok, "--timeout", "60")
    out = tmp_path / "one.png"
    proc = jf("report", ok, ok, "--png", str(out), "--no-refresh")
    assert proc.stdout == f"wrote {out} (1 job or element: 1 completed)\n"
    assert png_size(out)[0] == int(WIDTH_IN * DPI)
    nowhere = tmp_path / "no" / "such" / "r.html"
    proc = jf("report", ok, "--html", str(nowhere), expect=1)
    assert proc.stderr == f"jobfleet: error: No such file or directory: {nowhere}\n"


def test_report_needs_an_output(jf_home: Path) -> None:
    proc = jf("report", "1", expect=2)
    assert proc.stderr == (
        "jobfleet: error: give --html PATH, --png PATH or both (see `jobfleet report --help`)\n"
    )
    proc = jf("report", "--html", "x.html", expect=2)
    assert proc.stderr == (
        "jobfleet: error: give the ids of the jobs to draw, or --study DIR"
        " (see `jobfleet report --help`)\n"
    )


def test_report_of_an_unknown_job_says_so(jf_home: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    proc = jf("report", "424242", "--html", str(out), expect=2)
    assert proc.stderr == (
        "jobfleet: error: no job with id '424242' in the registry (see `jobfleet status`)\n"
    )
    assert not out.exists()


#: Runs the command line with the report extra's libraries missing (imports of them fail
#: as they would where they are not installed).
WITHOUT = """
import sys
for name in sys.argv[1].split(","):
    sys.modules[name] = None  # "import name" now raises ImportError
from jobfleet.cli.main import main
main(sys.argv[2:])
"""


@pytest.mark.parametrize(
    ("missing", "option", "package"),
    [("plotly,plotly.io", "--html", "plotly"), ("matplotlib", "--png", "matplotlib")],
)
def test_without_the_report_extra_the_error_says_how_to_install_it(
    jf_home: Path, tmp_path: Path, missing: str, option: str, package: str
) -> None:
    out = tmp_path / "r.out"
    # Said before any job is looked up: even of a job that does not exist.
    proc = subprocess.run(
        [PY, "-c", WITHOUT, missing, "report", "1", option, str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout == "" and "Traceback" not in proc.stderr
    (line,) = proc.stderr.splitlines()
    assert line.startswith(f"jobfleet: error: jobfleet report needs {package}, which is not")
    assert line.endswith(": pip install 'jobfleet[report]'")
    assert not out.exists()


def test_the_command_line_starts_without_the_plotting_libraries() -> None:
    code = (
        "import sys, json, jobfleet, jobfleet.cli.main, jobfleet.report;"
        "print(json.dumps(sorted(m for m in sys.modules"
        " if m.split('.')[0] in ('plotly', 'matplotlib', 'numpy', 'PIL'))))"
    )
    proc = subprocess.run([PY, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == []
