"""Batching: a bulk job's inputs read lazily, checked, de-duplicated and grouped into batches.

Inputs are read in order (user ids, then user logins, then group ids). Ids and logins share the
users endpoint; group ids go to the groups endpoint, so a change of endpoint closes a batch. A
value that is not valid is rejected (reported, never sent); a value seen before is counted as a
duplicate. This is all ``--dry-run`` needs: it plans batches without sending them.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncGenerator, AsyncIterable, Iterable
from typing import Any, TypeAlias

import attrs

from .._validation import check_iterable, check_positive_int, normalise_id, normalise_login
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
        self._items = self._read_items()
        self._pending: Batch | None = None
        self._rejected: list[Failure] = []
        self._seen: dict[Field, SeenSet] = {f: SeenSet() for f in FIELDS}
        self._seen_invalid: dict[Field, set[str]] = {f: set() for f in FIELDS}
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

    async def _read_items(self) -> AsyncGenerator[tuple[Field, object], None]:
        for field, source in self._sources:
            if source is None:
                continue
            if isinstance(source, AsyncIterable):
                async for value in source:
                    yield field, value
            else:
                for value in source:
                    yield field, value

    def _accept(self, field: Field, raw: object) -> str | None:
        """Normalise one value; a bad one is rejected once, a duplicate counted. Returns the value to send."""
        try:
            value = normalise_login(raw, field) if field == "user_logins" else normalise_id(raw, field)
        except (TypeError, ValueError) as exc:
            key = raw if isinstance(raw, str) else f"{type(raw).__name__}:{raw!r}"
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
        """Read until a batch is full, the endpoint changes or input ends; ``None`` at the end."""
        while True:
            try:
                field, raw = await anext(self._items)
            except StopAsyncIteration:
                batch, self._pending = self._pending, None
                return batch
            self.read += 1
            value = self._accept(field, raw)
            if value is None:
                continue
            kind: Kind = "groups" if field == "group_ids" else "users"
            ready = None
            if self._pending is not None and self._pending.kind != kind:
                ready, self._pending = self._pending, None
            if self._pending is None:
                self._pending = Batch(kind, [])
            self._pending.items.append((field, value))
            if ready is not None:
                return ready
            if len(self._pending.items) >= self.batch_size:
                batch, self._pending = self._pending, None
                return batch

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
        await self._items.aclose()
        for _, source in self._sources:
            if inspect.isasyncgen(source):
                await source.aclose()
