"""Running the ``jobfleet`` command as a user would: a child process, never a traceback."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

PY = sys.executable


def jf(
    *args: str,
    expect: int | None = 0,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    timeout_s: float = 120,
) -> subprocess.CompletedProcess[str]:
    """Run ``jobfleet ARGS`` as a child process; check its exit status unless ``expect`` is None.

    No output of the command may ever contain a traceback.
    """
    if cwd is None and "JOBFLEET_HOME" in os.environ:
        cwd = Path(os.environ["JOBFLEET_HOME"]).parent  # jobs run where they were submitted
    proc = subprocess.run(
        [PY, "-m", "jobfleet", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        cwd=cwd,
        timeout=timeout_s,
    )
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stdout + proc.stderr
    if expect is not None:
        assert proc.returncode == expect, (
            f"jobfleet {shlex.join(args)}: exit {proc.returncode}, expected {expect}\n"
            f"stdout: {proc.stdout}\nstderr: {proc.stderr}"
        )
    return proc
