"""Hand-made job records for tests of what is drawn from them (``jobfleet report``)."""

from __future__ import annotations

from jobfleet.states import ElementRecord, JobRecord, JobState
from jobfleet.usage import NO_USAGE, Usage

T0 = 1_700_000_000.0  # 2023-11-14T22:13:20Z


def job(
    job_id: str,
    state: JobState,
    usage: Usage = NO_USAGE,
    *,
    exit_code: int | None = None,
    reason: str | None = None,
    created_at: float = T0,
    elements: dict[int, ElementRecord] | None = None,
    name: str = "j",
) -> JobRecord:
    """A recorded job of the local backend."""
    return JobRecord(
        id=job_id,
        name=name,
        backend="local",
        native_id="n" + job_id,
        state=state,
        exit_code=exit_code,
        reason=reason,
        submitted=True,
        job_dir="/tmp/x",
        created_at=created_at,
        updated_at=created_at,
        elements=elements or {},
        usage=usage,
    )


def times(sub: float | None, start: float | None, end: float | None) -> Usage:
    """Submit, start and end times, in seconds after T0 (None: not recorded)."""
    return Usage(
        submitted_at=None if sub is None else T0 + sub,
        started_at=None if start is None else T0 + start,
        ended_at=None if end is None else T0 + end,
    )


#: When the report of :func:`every_state` is made.
AS_OF = T0 + 600


def every_state() -> list[JobRecord]:
    """One job of each kind a report draws: completed, failed, cancelled while pending
    and while running, timeout, out of memory, running, pending, and an array of 4."""
    elements = {
        i: ElementRecord(i, s, c, r, times(100, 110 + 10 * i, 200 + 20 * i))
        for i, (s, c, r) in enumerate(
            [
                (JobState.COMPLETED, 0, None),
                (JobState.COMPLETED, 0, None),
                (JobState.FAILED, 2, "exit code 2"),
                (JobState.COMPLETED, 0, None),
            ]
        )
    }
    return [
        job("1", JobState.COMPLETED, times(0, 5, 185), exit_code=0, name="prep"),
        job("2", JobState.FAILED, times(0, 20, 80), exit_code=3, reason="exit code 3"),
        job("3", JobState.CANCELLED, times(10, None, 60), reason="cancelled by alice"),
        job("4", JobState.CANCELLED, times(10, 30, 90), exit_code=143, reason="cancelled by bob"),
        job("5", JobState.TIMEOUT, times(20, 40, 340), reason="walltime limit exceeded (00:05:00)"),
        job(
            "6",
            JobState.OUT_OF_MEMORY,
            times(20, 45, 95),
            exit_code=137,
            reason="memory limit exceeded (peak 2.1 GiB of 2 GiB)",
        ),
        job("7", JobState.RUNNING, times(30, 200, None)),
        job("8", JobState.PENDING, times(400, None, None)),
        job("9", JobState.COMPLETED, times(100, 110, 260), elements=elements, name="sweep"),
    ]
