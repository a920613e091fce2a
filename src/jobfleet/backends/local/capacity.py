"""What the local backend may hand out: cores, memory, GPU ids, CPUs to pin to.

The machine's CPUs are what this user may run on (a container's or cgroup's
cpuset), never the calling process's own affinity: a client pinned by a local
job or started under ``taskset`` says nothing about what other jobs may use.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from jobfleet.errors import ConfigError

__all__ = ["LocalCapacity", "detect_capacity", "inside_a_job", "machine_cpu_ids", "widen_affinity"]


def _gpu_ids() -> list[str]:
    """The GPUs this process may use: ``$CUDA_VISIBLE_DEVICES`` (indices or UUIDs)
    when set, else the NVIDIA device files."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        ids = [d.strip() for d in visible.split(",") if d.strip()]
        # "-1" (and anything after an invalid entry) hides the rest, as in CUDA.
        return ids[: ids.index("-1")] if "-1" in ids else ids
    devices = sorted(
        int(p.name[6:]) for p in Path("/dev").glob("nvidia[0-9]*") if p.name[6:].isdigit()
    )
    return [str(d) for d in devices]


def _every_cpu() -> set[int]:
    """Every CPU id this machine may have (online or not)."""
    own = os.sched_getaffinity(0)
    return set(range(max(os.cpu_count() or 1, max(own, default=0) + 1)))


def widen_affinity() -> None:
    """Let the calling thread run on every CPU its cpuset allows.

    The kernel keeps the affinity inside the cgroup's (or container's) cpuset,
    so this only undoes a narrower affinity inherited from a parent: a pinned
    job or ``taskset``.
    """
    with contextlib.suppress(OSError):  # a kernel refusing it: keep what we have
        os.sched_setaffinity(0, _every_cpu())


def machine_cpu_ids() -> list[int]:
    """The CPUs this user may run jobs on, whatever the calling thread's affinity.

    Read in a short-lived thread that widens its own affinity (affinity is per
    thread on Linux), so the caller's is never changed.
    """
    if not hasattr(os, "sched_getaffinity"):  # pragma: no cover - not Linux
        return list(range(os.cpu_count() or 1))
    found: list[int] = []

    def look() -> None:
        widen_affinity()
        found.extend(sorted(os.sched_getaffinity(0)))

    thread = threading.Thread(target=look, name="jobfleet-cpus", daemon=True)
    thread.start()
    thread.join()
    return found or sorted(os.sched_getaffinity(0))


def inside_a_job() -> bool:
    """True in a process that a jobfleet job started (any backend's)."""
    return bool(os.environ.get("JOBFLEET_JOB_ID"))


@dataclass(frozen=True, slots=True)
class LocalCapacity:
    """What the local backend may hand out: cores, memory in bytes, GPU ids, and
    the CPU ids jobs are pinned to (empty: jobs are not pinned).

    The agent pins to the first ``cores`` CPUs of its own view of the machine;
    ``cpu_ids`` here is the client's view of the same, for its checks.
    """

    cores: int
    memory: int
    gpu_ids: tuple[str, ...] = ()
    cpu_ids: tuple[int, ...] = ()

    @property
    def gpus(self) -> int:
        return len(self.gpu_ids)

    def to_setting(self) -> dict[str, object]:
        """The queue's setting: the agent computes the CPU ids itself."""
        return {
            "cores": self.cores,
            "memory": self.memory,
            "gpu_ids": list(self.gpu_ids),
            "pin_cpus": bool(self.cpu_ids),
        }

    @classmethod
    def from_setting(cls, stored: Mapping[str, object]) -> LocalCapacity:
        """The capacity a queue's setting describes (CPU ids: the first cores of
        this machine, when pinned)."""
        cores = int(str(stored.get("cores", 1)))
        gpus = stored.get("gpu_ids", [])
        gpu_ids = tuple(str(g) for g in gpus) if isinstance(gpus, list) else ()
        return cls(cores, int(str(stored.get("memory", 0))), gpu_ids, stored_cpu_ids(stored))


def stored_cpu_ids(stored: Mapping[str, object]) -> tuple[int, ...]:
    """The CPUs to pin jobs to, from a queue's setting and this machine.

    A setting an older jobfleet wrote lists the ids itself (``cpu_ids``).
    """
    if "pin_cpus" not in stored:
        old = stored.get("cpu_ids", [])
        return tuple(int(str(c)) for c in old) if isinstance(old, list) else ()
    cores = int(str(stored.get("cores", 1)))
    cpus = machine_cpu_ids()
    return tuple(cpus[:cores]) if stored["pin_cpus"] and cores <= len(cpus) else ()


def detect_capacity(
    cores: int | None = None,
    memory_bytes: int | None = None,
    gpus: int | None = None,
    pin_cpus: bool | None = None,
) -> LocalCapacity:
    """What the local backend may hand out; None means detect it.

    Cores are counted on the machine (:func:`machine_cpu_ids`), not in the
    caller's affinity. A configured GPU count takes the first that many visible
    GPUs (or indices 0..N-1 when fewer are visible, e.g. on a machine whose
    devices are hidden). ``pin_cpus`` None pins jobs to CPUs when there is one
    for every core (not when ``cores`` is set higher than that), True always (an
    error otherwise).

    Raises:
        ConfigError: ``pin_cpus`` True with more cores than CPUs to pin them to.
    """
    cpus = machine_cpu_ids()
    if cores is None:
        cores = len(cpus)
    if pin_cpus and cores > len(cpus):
        raise ConfigError(
            f"local.cores is {cores} but this machine lets jobs run on {len(cpus)} CPUs; "
            "lower local.cores or set local.pin_cpus: false",
            key="local.pin_cpus",
        )
    pinned = tuple(cpus[:cores]) if pin_cpus is not False and cores <= len(cpus) else ()
    if memory_bytes is None:
        memory_bytes = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    ids = _gpu_ids()
    if gpus is not None:
        ids = ids[:gpus] if len(ids) >= gpus else [str(i) for i in range(gpus)]
    return LocalCapacity(cores, memory_bytes, tuple(ids), pinned)
