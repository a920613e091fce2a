"""Scheduler backends: one module per scheduler, each building argv and parsing output."""

from __future__ import annotations

#: Backend names a configuration may name. Later issues add slurm, sge, ...
KNOWN_BACKENDS: tuple[str, ...] = ("local", "slurm", "sge")

__all__ = ["KNOWN_BACKENDS"]
