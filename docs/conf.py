"""Sphinx configuration of jobfleet's documentation site.

Sphinx with MyST-Parser reads the Markdown pages of docs/ as they are (CommonMark, as
GitHub shows them) and the docstrings (Google style, through napoleon); why Sphinx is in
docs/dependencies.md. Build it with ``bash scripts/docs.sh`` (into ./site), which runs

    python -m sphinx -W --keep-going -n -E -b html docs site

``-W``: a warning (a broken link, a reference to a name that no longer exists) fails the
build, as in the tests (tests/docs/test_site.py).
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
# This checkout's jobfleet, and the build's own extension (docs/_ext).
sys.path[:0] = [str(HERE.parent / "src"), str(HERE / "_ext")]

import jobfleet  # noqa: E402

project = "jobfleet"
author = "the jobfleet authors"
copyright = "the jobfleet authors, MIT licence"
release = version = jobfleet.__version__

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "jobfleet_site",
]
source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_ext", "_static", "_build"]

# Headings down to ### get GitHub's anchors (page.md#some-heading links work on both).
myst_heading_anchors = 3
# A fenced block without a language is plain text; never guessed.
highlight_language = "text"

# Every reference to a Python name must resolve (-n). A name of jobfleet that the API
# reference does not document is shown as text if it exists in the code, and fails the
# build if it does not (a docstring naming a function since renamed): jobfleet_site.py.
# Names outside jobfleet (the standard library, click) are not documented here: text.
nitpicky = True
nitpick_ignore_regex = [(r"py:.*", r"(?!jobfleet\b).*")]

autodoc_default_options = {"members": True, "show-inheritance": True}
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
# Google-style docstrings: napoleon's reader, run by jobfleet_site.py (which leaves
# attribute docstrings as prose); napoleon's own pass is off.
napoleon_google_docstring = False
napoleon_numpy_docstring = False
# "Attributes:" as a field list: the fields of a named tuple or a dataclass are then
# not described twice (by napoleon and by autodoc).
napoleon_use_ivar = True

html_theme = "furo"
html_title = f"jobfleet {release}"
html_show_sourcelink = False
html_copy_source = False
html_static_path = ["_static"]
html_css_files = ["jobfleet.css"]
# "--name" stays two hyphens (docutils would make it an en dash), quotes stay straight.
smartquotes = False
