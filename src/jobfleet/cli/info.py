"""``jobfleet info``: the schedulers on this machine, the backend ``auto`` picks and
why, and the configuration in use."""

from __future__ import annotations

import platform

import click

from jobfleet import __version__
from jobfleet.cli.common import config_options, handle_errors, load, print_json
from jobfleet.engine.site import AUTO, schedulers

__all__ = ["info"]


def version_lines() -> list[str]:
    """``jobfleet --version``: jobfleet's version, Python's (and which Python), and the
    version of each scheduler whose commands are on PATH (each asked for at most
    five seconds)."""
    import sys

    impl = platform.python_implementation()
    lines = [
        f"jobfleet {__version__}",
        f"Python {platform.python_version()} ({impl}, {sys.executable})",
    ]
    found = schedulers().found
    for f in found:
        where = f.command if f.answered else f"{f.command}; does not answer: {f.why}"
        lines.append(f"{f.backend}: {f.version or 'version unknown'} ({where})")
    if not found:
        lines.append("schedulers: none on PATH (the local backend runs jobs on this machine)")
    return lines


@click.command()
@config_options
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object (keys below).")
@handle_errors
def info(config_path: str | None, profile: str | None, as_json: bool) -> None:
    """Each scheduler found on this machine (its command, version, whether it
    answers, whether it keeps accounting, the limits and units in force), the
    backend `auto` picks and why, and the configuration file and profile in use.

    \b
    --json prints an object with the keys:
      jobfleet, python   versions
      config             {path, profile, backend}: the file (null: none), the
                         profile, and the default backend it names
      auto               {backend, why}: what auto stands for here
      default_backend    the backend jobs go to without --backend
      schedulers         a list of {backend, command, version, answered, why,
                         accounting, facts}
    """
    config = load(config_path, profile)
    here = schedulers()
    found, chosen, why = here.found, here.auto, here.why
    default = chosen if config.backend == AUTO else config.backend
    data = {
        "jobfleet": __version__,
        "python": platform.python_version(),
        "config": {
            "path": str(config.path) if config.path else None,
            "profile": config.profile,
            "backend": config.backend,
        },
        "auto": {"backend": chosen, "why": why},
        "default_backend": default,
        "schedulers": [f.to_dict() for f in found],
    }
    if as_json:
        print_json(data)
        return
    click.echo(f"jobfleet {__version__} (Python {platform.python_version()})")
    where = str(config.path) if config.path else "none (defaults)"
    click.echo(f"config: {where}; profile: {config.profile or 'none'}")
    if config.backend == AUTO:
        click.echo(f"default backend: auto -> {chosen} ({why})")
    else:
        source = config.sources.get("backend", "the configuration")
        click.echo(f"default backend: {config.backend} (from {source}); auto would be {chosen}")
    if not found:
        click.echo("schedulers: none of their commands is on PATH")
    for f in found:
        head = f"{f.backend}: {f.version or 'version unknown'} at {f.command}"
        status = "answers" if f.answered else f"does not answer ({f.why})"
        accounting = {True: "yes", False: "no", None: "unknown"}[f.accounting]
        click.echo(f"{head}; {status}; accounting: {accounting}")
        for key, value in f.facts.items():
            click.echo(f"  {key}: {value}")
