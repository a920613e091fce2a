"""The LSF backend's fixes from the review of issue 12: array limits, DONE/PDONE/PERR
with exit codes, bhist's event files."""

from __future__ import annotations

import pytest

from jobfleet import JobSpec, parse_array
from jobfleet.backends.lsf.backend import LsfBackend
from jobfleet.backends.lsf.directives import LsfSettings
from jobfleet.errors import SpecError
from jobfleet.runner import CommandResult, ScriptedRunner


def backend(**settings: object) -> LsfBackend:
    runner = ScriptedRunner(lambda argv: CommandResult(argv, 0, "", ""))
    return LsfBackend(runner, LsfSettings(unit_for_limits="MB", **settings))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("array", "words"),
    [
        ("1000-1001", "largest index 1001"),  # two elements, but past MAX_JOB_ARRAY_SIZE
        (
            ",".join(str(p) for p in range(2, 999) if all(p % d for d in range(2, p))),
            "255 characters",
        ),
    ],
)
def test_an_array_lsf_would_refuse_is_refused_up_front(array: str, words: str) -> None:
    with pytest.raises(SpecError) as info:
        backend().check_request(JobSpec(["true"], array=parse_array(array)))
    assert info.value.field == "array" and words in info.value.message
    backend(max_array_size=2000).check_request(JobSpec(["true"], array=parse_array("1000-1001")))
