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


class _FailsOnce:
    """A plain iterator that raises once between its values, then goes on (a reader that retries)."""

    def __init__(self, values: list[Any], fail_at: int) -> None:
        self._values = list(values)
        self._fail_at = fail_at
        self._i = 0
        self._failed = False
        self.nexts = 0

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        self.nexts += 1
        if self._i == self._fail_at and not self._failed:
            self._failed = True
            raise RuntimeError("the input failed")
        if self._i >= len(self._values):
            raise StopIteration
        self._i += 1
        return self._values[self._i - 1]


async def _batches_through_errors(batcher: Batcher) -> list[Any]:
    steps: list[Any] = []
    while True:
        try:
            batch = await batcher.next_batch()
        except RuntimeError:
            steps.append(("raised", batcher.read))
            continue
        steps.append((None if batch is None else [v for _, v in batch.items], batcher.read))
        if batch is None:
            return steps


async def test_values_read_before_the_input_raised_are_kept_and_counted() -> None:
    """An input that raises half-way through a batch's room loses none of the values it gave before."""
    values = ["1", "2", "3", "4"]
    plain = Batcher(user_ids=_FailsOnce(values, 2), user_logins=None, group_ids=None, batch_size=3)

    async def one_by_one() -> AsyncIterator[Any]:
        for value in values[:2]:
            yield value
        raise RuntimeError("the input failed")

    expected = [("raised", 2), (["1", "2", "3"], 3), (["4"], 4), (None, 4)]
    assert await _batches_through_errors(plain) == expected
    stopped = Batcher(user_ids=one_by_one(), user_logins=None, group_ids=None, batch_size=100)
    with pytest.raises(RuntimeError):
        await stopped.next_batch()
    assert stopped.read == 2  # where the job left its input, as the plain one says too


async def test_an_input_that_ended_is_not_asked_again() -> None:
    """Once a plain input has ended, it is not read again (a terminal's stdin would wait for a second Ctrl-D)."""
    ids = _FailsOnce(["1", "2"], fail_at=-1)
    batcher = Batcher(user_ids=ids, user_logins=None, group_ids=None, batch_size=100)
    batch = await batcher.next_batch()
    assert batch is not None
    assert [v for _, v in batch.items] == ["1", "2"]
    assert ids.nexts == 3  # two values and the one StopIteration


class _Head(str):
    def __getitem__(self, index: Any) -> str:
        return "x"


class _Short(str):
    def __len__(self) -> int:
        return 1


async def test_a_str_subclass_is_checked_by_its_text(monkeypatch: pytest.MonkeyPatch) -> None:
    """A str subclass whose len or indexing misreport its text is batched as the text says."""
    monkeypatch.setattr(SeenSet, "MERGE_EVERY", 1)  # every id merged into the array at once
    values = [_Head("007"), "7", _Short("9" * 25)]
    batcher = Batcher(user_ids=values, user_logins=None, group_ids=None, batch_size=1)
    sent = []
    while (batch := await batcher.next_batch()) is not None:
        sent += [str(v) for _, v in batch.items]
    assert sent == ["007", "7", "9" * 25]  # "7" is not "007"; 25 digits kept as text, not as a 64-bit key
    assert batcher.duplicates == 0


async def test_an_int_too_long_to_write_is_rejected_by_name() -> None:
    """An int past the interpreter's 4,300 digits is one rejected input, not a crash of the job."""
    batcher = Batcher(user_ids=["1", 10**5000, "2"], user_logins=None, group_ids=None, batch_size=10)
    batch = await batcher.next_batch()
    assert batch is not None
    assert [v for _, v in batch.items] == ["1", "2"]
    (rejected,) = batcher.take_rejected()
    assert "user_ids" in str(rejected.error)
    assert "16,610 bits" in str(rejected.error)
    assert rejected.to_dict()["value"] == "<an int of 16,610 bits>"


async def test_bad_values_of_different_types_are_told_apart() -> None:
    """``-1`` and the text ``"int:-1"`` are two bad inputs, each reported, neither a duplicate of the other."""
    batcher = Batcher(user_ids=[-1, "int:-1", -1], user_logins=[7, "int:7"], group_ids=None, batch_size=10)
    assert await batcher.next_batch() is None
    assert [f.value for f in batcher.take_rejected()] == [-1, "int:-1", 7, "int:7"]
    assert batcher.duplicates == 1  # the second -1


async def test_a_shrunk_batch_size_holds_for_the_batch_already_begun() -> None:
    """After ``shrink(1)``, no batch carries more than one value, the one begun before it included."""
    batcher = Batcher(user_ids=["1", "2", "3"], user_logins=None, group_ids=["4", "5", "6"], batch_size=4)
    first = await batcher.next_batch()
    assert first is not None
    assert [v for _, v in first.items] == ["1", "2", "3"]
    batcher.shrink(1)
    sizes = []
    while (batch := await batcher.next_batch()) is not None:
        sizes.append(len(batch.items))
    assert sizes == [1, 1, 1]
