"""Shared fixtures. Every test gets its own JOBFLEET_HOME so no state leaks."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture
def jf_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh JOBFLEET_HOME, also exported to child processes."""
    home = tmp_path / "jfhome"
    monkeypatch.setenv("JOBFLEET_HOME", str(home))
    monkeypatch.delenv("JOBFLEET_CONFIG", raising=False)
    yield home
