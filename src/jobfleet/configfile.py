"""Which configuration file to read, and reading it within bounds.

:func:`locate` follows the search order of :mod:`jobfleet.config`; a name that
cannot even be looked up (too long, a loop of links, a directory one may not
enter) is an error naming where it came from: ``--config``, ``$JOBFLEET_CONFIG``
or the default place. :func:`config_error` builds every configuration error,
cut so that one line stays under 500 characters whatever the input.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from jobfleet.errors import ConfigError, shorten

__all__ = ["ENV_VAR", "config_error", "find_config_file", "locate", "read_config_yaml"]

ENV_VAR = "JOBFLEET_CONFIG"


def find_config_file(
    explicit: str | os.PathLike[str] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> Path | None:
    """The configuration file to read, or None when there is none.

    Relative paths are taken from ``cwd``. ``env`` defaults to ``os.environ``.

    Raises:
        ConfigError: the explicit path or ``$JOBFLEET_CONFIG`` names no file, or a
            name cannot be looked up (too long, a loop of links, no permission).
    """
    found = locate(explicit, env, cwd)
    return found[0] if found is not None else None


#: Where a configuration file's name came from, for errors about it.
_FROM_OPTION = "--config"
_FROM_ENV = f"${ENV_VAR}"
_FROM_DEFAULT = ""


def locate(
    explicit: str | os.PathLike[str] | None, env: Mapping[str, str] | None, cwd: Path | None
) -> tuple[Path, str] | None:
    """The configuration file and where its name came from (``--config``,
    ``$JOBFLEET_CONFIG`` or ``""`` for the default places)."""
    env = os.environ if env is None else env
    if cwd is None:
        try:
            cwd = Path.cwd()
        except FileNotFoundError:
            # The current directory was deleted: relative names find nothing
            # there, and the configuration still loads from the other places.
            cwd = Path()
    if explicit is not None:
        path = cwd / explicit
        if not _exists(path, _FROM_OPTION):
            raise config_error(
                "no such configuration file (given by --config)", source=str(explicit)
            )
        return path, _FROM_OPTION
    if named := env.get(ENV_VAR):
        path = cwd / named
        if not _exists(path, _FROM_ENV):
            raise config_error(
                f"{shorten(named, 120)} does not exist; fix or unset it", source=_FROM_ENV
            )
        return path, _FROM_ENV
    xdg = env.get("XDG_CONFIG_HOME", "")
    # The XDG spec says to ignore a relative XDG_CONFIG_HOME.
    user_dir = (
        Path(xdg) if Path(xdg).is_absolute() else Path(env.get("HOME") or Path.home()) / ".config"
    )
    for path in (cwd / "jobfleet.yaml", user_dir / "jobfleet" / "config.yaml"):
        if _exists(path, _FROM_DEFAULT):
            return path, _FROM_DEFAULT
    return None


def _exists(path: Path, origin: str) -> bool:
    """Whether ``path`` names something; a name that cannot be looked up (too long,
    a loop of links, a directory one may not enter) is an error naming its origin."""
    try:
        path.stat()
    except (FileNotFoundError, NotADirectoryError):
        return False
    except (OSError, ValueError) as exc:  # ValueError: a NUL character in the name
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise config_error(_unreadable(reason, origin), source=_named(path)) from None
    return True


def _unreadable(reason: str, origin: str) -> str:
    if origin == _FROM_OPTION:
        return f"cannot read the file given by --config: {reason}; check the path"
    if origin == _FROM_ENV:
        return f"cannot read the file ${ENV_VAR} names: {reason}; fix or unset it"
    return f"cannot read this configuration file: {reason}; fix its permissions or remove it"


def _named(path: Path) -> str:
    """How errors name a file: its path, shortened."""
    return shorten(str(path), _SOURCE_MAX)


#: The longest source, key and message in a ConfigError: one line stays under 500.
_SOURCE_MAX = 120
_KEY_MAX = 80
_MESSAGE_MAX = 290


def config_error(message: str, *, source: str | None = None, key: str | None = None) -> ConfigError:
    """A ConfigError whose parts are cut to length (the middle of a message goes first:
    its end says how to fix it)."""
    return ConfigError(
        shorten(" ".join(line.strip() for line in message.splitlines()), _MESSAGE_MAX),
        source=None if source is None else shorten(source, _SOURCE_MAX),
        key=None if key is None else shorten(key, _KEY_MAX),
    )


def read_config_yaml(path: Path, origin: str) -> Any:
    from jobfleet.yamlsafe import read_yaml_bounded  # YAML only when there is a file

    source = _named(path)
    try:
        return read_yaml_bounded(path, source=source)
    except ConfigError as exc:
        if exc.message.startswith("cannot read:"):  # say where the name came from
            reason = exc.message.removeprefix("cannot read:").strip()
            raise config_error(_unreadable(reason, origin), source=source) from None
        raise
