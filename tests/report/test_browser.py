"""The HTML report in a real browser: Debian's chromium, headless, driven by its command
line (tests/cluster/chromium-up.sh installs it; without it these tests skip, saying so).

Every run has no network (every host name resolves to nothing): the page must draw
from itself alone. What is checked: the rendered DOM has Plotly's SVG bars, with
width, in the timeline; the console printed nothing (chromium logs every console
message and uncaught error to stderr as a ``CONSOLE`` line, and the page prints none
when all is well); a screenshot shows the states' colours.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from jobfleet.report import build_report, write_html
from jobfleet.report.rows import STATE_COLOURS
from jobfleet.states import ElementRecord, JobState
from support.pictures import colours, png_size, rgb
from support.records import AS_OF, every_state, job, times

CHROMIUM = shutil.which("chromium")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="no chromium on PATH (tests/cluster/chromium-up.sh installs Debian's, as root)",
)
#: The longest any one browser run may take (they take 1-5 s).
BROWSER_TIMEOUT_S = 60
#: Plotly draws a bar as ``M x0,y0 V y1 H x1 V y0 Z``.
BAR_PATH = re.compile(r'<g class="point"><path d="M([\d.]+),[\d.]+V[\d.]+H([\d.]+)V')


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run headless chromium with no network, a profile of its own, and its console on stderr."""
    assert CHROMIUM is not None
    argv = [
        CHROMIUM,
        "--headless",
        "--disable-gpu",
        "--no-sandbox",  # as root, chromium will not start otherwise
        "--no-first-run",
        "--disable-extensions",
        "--disable-dev-shm-usage",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
        "--host-resolver-rules=MAP * ~NOTFOUND",  # no network
        "--enable-logging=stderr",
        "--v=0",
        "--virtual-time-budget=5000",  # let the page's scripts finish
        *args,
    ]
    return subprocess.run(
        argv, capture_output=True, text=True, timeout=BROWSER_TIMEOUT_S, stdin=subprocess.DEVNULL
    )


def console_lines(stderr: str) -> list[str]:
    """What the page printed on its console, and its uncaught errors."""
    return [line for line in stderr.splitlines() if ":CONSOLE" in line or "Uncaught" in line]


def timeline_bars(dom: str) -> list[float]:
    """The widths (pixels) of the bars Plotly drew in the timeline."""
    start = dom.index('id="jobfleet-timeline"')
    end = dom.index('id="jobfleet-counts"')
    return [float(x1) - float(x0) for x0, x1 in BAR_PATH.findall(dom[start:end])]


def test_the_console_check_catches_an_error(tmp_path: Path) -> None:
    page = tmp_path / "broken.html"
    page.write_text("<html><body><script>undefinedFunction();</script></body></html>")
    proc = chromium(tmp_path, "--dump-dom", page.as_uri())
    assert proc.returncode == 0, proc.stderr
    (line,) = console_lines(proc.stderr)
    assert "Uncaught ReferenceError: undefinedFunction is not defined" in line


@pytest.fixture
def page(tmp_path: Path) -> Path:
    out = tmp_path / "report.html"
    write_html(build_report(every_state(), as_of=AS_OF), out)
    return out


def test_the_report_renders_its_bars_with_no_console_error(tmp_path: Path, page: Path) -> None:
    proc = chromium(tmp_path, "--dump-dom", page.as_uri())
    assert proc.returncode == 0, proc.stderr
    assert console_lines(proc.stderr) == []
    dom = proc.stdout
    # Plotly drew SVG: every figure, and in the timeline a bar per span (12 bars; 10 of
    # them ran), each wider than nothing.
    assert dom.count('class="main-svg"') >= 6
    widths = timeline_bars(dom)
    assert len(widths) == 12 + 10
    assert all(w > 0 for w in widths), widths
    # The durations label the bars; the summary tables are there.
    assert ">3m00s</text>" in dom and ">running 6m40s</text>" in dom
    assert "<td>walltime limit exceeded (00:05:00)</td>" in dom


def test_a_screenshot_of_the_report_shows_the_states_colours(tmp_path: Path, page: Path) -> None:
    shot = tmp_path / "shot.png"
    proc = chromium(
        tmp_path,
        "--hide-scrollbars",
        "--window-size=1200,900",
        f"--screenshot={shot}",
        page.as_uri(),
    )
    assert proc.returncode == 0, proc.stderr
    assert console_lines(proc.stderr) == []
    assert png_size(shot) == (1200, 900)
    seen = colours(shot)
    assert len(seen) > 50  # text, axes, bars: not a blank page
    for state in (JobState.COMPLETED, JobState.FAILED, JobState.TIMEOUT, JobState.RUNNING):
        assert rgb(STATE_COLOURS[state]) in seen, state


@pytest.mark.slow
def test_a_grouped_report_of_many_elements_renders_too(tmp_path: Path) -> None:
    elements = {
        i: ElementRecord(
            i,
            JobState.FAILED if i % 7 == 0 else JobState.COMPLETED,
            1 if i % 7 == 0 else 0,
            usage=times(0, i / 10, i / 10 + 30),
        )
        for i in range(5000)
    }
    out = tmp_path / "many.html"
    write_html(build_report([job("1", JobState.FAILED, elements=elements)]), out)
    proc = chromium(tmp_path, "--dump-dom", out.as_uri())
    assert proc.returncode == 0, proc.stderr
    assert console_lines(proc.stderr) == []
    widths = timeline_bars(proc.stdout)
    # Rows of 3 of one state: 1,429 completed and 239 failed, each waiting and running.
    assert len(widths) == 2 * (1429 + 239)
    assert "5,000 bars are too many to draw one by one" in proc.stdout
