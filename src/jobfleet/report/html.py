"""The report as ONE self-contained HTML file: Plotly's JavaScript inlined once, no
network. A timeline in the spirit of Nextflow's (one bar per job or element, waiting
then running, coloured by final state, labelled with its duration), running and
pending counts over time, a histogram of run durations, and the summary table.

Figures are written as plain dicts (``validate=False``): Plotly's figure classes check
every value and are slow on large arrays, and the rows are few anyway
(:mod:`jobfleet.report.rows` groups bars above :data:`~jobfleet.report.rows.MAX_ROWS`).
"""

from __future__ import annotations

import datetime as dt
import html
import os
from typing import Any

from jobfleet.report.extras import require
from jobfleet.report.model import Report, duration_label
from jobfleet.report.rows import (
    MAX_ROWS,
    STATE_COLOURS,
    WAITING_OPACITY,
    Timeline,
    time_unit,
    timeline,
)
from jobfleet.states import JobState

__all__ = ["FIGURE_IDS", "MAX_TABLE_ROWS", "render_html", "write_html"]

#: The ids of the figures' elements, in page order (the durations only when some ran).
FIGURE_IDS = ("jobfleet-timeline", "jobfleet-counts", "jobfleet-durations")

#: The most rows of the "did not complete" table; the rest are counted.
MAX_TABLE_ROWS = 1000
_CONFIG = {"displaylogo": False, "responsive": True}
_STYLE = """
body { font-family: sans-serif; margin: 1.5em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #ccc; padding: 2px 8px; text-align: left; }
td.n { text-align: right; }
.note { color: #555; }
"""


def _when(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _timeline_figure(report: Report, tl: Timeline, template: Any) -> dict[str, Any]:
    ends = [s[1] for r in tl.rows for s in (r.waiting, r.running) if s is not None]
    unit, size = time_unit(max(ends, default=0.0))
    data: list[dict[str, Any]] = []
    for state, colour in STATE_COLOURS.items():
        rows = [r for r in tl.rows if r.state is state]
        if not rows:
            continue
        for kind in ("waiting", "running"):
            drawn = [(r, s) for r in rows if (s := getattr(r, kind)) is not None]
            if not drawn:
                continue
            # The label goes at the end of each row's last span.
            last = [kind == "running" or r.running is None for r, _ in drawn]
            data.append(
                {
                    "type": "bar",
                    "orientation": "h",
                    "name": state.value,
                    "legendgroup": state.value,
                    "showlegend": kind == "running" or all(r.running is None for r in rows),
                    "y": [r.label for r, _ in drawn],
                    "base": [s[0] / size for _, s in drawn],
                    "x": [(s[1] - s[0]) / size for _, s in drawn],
                    "marker": {"color": colour},
                    "opacity": 1.0 if kind == "running" else WAITING_OPACITY,
                    "text": [r.text if ok else "" for (r, _), ok in zip(drawn, last, strict=True)],
                    "textposition": "outside",
                    "textfont": {"size": 9},
                    "cliponaxis": False,
                    "hovertext": [f"{r.hover}<br>({kind})" for r, _ in drawn],
                    "hoverinfo": "text",
                }
            )
    title = f"Timeline: {len(report.bars):,} jobs and elements, from {_when(report.t0)}"
    if tl.note:
        title += f"<br><sup>{html.escape(tl.note, quote=False)}</sup>"
    layout = {
        "title": {"text": title},
        "barmode": "overlay",
        "height": max(320, 140 + 14 * len(tl.rows)),
        "xaxis": {"title": {"text": f"{unit} since the first submission"}, "side": "top"},
        "yaxis": {
            "type": "category",
            "categoryorder": "array",
            "categoryarray": [r.label for r in tl.rows],
            "autorange": "reversed",
            "automargin": True,
        },
        "legend": {"title": {"text": "final state (pale: waiting)"}},
        "template": template,
    }
    return {"data": data, "layout": layout}


def _counts_figure(report: Report, template: Any) -> dict[str, Any]:
    c = report.counts
    unit, size = time_unit(max(c.times, default=0.0))
    times = [t / size for t in c.times]
    data = [
        {
            "type": "scatter",
            "mode": "lines",
            "line": {"shape": "hv", "color": STATE_COLOURS[state]},
            "name": name,
            "x": times,
            "y": values,
        }
        for name, state, values in (
            ("running", JobState.RUNNING, c.running),
            ("pending", JobState.PENDING, c.pending),
        )
    ]
    title = "Running and pending over time"
    if c.bucket_s is not None:
        title += f"<br><sup>the peak in each {duration_label(c.bucket_s)} bucket</sup>"
    layout = {
        "title": {"text": title},
        "height": 360,
        "xaxis": {"title": {"text": f"{unit} since the first submission"}},
        "yaxis": {"title": {"text": "jobs and elements"}, "rangemode": "tozero"},
        "template": template,
    }
    return {"data": data, "layout": layout}


def _histogram_figure(report: Report, template: Any) -> dict[str, Any]:
    h = report.histogram
    unit, size = time_unit(h.edges[-1] if h.edges else 0.0)
    width = (h.edges[1] - h.edges[0]) / size if len(h.edges) > 1 else 1.0
    centres = [(a + b) / 2 / size for a, b in zip(h.edges, h.edges[1:], strict=False)]
    data = [
        {
            "type": "bar",
            "name": state.value,
            "x": centres,
            "y": h.counts[state],
            "width": width,
            "marker": {"color": colour},
        }
        for state, colour in STATE_COLOURS.items()
        if state in h.counts
    ]
    title = f"Run durations ({h.total:,} with a recorded start and end)"
    layout = {
        "title": {"text": title},
        "barmode": "stack",
        "height": 360,
        "xaxis": {"title": {"text": f"run time ({unit})"}},
        "yaxis": {"title": {"text": "jobs and elements"}},
        "template": template,
    }
    return {"data": data, "layout": layout}


def _tables(report: Report) -> str:
    e = html.escape
    s = report.summary
    counts = "".join(
        f'<tr><td>{e(state.value)}</td><td class="n">{n:,}</td></tr>'
        for state, n in s.per_state.items()
    )
    out = [
        f"<h2>Summary: {s.jobs:,} job{'' if s.jobs == 1 else 's'}, "
        f"{len(report.bars):,} jobs and elements</h2>",
        f"<table><tr><th>state</th><th>count</th></tr>{counts}</table>",
        f"<h2>Did not complete: {len(s.not_completed):,}</h2>",
    ]
    if s.not_completed:
        rows = "".join(
            f"<tr><td>{e(b.label)}</td><td>{e(b.name)}</td><td>{e(b.state.value)}</td>"
            f'<td class="n">{"-" if b.exit_code is None else b.exit_code}</td>'
            f"<td>{e(b.reason or '')}</td></tr>"
            for b in s.not_completed[:MAX_TABLE_ROWS]
        )
        out.append(
            "<table><tr><th>job</th><th>name</th><th>state</th><th>exit code</th>"
            f"<th>reason</th></tr>{rows}</table>"
        )
        more = len(s.not_completed) - MAX_TABLE_ROWS
        if more > 0:
            out.append(f'<p class="note">and {more:,} more (jobfleet status ID --detail)</p>')
    return "\n".join(out)


def render_html(report: Report, *, max_rows: int = MAX_ROWS) -> str:
    """The whole page, Plotly's JavaScript included."""
    pio = require("plotly.io")
    offline = require("plotly.offline")
    tl = timeline(report, max_rows)
    # A template by name needs validation; its dict does not.
    template = pio.templates["plotly_white"].to_plotly_json()
    figures = {
        "timeline": _timeline_figure(report, tl, template),
        "counts": _counts_figure(report, template),
    }
    if report.histogram.edges:
        figures["durations"] = _histogram_figure(report, template)
    divs = [
        pio.to_html(
            fig,
            include_plotlyjs=False,
            full_html=False,
            validate=False,
            config=_CONFIG,
            div_id=f"jobfleet-{name}",
        )
        for name, fig in figures.items()
    ]
    notes = [*([tl.note] if tl.note else []), *report.notes]
    noted = "".join(f"<li>{html.escape(n)}</li>" for n in notes)
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            "<title>jobfleet report</title>",
            f"<style>{_STYLE}</style>",
            f'<script type="text/javascript">{offline.get_plotlyjs()}</script>',
            "</head><body>",
            f"<h1>jobfleet report, {_when(report.as_of)}</h1>",
            f'<ul class="note">{noted}</ul>' if noted else "",
            *divs,
            _tables(report),
            "</body></html>",
        ]
    )


def write_html(report: Report, path: str | os.PathLike[str], *, max_rows: int = MAX_ROWS) -> None:
    """Write :func:`render_html` to ``path`` (nothing is written if drawing fails)."""
    page = render_html(report, max_rows=max_rows)
    with open(path, "w", encoding="utf-8") as f:
        f.write(page)
