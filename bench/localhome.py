"""A throw-away home with a local agent already started: what the local benchmarks time
against (the agent's start-up is not part of any timing)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path

from jobfleet.config import load_config
from jobfleet.engine.fleet import Fleet

CONFIG = """\
backend: local
local:
  cores: {cores}
  idle_exit: 5s
wait:
  poll_interval: 0.05s
"""


@contextlib.contextmanager
def local_fleet(cores: int) -> Iterator[Fleet]:
    """A fleet on a fresh home whose local agent runs ``cores`` jobs at once; the agent
    is stopped and the home removed afterwards."""
    root = Path(tempfile.mkdtemp(prefix="jf-bench-"))
    try:
        config_file = root / "jobfleet.yaml"
        config_file.write_text(CONFIG.format(cores=cores))
        with Fleet(load_config(config_file), home=root / "home") as fleet:
            fleet.backend().ensure_agent()  # type: ignore[attr-defined]
            yield fleet
    finally:
        for lock in (root / "home").glob("local/*/agent.lock"):
            with contextlib.suppress(OSError, ValueError):
                os.kill(int(lock.read_text()), signal.SIGTERM)
        shutil.rmtree(root, ignore_errors=True)
