"""Deprecated alias of :mod:`jobfleet.engine.fleet` (jobfleet 0.1's module path).

Import ``Fleet`` from ``jobfleet`` instead; this alias goes in a later release.
"""

from __future__ import annotations

import warnings

from jobfleet.engine.fleet import DryRun, Fleet, QueueRow

__all__ = ["DryRun", "Fleet", "QueueRow"]

warnings.warn(
    "jobfleet.fleet moved to jobfleet.engine.fleet; import Fleet from jobfleet",
    DeprecationWarning,
    stacklevel=2,
)
