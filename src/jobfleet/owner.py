"""Which process owns a piece of work, and whether that process is gone.

An owner is written as ``host:pid:start`` where ``start`` is the process's start
time in clock ticks since boot (Linux ``/proc/<pid>/stat``; empty elsewhere). The
start time tells a dead owner from a new process that got the same pid. An
owner on another host is never declared gone: from here we cannot tell.

>>> is_gone(current())
False
"""

from __future__ import annotations

import functools
import os
import pwd

__all__ = ["current", "is_gone", "user_name"]


def _stat(pid: int) -> tuple[str, str]:
    """(state letter, start time) of a process; empty strings when unknown."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read()
    except OSError:
        return "", ""
    # The command name (field 2) may contain spaces and parentheses: split after it.
    fields = stat[stat.rfind(b")") + 2 :].split()
    if len(fields) <= 19:
        return "", ""
    return fields[0].decode(), fields[19].decode()


def _host() -> str:
    import socket  # on use: reading the registry names no owner (issue 16)

    return socket.gethostname().split(".")[0] or "localhost"


@functools.lru_cache(maxsize=1)
def _me(pid: int) -> str:
    return f"{_host()}:{pid}:{_stat(pid)[1]}"


def current() -> str:
    """This process, as an owner string."""
    return _me(os.getpid())  # keyed by pid: a forked child is another owner


def is_gone(owner: str) -> bool:
    """True when ``owner`` was a process of this host that no longer runs."""
    host, _, rest = owner.partition(":")
    pid_text, _, start = rest.partition(":")
    if host != _host() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass  # alive, someone else's
    state, started = _stat(pid)
    # A zombie has ended, whoever reaps it; a different start time is another process.
    return state == "Z" or (bool(start) and started not in ("", start))


@functools.lru_cache(maxsize=256)
def user_name(uid: int | None = None) -> str:
    """The login name of ``uid`` (default: this process's user), ``uid N`` when the
    user database has none. For reasons such as "cancelled by root".

    >>> user_name(0)
    'root'
    """
    if uid is None:
        uid = os.getuid()
    try:
        return pwd.getpwuid(uid).pw_name
    except (KeyError, OverflowError):
        return f"uid {uid}"
