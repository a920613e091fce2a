"""``jobfleet report``: a picture of every run (docs/report.md).

:func:`build_report` turns job records into a :class:`Report` (pure, no plotting);
:func:`write_html` draws it as one self-contained HTML page (Plotly) and
:func:`write_png` as a static picture (matplotlib). The plotting libraries are the
optional extra ``jobfleet[report]``, imported only when a picture is drawn.
"""

from __future__ import annotations

from jobfleet.report.extras import INSTALL, MissingExtraError, require
from jobfleet.report.html import render_html, write_html
from jobfleet.report.model import Bar, Counts, Histogram, Report, Summary, build_report
from jobfleet.report.png import write_png

__all__ = [
    "INSTALL",
    "Bar",
    "Counts",
    "Histogram",
    "MissingExtraError",
    "Report",
    "Summary",
    "build_report",
    "render_html",
    "require",
    "write_html",
    "write_png",
]
