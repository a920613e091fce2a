"""Pipes around the command: a reader that goes away (``jobfleet status | head``), and a
pipe given as the configuration file (a named pipe nobody writes to, ``<(...)``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

from support.cli import jf

PY = sys.executable


def test_a_reader_that_went_away_ends_the_command_quietly(jf_home: Path) -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)  # nobody will ever read: the first write fails with EPIPE
    try:
        proc = subprocess.run(
            [PY, "-m", "jobfleet", "config", "show", "--json"],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        os.close(write_end)
    assert proc.returncode == 1
    assert proc.stderr == ""  # no "Broken pipe" error, no traceback, no "Exception ignored"


def test_a_named_pipe_nobody_writes_to_is_an_error_not_a_hang(
    jf_home: Path, tmp_path: Path
) -> None:
    fifo = tmp_path / "config.fifo"
    os.mkfifo(fifo)
    # A writer that opens it and never writes: reading would wait for ever.
    writer = subprocess.Popen(
        [PY, "-c", f"import time; f = open({str(fifo)!r}, 'wb'); time.sleep(120)"]
    )
    try:
        proc = jf("config", "show", "--config", str(fifo), expect=2, timeout_s=60)
    finally:
        writer.kill()
        writer.wait()
    (line,) = proc.stderr.splitlines()
    assert "--config" in line and "nothing more came from this pipe within 10s" in line


def test_a_pipe_that_ends_is_read_as_a_configuration(jf_home: Path, tmp_path: Path) -> None:
    fifo = tmp_path / "config.fifo"
    os.mkfifo(fifo)

    def write() -> None:
        with open(fifo, "w") as f:
            f.write("backend: slurm\n")

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    proc = jf("config", "show", "--config", str(fifo), "--json", timeout_s=60)
    writer.join(timeout=10)
    shown = json.loads(proc.stdout)
    assert (shown["file"], shown["values"]["backend"]) == (str(fifo), "slurm")
