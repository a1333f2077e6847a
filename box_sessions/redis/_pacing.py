"""One rate limit and one 429 cool-down for every process of a Box identity: the pacing facet of a `RedisShare`.

Each identity's schedule (GCRA), adaptive rate record and cool-down sit in one Redis hash, and
the slots given back in the middle of the schedule in a sorted set beside it. Every call is one
Lua script, so no two processes ever read the same state and write over each other; the scripts
read Redis's own clock (``TIME``), so processes on hosts whose clocks differ share one schedule.
Times are whole microseconds of that clock and never leave Redis: callers pass and get durations.

Both keys expire `IDLE_TTL` seconds after the last slot or cool-down ends.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
from collections.abc import Awaitable
from typing import Any, TypeVar

import redis.asyncio as aioredis
from redis.commands.core import AsyncScript

from .._transport._pacing_state import RateReading, RateRecord, Refusal, Reservation
from ._calls import RedisCalls

__all__ = ["IDLE_TTL", "RedisPacing", "RedisPacingState"]

T = TypeVar("T")

#: Seconds an identity's pacing keys outlive its last slot or cool-down.
IDLE_TTL = 600.0

#: Shared by every script: Redis's clock, and the keys' time to live.
_PRELUDE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local function int(x) return string.format('%d', x) end
local function num(field, default)
    local v = redis.call('HGET', KEYS[1], field)
    if v then return tonumber(v) end
    return default
end
local function keep(idle)
    local last = math.max(now, num('tat', now), num('cooldown', now))
    local ttl = int(math.floor((last - now + idle) / 1000) + 1)
    redis.call('PEXPIRE', KEYS[1], ttl)
    redis.call('PEXPIRE', KEYS[2], ttl)
end
"""

#: ARGV: interval, burst, max_wait (-1: none), idle (microseconds).
#: Returns {0, wait} for a refusal, or {1, wait, epoch, generation, send_at, tat_before, tat_after}.
_RESERVE = (
    _PRELUDE
    + """
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local max_wait = tonumber(ARGV[3])
local generation = num('gen', 0)
local start = math.max(now, num('cooldown', now))
local send_at, before, after
local from_hole = nil
-- A slot given back earlier in the schedule is reused first (the earliest still ahead).
local holes = redis.call('ZRANGE', KEYS[2], 0, 31)
for _, member in ipairs(holes) do
    local s, b, a = string.match(member, '^(%d+):(%d+):(%d+)$')
    s = tonumber(s)
    if s == nil or s < now then
        redis.call('ZREM', KEYS[2], member)
    elseif s < start then
        break
    else
        from_hole = member
        send_at, before, after = s, tonumber(b), tonumber(a)
        break
    end
end
if not from_hole then
    local tat = math.max(num('tat', start), start)
    send_at = math.max(start, tat - (burst - 1) * interval)
    before, after = tat, tat + interval
end
local wait = send_at - now
if max_wait >= 0 and wait > max_wait then
    return {0, int(wait)}
end
if from_hole then
    redis.call('ZREM', KEYS[2], from_hole)
else
    redis.call('HSET', KEYS[1], 'tat', int(after))
end
keep(tonumber(ARGV[4]))
return {1, int(wait), int(num('epoch', 0)), int(generation), int(send_at), int(before), int(after)}
"""
)

#: ARGV: generation, send_at, tat_before, tat_after, idle. A slot at the end moves the schedule
#: back (and with it any holes now at its end); one in the middle becomes a hole.
_GIVE_BACK = (
    _PRELUDE
    + """
if num('gen', 0) ~= tonumber(ARGV[1]) then return 0 end
local send_at, before, after = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
if num('tat', nil) ~= after then
    redis.call('ZADD', KEYS[2], after, int(send_at) .. ':' .. int(before) .. ':' .. int(after))
    keep(tonumber(ARGV[5]))
    return 1
end
local tat = before
for _ = 1, 64 do
    local found = redis.call('ZRANGEBYSCORE', KEYS[2], tat, tat, 'LIMIT', 0, 1)
    if #found == 0 then break end
    redis.call('ZREM', KEYS[2], found[1])
    tat = tonumber(string.match(found[1], '^%d+:(%d+):%d+$'))
end
redis.call('HSET', KEYS[1], 'tat', int(tat))
keep(tonumber(ARGV[5]))
return 1
"""
)

#: Returns {epoch, rate, ceiling, confirmed, age, accepted} (rate and ceiling as stored: '' for none).
_GET_RATE = (
    _PRELUDE
    + """
local v = redis.call('HMGET', KEYS[1], 'epoch', 'rate', 'ceiling', 'confirmed', 'set_at', 'accepted')
local set_at = tonumber(v[5]) or now
return {v[1] or '0', v[2] or '', v[3] or '', v[4] or '0', int(math.max(0, now - set_at)), v[6] or '0'}
"""
)

#: ARGV: expected epoch, rate, ceiling, confirmed, idle. Returns 1 when stored, 0 when refused.
_SET_RATE = (
    _PRELUDE
    + """
if num('epoch', 0) ~= tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'epoch', int(tonumber(ARGV[1]) + 1), 'rate', ARGV[2], 'ceiling', ARGV[3],
    'confirmed', ARGV[4], 'set_at', int(now), 'accepted', '0', 'gen', int(num('gen', 0) + 1))
redis.call('HDEL', KEYS[1], 'tat')
redis.call('DEL', KEYS[2])
keep(tonumber(ARGV[5]))
return 1
"""
)

#: ARGV: idle.
_COUNT_ACCEPTED = (
    _PRELUDE
    + """
redis.call('HINCRBY', KEYS[1], 'accepted', 1)
keep(tonumber(ARGV[1]))
return 1
"""
)

#: ARGV: seconds (microseconds), idle. A longer hold already there is kept.
_HOLD_COOLDOWN = (
    _PRELUDE
    + """
local until_ = now + tonumber(ARGV[1])
if until_ > num('cooldown', 0) then redis.call('HSET', KEYS[1], 'cooldown', int(until_)) end
keep(tonumber(ARGV[2]))
return 1
"""
)

#: Returns microseconds left of the cool-down.
_COOLDOWN_REMAINING = (
    _PRELUDE
    + """
return int(math.max(0, num('cooldown', 0) - now))
"""
)


def _micro(seconds: float) -> int:
    return max(0, round(seconds * 1_000_000))


def _float_or_none(raw: bytes | str) -> float | None:
    text = raw.decode() if isinstance(raw, bytes) else raw
    return float(text) if text else None


class _Scripts:
    """The scripts, registered once on the share's Redis client (sent by digest, loaded again after a restart)."""

    def __init__(self, client: aioredis.Redis) -> None:
        self.reserve = client.register_script(_RESERVE)
        self.give_back = client.register_script(_GIVE_BACK)
        self.get_rate = client.register_script(_GET_RATE)
        self.set_rate = client.register_script(_SET_RATE)
        self.count_accepted = client.register_script(_COUNT_ACCEPTED)
        self.hold_cooldown = client.register_script(_HOLD_COOLDOWN)
        self.cooldown_remaining = client.register_script(_COOLDOWN_REMAINING)


class RedisPacingState:
    """One Box identity's schedule, rate and cool-down in Redis: a `PacingState` every process shares.

    Every method is one script, bounded by the share's timeout; a failure of Redis raises
    `box_sessions.SharedStateError` (the client then paces in its own process until Redis answers).
    The methods that write are shielded from the caller's cancellation, so none is left half done.
    """

    def __init__(self, redis_: RedisCalls, scripts: _Scripts, key: str, idle_ttl: float) -> None:
        self._redis = redis_
        self._scripts = scripts
        self._keys = [key, key + ":holes"]
        self._idle = _micro(idle_ttl)

    async def _script(self, what: str, script: AsyncScript, *args: int | str) -> Any:
        # redis-py sends the script's digest (EVALSHA), and loads it again when Redis answers NOSCRIPT.
        return await self._redis.run(what, script(keys=self._keys, args=list(args)))

    async def _shielded(self, call: Awaitable[T]) -> T:
        # A write begun goes to its end (bounded by the timeout) even if the caller is cancelled.
        return await asyncio.shield(call)

    async def reserve(self, interval: float, *, burst: int, max_wait: float | None) -> Reservation | Refusal:
        limit = -1 if max_wait is None or not math.isfinite(max_wait) else _micro(max_wait)
        answer = await self._script(
            "reserving a slot", self._scripts.reserve, _micro(interval), burst, limit, self._idle
        )
        values = [int(value) for value in answer]
        wait = values[1] / 1_000_000
        if values[0] == 0:
            return Refusal(wait)
        return Reservation(wait, values[2], tuple(values[3:]))

    async def give_back(self, reservation: Reservation) -> None:
        slot = reservation.key
        if not (isinstance(slot, tuple) and len(slot) == 4):
            return  # not a slot of this state
        await self._shielded(self._script("giving a slot back", self._scripts.give_back, *slot, self._idle))

    async def get_rate(self) -> RateReading:
        answer = await self._script("reading the rate", self._scripts.get_rate)
        epoch, rate, ceiling, confirmed, age, accepted = answer
        record = RateRecord(
            rate=_float_or_none(rate), ceiling=_float_or_none(ceiling), confirmed=int(confirmed), epoch=int(epoch)
        )
        return RateReading(record, int(age) / 1_000_000, int(accepted))

    async def set_rate(self, record: RateRecord, *, expected_epoch: int) -> bool:
        rate = "" if record.rate is None else repr(float(record.rate))
        ceiling = "" if record.ceiling is None else repr(float(record.ceiling))
        stored = await self._shielded(
            self._script(
                "setting the rate", self._scripts.set_rate, expected_epoch, rate, ceiling, record.confirmed, self._idle
            )
        )
        return bool(stored == 1)

    async def count_accepted(self) -> None:
        await self._shielded(self._script("counting an answer", self._scripts.count_accepted, self._idle))

    async def hold_cooldown(self, seconds: float) -> None:
        await self._shielded(
            self._script("holding the cool-down", self._scripts.hold_cooldown, _micro(seconds), self._idle)
        )

    async def cooldown_remaining(self) -> float:
        answer = await self._script("reading the cool-down", self._scripts.cooldown_remaining)
        return int(answer) / 1_000_000

    def __repr__(self) -> str:
        return "RedisPacingState()"


class RedisPacing:
    """The pacing facet of a `RedisShare`: one `RedisPacingState` per Box identity."""

    def __init__(self, redis_: RedisCalls, prefix: str, idle_ttl: float = IDLE_TTL) -> None:
        self._redis = redis_
        self._scripts = _Scripts(redis_.client)
        self._prefix = prefix
        self._idle_ttl = idle_ttl

    def state(self, key: str) -> RedisPacingState:
        """The pacing state of the Box identity ``key`` (token URL or API host, client, subject, As-User)."""
        # A digest: the identity holds URLs and ids, and a key's length is bounded.
        digest = hashlib.sha256(key.encode()).hexdigest()[:32]
        return RedisPacingState(self._redis, self._scripts, f"{self._prefix}:pacing:{digest}", self._idle_ttl)

    def __repr__(self) -> str:
        return f"RedisShare.pacing(prefix={self._prefix!r})"
