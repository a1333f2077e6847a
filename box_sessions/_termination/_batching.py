"""Batching: a bulk job's inputs read lazily, checked, de-duplicated and grouped into batches.

Inputs are read in order (user ids, then user logins, then group ids). Ids and logins share the
users endpoint; group ids go to the groups endpoint, so a change of endpoint closes a batch. A
value that is not valid is rejected (reported, never sent); a value seen before is counted as a
duplicate. This is all ``--dry-run`` needs: it plans batches without sending them.
"""

from __future__ import annotations

import inspect
import itertools
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator, Hashable, Iterable, Iterator
from typing import Any, TypeAlias

import attrs

from .._validation import check_iterable, check_positive_int, normalise_id, normalise_login, shown
from ._endpoints import FIELDS, Field, Item, Kind, request_of
from ._report import Failure
from ._seen import SeenSet

__all__ = ["Batch", "Batcher", "Source"]

Source: TypeAlias = "Iterable[Any] | AsyncIterable[Any] | None"


@attrs.define
class Batch:
    """Values for one request to one endpoint."""

    kind: Kind
    items: list[Item]


#: The endpoint each field's values go to.
_KIND: dict[Field, Kind] = {"user_ids": "users", "user_logins": "users", "group_ids": "groups"}


def _all_digit_strings(values: list[Any]) -> bool:
    """Whether every value is a non-empty ``str`` of ASCII digits (`normalise_id`'s rule), in C-level passes.

    Exactly ``str``: a subclass may answer ``len`` or indexing otherwise than its text.
    """
    if not values or set(map(type, values)) != {str}:
        return False
    joined = "".join(values)
    return joined.isascii() and joined.isdigit() and all(values)


def _invalid_key(raw: object) -> Hashable:
    """What tells one bad value from another: the value with its type (``7`` is not ``"7"`` nor ``True``)."""
    try:
        hash(raw)
    except TypeError:
        return (type(raw), shown(raw))  # a list, a dict: told apart by how it reads
    return (type(raw), raw)


class Batcher:
    """Turns a job's three inputs into batches, one at a time, as they are needed.

    Args:
        user_ids, user_logins, group_ids: The inputs (any iterable or async iterable, or ``None``).
        batch_size: Values in one batch, at most.

    Raises:
        TypeError, ValueError: an input is not an iterable (a bare string among them), none is
            given, or ``batch_size`` is not a positive int.
    """

    def __init__(self, *, user_ids: Source, user_logins: Source, group_ids: Source, batch_size: int) -> None:
        sources = {"user_ids": user_ids, "user_logins": user_logins, "group_ids": group_ids}
        for argument, source in sources.items():
            if source is not None:
                check_iterable(source, argument, allow_async=True)
        if all(source is None for source in sources.values()):
            raise ValueError("give at least one of user_ids, user_logins and group_ids")
        self.batch_size = check_positive_int(batch_size, "batch_size")
        self._sources: list[tuple[Field, Source]] = [(f, sources[f]) for f in FIELDS]
        self._given = list(self._sources)
        self._field: Field = FIELDS[0]
        self._sync: Iterator[Any] | None = None  # the input being read, when a plain iterable ...
        self._async: AsyncIterator[Any] | None = None  # ... or an async one
        self._pending: Batch | None = None
        self._rejected: list[Failure] = []
        self._seen: dict[Field, SeenSet] = {f: SeenSet() for f in FIELDS}
        self._seen_invalid: dict[Field, set[Hashable]] = {f: set() for f in FIELDS}
        self.read = 0
        """Input values read so far."""
        self.duplicates = 0
        """Input values dropped because they were read before."""

    def shrink(self, size: int) -> None:
        """Make later batches at most ``size`` values (Box said a batch was too large)."""
        self.batch_size = max(1, min(self.batch_size, size))

    def take_rejected(self) -> list[Failure]:
        """The values rejected since the last call, each as a `Failure` with a `ValueError`."""
        rejected, self._rejected = self._rejected, []
        return rejected

    def _open_next(self) -> bool:
        """Start reading the next input; ``False`` when none is left."""
        self._sync = self._async = None
        while self._sources:
            self._field, source = self._sources.pop(0)
            if source is None:
                continue
            if isinstance(source, AsyncIterable):
                self._async = aiter(source)
            else:
                self._sync = iter(source)
            return True
        return False

    def _fill_plain(self, values: Iterator[Any], field: Field) -> Batch | None:
        """`_fill` for a plain iterable, ids taken a batch's room at a time when they are all new digit strings.

        Exactly the room left in the pending batch is read (what one-at-a-time reading would read
        to fill it; an input that ends short is not asked again), and checked in a few C-level
        passes; a slice with anything else in it (an int, a bad value, a duplicate, a leading zero)
        goes through `_fill` value by value, with the same outcome. Values read before the input
        raised are checked in as they would be one at a time.
        """
        kind = _KIND[field]
        while True:
            pending = self._pending
            if field == "user_logins" or (pending is not None and pending.kind != kind):
                return self._fill(values, field)
            room = max(1, self.batch_size - (0 if pending is None else len(pending.items)))
            chunk: list[Any] = []
            try:
                chunk.extend(itertools.islice(values, room))
            except BaseException:
                self._fill(chunk, field)  # fewer than the room: it fills nothing
                raise
            if _all_digit_strings(chunk) and self._seen[field].add_new_digits(chunk):
                self.read += len(chunk)
                if pending is None:
                    pending = self._pending = Batch(kind, [])
                pending.items.extend(zip(itertools.repeat(field), chunk))
                ready = self._take_full()
            else:
                ready = self._fill(chunk, field)  # only the chunk's last value can fill the batch
            if ready is not None or len(chunk) < room:
                return ready  # a batch, or the input ended

    def _take_full(self) -> Batch | None:
        """The pending batch if it is full (``batch_size`` may have shrunk since it began), taken."""
        pending = self._pending
        if pending is None or len(pending.items) < self.batch_size:
            return None
        self._pending = None
        return pending

    def _fill(self, values: Iterable[Any], field: Field) -> Batch | None:
        """Check ``values`` of ``field`` into the pending batch until one is ready to send (returned), or they run out.

        Read one at a time, nothing ahead: a stopped job's count of values read says where it left
        its input. A string of digits, a bulk job's usual id, is decided here (`normalise_id`'s
        rule); anything else goes through `_accept`.
        """
        kind = _KIND[field]
        digits = field != "user_logins"
        seen = self._seen[field]
        read = 0
        try:
            for raw in values:
                read += 1
                if digits and type(raw) is str and raw.isascii() and raw.isdigit():
                    if not seen.add_digits(raw):
                        self.duplicates += 1
                        continue
                    value = raw
                else:
                    accepted = self._accept(field, raw)
                    if accepted is None:
                        continue
                    value = accepted
                ready = None
                pending = self._pending
                if pending is not None and (pending.kind != kind or len(pending.items) >= self.batch_size):
                    ready, pending = pending, None  # the endpoint changes, or it is full (a shrink)
                if pending is None:
                    pending = self._pending = Batch(kind, [])
                pending.items.append((field, value))
                if ready is None:
                    ready = self._take_full()
                if ready is not None:
                    return ready
        finally:
            self.read += read
        return None

    def _accept(self, field: Field, raw: object) -> str | None:
        """Normalise one value; a bad one is rejected once, a duplicate counted. Returns the value to send."""
        try:
            value = normalise_login(raw, field) if field == "user_logins" else normalise_id(raw, field)
        except (TypeError, ValueError) as exc:
            key = _invalid_key(raw)
            if key in self._seen_invalid[field]:
                self.duplicates += 1  # every distinct input ends in one place, a bad one too
                return None
            self._seen_invalid[field].add(key)
            error = exc if isinstance(exc, ValueError) else ValueError(str(exc))
            self._rejected.append(Failure(field, raw, error))
            return None
        if not self._seen[field].add(value, numeric=field != "user_logins"):
            self.duplicates += 1
            return None
        return value

    async def next_batch(self) -> Batch | None:
        """Read until a batch is full, the endpoint changes or input ends; ``None`` at the end.

        A plain iterable is read in a plain loop; only an async one is awaited value by value.
        """
        while True:
            if (full := self._take_full()) is not None:
                return full  # full already: ``batch_size`` shrank since it began
            if self._sync is None and self._async is None and not self._open_next():
                batch, self._pending = self._pending, None
                return batch
            field = self._field
            if self._sync is not None:
                if (ready := self._fill_plain(self._sync, field)) is not None:
                    return ready
                self._sync = None
            elif self._async is not None:
                async for raw in self._async:
                    if (ready := self._fill((raw,), field)) is not None:
                        return ready
                self._async = None

    async def plan(self) -> AsyncGenerator[tuple[str, dict[str, list[str]]] | Failure, None]:
        """Yield what a job would send, without sending: ``(path, body)`` per batch, and each
        rejected input as a `Failure`. Duplicates are counted in `duplicates`."""
        try:
            while True:
                batch = await self.next_batch()
                for failure in self.take_rejected():
                    yield failure
                if batch is None:
                    return
                yield request_of(batch.kind, batch.items)
        finally:
            await self.aclose()

    async def aclose(self) -> None:
        """Close the inputs: ours, and an async generator the caller gave (nobody else can resume it)."""
        self._sync = self._async = None
        self._sources.clear()
        for _, source in self._given:
            if inspect.isasyncgen(source):
                await source.aclose()
