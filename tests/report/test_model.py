"""The report's model from hand-made records: bars and their spans, what is unknown,
counts over time, the duration histogram, the summary, and the rows drawn (grouped
above a limit). No plotting library is needed here."""

from __future__ import annotations

import doctest

import pytest

from jobfleet.report import model, rows
from jobfleet.report.model import (
    COUNT_BUCKETS,
    MAX_BINS,
    build_report,
    counts_over_time,
    duration_label,
    histogram,
)
from jobfleet.report.rows import time_unit, timeline
from jobfleet.states import ElementRecord, JobState
from jobfleet.usage import Usage
from support.records import T0, job, times


def test_doctests() -> None:
    for module in (model, rows):
        result = doctest.testmod(module)
        assert result.attempted > 0 and result.failed == 0


def test_a_finished_job_waits_then_runs_and_is_labelled_with_its_run_time() -> None:
    report = build_report([job("7", JobState.COMPLETED, times(0, 10, 195), exit_code=0)])
    (bar,) = report.bars
    assert (bar.label, bar.job_id, bar.element, bar.state) == ("7", "7", None, JobState.COMPLETED)
    assert bar.waiting == (T0, T0 + 10) and bar.running == (T0 + 10, T0 + 195)
    assert bar.run_s == 185 and bar.text == "3m05s"
    assert bar.submit_recorded and report.t0 == T0
    assert report.notes == []


def test_without_a_submit_time_the_record_time_is_used_and_said() -> None:
    report = build_report(
        [job("1", JobState.COMPLETED, times(None, 10, 20), created_at=T0 + 4)], as_of=T0 + 99
    )
    (bar,) = report.bars
    assert bar.submitted == T0 + 4 and not bar.submit_recorded
    assert bar.waiting == (T0 + 4, T0 + 10)
    assert report.notes == [
        "1 of 1 had no submit time recorded: the time jobfleet recorded the job is used"
    ]


def test_cancelled_while_pending_is_drawn_waiting_only() -> None:
    report = build_report(
        [job("2", JobState.CANCELLED, times(0, None, 30), reason="cancelled by alice")]
    )
    (bar,) = report.bars
    assert bar.waiting == (T0, T0 + 30) and bar.running is None and bar.run_s is None
    assert bar.text == "not started"
    assert report.notes == ["1 of 1 ended without a recorded start (drawn as waiting only)"]


def test_no_start_time_is_ever_invented() -> None:
    # Ended, a start but no end: nothing drawn after the start, and said.
    no_end = build_report([job("3", JobState.FAILED, times(0, 5, None), exit_code=1)])
    (bar,) = no_end.bars
    assert bar.waiting == (T0, T0 + 5) and bar.running is None and bar.run_s is None
    assert bar.text == "end not recorded"
    assert no_end.notes == ["1 of 1 ended without a recorded end time (no running span drawn)"]
    # Ended with no times at all: nothing drawn, and said.
    nothing = build_report([job("4", JobState.LOST, Usage())])
    (bar,) = nothing.bars
    assert bar.waiting is None and bar.running is None
    assert nothing.notes == [
        "1 of 1 had no submit time recorded: the time jobfleet recorded the job is used",
        "1 of 1 ended with no times recorded (nothing drawn)",
    ]


def test_active_bars_are_drawn_up_to_the_report_time() -> None:
    report = build_report(
        [
            job("1", JobState.RUNNING, times(0, 10, None)),
            job("2", JobState.PENDING, times(5, None, None)),
        ],
        as_of=T0 + 100,
    )
    running, pending = report.bars
    assert running.running == (T0 + 10, T0 + 100) and running.run_s is None
    assert running.text == "running 1m30s"
    assert pending.waiting == (T0 + 5, T0 + 100) and pending.running is None
    assert pending.text == "pending"
    assert report.notes == []


def test_array_elements_are_bars_with_their_own_times_never_the_arrays_start() -> None:
    elements = {
        0: ElementRecord(0, JobState.COMPLETED, 0, usage=times(0, 2, 3)),
        # No submit time of its own: the array's; no start: not the array's either.
        1: ElementRecord(1, JobState.CANCELLED, None, "cancelled by bob", times(None, None, 9)),
    }
    array = job("5", JobState.CANCELLED, times(0, 2, 9), elements=elements, created_at=T0 - 50)
    report = build_report([array])
    first, second = report.bars
    assert [b.label for b in report.bars] == ["5[0]", "5[1]"]
    assert (first.element, second.element) == (0, 1)
    assert first.waiting == (T0, T0 + 2) and first.running == (T0 + 2, T0 + 3)
    assert second.submitted == T0 and second.submit_recorded
    assert second.started is None and second.running is None
    assert report.summary.jobs == 1 and len(report.bars) == 2


def test_array_elements_without_any_submit_time_use_the_record_time() -> None:
    elements = {0: ElementRecord(0, JobState.COMPLETED, 0, usage=times(None, 2, 3))}
    report = build_report([job("5", JobState.COMPLETED, elements=elements, created_at=T0 - 7)])
    (bar,) = report.bars
    assert bar.submitted == T0 - 7 and not bar.submit_recorded


def test_bars_are_in_order_of_submission_then_id_then_index() -> None:
    elements = {i: ElementRecord(i, JobState.COMPLETED, 0, usage=times(5, 6, 7)) for i in (2, 0)}
    records = [
        job("10", JobState.COMPLETED, times(5, 6, 7)),
        job("9", JobState.COMPLETED, elements=elements),
        job("11", JobState.COMPLETED, times(1, 2, 3)),
    ]
    assert [b.label for b in build_report(records).bars] == ["11", "9[0]", "9[2]", "10"]


def test_counts_over_time_are_exact_steps() -> None:
    records = [
        job("1", JobState.COMPLETED, times(0, 10, 30)),
        job("2", JobState.FAILED, times(0, 20, 40), exit_code=1),
        job("3", JobState.PENDING, times(5, None, None)),
    ]
    counts = build_report(records, as_of=T0 + 50).counts
    assert counts.bucket_s is None
    steps = list(zip(counts.times, counts.running, counts.pending, strict=True))
    assert steps == [
        (0, 0, 2),
        (5, 0, 3),
        (10, 1, 2),
        (20, 2, 1),
        (30, 1, 1),
        (40, 0, 1),
        (50, 0, 0),
    ]


def test_counts_over_time_are_bucket_peaks_when_there_are_many_events() -> None:
    # 2,000 jobs: 4 events each. Job i waits 0 -> i, runs i -> i + 100.
    records = [
        job(str(i), JobState.COMPLETED, times(0, i, i + 100), exit_code=0) for i in range(2000)
    ]
    report = build_report(records)
    counts = report.counts
    assert counts.bucket_s == pytest.approx(2099 / COUNT_BUCKETS)
    assert len(counts.times) == len(counts.running) == len(counts.pending) == COUNT_BUCKETS
    # What ends at a time ends before what starts then counts (a hand-over, not an
    # overlap): job 0 starts at once, so 1,999 pend at most, and 100 run at most.
    assert max(counts.pending) == 1999
    assert max(counts.running) == 100
    assert counts.running[COUNT_BUCKETS // 2] == 100
    assert counts.running[-1] >= 1 and counts.pending[-1] == 0


def test_bucket_peaks_carry_the_count_through_buckets_without_events() -> None:
    # 1,000 short jobs at the start, one long one: more than MAX_COUNT_POINTS events.
    records = [job(str(i), JobState.COMPLETED, times(0, 1, 2)) for i in range(1000)]
    records.append(job("long", JobState.COMPLETED, times(0, 1, 10_000)))
    counts = build_report(records).counts
    assert counts.bucket_s == pytest.approx(10.0)
    assert counts.running[0] == 1001 and counts.pending[0] == 1001
    assert counts.running[1:] == [1] * (COUNT_BUCKETS - 1)  # the long one, carried
    assert counts.pending[1:] == [0] * (COUNT_BUCKETS - 1)


def test_counts_over_time_of_nothing_drawn_are_empty() -> None:
    assert counts_over_time([], T0).times == []


def test_histogram_bins_run_times_per_state() -> None:
    records = [
        job(str(i), JobState.COMPLETED, times(0, 0, d)) for i, d in enumerate((10, 20, 30, 40))
    ]
    records.append(job("9", JobState.FAILED, times(0, 0, 40), exit_code=2))
    records.append(job("8", JobState.PENDING, times(0, None, None)))
    h = build_report(records, as_of=T0 + 60).histogram
    assert h.edges == [10.0, 20.0, 30.0, 40.0]  # ceil(sqrt(5)) = 3 bins of 10 s
    assert h.counts == {JobState.COMPLETED: [1, 1, 2], JobState.FAILED: [0, 0, 1]}
    assert h.total == 5


def test_histogram_of_equal_durations_has_one_bin_and_is_bounded() -> None:
    same = [job(str(i), JobState.COMPLETED, times(0, 0, 5)) for i in range(3)]
    h = build_report(same).histogram
    assert h.edges == [5.0, 6.0] and h.counts == {JobState.COMPLETED: [3]}
    many = [job(str(i), JobState.COMPLETED, times(0, 0, i)) for i in range(5000)]
    assert len(histogram(build_report(many).bars).edges) == MAX_BINS + 1
    assert build_report([]).histogram.edges == []


def test_summary_counts_states_and_lists_what_did_not_complete() -> None:
    elements = {
        0: ElementRecord(0, JobState.COMPLETED, 0, usage=times(0, 1, 2)),
        1: ElementRecord(1, JobState.TIMEOUT, None, "walltime limit exceeded (00:01:00)"),
    }
    records = [
        job("1", JobState.COMPLETED, times(0, 1, 2), exit_code=0),
        job("2", JobState.FAILED, times(1, 2, 3), exit_code=3, reason="exit code 3"),
        job("3", JobState.TIMEOUT, elements=elements),
    ]
    summary = build_report(records).summary
    assert summary.jobs == 3
    assert summary.per_state == {JobState.COMPLETED: 2, JobState.FAILED: 1, JobState.TIMEOUT: 1}
    assert list(summary.per_state) == [JobState.COMPLETED, JobState.FAILED, JobState.TIMEOUT]
    listed = [(b.label, b.state, b.exit_code, b.reason) for b in summary.not_completed]
    assert listed == [
        ("3[1]", JobState.TIMEOUT, None, "walltime limit exceeded (00:01:00)"),
        ("2", JobState.FAILED, 3, "exit code 3"),
    ]


def test_duration_labels() -> None:
    assert [duration_label(s) for s in (-1, 0.42, 45, 185, 7380, 4 * 86400 + 7200, None)] == [
        "0.0s",
        "0.4s",
        "45s",
        "3m05s",
        "2h03m",
        "4d02h",
        "?",
    ]
    assert time_unit(119)[0] == "seconds" and time_unit(3 * 86400)[0] == "days"


def test_few_bars_are_drawn_one_row_each() -> None:
    records = [job(str(i), JobState.COMPLETED, times(i, i + 1, i + 2)) for i in range(5)]
    tl = timeline(build_report(records), max_rows=5)
    assert tl.per_row == 1 and tl.note is None
    assert [r.label for r in tl.rows] == ["0", "1", "2", "3", "4"]
    assert tl.rows[2].waiting == (2, 3) and tl.rows[2].running == (3, 4)


def test_many_bars_are_grouped_one_state_per_row_and_the_note_says_so() -> None:
    states = [JobState.FAILED if i % 10 == 3 else JobState.COMPLETED for i in range(1000)]
    elements = {
        i: ElementRecord(i, s, 0 if s is JobState.COMPLETED else 1, usage=times(0, i, i + 50))
        for i, s in enumerate(states)
    }
    report = build_report([job("4", JobState.FAILED, elements=elements)])
    tl = timeline(report, max_rows=100)
    assert tl.per_row == 10
    assert len(tl.rows) == 90 + 10  # 900 completed in rows of 10, and 100 failed
    assert {r.state for r in tl.rows} == {JobState.COMPLETED, JobState.FAILED}
    assert tl.note is not None and "1,000 bars" in tl.note and "up to 10" in tl.note
    first = tl.rows[0]
    assert first.label == "4[0]..4[10] (10)" and first.state is JobState.COMPLETED
    # Waiting from its first submit to its first start; running to its last end.
    assert first.waiting == (0, 0) and first.running == (0, 60)
    assert first.text == "median 50s"
    failed = [r for r in tl.rows if r.state is JobState.FAILED]
    assert failed[0].label == "4[3]..4[93] (10)" and "10 failed" in failed[0].hover


def test_hover_text_escapes_names() -> None:
    report = build_report([job("1", JobState.FAILED, times(0, 1, 2), name="<b>x</b>")])
    (row,) = timeline(report).rows
    assert "&lt;b&gt;x&lt;/b&gt;" in row.hover and "<b>" not in row.hover
