"""How long ``jobfleet report`` takes to draw a study of 100,000 array elements.

Usage: python bench/report_scale.py [--elements 100000] [--repeat 3] [--png]

No jobs run: one array job of N elements is made in memory, as its records would read
after a study (submitted together, started over an hour as slots free up, 1 to 10
minutes each; 90% completed, 8% failed, 2% timed out). Measured, best of --repeat:
building the report model from the records (``build_report``), then rendering and
writing the self-contained HTML (Plotly's 4.8 MB of JavaScript inlined; above 2,000
bars the timeline groups them), and with --png the PNG (matplotlib, Agg). Baseline in
the same run: the same for 1,000 elements, to show how the cost grows. Target: the
HTML for 100,000 elements in a few seconds, not minutes.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from jobfleet.report import build_report, write_html, write_png
from jobfleet.states import ElementRecord, JobRecord, JobState
from jobfleet.usage import Usage

T0 = 1_700_000_000.0
STATES = (JobState.COMPLETED, JobState.FAILED, JobState.TIMEOUT)


def study(elements: int, seed: int = 1) -> JobRecord:
    """One array job of ``elements`` ended elements with their times."""
    rng = random.Random(seed)
    records: dict[int, ElementRecord] = {}
    for i in range(elements):
        started = T0 + rng.uniform(1, 3600)
        ended = started + rng.uniform(60, 600)
        state = rng.choices(STATES, (90, 8, 2))[0]
        code = 0 if state is JobState.COMPLETED else 1
        reason = None if state is JobState.COMPLETED else f"{state.value} (exit {code})"
        usage = Usage(submitted_at=T0, started_at=started, ended_at=ended)
        records[i] = ElementRecord(i, state, code, reason, usage)
    return JobRecord(
        "1", "study", "local", "1", JobState.FAILED, 1, None, True, "/tmp", T0, T0, {}, records
    )


def best(repeat: int, step: Callable[[], object]) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return min(times)


def measure(elements: int, repeat: int, png: bool, out: Path) -> dict[str, float]:
    record = study(elements)
    report = build_report([record], as_of=T0 + 7200)
    html = out / f"report-{elements}.html"
    figures = {
        "model": best(repeat, lambda: build_report([record], as_of=T0 + 7200)),
        "html": best(repeat, lambda: write_html(report, html)),
    }
    if png:
        figures["png"] = best(repeat, lambda: write_png(report, out / f"report-{elements}.png"))
    figures["html MB"] = html.stat().st_size / 1e6
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--elements", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--png", action="store_true", help="also time the PNG")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        write_html(build_report([study(10)]), out / "warm.html")  # imports, Plotly's JS read
        baseline = measure(min(1000, args.elements), args.repeat, args.png, out)
        result = measure(args.elements, args.repeat, args.png, out)
    print(f"elements        {min(1000, args.elements):>10,} {args.elements:>10,}")
    for key in result:
        unit = "" if key.endswith("MB") else " s"
        print(f"{key + unit:<15} {baseline[key]:>10.2f} {result[key]:>10.2f}")
    total = result["model"] + result["html"]
    print(f"model + html for {args.elements:,} elements: {total:.2f} s")


if __name__ == "__main__":
    main()
