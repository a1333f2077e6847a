"""The set of values a bulk job has read: exact, and about 8 bytes an id, for millions of ids."""

from __future__ import annotations

import array
import bisect
import heapq
import re

__all__ = ["SeenSet"]

_CANONICAL_ID = re.compile(r"0|[1-9][0-9]{0,17}")  # round-trips through a 64-bit int exactly


class SeenSet:
    """Exact set of the values a job has read, small enough for millions of ids.

    Canonical digit ids (the usual case) are kept as unsigned 64-bit numbers in a sorted array,
    8 bytes each, with the newest few thousand in a set until they are merged in; a million ids
    take about 8 MB instead of about 60 MB as Python strings. Other values (logins, ids with a
    leading zero) stay in a plain set. No false positives: a distinct value is never dropped.
    """

    MERGE_EVERY = 65_536

    def __init__(self) -> None:
        self._sorted = array.array("Q")
        self._recent: set[int] = set()
        self._other: set[str] = set()

    def add(self, value: str, *, numeric: bool) -> bool:
        """Remember ``value``; return False if it was already there."""
        if not (numeric and _CANONICAL_ID.fullmatch(value)):
            if value in self._other:
                return False
            self._other.add(value)
            return True
        key = int(value)
        if key in self._recent:
            return False
        i = bisect.bisect_left(self._sorted, key)
        if i < len(self._sorted) and self._sorted[i] == key:
            return False
        self._recent.add(key)
        if len(self._recent) >= self.MERGE_EVERY:
            self._sorted = array.array("Q", heapq.merge(self._sorted, sorted(self._recent)))
            self._recent.clear()
        return True
