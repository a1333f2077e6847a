"""One rate limit and one 429 cool-down for every process of a Box identity: the pacing facet of a `RedisShare`.

Each identity's schedule (GCRA), rate record, count of accepted answers and cool-down sit in one
Redis hash, and the slots given back in the middle of the schedule in a sorted set beside it. A
request costs two scripts, one round trip each: ``reserve`` before it is sent (which also says how
long the cool-down has left and how the rate stands) and ``record`` once it is answered (the
status, the cool-down a 429 starts, and the rate it leads to). No two processes ever read the same
state and write over each other; the scripts read Redis's own clock (``TIME``), so processes on
hosts whose clocks differ share one schedule. Times are whole microseconds of that clock and never
leave Redis: callers pass and get durations.

The algorithm is `box_sessions.InMemoryPacingState`'s; the package's contract tests run both
through the same cases. Both keys expire `IDLE_TTL` seconds after the last slot or cool-down ends.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.commands.core import AsyncScript

from .. import PacingAnswer, PacingReading, RateRecord, Refusal, Reservation
from ._calls import RedisCalls

__all__ = ["IDLE_TTL", "RedisPacing", "RedisPacingState"]

#: Seconds an identity's pacing keys outlive its last slot or cool-down.
IDLE_TTL = 600.0

#: Shared by every script: Redis's clock, the state as read, the reading returned, the keys' time to live.
_PRELUDE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local function int(x) return string.format('%d', x) end
local v = redis.call('HMGET', KEYS[1], 'epoch', 'rate', 'ceiling', 'confirmed', 'set_at', 'accepted',
    'cooldown', 'tat', 'gen')
local s = {epoch = tonumber(v[1]) or 0, rate = v[2] or '', ceiling = v[3] or '', confirmed = v[4] or '0',
    set_at = tonumber(v[5]) or now, accepted = tonumber(v[6]) or 0, cooldown = tonumber(v[7]) or 0,
    tat = tonumber(v[8]), gen = tonumber(v[9]) or 0}
local function reading(t)
    local left = math.max(0, s.cooldown - now)
    local all = {int(s.epoch), s.rate, s.ceiling, s.confirmed, int(math.max(0, now - s.set_at)), int(s.accepted),
        int(left)}
    for _, x in ipairs(t) do all[#all + 1] = x end
    return all
end
local function keep(idle)
    local last = math.max(now, s.tat or now, s.cooldown)
    local ttl = int(math.floor((last - now + idle) / 1000) + 1)
    redis.call('PEXPIRE', KEYS[1], ttl)
    redis.call('PEXPIRE', KEYS[2], ttl)
end
"""

#: ARGV: interval, burst, epoch (-1: any), max_wait (-1: none), max_cooldown (-1: none), idle (microseconds).
#: Returns {kept, wait, <reading>} and, when kept, {generation, send_at, tat_before, tat_after} after it.
_RESERVE = (
    _PRELUDE
    + """
local interval, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local epoch, max_wait, max_cooldown = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local left = math.max(0, s.cooldown - now)
if (epoch >= 0 and epoch ~= s.epoch) or (max_cooldown >= 0 and left > max_cooldown) then
    return reading({'0', int(left)})
end
local start = now + left
local send_at, before, after
local from_hole = nil
-- A slot given back earlier in the schedule is reused first (the earliest still ahead).
local holes = redis.call('ZRANGE', KEYS[2], 0, 31)
for _, member in ipairs(holes) do
    local hs, hb, ha = string.match(member, '^(%d+):(%d+):(%d+)$')
    hs = tonumber(hs)
    if hs == nil or hs < now then
        redis.call('ZREM', KEYS[2], member)
    elseif hs < start then
        break
    else
        from_hole = member
        send_at, before, after = hs, tonumber(hb), tonumber(ha)
        break
    end
end
if not from_hole then
    local tat = math.max(s.tat or start, start)
    send_at = math.max(start, tat - (burst - 1) * interval)
    before, after = tat, tat + interval
end
local wait = send_at - now
if max_wait >= 0 and wait > max_wait then
    return reading({'0', int(wait)})
end
if from_hole then
    redis.call('ZREM', KEYS[2], from_hole)
else
    s.tat = after
    redis.call('HSET', KEYS[1], 'tat', int(after))
end
keep(tonumber(ARGV[6]))
return reading({'1', int(wait), int(s.gen), int(send_at), int(before), int(after)})
"""
)

#: ARGV: generation, send_at, tat_before, tat_after, idle. A slot at the end moves the schedule
#: back (and with it any holes now at its end); one in the middle becomes a hole.
_GIVE_BACK = (
    _PRELUDE
    + """
if s.gen ~= tonumber(ARGV[1]) then return 0 end
local send_at, before, after = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
if s.tat ~= after then
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
s.tat = tat
redis.call('HSET', KEYS[1], 'tat', int(tat))
keep(tonumber(ARGV[5]))
return 1
"""
)

#: ARGV: status, cool-down (-1: none), lowered epoch (-1: none), rate, ceiling, confirmed, idle.
#: Returns the reading after the answer is recorded.
_RECORD = (
    _PRELUDE
    + """
local status = tonumber(ARGV[1])
if status == 429 then
    local hold = tonumber(ARGV[2])
    if hold >= 0 and now + hold > s.cooldown then
        s.cooldown = now + hold
        redis.call('HSET', KEYS[1], 'cooldown', int(s.cooldown))
    end
    if tonumber(ARGV[3]) == s.epoch + 1 then
        -- The rate a 429 led to, stored only as the successor of the record it was computed from;
        -- the schedule restarts at it (slots reserved before are void).
        s.epoch, s.rate, s.ceiling, s.confirmed = s.epoch + 1, ARGV[4], ARGV[5], ARGV[6]
        s.set_at, s.accepted, s.gen, s.tat = now, 0, s.gen + 1, nil
        redis.call('HSET', KEYS[1], 'epoch', int(s.epoch), 'rate', s.rate, 'ceiling', s.ceiling,
            'confirmed', s.confirmed, 'set_at', int(now), 'accepted', '0', 'gen', int(s.gen))
        redis.call('HDEL', KEYS[1], 'tat')
        redis.call('DEL', KEYS[2])
    end
elseif status < 500 then
    s.accepted = redis.call('HINCRBY', KEYS[1], 'accepted', 1)
end
keep(tonumber(ARGV[7]))
return reading({})
"""
)


def _micro(seconds: float) -> int:
    return max(0, round(seconds * 1_000_000))


def _limit(seconds: float | None) -> int:
    """A bound as the scripts take it: microseconds, or -1 for none."""
    return -1 if seconds is None or not math.isfinite(seconds) else _micro(seconds)


def _text(raw: bytes | str) -> str:
    return raw.decode() if isinstance(raw, bytes) else raw


def _float_or_none(raw: bytes | str) -> float | None:
    text = _text(raw)
    return float(text) if text else None


def _reading(values: Sequence[Any]) -> PacingReading:
    """The seven values of a script's reading: epoch, rate, ceiling, confirmed, age, accepted, cool-down."""
    epoch, rate, ceiling, confirmed, age, accepted, cooldown = values[:7]
    record = RateRecord(
        rate=_float_or_none(rate), ceiling=_float_or_none(ceiling), confirmed=int(confirmed), epoch=int(epoch)
    )
    return PacingReading(
        record=record, age=int(age) / 1_000_000, accepted=int(accepted), cooldown=int(cooldown) / 1_000_000
    )


def _rate_text(value: float | None) -> str:
    return "" if value is None else repr(float(value))


class _Scripts:
    """The scripts, registered once on the share's Redis client (sent by digest, loaded again after a restart)."""

    def __init__(self, client: aioredis.Redis) -> None:
        self.reserve = client.register_script(_RESERVE)
        self.give_back = client.register_script(_GIVE_BACK)
        self.record = client.register_script(_RECORD)


class RedisPacingState:
    """One Box identity's schedule, rate and cool-down in Redis: a `box_sessions.PacingState` every process shares.

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
        # A write begun goes to its end (bounded by the timeout) even if the caller is cancelled.
        return await asyncio.shield(
            self._redis.run(what, lambda client: script(keys=self._keys, args=list(args), client=client))
        )

    async def reserve(
        self,
        *,
        interval: float,
        burst: int,
        epoch: int | None,
        max_wait: float | None,
        max_cooldown: float | None,
    ) -> Reservation | Refusal:
        answer = await self._script(
            "reserving a slot",
            self._scripts.reserve,
            _micro(interval),
            burst,
            -1 if epoch is None else epoch,
            _limit(max_wait),
            _limit(max_cooldown),
            self._idle,
        )
        reading = _reading(answer)
        kept, wait = int(answer[7]), int(answer[8]) / 1_000_000
        if not kept:
            return Refusal(wait=wait, reading=reading)
        return Reservation(wait=wait, reading=reading, key=tuple(int(value) for value in answer[9:13]))

    async def give_back(self, reservation: Reservation) -> None:
        slot = reservation.key
        if not (isinstance(slot, tuple) and len(slot) == 4):
            return  # not a slot of this state
        await self._script("giving a slot back", self._scripts.give_back, *slot, self._idle)

    async def record(self, answer: PacingAnswer) -> PacingReading:
        lowered = answer.lowered
        values = await self._script(
            "recording an answer",
            self._scripts.record,
            answer.status,
            _limit(answer.cooldown),
            -1 if lowered is None else lowered.epoch,
            "" if lowered is None else _rate_text(lowered.rate),
            "" if lowered is None else _rate_text(lowered.ceiling),
            0 if lowered is None else lowered.confirmed,
            self._idle,
        )
        return _reading(values)

    def __repr__(self) -> str:
        return "RedisPacingState()"


class RedisPacing:
    """The pacing facet of a `RedisShare`: one `RedisPacingState` per Box identity (a `box_sessions.SharedPacing`)."""

    def __init__(self, redis_: RedisCalls, prefix: str, idle_ttl: float = IDLE_TTL) -> None:
        self._redis = redis_
        self._scripts = _Scripts(redis_.client)
        self._prefix = prefix
        self._idle_ttl = idle_ttl

    def state(self, key: str) -> RedisPacingState:
        """The pacing state of the Box identity ``key`` (token URL or API host, client, subject, As-User)."""
        # A digest: the identity holds URLs and ids, and a key's length is bounded. In braces, Redis's
        # hash tag: the schedule and its given-back slots live in one slot of a cluster, as one
        # script touching both requires.
        digest = hashlib.sha256(key.encode()).hexdigest()[:32]
        return RedisPacingState(self._redis, self._scripts, f"{self._prefix}:pacing:{{{digest}}}", self._idle_ttl)

    def __repr__(self) -> str:
        return f"RedisShare.pacing(prefix={self._prefix!r})"
