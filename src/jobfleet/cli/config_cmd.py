"""``jobfleet config show``: the merged configuration and where each value came from."""

from __future__ import annotations

import json

import click

from jobfleet.cli.common import config_options, handle_errors, load, print_json
from jobfleet.config import describe

__all__ = ["config_group"]


@click.group("config")
def config_group() -> None:
    """Inspect the configuration."""


@config_group.command("show")
@config_options
@click.option(
    "--json", "as_json", is_flag=True, help="Print JSON: values and where each came from."
)
@handle_errors
def config_show(config_path: str | None, profile: str | None, as_json: bool) -> None:
    """Print the merged configuration and where each value came from."""
    config = load(config_path, profile)
    rows = describe(config)
    if as_json:
        print_json(
            {
                "file": config.path,
                "profile": config.profile,
                "profiles": list(config.profiles),
                "values": {key: value for key, value, _ in rows},
                "sources": {key: source for key, _, source in rows},
            }
        )
        return
    click.echo(f"# file: {config.path or '(none found)'}   profile: {config.profile or '(none)'}")
    width = max(len(key) for key, _, _ in rows)
    for key, value, source in rows:
        click.echo(f"{key:<{width}}  {json.dumps(value):<20}  # {source}")
