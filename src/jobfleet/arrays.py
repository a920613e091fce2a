"""Job arrays: which element indices, and how many may run at once.

>>> parse_array("1-10%2").indices[:3], parse_array("1-10%2").max_concurrent
((1, 2, 3), 2)
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from jobfleet.errors import SpecError, shown

__all__ = ["MAX_ARRAY_INDEX", "MAX_ARRAY_SIZE", "ArraySpec", "parse_array"]

#: Arrays larger than this are refused: no scheduler accepts them, and the
#: index list would be held in memory.
MAX_ARRAY_SIZE = 1_000_000
#: Largest array index (nine digits, as the parser reads them).
MAX_ARRAY_INDEX = 999_999_999


@dataclass(frozen=True, slots=True)
class ArraySpec:
    """The element indices of a job array and how many may run at once.

    Attributes:
        indices: sorted, distinct, non-negative indices.
        max_concurrent: at most this many elements run at the same time; None for no limit.
    """

    indices: tuple[int, ...]
    max_concurrent: int | None = None

    def __post_init__(self) -> None:
        for index in self.indices:
            if isinstance(index, bool) or not isinstance(index, int):
                raise SpecError("array", f"indices must be whole numbers, got {shown(index)}")
        indices = tuple(sorted(set(self.indices)))
        if not indices:
            raise SpecError("array", "an array needs at least one index")
        if len(indices) > MAX_ARRAY_SIZE:
            raise SpecError("array", f"more than {MAX_ARRAY_SIZE} elements")
        if indices[0] < 0 or indices[-1] > MAX_ARRAY_INDEX:
            raise SpecError("array", f"indices must be from 0 to {MAX_ARRAY_INDEX}")
        object.__setattr__(self, "indices", indices)
        limit = self.max_concurrent
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)):
            raise SpecError("array.max_concurrent", f"expected a whole number, got {shown(limit)}")
        if limit is not None and limit < 1:
            raise SpecError("array.max_concurrent", f"must be at least 1, got {limit}")

    def __len__(self) -> int:
        return len(self.indices)

    def ranges(self) -> list[tuple[int, int, int]]:
        """The indices as ``(start, stop_inclusive, step)`` runs.

        >>> parse_array("1-5,7,20-30:5").ranges()
        [(1, 5, 1), (7, 7, 1), (20, 30, 5)]
        """
        runs: list[tuple[int, int, int]] = []
        idx = self.indices
        n = len(idx)

        def starts_consecutive(k: int) -> bool:
            return k + 1 < n and idx[k + 1] == idx[k] + 1

        i = 0
        while i < n:
            j = i
            if starts_consecutive(i):
                while starts_consecutive(j):
                    j += 1
                runs.append((idx[i], idx[j], 1))
            elif i + 2 < n:
                # A stepped run of three or more, leaving alone any element that
                # begins a consecutive stretch: "1,3,5-9" rather than "1-5:2,6-9".
                step = idx[i + 1] - idx[i]
                while j + 1 < n and idx[j + 1] - idx[j] == step and not starts_consecutive(j + 1):
                    j += 1
                if j - i < 2:
                    j = i
                runs.append((idx[i], idx[j], step if j > i else 1))
            else:
                runs.append((idx[i], idx[i], 1))
            i = j + 1
        return runs

    def to_text(self) -> str:
        """Canonical text form (SLURM's syntax), e.g. ``1-100%10`` or ``1,3,5-9``."""
        parts = []
        for start, stop, step in self.ranges():
            if start == stop:
                parts.append(str(start))
            elif step == 1:
                parts.append(f"{start}-{stop}")
            else:
                parts.append(f"{start}-{stop}:{step}")
        text = ",".join(parts)
        return f"{text}%{self.max_concurrent}" if self.max_concurrent else text

    def __str__(self) -> str:
        return self.to_text()


_ARRAY_PART_RE = re.compile(r"([0-9]{1,9})(?:-([0-9]{1,9})(?::([0-9]{1,9}))?)?")


def parse_array(text: str, field_name: str = "array") -> ArraySpec:
    """Parse ``1-100``, ``1-100%10``, ``1,3,5-9`` or ``0-20:5`` into an :class:`ArraySpec`.

    >>> parse_array("0-20:5").indices
    (0, 5, 10, 15, 20)
    >>> parse_array("1,3,5-7%2")
    ArraySpec(indices=(1, 3, 5, 6, 7), max_concurrent=2)

    Raises:
        SpecError: the text is not an array specification.
    """
    if not isinstance(text, str):
        raise SpecError(field_name, f"expected text like '1-100%10', got {shown(text)}")
    body = text.strip().replace(" ", "")
    max_concurrent: int | None = None
    if "%" in body:
        body, _, limit = body.partition("%")
        if not re.fullmatch(r"[0-9]{1,9}", limit) or int(limit) < 1:
            raise SpecError(
                field_name,
                f"{shown(text)}: after '%' comes the number of elements at once, e.g. '%10'",
            )
        max_concurrent = int(limit)
    if not body:
        raise SpecError(field_name, f"{shown(text)}: write e.g. '1-100', '1,3,5-9' or '0-20:5'")
    indices: set[int] = set()
    for part in body.split(","):
        match = _ARRAY_PART_RE.fullmatch(part)
        if match is None:
            raise SpecError(
                field_name,
                f"{shown(text)}: cannot read {shown(part)}; "
                "write e.g. '1-100', '1,3,5-9', '0-20:5'",
            )
        start = int(match[1])
        stop = int(match[2]) if match[2] is not None else start
        step = int(match[3]) if match[3] is not None else 1
        if stop < start:
            raise SpecError(
                field_name,
                f"{shown(text)}: range {shown(part)} ends before it starts; "
                f"write it as '{stop}-{start}'",
            )
        if step < 1:
            raise SpecError(
                field_name, f"{shown(text)}: the step in {shown(part)} must be at least 1"
            )
        if (stop - start) // step + 1 + len(indices) > MAX_ARRAY_SIZE:
            raise SpecError(field_name, f"{shown(text)}: more than {MAX_ARRAY_SIZE} elements")
        indices.update(range(start, stop + 1, step))
    return ArraySpec(tuple(sorted(indices)), max_concurrent)
