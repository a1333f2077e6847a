"""Batching a job's inputs: a plain iterable's fast path decides exactly what one value at a time would.

A plain list of new digit strings (a bulk job's usual input) is checked a batch's room at a time
in C-level passes; an async iterable is read one value at a time. Both must give the same
batches, rejections, duplicate counts and reads, and read the input no further ahead.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from box_sessions._termination._batching import Batcher
from box_sessions._termination._seen import SeenSet


def _value(rng: random.Random, pool: int) -> Any:
    """A value as jobs meet them: mostly new or repeated digit strings, sometimes anything else."""
    roll = rng.random()
    if roll < 0.80:
        return str(10_000_000 + rng.randrange(pool))
    return rng.choice(
        [
            10_000_000 + rng.randrange(pool),  # an int, the same id as its string
            "0",
            "007",
            "7",
            "",
            " 12",
            "12a",
            "١٢",  # Arabic-Indic digits: not ASCII
            "9" * 19,  # too long for 64 bits: kept as text
            "9" * 18,
            None,
            True,
            -5,
            4.0,
        ]
    )


class _Pulled:
    """An iterator that counts the values taken from it."""

    def __init__(self, values: list[Any]) -> None:
        self._values = iter(values)
        self.pulled = 0

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        value = next(self._values)
        self.pulled += 1
        return value


async def _one_by_one(values: list[Any], counter: list[int]) -> AsyncIterator[Any]:
    for value in values:
        counter[0] += 1
        yield value


async def _steps(batcher: Batcher, pulled: Any) -> list[tuple[Any, ...]]:
    """Every step of the job: the batch, what was rejected with it, the counts, how far the input was read."""
    steps = []
    while True:
        batch = await batcher.next_batch()
        rejected = [(f.field, repr(f.value), str(f.error)) for f in batcher.take_rejected()]
        items = None if batch is None else (batch.kind, list(batch.items))
        steps.append((items, rejected, batcher.read, batcher.duplicates, pulled()))
        if batch is None:
            return steps


@pytest.mark.parametrize("seed", range(40))
async def test_a_plain_list_is_batched_as_one_value_at_a_time(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Same batches, rejections, counts and reads, through merges of the seen set, in random and ascending order."""
    monkeypatch.setattr(SeenSet, "MERGE_EVERY", 64)  # the real threshold, scaled down with the job
    rng = random.Random(seed)
    pool = rng.choice([50, 400, 5_000])
    size = rng.choice([1, 3, 10, 100])
    if seed % 4 == 0:  # ascending, new ids only: the fast path all along, merges at the array's end
        user_ids: list[Any] = [str(10_000_000 + i) for i in range(rng.randrange(500, 2_000))]
    else:
        user_ids = [_value(rng, pool) for _ in range(rng.randrange(200, 1_500))]
    group_ids = [_value(rng, pool) for _ in range(rng.randrange(0, 300))]
    logins = [rng.choice(["a@example.com", "b@example.com", "bad", 7]) for _ in range(rng.randrange(0, 30))]

    plain = [_Pulled(user_ids), _Pulled(logins), _Pulled(group_ids)]
    fast = Batcher(user_ids=plain[0], user_logins=plain[1], group_ids=plain[2], batch_size=size)
    counter = [0]
    slow = Batcher(
        user_ids=_one_by_one(user_ids, counter),
        user_logins=_one_by_one(logins, counter),
        group_ids=_one_by_one(group_ids, counter),
        batch_size=size,
    )
    fast_steps = await _steps(fast, lambda: sum(p.pulled for p in plain))
    slow_steps = await _steps(slow, lambda: counter[0])
    assert fast_steps == slow_steps
    sent = [item for items, *_ in fast_steps if items is not None for item in items[1]]
    assert len(sent) == len(set(sent))  # nothing sent twice (an id may be a user id and a group id)
    assert fast_steps[-1][2] == len(user_ids) + len(logins) + len(group_ids)  # every value read


async def test_a_plain_input_is_read_no_further_than_the_batch_needs() -> None:
    """A stopped job's count of values read is where it left its input: nothing is read ahead."""
    ids = _Pulled([str(10_000_000 + i) for i in range(1_000)])
    batcher = Batcher(user_ids=ids, user_logins=None, group_ids=None, batch_size=100)
    batch = await batcher.next_batch()
    assert batch is not None
    assert len(batch.items) == 100
    assert ids.pulled == batcher.read == 100
    with_a_duplicate = _Pulled(["1", "2", "1", "3"])
    batcher = Batcher(user_ids=with_a_duplicate, user_logins=None, group_ids=None, batch_size=3)
    batch = await batcher.next_batch()
    assert batch is not None
    assert [value for _, value in batch.items] == ["1", "2", "3"]
    assert with_a_duplicate.pulled == batcher.read == 4
    assert batcher.duplicates == 1
