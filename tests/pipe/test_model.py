"""Pipe mode's values: task files, states and their transitions, settings."""

from __future__ import annotations

import pytest

from jobfleet.errors import SpecError
from jobfleet.pipe.model import (
    RUN_TRANSITIONS,
    TASK_TRANSITIONS,
    PipeSettings,
    RunState,
    TaskSpec,
    TaskState,
    check_transition,
    parse_tasks,
)


def test_a_task_file_takes_shell_lines_and_json_lines() -> None:
    lines = [
        "# a comment",
        "",
        "echo 'one two' > out",
        '{"argv": ["python3", "-c", "print(1)"], "env": {"A": "1"}, "cwd": "/tmp",'
        ' "estimate": 2.5, "id": "p1"}',
        '{"shell": "exit 3", "id": 7}',
    ]
    tasks = list(parse_tasks(lines, "tasks.txt"))
    assert tasks == [
        TaskSpec(("echo 'one two' > out",), True),
        TaskSpec(("python3", "-c", "print(1)"), False, {"A": "1"}, "/tmp", 2.5, "p1"),
        TaskSpec(("exit 3",), True, id="7"),
    ]
    assert tasks[0].argv_to_run() == ["/bin/sh", "-c", "echo 'one two' > out"]
    assert tasks[1].argv_to_run() == ["python3", "-c", "print(1)"]


@pytest.mark.parametrize(
    ("line", "words"),
    [
        ("{not json", "not valid JSON"),
        ('{"argv": "ls"}', "argv must be a non-empty list of strings"),
        ('{"argv": ["ls"], "shell": "ls"}', "exactly one of argv"),
        ("{}", "exactly one of argv"),
        ('{"argv": ["ls"], "envv": {}}', "unknown key 'envv'; valid keys: argv, shell"),
        ('{"argv": ["ls"], "env": {"A": 1}}', "env must map names to strings"),
        ('{"argv": ["ls"], "estimate": -1}', "estimate must be seconds"),
        ('{"argv": ["ls"], "estimate": true}', "estimate must be seconds"),
        ('{"shell": "  "}', "shell must be a non-empty string"),
        ("[1, 2]", None),  # not a JSON object line: a shell line, as written
    ],
)
def test_a_bad_task_line_is_named_with_its_file_and_line(line: str, words: str | None) -> None:
    if words is None:
        assert list(parse_tasks([line], "t.txt")) == [TaskSpec((line,), True)]
        return
    with pytest.raises(SpecError) as info:
        list(parse_tasks(["echo ok", line], "t.txt"))
    assert "t.txt, line 2" in str(info.value)
    assert words in str(info.value)


def test_task_specs_round_trip_through_json() -> None:
    for task in [
        TaskSpec(("a", "b c")),
        TaskSpec(("x | y",), True, {"K": "v"}, "/w", 1.0, "name"),
    ]:
        (again,) = parse_tasks([task.to_json()], "x")
        assert again == task


def test_every_state_has_its_transitions_and_others_are_refused() -> None:
    assert set(TASK_TRANSITIONS) == set(TaskState)
    assert set(RUN_TRANSITIONS) == set(RunState)
    check_transition("task 3", TaskState.FAILED, TaskState.PENDING, "/r")  # pipe retry
    with pytest.raises(SpecError, match="task 3 cannot go from completed to pending"):
        check_transition("task 3", TaskState.COMPLETED, TaskState.PENDING, "/r")
    with pytest.raises(SpecError, match=r"cannot go from cancelled to running \(allowed: none"):
        check_transition("the run", RunState.CANCELLED, RunState.RUNNING, "/r")
    assert all(not TASK_TRANSITIONS[s] for s in TaskState if s.is_terminal and s.value != "failed")


def test_settings_are_checked_and_round_trip() -> None:
    settings = PipeSettings(lease_s=30, heartbeat_s=5, max_attempts=2,
                            retry_exit_codes=frozenset({75}), block_size=4)  # fmt: skip
    assert PipeSettings.from_dict(settings.to_dict()) == settings
    assert settings.retryable(75) and not settings.retryable(1) and not settings.retryable(0)
    assert PipeSettings(retry_exit_codes=None).retryable(1)
    assert not PipeSettings().retryable(1)  # by default a failing command is not retried
    with pytest.raises(SpecError, match="twice the heartbeat"):
        PipeSettings(lease_s=10, heartbeat_s=10)
    with pytest.raises(SpecError, match="max_attempts"):
        PipeSettings(max_attempts=0)
    with pytest.raises(SpecError, match="block_size"):
        PipeSettings(block_size=0)
