"""The report drawn: one self-contained HTML page (Plotly inlined, every figure, the
summary tables, names escaped) and a PNG of the expected size that is not blank.
The page in a real browser: test_browser.py."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from jobfleet.report import build_report, render_html, write_html, write_png
from jobfleet.report.html import FIGURE_IDS, MAX_TABLE_ROWS
from jobfleet.report.png import DPI, MAX_PNG_ROWS, WIDTH_IN, png_height_in
from jobfleet.states import ElementRecord, JobState
from support.pictures import colours, png_size, rgb
from support.records import AS_OF, every_state, job, times


def figure_data(page: str, div_id: str) -> list[dict[str, object]]:
    """The traces Plotly.newPlot is given for the figure ``div_id``."""
    start = page.index(f'"{div_id}",') + len(div_id) + 3
    data, _ = json.JSONDecoder().raw_decode(page[start:].lstrip())
    assert isinstance(data, list)
    return data


@pytest.fixture(scope="module")
def page() -> str:
    return render_html(build_report(every_state(), as_of=AS_OF))


def test_the_page_is_self_contained(page: str) -> None:
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    # Plotly's JavaScript is in the page, once; no script, style or font is fetched.
    assert page.count("Plotly.newPlot(") >= 3
    assert len(re.findall(r"<script[^>]*>", page)) == 1 + len(FIGURE_IDS)
    assert not re.search(r"<script[^>]*\bsrc=", page)
    assert not re.search(r"<link\b", page)
    # Outside Plotly's own code (which names its web site), no address at all.
    bundle_end = page.index("</script>")
    assert "plotly.js" in page[:bundle_end]
    assert "http" not in page[bundle_end:]


def test_the_timeline_has_one_bar_per_job_or_element_waiting_then_running(page: str) -> None:
    traces = figure_data(page, "jobfleet-timeline")
    drawn: dict[str, list[str]] = {}
    for trace in traces:
        assert trace["type"] == "bar" and trace["orientation"] == "h"
        kind = "running" if trace["opacity"] == 1.0 else "waiting"
        for label in trace["y"]:  # type: ignore[attr-defined]
            drawn.setdefault(label, []).append(f"{trace['name']} {kind}")
    assert drawn == {
        "1": ["completed waiting", "completed running"],
        "2": ["failed waiting", "failed running"],
        "3": ["cancelled waiting"],  # cancelled while pending: waiting only
        "4": ["cancelled waiting", "cancelled running"],
        "5": ["timeout waiting", "timeout running"],
        "6": ["out_of_memory waiting", "out_of_memory running"],
        "7": ["running waiting", "running running"],
        "8": ["pending waiting"],
        **{f"9[{i}]": ["completed waiting", "completed running"] for i in (0, 1, 3)},
        "9[2]": ["failed waiting", "failed running"],
    }
    completed = next(t for t in traces if t["name"] == "completed" and t["opacity"] == 1.0)
    # The durations label the bars: job 1 ran 185 - 5 s, element i 200 + 20i - (110 + 10i).
    assert completed["y"] == ["1", "9[0]", "9[1]", "9[3]"]
    assert completed["text"] == ["3m00s", "1m30s", "1m40s", "2m00s"]


def test_the_page_has_counts_durations_and_the_summary_tables(page: str) -> None:
    counts = figure_data(page, "jobfleet-counts")
    assert [t["name"] for t in counts] == ["running", "pending"]
    durations = figure_data(page, "jobfleet-durations")
    assert {t["name"] for t in durations} == {
        "completed",
        "failed",
        "cancelled",
        "timeout",
        "out_of_memory",
    }
    assert "<h2>Summary: 9 jobs, 12 jobs and elements</h2>" in page
    assert '<tr><td>completed</td><td class="n">4</td></tr>' in page
    assert '<tr><td>failed</td><td class="n">2</td></tr>' in page
    assert "<h2>Did not complete: 8</h2>" in page
    assert (
        '<tr><td>6</td><td>j</td><td>out_of_memory</td><td class="n">137</td>'
        "<td>memory limit exceeded (peak 2.1 GiB of 2 GiB)</td></tr>"
    ) in page
    assert '<tr><td>3</td><td>j</td><td>cancelled</td><td class="n">-</td>' in page


def test_names_and_reasons_cannot_break_out_of_the_page() -> None:
    evil = "</script><script>alert(1)</script>"
    report = build_report(
        [job("1", JobState.FAILED, times(0, 1, 2), name=evil, reason=f"<b>{evil}</b>")]
    )
    page = render_html(report)
    assert evil not in page
    assert "&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in page  # the table


def test_what_was_not_recorded_is_said_on_the_page() -> None:
    report = build_report([job("1", JobState.LOST), job("2", JobState.COMPLETED, times(0, 1, 2))])
    page = render_html(report)
    assert "<li>1 of 2 ended with no times recorded (nothing drawn)</li>" in page
    assert "<li>1 of 2 had no submit time recorded" in page


def test_many_bars_are_grouped_and_the_figure_says_so() -> None:
    elements = {
        i: ElementRecord(i, JobState.COMPLETED, 0, usage=times(0, i, i + 60)) for i in range(3000)
    }
    page = render_html(build_report([job("1", JobState.COMPLETED, elements=elements)]))
    traces = figure_data(page, "jobfleet-timeline")
    labels = [label for t in traces if t["opacity"] == 1.0 for label in t["y"]]  # type: ignore[attr-defined]
    assert len(labels) == 1500 and labels[0] == "1[0]..1[1] (2)"
    assert "3,000 bars are too many to draw one by one" in page
    assert "the peak in each" in page  # 12,000 events: counts are bucketed


def test_the_table_of_what_did_not_complete_is_bounded() -> None:
    failed = [
        job(str(i), JobState.FAILED, times(0, 1, 2), exit_code=1) for i in range(MAX_TABLE_ROWS + 5)
    ]
    page = render_html(build_report(failed))
    assert page.count('<td class="n">1</td>') == MAX_TABLE_ROWS
    assert "and 5 more (jobfleet status ID --detail)" in page


def test_write_html_writes_the_page(tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    write_html(build_report(every_state(), as_of=AS_OF), out)
    assert out.read_text(encoding="utf-8").count("Plotly.newPlot(") >= 3


def test_the_png_has_the_expected_size_and_is_not_blank(tmp_path: Path) -> None:
    out = tmp_path / "r.png"
    report = build_report(every_state(), as_of=AS_OF)
    write_png(report, out)
    assert png_size(out) == (int(WIDTH_IN * DPI), int(png_height_in(12) * DPI))
    seen = colours(out)
    assert len(seen) > 20
    # The states' colours are drawn (solid: the running spans).
    for colour in ("#2ca02c", "#d62728", "#ff7f0e", "#9467bd"):
        assert rgb(colour) in seen, colour


def test_a_png_of_many_bars_groups_them(tmp_path: Path) -> None:
    elements = {
        i: ElementRecord(i, JobState.COMPLETED, 0, usage=times(0, i, i + 60)) for i in range(1000)
    }
    out = tmp_path / "many.png"
    write_png(build_report([job("1", JobState.COMPLETED, elements=elements)]), out)
    assert png_size(out) == (int(WIDTH_IN * DPI), int(png_height_in(MAX_PNG_ROWS) * DPI))
    assert len(colours(out)) > 20
