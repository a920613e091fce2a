"""``jobfleet show ID`` (and ``jobfleet status ID --detail``): one job's whole record as
readable text, with what it used and hints where it asked for far more than it used."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import click

from jobfleet.cli.common import (
    Decimal,
    config_options,
    handle_errors,
    job_ids_completed,
    load,
    print_json,
    warn,
)
from jobfleet.engine.fleet import Fleet
from jobfleet.errors import JobfleetError, SpecError
from jobfleet.states import JobRecord
from jobfleet.units import format_walltime
from jobfleet.usage import Usage, iso_utc

__all__ = ["HINT_BELOW", "detail_lines", "hints", "print_detail", "show", "show_one"]

#: A job that used less than this share of the memory or walltime it asked for is told
#: so: schedulers queue big requests longer, and users tend to over-request.
HINT_BELOW = 0.25


@click.command()
@config_options
@click.argument("job_id", shell_complete=job_ids_completed)
@click.option(
    "--timeout",
    type=Decimal(),
    metavar="SECONDS",
    help="Longest wait for the scheduler (default: wait.status_timeout, 5s).",
)
@click.option("--no-refresh", is_flag=True, help="Show the record as it is, asking nobody.")
@click.option("--json", "as_json", is_flag=True, help="Print the job as a JSON object.")
@handle_errors
def show(
    config_path: str | None,
    profile: str | None,
    job_id: str,
    timeout: float | None,
    no_refresh: bool,
    as_json: bool,
) -> None:
    """Show one job in full: state, times, hosts, memory and CPU used, per element.

    The same as `jobfleet status JOB_ID --detail`.
    """
    show_one(config_path, profile, job_id, timeout, no_refresh, as_json)


def show_one(
    config_path: str | None,
    profile: str | None,
    job_id: str,
    timeout: float | None,
    no_refresh: bool,
    as_json: bool,
) -> None:
    """What ``show`` and ``status --detail`` print."""
    if no_refresh and timeout is not None:
        raise SpecError("timeout", "--timeout and --no-refresh exclude each other")
    with Fleet(load(config_path, profile)) as fleet:
        report = fleet.status_report([job_id], within_s=timeout, ask=not no_refresh)
        (record,) = report.records
        per_process = _per_process_peak(fleet, record.backend)
    if as_json:
        print_json(
            {
                **record.to_dict(),
                "refreshed": report.refreshed(record),
                "not_refreshed_because": report.unanswered.get(record.backend),
            }
        )
    else:
        print_detail(record, per_process)
    if not no_refresh:
        for backend, why in report.unanswered.items():
            warn(f"{backend} did not answer ({why}); the job shows its last known state")


def _per_process_peak(fleet: Fleet, backend: str) -> bool:
    """Whether ``backend`` records one process's peak memory (False if unknown)."""
    try:
        return fleet.backend(backend).capabilities.peak_memory_per_process
    except JobfleetError:  # e.g. a backend no longer configured: say nothing more
        return False


def print_detail(record: JobRecord, per_process: bool = False) -> None:
    """Print :func:`detail_lines`."""
    for line in detail_lines(record, per_process):
        click.echo(line)


def _several_tasks(resources: Mapping[str, Any]) -> bool:
    """Whether a job (its stored resources) has more than one task."""
    tasks = resources.get("tasks")
    nodes = resources.get("nodes") or 1
    per_node = resources.get("tasks_per_node") or 1
    return (tasks if tasks is not None else nodes * per_node) > 1 or nodes > 1


def _peak_of(resources: Mapping[str, Any], per_process: bool) -> str | None:
    """Whose the recorded peak memory is, when not the whole job's: every backend
    records one task's (SLURM's MaxRSS, a Grid Engine task's maxvmem), the local one
    one process's (``ru_maxrss``); docs/usage.md."""
    if _several_tasks(resources):
        return "task"
    return "process" if per_process else None


def detail_lines(record: JobRecord, per_process: bool = False) -> list[str]:
    """The detail view of one job, line by line (no colours: it is read and grepped).

    ``per_process``: the backend's peak memory is one process's (``Capabilities``).
    """
    resources: Mapping[str, Any] = record.spec.get("resources") or {}
    asked_memory = resources.get("memory_bytes")
    asked_walltime = resources.get("walltime_s")
    native = record.native_id or "not submitted yet"
    lines = [
        f"job {record.id} ({record.name})",
        f"  state:      {record.state.value}"
        + (f" (attempt {record.attempt})" if record.attempt > 1 else ""),
        f"  exit code:  {_or_unknown(record.exit_code)}",
    ]
    if record.reason:
        lines.append(f"  reason:     {record.reason}")
    lines += [
        f"  backend:    {record.backend}, native id {native}",
        f"  directory:  {record.job_dir}"
        + (
            f" (removed by jobfleet clean, {iso_utc(record.cleaned_at)})"
            if record.cleaned_at
            else ""
        ),
    ]
    usage = record.usage
    if record.elements and usage.empty:
        usage = _over_elements([e.usage for e in record.elements.values()])
    peak_of = _peak_of(resources, per_process)
    lines += _usage_lines(usage, asked_memory, asked_walltime, "  ", peak_of)
    if record.elements:
        lines.append(f"  elements:   {len(record.elements)} (the lines above: over all of them)")
        for index, element in sorted(record.elements.items()):
            code = "" if element.exit_code is None else f", exit code {element.exit_code}"
            used = _one_line_usage(element.usage)
            lines.append(f"    [{index}] {element.state.value}{code}{used}")
    for hint in hints(record, per_process):
        lines.append(f"  hint: {hint}")
    return lines


def hints(record: JobRecord, per_process: bool = False) -> list[str]:
    """Lines for a job (or the elements of an array) that used under :data:`HINT_BELOW`
    of the memory or walltime it asked for; nothing where either is unknown.

    No memory hint for a job of several tasks: the peak recorded is one task's, not
    the job's, so a job near its limit would be told to ask for less. A per-process
    peak (``per_process``, the local backend's) is named as such.
    """
    resources: Mapping[str, Any] = record.spec.get("resources") or {}
    peak_of = _peak_of(resources, per_process)
    asked_memory = resources.get("memory_bytes")
    asked_walltime = resources.get("walltime_s")
    used = [e.usage for e in record.elements.values()] if record.elements else [record.usage]
    peaks = [u.max_memory_bytes for u in used if u.max_memory_bytes is not None]
    walls = [u.wall_time_s for u in used if u.wall_time_s is not None]
    who = "its elements" if record.elements else "it"
    out = []
    if asked_memory and peaks and max(peaks) < HINT_BELOW * asked_memory and peak_of != "task":
        if peak_of == "process":
            who_used = "its largest process" if who == "it" else "the largest process of " + who
        else:
            who_used = who
        out.append(
            f"{who_used} used at most {_memory(max(peaks))} of the {_memory(asked_memory)} "
            f"of memory asked for ({_share(max(peaks) / asked_memory)}); asking for less "
            "may start it sooner"
        )
    if asked_walltime and walls and max(walls) < HINT_BELOW * asked_walltime:
        out.append(
            f"{who} ran at most {_duration(max(walls))} of the {_duration(asked_walltime)} "
            f"walltime asked for ({_share(max(walls) / asked_walltime)}); asking for less "
            "may start it sooner"
        )
    return out


def _over_elements(used: list[Usage]) -> Usage:
    """An array's usage from its elements': first submission and start, last end (once
    every element ended), every host once, the largest peak, the CPU time summed, the
    wall time from first start to last end."""

    def known(values: list[Any]) -> list[Any]:
        return [v for v in values if v is not None]

    starts = known([u.started_at for u in used])
    ends = known([u.ended_at for u in used])
    ended = max(ends) if ends and len(ends) == len(used) else None
    hosts = tuple(dict.fromkeys(h for u in used for h in u.hosts or ()))
    peaks = known([u.max_memory_bytes for u in used])
    cpus = known([u.cpu_time_s for u in used])
    return Usage(
        submitted_at=min(known([u.submitted_at for u in used]), default=None),
        started_at=min(starts, default=None),
        ended_at=ended,
        hosts=hosts or None,
        max_memory_bytes=max(peaks, default=None),
        cpu_time_s=round(sum(cpus), 6) if cpus else None,
        wall_time_s=round(ended - min(starts), 6) if ended is not None and starts else None,
    )


def _usage_lines(
    usage: Usage,
    asked_memory: int | None,
    asked_walltime: int | None,
    pad: str,
    peak_of: str | None = None,
) -> list[str]:
    memory = _memory(usage.max_memory_bytes)
    if peak_of is not None and usage.max_memory_bytes is not None:
        memory += f", the largest {peak_of}'s"
    if asked_memory:
        memory += f" (of {_memory(asked_memory)} asked for)"
    wall = _duration(usage.wall_time_s)
    if asked_walltime:
        wall += f" (of {_duration(asked_walltime)} asked for)"
    hosts = ", ".join(usage.hosts) if usage.hosts else "unknown"
    return [
        f"{pad}submitted:  {iso_utc(usage.submitted_at) or 'unknown'}",
        f"{pad}started:    {iso_utc(usage.started_at) or 'unknown'}",
        f"{pad}ended:      {iso_utc(usage.ended_at) or 'unknown'}",
        f"{pad}hosts:      {hosts}",
        f"{pad}memory:     peak {memory}",
        f"{pad}CPU time:   {_duration(usage.cpu_time_s)}",
        f"{pad}wall time:  {wall}",
    ]


def _one_line_usage(usage: Usage) -> str:
    parts = []
    if usage.hosts:
        parts.append("on " + ",".join(usage.hosts))
    if usage.max_memory_bytes is not None:
        parts.append(f"peak {_memory(usage.max_memory_bytes)}")
    if usage.cpu_time_s is not None:
        parts.append(f"CPU {_duration(usage.cpu_time_s)}")
    if usage.wall_time_s is not None:
        parts.append(f"wall {_duration(usage.wall_time_s)}")
    return ("; " + ", ".join(parts)) if parts else ""


def _share(fraction: float) -> str:
    """``5%``; ``under 1%`` rather than a misleading ``0%``."""
    return f"{fraction:.0%}" if fraction >= 0.01 else "under 1%"


def _or_unknown(value: object) -> str:
    return "unknown" if value is None else str(value)


def _memory(nbytes: float | None) -> str:
    """``212.5 MiB``: readable, 1024-based, one decimal."""
    if nbytes is None:
        return "unknown"
    value = float(nbytes)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"  # pragma: no cover - the loop returns


def _duration(seconds: float | None) -> str:
    """``00:01:05`` (whole seconds), or ``1.25 s`` below a minute."""
    if seconds is None:
        return "unknown"
    if seconds < 60:
        return f"{seconds:.2f} s"
    return format_walltime(round(seconds))
