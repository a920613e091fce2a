"""Shell completion: ``jobfleet completion bash|zsh|fish`` prints the script, and the
completions a shell asks for while one types: commands and options (click's), job ids
from the registry, profile names from the configuration.

Install it once::

    eval "$(jobfleet completion bash)"     # in ~/.bashrc
    eval "$(jobfleet completion zsh)"      # in ~/.zshrc
    jobfleet completion fish > ~/.config/fish/completions/jobfleet.fish

The script calls ``jobfleet`` with ``_JOBFLEET_COMPLETE`` set (click's protocol) each
time the user presses Tab: what it lists is read then, never cached. A completion
never writes anything, never asks a scheduler and never fails: a registry or a
configuration that cannot be read completes nothing.
"""

from __future__ import annotations

import click
from click.shell_completion import CompletionItem, get_completion_class

__all__ = ["SHELLS", "complete_job_ids", "complete_profiles", "completion"]

#: The shells a completion script is printed for (click's own).
SHELLS = ("bash", "zsh", "fish")
#: The most recent jobs offered as completions of a job id.
RECENT_IDS = 200
#: The environment variable click's completion scripts set (``_<PROG>_COMPLETE``).
COMPLETE_VAR = "_JOBFLEET_COMPLETE"


def complete_job_ids(
    ctx: click.Context, param: click.Parameter, incomplete: str
) -> list[CompletionItem]:
    """The ids of the most recent jobs starting with ``incomplete``, newest first, each
    with its name and last recorded state (the registry only: no scheduler is asked)."""
    try:
        from jobfleet.engine.views import recent_summaries

        rows = recent_summaries(RECENT_IDS)
    except Exception:  # a completion never fails: it offers nothing
        return []
    return [
        CompletionItem(job_id, help=f"{name} ({state})")
        for job_id, name, state in rows
        if job_id.startswith(incomplete)
    ]


def complete_profiles(
    ctx: click.Context, param: click.Parameter, incomplete: str
) -> list[CompletionItem]:
    """The profiles the configuration file defines (``--config``'s, if given before)."""
    try:
        from jobfleet.config import load_config

        profiles = load_config(ctx.params.get("config_path")).profiles
    except Exception:  # an unreadable or invalid file: nothing to offer
        return []
    return [CompletionItem(name) for name in profiles if name.startswith(incomplete)]


@click.command()
@click.argument("shell", type=click.Choice(SHELLS), metavar="SHELL")
def completion(shell: str) -> None:
    """Print the shell completion script for SHELL (bash, zsh or fish).

    \b
    bash:  eval "$(jobfleet completion bash)"     in ~/.bashrc
    zsh:   eval "$(jobfleet completion zsh)"      in ~/.zshrc
    fish:  jobfleet completion fish > ~/.config/fish/completions/jobfleet.fish

    Commands, options, job ids (the 200 most recent, from the registry) and profile
    names (from the configuration file) complete with Tab.
    """
    root = click.get_current_context().find_root().command  # the jobfleet group
    cls = get_completion_class(shell)
    if cls is None:  # pragma: no cover - click knows every shell in SHELLS
        raise click.UsageError(f"no completion for {shell}")
    click.echo(cls(root, {}, "jobfleet", COMPLETE_VAR).source(), nl=False)
