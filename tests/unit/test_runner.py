"""The runner seam: argv lists, time-outs, and the bound of ``within`` (what keeps
``jobfleet status`` from waiting for a scheduler that is down)."""

from __future__ import annotations

import sys
import time

import pytest

from jobfleet.errors import CommandError
from jobfleet.runner import (
    CommandResult,
    ScriptedRunner,
    SubprocessRunner,
    bounded_timeout,
    unbounded,
    within,
)

PY = sys.executable


def test_without_a_bound_the_commands_own_time_out_is_used() -> None:
    assert bounded_timeout(["squeue"], 60.0) == (60.0, 60.0)


def test_a_bound_shortens_the_time_out_and_is_named_in_messages() -> None:
    with within(5):
        left, named = bounded_timeout(["squeue"], 60.0)
    assert 0 < left <= 5 and named == 5
    with within(120):  # a bound longer than the command's own time-out changes nothing
        assert bounded_timeout(["squeue"], 60.0) == (60.0, 60.0)


def test_a_nested_bound_can_only_shorten_the_time_left() -> None:
    with within(2):
        with within(100):
            assert bounded_timeout(["squeue"], 60.0)[1] == 2
        with within(1):
            assert bounded_timeout(["squeue"], 60.0)[1] == 1
        assert bounded_timeout(["squeue"], 60.0)[1] == 2
    assert bounded_timeout(["squeue"], 60.0) == (60.0, 60.0)


def test_once_the_bound_has_passed_nothing_more_is_run() -> None:
    runner = ScriptedRunner(lambda argv: CommandResult(argv, 0, "", ""))
    with within(0), pytest.raises(CommandError) as raised:
        runner.run(["squeue", "--me"], timeout_s=60)
    assert raised.value.transient
    assert str(raised.value).endswith("squeue did not answer within 0s")
    assert runner.calls == []
    runner.run(["squeue", "--me"], timeout_s=60)  # outside the bound: run
    assert runner.calls == [("squeue", "--me")]


def test_a_command_still_running_at_the_bound_is_stopped_as_not_answering() -> None:
    started = time.monotonic()
    with within(0.5), pytest.raises(CommandError) as raised:
        SubprocessRunner().run([PY, "-c", "import time; time.sleep(60)"], timeout_s=60)
    assert raised.value.transient
    assert "did not answer within 0.5s" in str(raised.value)
    # Stopped by the bound, not by its own 60 s time-out (a sanity bound, not a timing).
    assert time.monotonic() - started < 50


def test_a_command_that_answers_in_time_is_not_touched_by_the_bound() -> None:
    with within(30):
        result = SubprocessRunner().run([PY, "-c", "print('hi')"], timeout_s=60)
    assert (result.returncode, result.stdout) == (0, "hi\n")


def test_unbounded_lifts_the_bound_for_what_must_not_be_cut_short() -> None:
    runner = ScriptedRunner(lambda argv: CommandResult(argv, 0, "1234", ""))
    with within(0):
        with unbounded():
            assert runner.run(["sbatch", "job.sh"], timeout_s=60).stdout == "1234"
            assert bounded_timeout(["sbatch"], 60.0) == (60.0, 60.0)
        with pytest.raises(CommandError):  # the bound is back after it
            runner.run(["squeue"], timeout_s=60)
