"""Issue 17, cluster row: the share through a Redis Cluster (ElastiCache, MemoryDB, Memorystore, Azure in cluster mode).

The promise: `RedisShare` takes a ``redis.asyncio.cluster.RedisCluster`` as ``client=`` and reaches
a cluster from a URL (``cluster=True``); every key one script or one lock touches shares a hash
slot, so tokens, pacing and the OAuth 2.0 lock work with no CROSSSLOT or MOVED and no WARNING.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest
from redis.asyncio.cluster import RedisCluster

from box_sessions import BoxClient, OAuth2Tokens, RateLimit, SharedStateError
from box_sessions.redis import RedisShare
from box_sessions.testing import FakeBox

from ..support.box_calls import BOUND, ccg, oauth2, outcome, spent_refresh_tokens_sent, terminate, warnings_of
from ..support.redis_cluster import RedisClusterNodes, slot_of
from ..support.redis_server import RedisServer

pytestmark = pytest.mark.redis

#: A rate Box and the clients both use in the pacing test: requests a minute.
RATE = 1200
#: Clients (standing for processes) sharing one Box app through the cluster.
CLIENTS = 4

MakeCluster = Callable[[], RedisCluster]


@pytest.fixture
async def cluster_client(redis_cluster: RedisClusterNodes) -> AsyncIterator[MakeCluster]:
    """Make ``RedisCluster`` clients of the test cluster, not initialised (the share must be safe with that).

    redis-py 8.1's asyncio ``RedisCluster`` used concurrently before ``initialize()`` sometimes
    fails with ``AttributeError: 'NoneType' object has no attribute 'writelines'``. Each client is
    closed at teardown: a client given as ``client=`` stays its owner's.
    """
    made: list[RedisCluster] = []

    def make() -> RedisCluster:
        client = RedisCluster(startup_nodes=redis_cluster.startup_nodes, socket_timeout=2.0)
        made.append(client)
        return client

    try:
        yield make
    finally:
        for client in made:
            await client.aclose()


async def test_a_cluster_client_is_accepted(cluster_client: MakeCluster, key_prefix: str) -> None:
    """RedisShare(client=RedisCluster(...)) is accepted, and reads through the cluster."""
    async with RedisShare(client=cluster_client(), prefix=key_prefix) as share:
        assert await share.tokens.load("anything") is None


async def test_a_cluster_url_reaches_the_cluster(redis_cluster: RedisClusterNodes, key_prefix: str) -> None:
    """RedisShare(url_of_one_node, cluster=True) finds the cluster: two clients share one CCG token through it."""
    fake = FakeBox()
    async with fake.serve() as url, RedisShare(redis_cluster.url, cluster=True, prefix=key_prefix) as share:
        for auth in (ccg(fake), ccg(fake)):
            async with BoxClient(auth, base_url=url, rate_limit=None, shared=share) as client:
                await terminate(client)
    assert fake.token_requests == 1
    assert redis_cluster.keys(f"*{key_prefix}*")  # the token went to the cluster


async def test_four_clients_through_a_cluster_share_one_token_and_one_pace(
    cluster_client: MakeCluster, key_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Four clients of one CCG app, each with its own share of the cluster: one token request, no 429, no WARNING.

    Box allows `RATE` a minute; each client paces at `RATE`: only shared pacing keeps the four
    together under it (alone, they would send four times the rate and meet 429s).
    """
    fake = FakeBox(rate_limit=RATE, integer_retry_after=False)
    ids_per_client = 12
    async with fake.serve() as url:
        shares = [RedisShare(client=cluster_client(), prefix=key_prefix) for _ in range(CLIENTS)]
        clients = [
            BoxClient(ccg(fake), base_url=url, rate_limit=RateLimit(requests_per_minute=RATE), shared=share)
            for share in shares
        ]
        jobs = [
            client.session_termination.terminate(
                user_ids=[str(n * 100 + i) for i in range(ids_per_client)], batch_size=1
            )
            for n, client in enumerate(clients)
        ]
        try:
            reports = await asyncio.wait_for(asyncio.gather(*jobs), BOUND)
        finally:
            for client in clients:
                await client.aclose()
    assert [report.terminated_count for report in reports] == [ids_per_client] * CLIENTS
    assert fake.token_requests == 1
    assert fake.status_counts[429] == 0
    assert warnings_of(caplog) == []


async def test_oauth2_through_a_cluster_refreshes_once(cluster_client: MakeCluster, key_prefix: str) -> None:
    """Four OAuth 2.0 clients of one user, each with a share of the cluster, needing a token at once: one refresh."""
    fake = FakeBox()
    shares = [RedisShare(client=cluster_client(), prefix=key_prefix) for _ in range(CLIENTS)]
    await shares[0].token_store("user-42").save(OAuth2Tokens(refresh_token=fake.issue_refresh_token()))
    async with fake.serve() as url:
        clients = [
            BoxClient(oauth2(fake, share.token_store("user-42")), base_url=url, rate_limit=None) for share in shares
        ]
        try:
            outcomes = await asyncio.gather(*(outcome(terminate(client, str(n))) for n, client in enumerate(clients)))
        finally:
            for client in clients:
                await client.aclose()
    assert outcomes == ["ok"] * CLIENTS
    assert (fake.token_requests, fake.spent_refresh_tokens) == (1, 1)
    assert spent_refresh_tokens_sent(fake) == 0


def _keys_of(command: list[str]) -> list[str]:
    """The keys a command names, as far as the share's commands go (scripts and one-key commands)."""
    name = command[0].upper()
    if name in ("EVALSHA", "EVAL", "EVALSHA_RO", "EVAL_RO"):
        return command[3 : 3 + int(command[2])]
    if name in ("SCRIPT", "TIME", "CLIENT", "HELLO", "AUTH", "SELECT", "PING", "CONFIG", "SLOWLOG"):
        return []
    return command[1:2]


async def test_every_key_a_script_or_a_lock_touches_shares_a_hash_slot(
    redis_server: RedisServer, key_prefix: str
) -> None:
    """In what the share sends (Redis's log of every command), each script's keys, and a lock and its key, share a slot.

    Run against one node, so that it says which keys would cross slots in a cluster whatever the
    client does about it.
    """
    for setting, value in (("slowlog-log-slower-than", "0"), ("slowlog-max-len", "100000")):
        redis_server.command("CONFIG", "SET", setting, value)  # log every command, with its arguments
    redis_server.command("SLOWLOG", "RESET")
    fake = FakeBox()
    async with fake.serve() as url, RedisShare(redis_server.url, prefix=key_prefix) as share:
        await share.token_store("user-42").save(OAuth2Tokens(refresh_token=fake.issue_refresh_token()))
        for auth in (ccg(fake), oauth2(fake, share.token_store("user-42"))):
            async with BoxClient(auth, base_url=url, rate_limit=RateLimit(), shared=share) as client:
                await client.session_termination.terminate(user_ids=["1", "2", "3"], batch_size=1)
    with redis_server.admin(decode_responses=True) as admin:
        # Raw: redis-py's slowlog_get joins the arguments into bytes even with decode_responses.
        logged = admin.execute_command("SLOWLOG", "GET", "-1")  # type: ignore[no-untyped-call]
    commands: list[list[str]] = [entry[3] for entry in logged]  # id, time, duration, arguments, client...
    keys_by_command = [[k for k in _keys_of(c) if k.startswith(key_prefix)] for c in commands]
    touched = {key for keys in keys_by_command for key in keys}
    assert any(k.endswith(":lock") for k in touched), touched  # the locks were seen
    assert any(len(keys) > 1 for keys in keys_by_command), touched  # and the pacing scripts
    crossing = [keys for keys in keys_by_command if len({slot_of(key) for key in keys}) > 1]
    apart = [
        (key, base)
        for key in touched
        for suffix in (":lock", ":holes")
        if key.endswith(suffix) and slot_of(key) != slot_of(base := key.removesuffix(suffix))
    ]
    assert (crossing, apart) == ([], [])


async def test_more_calls_at_once_than_connections_wait_for_one(
    redis_cluster: RedisClusterNodes, key_prefix: str
) -> None:
    """30 calls at once to one node, 2 connections a node: each waits for a free one, none fails.

    redis-py's cluster client raises ``MaxConnectionsError`` at once when a node's connections
    are all busy, where a single node's pool waits; a bulk job keeps 16 batches in flight.
    """
    async with RedisShare(redis_cluster.url, cluster=True, prefix=key_prefix, max_connections=2) as share:
        answers = await asyncio.wait_for(
            asyncio.gather(*(share.tokens.load("one-key") for _ in range(30)), return_exceptions=True), BOUND
        )
    assert answers == [None] * 30


async def test_one_nodes_url_without_cluster_true_says_to_pass_it(
    redis_cluster: RedisClusterNodes, key_prefix: str
) -> None:
    """A cluster node's URL given as a single Redis: the key kept elsewhere fails naming MOVED and ``cluster=True``."""
    async with RedisShare(redis_cluster.url, prefix=key_prefix) as share:
        errors = []
        for n in range(12):  # the keys' hash tags land on the three nodes: some on another than the URL's
            try:
                await share.tokens.load(f"identity-{n}")
            except SharedStateError as exc:
                errors.append(str(exc))
    assert errors, "every key landed on the URL's node"
    assert all("MOVED" in error and "cluster=True" in error for error in errors), errors[0]
