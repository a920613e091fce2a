"""Schedulers' native forms of memory sizes and durations: reading what their
accounting prints, writing what their directives take.

Each scheduler writes sizes and times its own way (SLURM's ``1-00:00:00`` and
``205432K``, Grid Engine's ``h_vmem=100M`` and qacct's ``275.070MB``): these read
them into jobfleet's bytes and seconds (:mod:`jobfleet.units`) and write them back.
A start time's forms (``sbatch --begin``, ``qsub -a``) are with the start times,
in :mod:`jobfleet.units`.
"""

from __future__ import annotations

import functools
import math
import re

__all__ = [
    "format_sge_memory",
    "format_sge_time",
    "format_slurm_memory",
    "format_slurm_time",
    "parse_qacct_memory",
    "parse_sge_memory",
    "parse_sge_seconds",
    "parse_sge_time",
    "parse_slurm_cpu_time",
    "parse_slurm_duration",
    "parse_slurm_rss",
]


# -- SLURM's forms -----------------------------------------------------------------


@functools.lru_cache(maxsize=4096)
def parse_slurm_duration(text: str) -> int | None:
    """Seconds from SLURM's ``[days-][hours:]minutes:seconds``; None if unreadable.

    >>> parse_slurm_duration("0:07"), parse_slurm_duration("1:02:03")
    (7, 3723)
    >>> parse_slurm_duration("2-00:00:01"), parse_slurm_duration("INVALID") is None
    (172801, True)
    """
    days, _, clock = text.strip().rpartition("-")
    parts = clock.split(":")
    if (days and not days.isdigit()) or len(parts) > 3 or not all(p.isdigit() for p in parts):
        return None
    seconds = 0
    for part in parts:
        seconds = seconds * 60 + int(part)
    return seconds + int(days or 0) * 86400


@functools.lru_cache(maxsize=4096)
def parse_slurm_cpu_time(text: str) -> float | None:
    """Seconds from sacct's ``TotalCPU`` (``[days-][hours:]minutes:seconds[.fraction]``,
    e.g. ``00:00.004``); None if unreadable.

    >>> parse_slurm_cpu_time("00:02.512"), parse_slurm_cpu_time("1-00:00:01")
    (2.512, 86401.0)
    """
    whole, dot, fraction = text.strip().partition(".")
    seconds = parse_slurm_duration(whole)
    if seconds is None or (dot and not fraction.isdigit()):
        return None
    return seconds + (float(f"0.{fraction}") if dot else 0.0)


@functools.lru_cache(maxsize=4096)
def parse_slurm_rss(text: str) -> int | None:
    """Bytes from sacct's ``MaxRSS`` (``205432K``, ``1.50G``, a bare count of bytes;
    1024-based); None for empty or unreadable.

    >>> parse_slurm_rss("4764K"), parse_slurm_rss("2M"), parse_slurm_rss("0"), parse_slurm_rss("")
    (4878336, 2097152, 0, None)
    """
    text = text.strip()
    if not text:
        return None
    factor = 1
    if text[-1] in "KMGTP":
        factor = 1024 ** ("KMGTP".index(text[-1]) + 1)
        text = text[:-1]
    try:
        return int(float(text) * factor)
    except ValueError:
        return None


def format_slurm_time(seconds: int) -> str:
    """SLURM's ``--time`` form, days always written.

    >>> format_slurm_time(90), format_slurm_time(90061)
    ('0-00:01:30', '1-01:01:01')
    """
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{days}-{hours:02d}:{minutes:02d}:{secs:02d}"


def format_slurm_memory(nbytes: int) -> str:
    """SLURM's ``--mem`` form: whole MiB, rounded up.

    >>> format_slurm_memory(2**30), format_slurm_memory(2**20 + 1)
    ('1024M', '2M')
    """
    return f"{-(-nbytes // 2**20)}M"


# -- Grid Engine's forms -------------------------------------------------------------

#: Grid Engine's memory multipliers (sge_types(1)): lower case 1000, upper case 1024.
_SGE_MEMORY_UNITS = {"": 1, "k": 1e3, "K": 2**10, "m": 1e6, "M": 2**20, "g": 1e9, "G": 2**30}


def parse_sge_memory(category: str, resource: str) -> float | None:
    """Bytes of a memory request in a qacct category (``-l h_vmem=100M``); None if absent.

    >>> parse_sge_memory("-l h_rt=60,h_vmem=100M", "h_vmem"), parse_sge_memory("", "h_vmem")
    (104857600.0, None)
    >>> parse_sge_memory("-l mem_free=1.5g", "mem_free")
    1500000000.0
    """
    match = re.search(rf"\b{resource}=([0-9.]+)([kKmMgG]?)(?![\w.])", category)
    return float(match[1]) * _SGE_MEMORY_UNITS[match[2]] if match else None


def parse_sge_time(category: str, resource: str) -> float | None:
    """Seconds of a time request in a qacct category (``-l h_rt=1:00:00``); None if absent.

    >>> parse_sge_time("-l h_rt=1:00:05", "h_rt"), parse_sge_time("-l h_rt=90", "h_rt")
    (3605.0, 90.0)
    """
    match = re.search(rf"{resource}=([0-9:]+)", category)
    if not match:
        return None
    seconds = 0
    for part in match[1].split(":"):
        seconds = seconds * 60 + int(part or 0)
    return float(seconds)


def parse_qacct_memory(text: str) -> float | None:
    """Bytes from qacct's ``275.070MB`` (1024-based, as execd's own log shows).

    >>> parse_qacct_memory("1.000KB"), parse_qacct_memory("0.000B"), parse_qacct_memory("x")
    (1024.0, 0.0, None)
    """
    match = re.fullmatch(r"\s*([0-9.]+)([KMGT]?)B\s*", text)
    if not match:
        return None
    return float(match[1]) * 1024.0 ** " KMGT".index(match[2] or " ")


def parse_sge_seconds(text: str) -> float | None:
    """Seconds from qacct's ``ru_wallclock`` (``12s``, ``12.5``); None if unreadable.

    >>> parse_sge_seconds("61s"), parse_sge_seconds(" 2.5"), parse_sge_seconds("")
    (61.0, 2.5, None)
    """
    match = re.match(r"\s*([0-9.]+)", text)
    return float(match[1]) if match else None


def format_sge_time(seconds: int) -> str:
    """Grid Engine's ``h_rt`` form ``H:MM:SS`` (hours unbounded).

    >>> format_sge_time(90), format_sge_time(90061)
    ('0:01:30', '25:01:01')
    """
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}"


def format_sge_memory(nbytes: int, slots: int = 1) -> str:
    """A Grid Engine memory request: ``nbytes`` shared by ``slots``, whole MiB rounded up.

    >>> format_sge_memory(2**30), format_sge_memory(2**30, 3)
    ('1024M', '342M')
    """
    return f"{math.ceil(nbytes / slots / 2**20)}M"
