"""The set of values a bulk job has read: exact, and about 8 bytes an id, for millions of ids."""

from __future__ import annotations

import array
import bisect
import operator
import re

__all__ = ["SeenSet"]

_CANONICAL_ID = re.compile(r"0|[1-9][0-9]{0,17}")  # round-trips through a 64-bit int exactly
_CANONICAL_DIGITS = 18  # the longest such id


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
        if numeric and _CANONICAL_ID.fullmatch(value):
            return self._add_key(int(value))
        return self._add_other(value)

    def add_digits(self, value: str) -> bool:
        """`add` for a numeric ``value`` known to be ASCII digits (a bulk job's usual case): no regex."""
        if len(value) <= _CANONICAL_DIGITS and (value[0] != "0" or len(value) == 1):
            return self._add_key(int(value))
        return self._add_other(value)  # a leading zero, or too long for 64 bits: kept as written

    def _add_other(self, value: str) -> bool:
        if value in self._other:
            return False
        self._other.add(value)
        return True

    def _add_key(self, key: int) -> bool:
        if key in self._recent or (self._sorted and self._in_sorted(key)):
            return False
        self._recent.add(key)
        self._merge_when_due()
        return True

    def add_new_digits(self, values: list[str]) -> bool:
        """Add ``values`` at once if they are distinct canonical digit ids none of which was seen; else add none.

        A bulk job's usual batch, decided in a few C-level passes instead of one step per id. ``False``
        says nothing about which value differs: the caller adds them one by one.
        """
        if max(map(len, values)) > _CANONICAL_DIGITS or "0" in map(operator.itemgetter(0), values):
            return False  # too long for 64 bits, or a leading zero (or the id 0, left to `add_digits`)
        keys = list(map(int, values))
        new = set(keys)
        if len(new) != len(keys) or not self._recent.isdisjoint(new):
            return False
        old = self._sorted
        if old and min(keys) <= old[-1] and max(keys) >= old[0] and any(map(self._in_sorted, keys)):
            return False
        self._recent |= new
        self._merge_when_due()
        return True

    def _in_sorted(self, key: int) -> bool:
        i = bisect.bisect_left(self._sorted, key)
        return i < len(self._sorted) and self._sorted[i] == key

    def _merge_when_due(self) -> None:
        if len(self._recent) >= max(self.MERGE_EVERY, len(self._sorted) // self.MERGE_SHARE):
            self._merge()

    def _merge(self) -> None:
        """Merge the set into the array: the array's runs between new keys are copied whole, in C.

        New keys past the array's last one (ids read in ascending order) are appended in one step,
        and when all are, the array is extended where it is.
        """
        keys = sorted(self._recent)
        old = self._sorted
        inside = bisect.bisect_right(keys, old[-1]) if old else 0
        self._recent.clear()
        if not inside:
            old.fromlist(keys)  # all past the end: nothing of the array is copied
            return
        merged, start = array.array("Q"), 0
        for key in keys[:inside]:
            end = bisect.bisect_left(old, key, start)
            merged.extend(old[start:end])
            merged.append(key)
            start = end
        merged.extend(old[start:])
        merged.fromlist(keys[inside:])
        self._sorted = merged
