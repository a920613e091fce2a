"""The site build's own steps (a Sphinx extension, loaded by docs/conf.py).

- Puts the pages made from the code (:mod:`docgen`) where a page says
  ``<!-- generated: NAME [ARG] -->``, and the fresh table between docs/options.md's
  markers, as each page is read; those pages are read again at every build, so a
  generated part is never stale, and nothing generated is written into docs/.
- Adds the navigation (:data:`NAV`) to the home page as hidden tables of contents, so
  that docs/index.md stays a plain page on GitHub.
- Warns (an error with ``-W``) of raw HTML in a page: MyST passes ``<job dir>`` written
  outside backticks to the browser, which hides it.
"""

from __future__ import annotations

import importlib
import re
import sys
from collections.abc import Callable
from typing import Any

import docgen
from docutils import nodes
from sphinx.application import Sphinx
from sphinx.ext.napoleon.docstring import GoogleDocstring
from sphinx.util import logging

logger = logging.getLogger(__name__)

#: The site's navigation: each section's caption and its pages, in order.
NAV: list[tuple[str, list[str]]] = [
    ("Getting started", ["getting-started", "getting-started-cluster"]),
    ("Concepts", ["job-model", "states", "registry", "monitor", "environment", "usage"]),
    (
        "Schedulers",
        [
            "options",
            "local-backend",
            "slurm",
            "slurm-notes",
            "sge",
            "sge-notes",
            "pbs",
            "pbs-notes",
            "torque",
            "torque-notes",
            "lsf",
            "lsf-notes",
            "htcondor",
            "htcondor-notes",
        ],
    ),
    ("Running work", ["futures", "studies", "pipe", "report", "snakemake", "other-tools"]),
    ("Reference", ["configuration", "cli", "api"]),
    ("About", ["benchmarks", "compare", "architecture", "backends", "dependencies"]),
]

#: What each marker is replaced by: its name -> a function of its argument (or None).
GENERATORS: dict[str, Callable[[str | None], str]] = {
    "config-reference": lambda _: docgen.config_reference(),
    "cli-reference": lambda _: docgen.cli_reference(),
    "python-api": lambda _: docgen.api_reference(),
    "options-table": docgen.options_table,
    "settings": docgen.config_reference,
}

MARKER = re.compile(r"^<!-- generated: (?P<name>[a-z-]+)(?: (?P<arg>[a-z]+))? -->$", re.M)
#: docs/options.md keeps the table committed (for GitHub; tests/engine/test_options.py
#: holds it to the code); the site puts the fresh one in its place.
REGION = re.compile(
    r"(?<=^<!-- options table: generated -->\n).*?(?=^<!-- end of the generated table -->$)",
    re.M | re.S,
)


def expand(text: str) -> str:
    """``text`` with every marker replaced by what its generator makes."""

    def generated(match: re.Match[str]) -> str:
        name, arg = match["name"], match["arg"]
        if name not in GENERATORS:
            raise ValueError(f"no generator {name!r}; there are {', '.join(GENERATORS)}")
        return GENERATORS[name](arg).rstrip("\n") + "\n"

    text = MARKER.sub(generated, text)
    return REGION.sub(lambda _: docgen.options_table(), text)


def navigation() -> str:
    """The hidden tables of contents that make the site's sidebar."""
    out = []
    for caption, pages in NAV:
        out += ["", "```{toctree}", ":hidden:", f":caption: {caption}", "", *pages, "```"]
    return "\n".join(out) + "\n"


def generates(text: str) -> bool:
    return bool(MARKER.search(text) or REGION.search(text))


def _source_read(app: Sphinx, docname: str, source: list[str]) -> None:
    if generates(source[0]):
        source[0] = expand(source[0])
    if docname == app.config.root_doc:
        source[0] += navigation()


def _outdated(app: Sphinx, env: Any, added: set[str], changed: set[str], removed: set[str]):
    """Pages with generated parts are read again at every build: the code they are made
    from may have changed while the page did not."""
    again = []
    for docname in env.found_docs - added - changed:
        path = env.doc2path(docname)
        if generates(path.read_text(encoding="utf-8")):
            again.append(docname)
    return again


#: Inline code that names a module or attribute of jobfleet (``jobfleet.studies.product``),
#: not a file (``jobfleet.yaml``).
DOTTED = re.compile(r"jobfleet(\.[A-Za-z_]\w*)+")
FILES = (".yaml", ".yml", ".db", ".py", ".log", ".out", ".json", ".sh", ".toml")


def _doctree_read(app: Sphinx, doctree: nodes.document) -> None:
    for node in doctree.findall(nodes.raw):
        text = node.astext().strip()
        if "html" in node.get("format", "") and not text.startswith("<!--"):
            logger.warning(
                "raw HTML %r: a browser hides it; write it in backticks", text, location=node
            )
    for node in doctree.findall(nodes.literal):
        text = node.astext().removesuffix("()")
        if DOTTED.fullmatch(text) and not text.endswith(FILES) and not resolves(text):
            logger.warning(
                "`%s`: no such name in jobfleet (renamed or removed?)", text, location=node
            )


def resolves(dotted: str) -> bool:
    """Whether ``dotted`` names a module, or an attribute of one (a class's field too)."""
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for name in parts[i:]:
            fields = getattr(obj, "__dataclass_fields__", {})
            hints = {
                k for c in getattr(obj, "__mro__", ()) for k in vars(c).get("__annotations__", {})
            }
            if hasattr(obj, name):
                obj = getattr(obj, name)
            elif name in fields or name in hints:
                obj = None
            else:
                return False
        return True
    return False


def _candidates(node: Any) -> list[str]:
    """Where a reference may point: as written, then relative to the module (and the
    class) it was written in, then to each package above."""
    target = node["reftarget"]
    module, cls = node.get("py:module") or "", node.get("py:class") or ""
    out = [target]
    parts = module.split(".") if module else []
    for i in range(len(parts), 0, -1):
        prefix = ".".join(parts[:i])
        if cls and i == len(parts):
            out.append(f"{prefix}.{cls}.{target}")
        out.append(f"{prefix}.{target}")
    return out


#: Roles that only a docstring writes (an annotation makes class and obj references).
_WRITTEN = {"func", "meth", "attr", "data", "exc", "mod"}


def _missing_reference(app: Sphinx, env: Any, node: Any, contnode: Any) -> Any:
    """A Python reference the API reference does not document: shown as text when it
    names something of jobfleet, a warning (so an error) when it names nothing."""
    if node.get("refdomain") != "py":
        return None
    target = node["reftarget"]
    if any(c.startswith("jobfleet") and resolves(c) for c in _candidates(node)):
        return contnode
    if not target.startswith("jobfleet"):
        # Written relative to the module that defines it, not to where it is shown.
        loaded = [m for m in sys.modules if m.startswith("jobfleet")]
        if any(resolves(f"{m}.{target}") for m in loaded) or resolves(f"builtins.{target}"):
            return contnode
        if node.get("reftype") not in _WRITTEN:
            return None  # an annotation's name imported for type checking only
    logger.warning("%s: no such name in jobfleet (renamed or removed?)", target, location=node)
    return contnode


def _google(app: Sphinx, what: str, name: str, obj: Any, options: Any, lines: list[str]) -> None:
    """napoleon's Google style, except for attributes, properties and data: their
    docstrings are prose, which napoleon would read as "type: description" (the words
    before the first colon shown as a type)."""
    if what not in ("attribute", "data", "property"):
        lines[:] = GoogleDocstring(lines, app.config, app, what, name, obj, options).lines()


def setup(app: Sphinx) -> dict[str, Any]:
    app.connect("missing-reference", _missing_reference)
    app.connect("autodoc-process-docstring", _google)
    app.connect("source-read", _source_read)
    app.connect("env-get-outdated", _outdated)
    app.connect("doctree-read", _doctree_read)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
