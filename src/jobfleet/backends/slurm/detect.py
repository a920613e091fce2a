"""Is SLURM on this machine, and does its controller answer (``--backend auto``,
``jobfleet info``)."""

from __future__ import annotations

import re

from jobfleet.backends.detect import Found, probe, silence, which
from jobfleet.runner import Runner

__all__ = ["detect"]

_CONFIG_KEYS = re.compile(
    r"^(AccountingStorageType|MaxArraySize|MaxJobCount)\s*=\s*(\S+)", re.MULTILINE
)


def detect(runner: Runner | None = None) -> Found | None:
    """SLURM's sbatch on PATH, its version (``sinfo --version``), whether slurmctld
    answers (``scontrol ping``), and what its configuration holds that jobs meet."""
    path = which("sbatch")
    if path is None:
        return None
    version = None
    said = probe(["sinfo", "--version"], runner)
    if said is not None and said.ok and said.stdout.split():
        version = said.stdout.split()[-1]
    ping = probe(["scontrol", "ping"], runner)
    if ping is None or not ping.ok or " is UP" not in ping.stdout:
        return Found("slurm", path, version, answered=False, why=silence("scontrol ping", ping))
    shown = probe(["scontrol", "show", "config"], runner)
    config = dict(_CONFIG_KEYS.findall(shown.stdout)) if shown is not None and shown.ok else {}
    storage = config.get("AccountingStorageType")
    accounting = None if storage is None else storage != "accounting_storage/none"
    facts = {"memory unit": "MiB (--mem, --mem-per-cpu; rounded up)"}
    if "MaxArraySize" in config:
        facts["largest array index"] = f"{int(config['MaxArraySize']) - 1} (MaxArraySize - 1)"
    if "MaxJobCount" in config:
        facts["jobs the controller holds"] = config["MaxJobCount"]
    return Found("slurm", path, version, accounting=accounting, facts=facts)
