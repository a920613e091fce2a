"""What HTCondor says of a removed or held job, in jobfleet's words (docs/states.md):
read alike from a job ad (:mod:`.parse`) and from the event log (:mod:`.eventlog`).

A removed job's ``RemoveReason`` (and the 009 event's reason line) is:

* ``via condor_rm (by user alice)``: condor_rm's default reason (src/condor_rm.V6/rm.cpp,
  "via condor_rm"), to which the schedd adds `` (by user <owner>)`` (schedd.cpp
  actOnJobs); ``condor_rm -reason R`` gives ``R (by user alice)``. Reads
  ``cancelled by alice``; another reason is kept after it, one that starts with
  ``cancelled`` stands as it is;
* ``The job attribute PeriodicRemove expression '<expr>' evaluated to TRUE``
  (src/condor_utils/user_job_policy.cpp): jobfleet's walltime when ``<expr>`` names
  :data:`~.submitfile.WALLTIME_ATTR` (``timeout``, ``walltime limit exceeded
  (HH:MM:SS)``), its memory clause when the job was held with code 34
  (``out_of_memory``), anything else (the user's own policy, the system's
  ``SYSTEM_PERIODIC_REMOVE``) ``cancelled: <the reason>``.
"""

from __future__ import annotations

import re

from jobfleet.backends.command import Element
from jobfleet.backends.htcondor.submitfile import WALLTIME_ATTR, memory_removed
from jobfleet.states import MEMORY_EXCEEDED, JobState, walltime_exceeded

__all__ = ["cancelled", "held", "removed"]

#: The schedd's suffix naming who removed (held, released) a job.
_BY_USER = re.compile(r"^(?P<how>.*?)\s*\(by user (?P<user>[^()]*)\)$", re.DOTALL)
#: condor_rm's own reason, when none was given (rm.cpp).
_CONDOR_RM = "via condor_rm"


def cancelled(reason: str | None) -> str:
    """The reason of a job removed with ``reason`` (its RemoveReason), by a user or a
    policy that is not jobfleet's walltime or memory.

    >>> cancelled("via condor_rm (by user alice)")
    'cancelled by alice'
    >>> cancelled("via condor_rm -forcex (by user alice)")
    'cancelled by alice (via condor_rm -forcex)'
    >>> cancelled(None)
    'cancelled (HTCondor did not say by whom)'
    """
    text = (reason or "").strip()
    if not text:
        return "cancelled (HTCondor did not say by whom)"
    match = _BY_USER.match(text)
    if match is None or not match["user"].strip():
        how = match["how"] if match is not None else text
        return how if how.startswith("cancelled") else f"cancelled: {how}"
    how, user = match["how"].strip(), match["user"].strip()
    if how.startswith("cancelled"):
        return f"{how} (removed by {user})"
    if how in ("", _CONDOR_RM):
        return f"cancelled by {user}"
    return f"cancelled by {user} ({how})"


def removed(
    reason: str | None,
    *,
    walltime_s: int | None,
    hold_code: object = None,
    hold_subcode: object = None,
    hold_reason: str | None = None,
) -> Element:
    """How a removed job ended: ``reason`` is its RemoveReason; ``walltime_s`` the limit
    jobfleet's periodic_remove enforced; the hold it was removed from (a removed job's
    ``LastHoldReasonCode``, ``LastHoldReasonSubCode``, ``LastHoldReason``)."""
    text = (reason or "").strip()
    if memory_removed(text, hold_code, hold_subcode):
        why = hold_reason or "HoldReasonCode 34"
        return JobState.OUT_OF_MEMORY, None, f"{MEMORY_EXCEEDED} ({why})"
    if "PeriodicRemove" in text and WALLTIME_ATTR in text:
        return JobState.TIMEOUT, None, walltime_exceeded(walltime_s)
    return JobState.CANCELLED, None, cancelled(text)


def held(reason: object, code: object) -> str:
    """``held: <HoldReason> (HoldReasonCode N)``; without a code, without the parentheses.

    >>> held("via condor_hold (by user alice)", 1), held("", None)
    ('held: via condor_hold (by user alice) (HoldReasonCode 1)', 'held: no reason given')
    """
    why = str(reason).strip() if reason else ""
    text = f"held: {why or 'no reason given'}"
    return text if code is None else f"{text} (HoldReasonCode {code})"
