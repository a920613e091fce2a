"""Deprecated alias of :mod:`jobfleet.engine.monitor` (jobfleet 0.1's module path).

Import ``Monitor`` from ``jobfleet`` instead; this alias goes in a later release.
"""

from __future__ import annotations

import warnings

from jobfleet.engine.monitor import Monitor, wait_all

__all__ = ["Monitor", "wait_all"]

warnings.warn(
    "jobfleet.monitor moved to jobfleet.engine.monitor; import Monitor from jobfleet",
    DeprecationWarning,
    stacklevel=2,
)
