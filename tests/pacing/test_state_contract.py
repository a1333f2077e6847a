"""The `PacingState` contract: the same cases against every implementation, so they cannot drift.

The in-process state is Python, the Redis state is Lua; both run here: the schedule (GCRA),
slots given back, the cool-down, the rate record going down (stored only after the record it was
computed from) and its age and count of accepted answers going up, and what two clients sharing
one state see of each other.
"""

from __future__ import annotations

import itertools
import random

import pytest

from box_sessions import PacingAnswer, PacingState, RateRecord, Refusal, Reservation

from .conftest import Contract


async def reserve(
    state: PacingState,
    interval: float = 1.0,
    *,
    burst: int = 1,
    epoch: int | None = None,
    max_wait: float | None = None,
    max_cooldown: float | None = None,
) -> Reservation:
    answer = await state.reserve(
        interval=interval, burst=burst, epoch=epoch, max_wait=max_wait, max_cooldown=max_cooldown
    )
    assert isinstance(answer, Reservation), answer
    return answer


def lowered(rate: float, epoch: int = 1) -> RateRecord:
    return RateRecord(rate=rate, ceiling=rate * 1.1, confirmed=0, epoch=epoch)


# -- the schedule --------------------------------------------------------------------------------


async def test_slots_are_spaced_one_interval_apart(contract: Contract) -> None:
    """Four reservations at one a second get slots exactly one second apart, the first at once."""
    slots = [await reserve(contract.one) for _ in range(4)]
    assert slots[0].wait == 0.0
    times = [contract.slot_time(slot) for slot in slots]
    assert [b - a for a, b in itertools.pairwise(times)] == pytest.approx([1.0, 1.0, 1.0], abs=1e-6)


async def test_two_clients_take_slots_of_one_schedule(contract: Contract) -> None:
    """Slots reserved by two clients in turn are spaced as if one client took them all."""
    slots = [await reserve(state) for state in (contract.one, contract.two, contract.one, contract.two)]
    times = [contract.slot_time(slot) for slot in slots]
    assert [b - a for a, b in itertools.pairwise(times)] == pytest.approx([1.0, 1.0, 1.0], abs=1e-6)


async def test_burst_lets_the_first_slots_start_at_once(contract: Contract) -> None:
    """With burst 3, three slots start at once, and the fourth one interval after the first."""
    slots = [await reserve(contract.one, burst=3) for _ in range(4)]
    assert [slot.wait for slot in slots[:3]] == [0.0, 0.0, 0.0]
    assert contract.slot_time(slots[3]) - contract.slot_time(slots[0]) == pytest.approx(1.0, abs=1e-6)


async def test_idle_time_is_not_banked_beyond_the_burst(contract: Contract) -> None:
    """After a quiet spell, one slot starts at once and the next one interval later, not a spell's worth."""
    await reserve(contract.one, interval=0.1)
    await contract.advance(0.5)
    first, second = [await reserve(contract.two, interval=0.1) for _ in range(2)]
    assert first.wait == 0.0
    assert contract.slot_time(second) - contract.slot_time(first) == pytest.approx(0.1, abs=1e-6)


async def test_a_refusal_for_a_long_wait_keeps_no_slot(contract: Contract) -> None:
    """A reservation refused for waiting longer than max_wait leaves the schedule as it was."""
    first = await reserve(contract.one)
    refusal = await contract.two.reserve(interval=1.0, burst=1, epoch=None, max_wait=0.5, max_cooldown=None)
    assert isinstance(refusal, Refusal)
    assert 0.5 < refusal.wait <= 1.0
    assert contract.slot_time(await reserve(contract.two)) - contract.slot_time(first) == pytest.approx(1.0, abs=1e-6)


async def test_a_slot_given_back_at_the_end_is_the_next_one(contract: Contract) -> None:
    """The last slot given back by one client is the next slot of the other."""
    await reserve(contract.one)
    last = await reserve(contract.one)
    await contract.one.give_back(last)
    assert contract.slot_time(await reserve(contract.two)) == contract.slot_time(last)


async def test_a_slot_given_back_in_the_middle_is_reused_once(contract: Contract) -> None:
    """A slot given back between two others is taken by the next reservation, and not by the one after."""
    first = await reserve(contract.one)
    middle = await reserve(contract.one)
    await reserve(contract.one)
    await contract.one.give_back(middle)
    assert contract.slot_time(await reserve(contract.two)) == contract.slot_time(middle)
    after = await reserve(contract.two)
    assert contract.slot_time(after) - contract.slot_time(first) == pytest.approx(3.0, abs=1e-6)


async def test_slots_given_back_in_any_order_empty_the_schedule(contract: Contract) -> None:
    """Ten slots given back in a random order leave the next reservation free to go at once."""
    slots = [await reserve(contract.one) for _ in range(10)]
    random.Random(3).shuffle(slots)
    for slot in slots:
        await contract.one.give_back(slot)
    assert (await reserve(contract.two)).wait == 0.0


async def test_a_slot_of_another_state_is_not_taken_back(contract: Contract) -> None:
    """A reservation this state did not make changes nothing when given back."""
    first = await reserve(contract.one)
    await contract.one.give_back(Reservation(wait=0.0, reading=first.reading, key="not a slot"))
    assert contract.slot_time(await reserve(contract.two)) - contract.slot_time(first) == pytest.approx(1.0, abs=1e-6)


async def test_interval_zero_is_only_the_cool_down(contract: Contract) -> None:
    """Without a schedule (interval 0) every reservation goes at once, until a cool-down holds them."""
    assert [(await reserve(contract.one, interval=0.0)).wait for _ in range(3)] == [0.0, 0.0, 0.0]
    await contract.one.record(PacingAnswer(status=429, cooldown=5.0))
    held = await reserve(contract.two, interval=0.0)
    assert 4.0 < held.wait == pytest.approx(held.reading.cooldown, abs=1e-6)


# -- the cool-down -------------------------------------------------------------------------------


async def test_a_429_holds_every_client_until_its_cool_down_ends(contract: Contract) -> None:
    """A 429's cool-down recorded by one client: the other's next slot starts when it ends, and says how long."""
    reading = await contract.one.record(PacingAnswer(status=429, cooldown=3.0))
    assert 2.5 < reading.cooldown <= 3.0
    slot = await reserve(contract.two)
    assert 2.5 < slot.reading.cooldown <= 3.0
    assert slot.wait == pytest.approx(slot.reading.cooldown, abs=1e-6)


async def test_a_shorter_cool_down_does_not_cut_a_longer_one(contract: Contract) -> None:
    """A cool-down of 1 s recorded after one of 3 s leaves the 3 s."""
    await contract.one.record(PacingAnswer(status=429, cooldown=3.0))
    reading = await contract.two.record(PacingAnswer(status=429, cooldown=1.0))
    assert reading.cooldown > 2.0


async def test_a_cool_down_longer_than_max_cooldown_is_refused(contract: Contract) -> None:
    """A reservation that would wait out more cool-down than it may is refused, says how long, and keeps nothing."""
    await contract.one.record(PacingAnswer(status=429, cooldown=5.0))
    refusal = await contract.two.reserve(interval=1.0, burst=1, epoch=None, max_wait=None, max_cooldown=1.0)
    assert isinstance(refusal, Refusal)
    assert 4.0 < refusal.reading.cooldown <= 5.0
    first = await reserve(contract.two)  # nothing was kept: the first slot is the cool-down's end
    assert first.wait == pytest.approx(first.reading.cooldown, abs=1e-6)


async def test_a_429_without_a_cool_down_holds_nobody(contract: Contract) -> None:
    """A 429 recorded without a cool-down (none asked for) leaves the schedule free."""
    await contract.one.record(PacingAnswer(status=429))
    assert (await reserve(contract.two)).wait == 0.0


# -- the rate record: down, and the age and answers it goes up with ---------------------------


async def test_a_lowered_rate_is_stored_and_read_by_every_client(contract: Contract) -> None:
    """A 429's lowered rate, computed from epoch 0, is stored as epoch 1 with no answers counted, and read by all."""
    await contract.two.record(PacingAnswer(status=202))
    reading = await contract.one.record(PacingAnswer(status=429, lowered=lowered(4.5)))
    assert reading.record == lowered(4.5)
    assert reading.accepted == 0
    seen = (await reserve(contract.two)).reading
    assert seen.record == lowered(4.5)
    assert 0.0 <= seen.age < 1.0


async def test_of_two_decreases_from_one_epoch_only_the_first_is_stored(contract: Contract) -> None:
    """Two clients lowering the rate from the same record: the second changes nothing."""
    await contract.one.record(PacingAnswer(status=429, lowered=lowered(4.0)))
    reading = await contract.two.record(PacingAnswer(status=429, lowered=lowered(1.0)))
    assert reading.record == lowered(4.0)


async def test_a_lowered_rate_restarts_the_schedule(contract: Contract) -> None:
    """After a decrease the next slot is free at once: slots reserved at the old rate are void."""
    old = [await reserve(contract.one) for _ in range(3)]
    await contract.one.record(PacingAnswer(status=429, lowered=lowered(1.0)))
    slot = await reserve(contract.two, epoch=1)
    assert slot.wait == 0.0
    assert slot.reading.record.epoch == 1
    await contract.one.give_back(old[2])  # a void slot given back changes nothing
    assert (await reserve(contract.two, epoch=1)).wait > 0.5


async def test_a_reservation_for_another_epoch_is_refused(contract: Contract) -> None:
    """A reservation whose interval was computed from an older rate is refused with the record as it stands."""
    await contract.one.record(PacingAnswer(status=429, lowered=lowered(2.0)))
    refusal = await contract.two.reserve(interval=0.1, burst=1, epoch=0, max_wait=None, max_cooldown=None)
    assert isinstance(refusal, Refusal)
    assert refusal.reading.record == lowered(2.0)
    assert (await reserve(contract.two, epoch=1)).wait == 0.0  # the refusal kept nothing


async def test_accepted_answers_of_every_client_are_counted(contract: Contract) -> None:
    """Answers accepted by two clients add up; a 5xx and a 429 are not counted."""
    for state, status in ((contract.one, 202), (contract.two, 202), (contract.two, 404), (contract.one, 503)):
        await state.record(PacingAnswer(status=status))
    reading = await contract.one.record(PacingAnswer(status=429))
    assert reading.accepted == 3


async def test_the_age_of_a_rate_grows_with_time(contract: Contract) -> None:
    """The reading's age is the time since the rate was set: the probe upward is measured on it."""
    await contract.one.record(PacingAnswer(status=429, lowered=lowered(3.0)))
    await contract.advance(0.3)
    reading = (await reserve(contract.two, epoch=1)).reading
    assert 0.3 <= reading.age < 30
    assert reading.record == lowered(3.0)


@pytest.mark.parametrize("cooldown", [1e9, 1e20], ids=["longest-retry-after", "past-any-clock"])
async def test_a_cool_down_of_any_length_holds_every_client(contract: Contract, cooldown: float) -> None:
    """A cool-down longer than any clock can count still holds the other client off, refused past its max_cooldown."""
    await contract.one.record(PacingAnswer(status=429, cooldown=cooldown))
    refusal = await contract.two.reserve(interval=1.0, burst=1, epoch=None, max_wait=None, max_cooldown=120.0)
    assert isinstance(refusal, Refusal)
    assert refusal.reading.cooldown > 1e8
