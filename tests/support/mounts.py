"""File systems a test can fill up or make read-only: a tmpfs of a few hundred
KiB, or a read-only bind mount of a directory. Both need ``mount`` (root, or a
user namespace); a test that cannot mount is skipped, saying so."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


def _mount(*argv: str) -> None:
    if shutil.which("mount") is None:
        pytest.skip("no mount program here: cannot make a full or read-only file system")
    proc = subprocess.run(["mount", *argv], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        pytest.skip(f"mount is not permitted here ({proc.stderr.strip() or proc.returncode})")


def _umount(path: Path) -> None:
    subprocess.run(["umount", "-l", str(path)], capture_output=True, check=False)


@contextlib.contextmanager
def tmpfs(path: Path, size_kib: int) -> Iterator[Path]:
    """A tmpfs of ``size_kib`` KiB mounted on ``path`` (made if missing)."""
    path.mkdir(parents=True, exist_ok=True)
    _mount("-t", "tmpfs", "-o", f"size={size_kib}k", "tmpfs", str(path))
    try:
        yield path
    finally:
        _umount(path)


@contextlib.contextmanager
def read_only(path: Path) -> Iterator[Path]:
    """``path`` (a directory) bind-mounted read-only over itself: even root cannot
    write there (EROFS), while the files stay as they were."""
    _mount("--bind", str(path), str(path))
    try:
        proc = subprocess.run(
            ["mount", "-o", "remount,ro,bind", str(path)], capture_output=True, text=True
        )
        if proc.returncode != 0:
            pytest.skip(f"cannot remount read-only here ({proc.stderr.strip()})")
        yield path
    finally:
        _umount(path)


def fill(directory: Path, leave_kib: int = 0) -> Path:
    """Fill the file system of ``directory`` until ``leave_kib`` KiB are left; the filler."""
    filler = directory / "filler"
    free = shutil.disk_usage(directory).free // 1024
    # Unbuffered: a short write, or ENOSPC, and no flush to fail at close.
    with filler.open("wb", buffering=0) as out, contextlib.suppress(OSError):
        out.write(b"\0" * max(0, free - leave_kib) * 1024)
    return filler
