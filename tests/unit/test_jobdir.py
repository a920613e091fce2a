"""The job directory's files (jobfleet.jobdir)."""

from __future__ import annotations

import doctest
import stat
from pathlib import Path

import jobfleet.jobdir
from jobfleet.jobdir import (
    exit_code_path,
    never_met_path,
    read_env,
    read_exit_code,
    read_never_met,
    write_env,
)


def test_doctests() -> None:
    result = doctest.testmod(jobfleet.jobdir)
    assert result.failed == 0 and result.attempted > 0


def test_exit_code_read_only_when_completely_written(tmp_path: Path) -> None:
    path = exit_code_path(str(tmp_path), 4)
    assert read_exit_code(path) is None
    Path(path).write_text("13")  # no newline yet: the write is not finished
    assert read_exit_code(path) is None
    Path(path).write_text("13\n")
    assert read_exit_code(path) == 13
    Path(path).write_text("x\n")
    assert read_exit_code(path) is None


def test_never_met_reason(tmp_path: Path) -> None:
    assert read_never_met(str(tmp_path), None) is None
    Path(never_met_path(str(tmp_path), None)).write_text("after_ok dependency on job 3\n")
    assert read_never_met(str(tmp_path), None) == "after_ok dependency on job 3"


def test_env_file_is_private_and_round_trips(tmp_path: Path) -> None:
    env = {"PATH": "/bin", "ODD": "caf\udce9"}  # a byte that is not UTF-8, as fsdecode gives it
    write_env(str(tmp_path), env)
    mode = (tmp_path / jobfleet.jobdir.ENV_FILE).stat().st_mode
    assert stat.S_IMODE(mode) == 0o600
    assert read_env(str(tmp_path)) == env
    (tmp_path / jobfleet.jobdir.ENV_FILE).write_text("[1, 2]")
    assert read_env(str(tmp_path)) is None
    assert read_env(str(tmp_path / "missing")) is None


def test_a_never_met_reason_that_is_not_utf8_is_still_read(tmp_path: Path) -> None:
    Path(never_met_path(str(tmp_path), 2)).write_bytes(b"after_ok on job caf\xe9\n")
    assert read_never_met(str(tmp_path), 2) == "after_ok on job caf\ufffd"
