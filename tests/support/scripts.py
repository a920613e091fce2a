"""Job commands several tests run."""

from __future__ import annotations

#: A command that stops gracefully (exit 0) on SIGUSR1, and waits otherwise.
GRACEFUL = ["sh", "-c", "trap 'echo stopping gracefully; exit 0' USR1; sleep 30 & wait"]
