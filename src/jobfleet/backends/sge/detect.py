"""Is Grid Engine on this machine, and does its qmaster answer (``--backend auto``,
``jobfleet info``). PBS and Torque have a ``qstat`` too: Grid Engine's is told by
the first line of ``qstat -help`` (``SGE 8.1.9``, ``UGE 8.6.1``, ``OGS/GE 2011.11``)."""

from __future__ import annotations

import re

from jobfleet.backends.detect import Found, probe, silence, which
from jobfleet.runner import Runner

__all__ = ["detect"]

_BANNER = re.compile(r"(SGE|UGE|OGS/GE|GE|Grid Engine)\s+(\S+)")
_CONF_KEYS = re.compile(r"^(max_aj_tasks|max_u_jobs)\s+(\S+)", re.MULTILINE)


def detect(runner: Runner | None = None) -> Found | None:
    """Grid Engine's qsub on PATH, its version, whether qmaster answers
    (``qconf -ss``), and its array limit (``qconf -sconf``)."""
    path = which("qsub")
    if path is None or which("qstat") is None:
        return None
    helped = probe(["qstat", "-help"], runner)
    first = (helped.stdout.splitlines() or [""])[0] if helped is not None else ""
    banner = _BANNER.match(first)
    if banner is None:
        return None  # another scheduler's qstat (PBS, Torque)
    version = f"{banner[1]} {banner[2]}"
    hosts = probe(["qconf", "-ss"], runner)
    if hosts is None or not hosts.ok:
        return Found("sge", path, version, answered=False, why=silence("qconf -ss", hosts))
    conf = probe(["qconf", "-sconf"], runner)
    keys = dict(_CONF_KEYS.findall(conf.stdout)) if conf is not None and conf.ok else {}
    facts = {"memory unit": "h_vmem per slot, in whole KiB/MiB/GiB (K, M, G)"}
    if "max_aj_tasks" in keys:
        facts["largest array"] = f"{keys['max_aj_tasks']} tasks (max_aj_tasks)"
    if keys.get("max_u_jobs", "0") != "0":
        facts["jobs per user"] = keys["max_u_jobs"]
    return Found("sge", path, version, accounting=which("qacct") is not None, facts=facts)
