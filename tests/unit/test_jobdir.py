"""The job directory's files (jobfleet.jobdir)."""

from __future__ import annotations

import doctest
import stat
from pathlib import Path

import jobfleet.jobdir
from jobfleet.jobdir import (
    Guard,
    element_dir,
    exit_code_path,
    legacy_path,
    located,
    make_element_dirs,
    never_met_path,
    output_path,
    read_env,
    read_exit_code,
    read_guard,
    read_never_met,
    write_env,
)


def test_doctests() -> None:
    result = doctest.testmod(jobfleet.jobdir)
    assert result.failed == 0 and result.attempted > 0


def test_exit_code_read_only_when_completely_written(tmp_path: Path) -> None:
    path = exit_code_path(str(tmp_path), 4)
    assert read_exit_code(path) is None
    make_element_dirs(str(tmp_path), [4])
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
    make_element_dirs(str(tmp_path), [2])
    Path(never_met_path(str(tmp_path), 2)).write_bytes(b"after_ok on job caf\xe9\n")
    assert read_never_met(str(tmp_path), 2) == "after_ok on job caf\ufffd"


# --- sharded element files (issue 16) -------------------------------------------


def test_element_files_are_sharded_by_thousands(tmp_path: Path) -> None:
    job = str(tmp_path)
    assert element_dir(job, None) == job
    assert [element_dir(job, i) for i in (0, 999, 1000, 123456)] == [
        f"{job}/0", f"{job}/0", f"{job}/1", f"{job}/123"
    ]  # fmt: skip
    assert exit_code_path(job, 1000) == f"{job}/1/exit_code.1000"
    make_element_dirs(job, range(0, 2500, 7))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["0", "1", "2"]
    assert {p.stat().st_mode & 0o777 for p in tmp_path.iterdir()} == {0o700}


def test_legacy_path_only_for_an_elements_file_in_its_shard() -> None:
    assert legacy_path("/j/1/exit_code.1000") == "/j/exit_code.1000"
    assert legacy_path("/j/2/exit_code.1000") is None  # not that index's shard
    assert legacy_path("/j/exit_code") is None
    assert legacy_path("/j/1/exit_code") is None


def test_files_of_a_job_written_before_sharding_are_still_read(tmp_path: Path) -> None:
    # The flat layout of earlier versions: <job_dir>/exit_code.<i> and friends.
    job = str(tmp_path)
    (tmp_path / "exit_code.1500").write_text("3\n")
    (tmp_path / "never.1500").write_text("after_ok on job 2\n")
    (tmp_path / "stdout.1500").write_text("out\n")
    assert read_exit_code(exit_code_path(job, 1500)) == 3
    assert read_never_met(job, 1500) == "after_ok on job 2"
    assert located(output_path(job, "stdout", 1500)) == f"{job}/stdout.1500"
    # Once the shard exists (a job of this version), its files are the ones read.
    make_element_dirs(job, [1500])
    assert located(output_path(job, "stdout", 1500)) == f"{job}/1/stdout.1500"
    Path(exit_code_path(job, 1500)).write_text("0\n")
    assert read_exit_code(exit_code_path(job, 1500)) == 0


def test_the_local_once_guard_is_the_exit_code_file(tmp_path: Path) -> None:
    job = str(tmp_path)
    make_element_dirs(job, [7])
    assert read_guard(job, 7) is None  # not started
    path = Path(exit_code_path(job, 7))
    path.write_text("pid 4")  # the script's first write, not complete yet
    assert read_guard(job, 7) is None
    path.write_text("pid 4242\n")
    assert read_guard(job, 7) == Guard(4242, None)
    assert read_exit_code(str(path)) is None  # a pid is no exit code
    path.write_text("3\n")
    assert read_guard(job, 7) == Guard(None, 3)


def test_an_older_scripts_started_marker_is_still_a_guard(tmp_path: Path) -> None:
    job = str(tmp_path)
    (tmp_path / "started").write_text("4242\n")  # bare pid, no exit code yet
    assert read_guard(job, None) == Guard(4242, None)
    (tmp_path / "exit_code").write_text("0\n")
    assert read_guard(job, None) == Guard(None, 0)
    (tmp_path / "started.1500").write_text("77\n")  # flat, as before sharding
    assert read_guard(job, 1500) == Guard(77, None)
