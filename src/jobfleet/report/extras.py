"""The report's plotting libraries are an optional extra (``jobfleet[report]``): heavy
(docs/dependencies.md), and only ``jobfleet report`` needs them. They are imported
here, when a picture is drawn, never when jobfleet or its command line starts."""

from __future__ import annotations

import importlib
from types import ModuleType

from jobfleet.errors import JobfleetError

__all__ = ["INSTALL", "MissingExtraError", "require"]

#: How to get them.
INSTALL = "pip install 'jobfleet[report]'"


class MissingExtraError(JobfleetError):
    """A library of the ``report`` extra is not installed."""


def require(module: str) -> ModuleType:
    """Import ``module`` (e.g. ``plotly.graph_objects``) or say how to install it.

    Raises:
        MissingExtraError: it cannot be imported.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        package = module.split(".")[0]
        raise MissingExtraError(
            f"jobfleet report needs {package}, which is not installed ({exc}): {INSTALL}"
        ) from exc
