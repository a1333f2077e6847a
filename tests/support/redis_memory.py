"""A Redis with a ``maxmemory`` and an eviction policy, and filler keys that make it evict for real.

``volatile-*`` policies evict only keys that carry a TTL, ``allkeys-*`` any key, ``noeviction``
refuses writes with ``OOM``. The filler keys (``filler:{n}``, outside any prefix the library uses)
carry no TTL unless asked: under ``volatile-lru`` the keys the library writes with a TTL are then
the only ones Redis may evict, as on a managed service whose other keys do not expire.
"""

from __future__ import annotations

import time

import attrs
import redis

from .redis_server import RedisServer

OOM = redis.exceptions.OutOfMemoryError
#: The policies a server can be started with here.
POLICIES = ("volatile-lru", "allkeys-lru", "noeviction")
#: The filler keys' prefix.
FILLER = "filler:"
#: Bytes of one filler value.
FILLER_SIZE = 8 * 1024
#: Filler keys written between two looks at the watched keys.
FILLER_STEP = 16
#: The most filler keys one fill writes, and the most seconds it takes.
FILLER_MAX_KEYS = 20_000
FILL_WAIT = 30.0


def maxmemory_args(limit: str, policy: str) -> list[str]:
    """``redis-server`` options for a memory limit (``"2mb"``) and an eviction ``policy`` (see `POLICIES`)."""
    if policy not in POLICIES:
        raise ValueError(f"policy must be one of {POLICIES}, got {policy!r}")
    # Evict by sampling more keys than the default 5: fewer fillers before a watched key goes.
    return ["--maxmemory", limit, "--maxmemory-policy", policy, "--maxmemory-samples", "10"]


@attrs.frozen
class Filled:
    """What a fill did.

    Attributes:
        written: Filler keys written.
        refused: Redis refused a write with ``OOM`` (nothing more it may evict).
        evicted: The watched keys that are gone.
        evicted_total: Keys Redis evicted meanwhile (``INFO stats`` ``evicted_keys``), any key.
    """

    written: int
    refused: bool
    evicted: frozenset[str]
    evicted_total: int


def evicted_count(server: RedisServer) -> int:
    """Keys ``server`` has evicted since it started (``INFO stats`` ``evicted_keys``)."""
    return int(server.info("stats")["evicted_keys"])


def missing(server: RedisServer, keys: list[str]) -> frozenset[str]:
    """The ``keys`` that ``server`` no longer holds."""
    with server.admin() as client:
        pipe = client.pipeline(transaction=False)
        for key in keys:
            pipe.exists(key)
        found = pipe.execute()
    return frozenset(key for key, there in zip(keys, found, strict=True) if not there)


def fill_memory(
    server: RedisServer,
    *,
    watched: tuple[str, ...] = (),
    filler_ttl: float | None = None,
    max_keys: int = FILLER_MAX_KEYS,
    timeout: float = FILL_WAIT,
) -> Filled:
    """Write filler keys until every ``watched`` key was evicted, or Redis refuses a write (``OOM``).

    Bounded by ``max_keys`` keys and ``timeout`` seconds. Memory is left full: see `drop_filler`.

    Args:
        server: A server started with `maxmemory_args`.
        watched: Keys to see evicted (each must be there when called); none: fill until ``OOM``.
        filler_ttl: Seconds of TTL on each filler key (``None``: none, so that ``volatile-*``
            policies never evict them).
        max_keys: The most filler keys written.
        timeout: The most seconds spent.
    """
    before = evicted_count(server)
    gone = missing(server, list(watched))
    assert not gone, f"watched keys missing before the fill: {sorted(gone)}"
    written, refused = 0, False
    deadline = time.monotonic() + timeout
    value = b"x" * FILLER_SIZE
    ex = None if filler_ttl is None else max(1, round(filler_ttl))
    with server.admin() as client:
        while written < max_keys and time.monotonic() < deadline:
            pipe = client.pipeline(transaction=False)
            for n in range(written, written + FILLER_STEP):
                pipe.set(f"{FILLER}{n}", value, ex=ex)
            answers = pipe.execute(raise_on_error=False)
            written += sum(1 for answer in answers if answer is True)
            refused = any(isinstance(answer, OOM) for answer in answers)
            others = [answer for answer in answers if isinstance(answer, Exception) and not isinstance(answer, OOM)]
            assert not others, f"a filler write failed: {others[0]!r}"
            gone = missing(server, list(watched))
            if refused or (watched and gone == frozenset(watched)):
                break
    return Filled(written=written, refused=refused, evicted=gone, evicted_total=evicted_count(server) - before)


def drop_filler(server: RedisServer) -> int:
    """Delete every filler key (memory pressure gone); returns how many there were."""
    dropped = 0
    with server.admin() as client:
        batch: list[bytes] = []
        for key in client.scan_iter(match=f"{FILLER}*", count=1000):
            batch.append(key)
            if len(batch) >= 500:
                dropped += int(client.unlink(*batch))
                batch = []
        if batch:
            dropped += int(client.unlink(*batch))
    return dropped
