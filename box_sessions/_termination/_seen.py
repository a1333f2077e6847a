"""The set of values a bulk job has read: exact, and about 8 bytes an id, for millions of ids."""

from __future__ import annotations

import array
import bisect
import re

__all__ = ["SeenSet"]

_CANONICAL_ID = re.compile(r"0|[1-9][0-9]{0,17}")  # round-trips through a 64-bit int exactly


class SeenSet:
    """Exact set of the values a job has read, small enough for millions of ids.

    Canonical digit ids (the usual case) are kept as unsigned 64-bit numbers in a sorted array,
    8 bytes each, with the newest in a set until they are merged in; a million ids take about 8 MB
    instead of about 60 MB as Python strings. Other values (logins, ids with a leading zero) stay
    in a plain set. No false positives: a distinct value is never dropped.

    The set is merged in once it holds `MERGE_EVERY` ids, or a sixteenth of the array if that is
    more: each merge copies the whole array, so a fixed threshold would make n ids cost about
    n² / 131,072 copies (quadratic: hours for 20 million ids); a threshold that grows with the
    array keeps the copies under 17 n in all, for at most a sixteenth more memory.
    """

    MERGE_EVERY = 65_536
    #: The set is merged in once it holds this share of the array (or `MERGE_EVERY` ids, if more).
    MERGE_SHARE = 16

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
        if len(self._recent) >= max(self.MERGE_EVERY, len(self._sorted) // self.MERGE_SHARE):
            self._merge()
        return True

    def _merge(self) -> None:
        """Merge the set into the array: the runs of the array between new keys are copied whole, in C."""
        merged, start = array.array("Q"), 0
        for key in sorted(self._recent):
            end = bisect.bisect_left(self._sorted, key, start)
            merged.extend(self._sorted[start:end])
            merged.append(key)
            start = end
        merged.extend(self._sorted[start:])
        self._sorted = merged
        self._recent.clear()
