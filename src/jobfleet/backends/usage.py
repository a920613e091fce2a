"""What jobs used, on its way from a backend's accounting to the poll's statuses."""

from __future__ import annotations

from jobfleet.backends.base import NativeStatus
from jobfleet.usage import Usage

__all__ = ["Used", "add_usage"]

#: What jobs used, as accounting told: native id -> index (None for a single job) -> usage.
Used = dict[str, dict[int | None, Usage]]


def add_usage(statuses: dict[str, NativeStatus], used: Used) -> None:
    """Give each status what its job (or its elements) used."""
    for native_id, by_index in used.items():
        status = statuses.get(native_id)
        if status is None:
            continue
        single = by_index.get(None)
        indexed = {i: u for i, u in by_index.items() if i is not None} if single is None else {}
        statuses[native_id] = NativeStatus(  # not replace(): thousands per poll at times
            status.state, status.exit_code, status.reason, status.elements, single, indexed
        )
