"""The Redis set-ups themselves: each does what the tests of the share rely on it doing.

No box_sessions here: if one of these fails, the set-up is wrong, not the library.
"""

from __future__ import annotations

import pytest
import redis
import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.sentinel import Sentinel

from ..support.redis_acl import ACL_PASSWORD, acl_rules, add_acl_user
from ..support.redis_cluster import RedisClusterNodes, slot_of
from ..support.redis_memory import drop_filler, fill_memory, maxmemory_args, missing
from ..support.redis_replica import ReplicatedPair
from ..support.redis_sentinel import SentinelGroup
from ..support.redis_server import RedisServer
from .conftest import StartRedis

pytestmark = pytest.mark.redis

#: A script writing two keys: refused with CROSSSLOT in a cluster unless they share a slot.
TWO_KEYS = "redis.call('SET', KEYS[1], ARGV[1]); redis.call('SET', KEYS[2], ARGV[1]); return 1"


# -- cluster ---------------------------------------------------------------------------------------


def test_every_cluster_node_agrees_the_cluster_is_whole(redis_cluster: RedisClusterNodes) -> None:
    """Each of the three nodes answers CLUSTER INFO with cluster_state:ok, all slots and three nodes."""
    assert redis_cluster.agreed()
    for node in redis_cluster.nodes:
        info = node.command("CLUSTER", "INFO").decode()
        assert "cluster_state:ok" in info
        assert "cluster_known_nodes:3" in info


async def test_the_cluster_routes_keys_and_refuses_cross_slot_scripts(
    redis_cluster: RedisClusterNodes, key_prefix: str
) -> None:
    """RedisCluster spreads keys over the nodes; a plain client hears MOVED and CROSSSLOT; hash tags join."""
    keys = [f"{key_prefix}:{n}" for n in range(30)]
    client = RedisCluster(startup_nodes=redis_cluster.startup_nodes)
    await client.initialize()  # redis-py 8.1: used concurrently before this, it can fail (issue 17)
    try:
        for key in keys:
            await client.set(key, "v")
        assert {redis_cluster.node_for(key).port for key in keys} == {node.port for node in redis_cluster.nodes}
        assert set(redis_cluster.keys(f"{key_prefix}:*")) == set(keys)
        apart = [f"{key_prefix}:a", f"{key_prefix}:b"]
        assert slot_of(apart[0]) != slot_of(apart[1])
        # redis-py refuses it before sending, and not with a RedisError: RedisClusterException is an Exception.
        with pytest.raises(redis.exceptions.RedisClusterException, match="same key slot") as refused:
            await client.eval(TWO_KEYS, 2, *apart, "v")
        assert not isinstance(refused.value, redis.RedisError)
        tagged = [f"{{{key_prefix}}}:a", f"{{{key_prefix}}}:b"]
        assert await client.eval(TWO_KEYS, 2, *tagged, "v") == 1
    finally:
        await client.aclose()
    elsewhere = next(node for node in redis_cluster.nodes if node is not redis_cluster.node_for(keys[0]))
    with pytest.raises(redis.exceptions.MovedError):  # MOVED {slot} {host:port}
        elsewhere.command("GET", keys[0])
    home = redis_cluster.node_for(apart[0])
    with pytest.raises(redis.exceptions.ClusterCrossSlotError):  # CROSSSLOT: what a plain client on one node hears
        home.command("EVAL", TWO_KEYS, 2, *apart, "v")


# -- Sentinel --------------------------------------------------------------------------------------


async def test_the_failover_helper_changes_the_master(sentinel_group: SentinelGroup) -> None:
    """After failover(), the Sentinel names the former replica, and master_for's new connections write there."""
    old = sentinel_group.master()
    sentinel = Sentinel(sentinel_group.sentinels, socket_timeout=2.0)  # type: ignore[no-untyped-call]
    client = sentinel.master_for(sentinel_group.name, socket_timeout=2.0)
    try:
        await client.set("before", "1")
        sentinel_group.pair.wait_synced()  # replication is asynchronous: a failover may lose the last writes
        new = sentinel_group.failover()
        assert new is not old
        assert sentinel_group.master() is new
        assert new.info("replication")["role"] == "master"
        await client.connection_pool.disconnect()  # the next connection asks the Sentinel again
        await client.set("after", "1")
        assert new.command("GET", "after") == b"1"
        assert new.command("GET", "before") == b"1"  # replicated before the failover
    finally:
        await client.aclose()
        for connection in sentinel.sentinels:
            await connection.aclose()


# -- a read-only replica ---------------------------------------------------------------------------


async def test_a_replica_answers_reads_and_refuses_writes(replicated_pair: ReplicatedPair) -> None:
    """The replica serves what the master wrote; a write, direct or inside a script, answers READONLY."""
    replicated_pair.master.command("SET", "k", "v")
    replicated_pair.wait_synced()
    client = aioredis.Redis.from_url(replicated_pair.replica.url)
    try:
        assert await client.get("k") == b"v"
        with pytest.raises(redis.ReadOnlyError):
            await client.set("k", "w")
        with pytest.raises(redis.ReadOnlyError, match="script"):
            await client.eval("return redis.call('SET', KEYS[1], 'w')", 1, "k")
        assert await client.eval("return redis.call('GET', KEYS[1])", 1, "k") == b"v"
    finally:
        await client.aclose()


# -- memory ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("policy", "filler_ttl", "evicted", "refused"),
    [
        pytest.param("volatile-lru", None, True, True, id="volatile-lru-evicts-only-keys-with-a-ttl"),
        pytest.param("allkeys-lru", None, True, False, id="allkeys-lru-evicts-any-key"),
        pytest.param("noeviction", 600.0, False, True, id="noeviction-refuses-with-oom"),
    ],
)
def test_a_full_redis_evicts_as_its_policy_says(
    start_redis: StartRedis, policy: str, filler_ttl: float | None, evicted: bool, refused: bool
) -> None:
    """Filler keys make Redis evict a watched key (volatile-lru: only keys with a TTL) or refuse with OOM."""
    server = start_redis(maxmemory_args("4mb", policy))
    assert server.info("memory")["maxmemory_policy"] == policy
    server.command("SET", "box-sessions:watched", "v", "EX", 600)
    filled = fill_memory(server, watched=("box-sessions:watched",), filler_ttl=filler_ttl)
    assert filled.written > 0
    assert (filled.evicted == {"box-sessions:watched"}) is evicted
    # The fill stops at the watched key's eviction; under volatile-lru nothing is left to evict, so
    # the next write is refused if the last batch was not already.
    assert (filled.refused or (refused and _refuses_a_write(server))) is refused
    assert (filled.evicted_total > 0) is evicted
    if policy == "volatile-lru":  # the fillers carry no TTL: none of them was evicted
        assert not missing(server, [f"filler:{n}" for n in range(filled.written)])
    assert drop_filler(server) > 0
    server.command("SET", "box-sessions:after", "v")  # room again


def _refuses_a_write(server: RedisServer) -> bool:
    """Whether ``server`` refuses one more filler write with OOM."""
    try:
        server.command("SET", "filler:one-more", "x" * 65536)
    except redis.exceptions.OutOfMemoryError:
        return True
    return False


# -- restarts ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("appendonly", [True, False], ids=["appendonly", "no-persistence"])
async def test_a_restart_keeps_what_was_written_only_with_appendonly(start_redis: StartRedis, appendonly: bool) -> None:
    """kill -9 and restart on the same port: the data is back only with AOF; a connection from before fails once."""
    server = start_redis(appendonly=appendonly)
    client = aioredis.Redis.from_url(server.url)
    try:
        await client.set("k", "v")
        port = server.port
        server.restart()
        assert server.port == port
        with pytest.raises(redis.ConnectionError):
            await client.get("k")  # the pooled connection died with the server
        assert (server.command("GET", "k") == b"v") is appendonly
        assert (await client.get("k") == b"v") is appendonly  # a fresh connection works
    finally:
        await client.aclose()


# -- ACL -----------------------------------------------------------------------------------------------


def test_the_readme_acl_line_makes_a_user_and_a_missing_command_is_noperm(start_redis: StartRedis) -> None:
    """The README's user runs the share's commands; less PEXPIRE it hears NOPERM, but a bare ERR inside a script."""
    server = start_redis()
    user, rules = acl_rules()
    assert user == "box-sessions"
    assert "~box-sessions:*" in rules
    add_acl_user(server)
    add_acl_user(server, without=("pexpire",))  # the same user, one command less
    with server.admin(username=user, password=ACL_PASSWORD) as client:
        client.set("box-sessions:k", "v")
        with pytest.raises(redis.exceptions.NoPermissionError, match="'pexpire' command"):
            client.pexpire("box-sessions:k", 1000)
        with pytest.raises(redis.exceptions.NoPermissionError, match="keys"):
            client.get("elsewhere:k")
        script = client.register_script("return redis.call('PEXPIRE', KEYS[1], 1000)")  # EVALSHA, as the share
        with pytest.raises(redis.ResponseError, match="can't run this command") as info:
            script(keys=["box-sessions:k"])
        # Redis 7.0 says neither NOPERM nor the command from inside a script: redis-py cannot map it.
        assert type(info.value) is redis.ResponseError
        assert "pexpire" not in str(info.value).lower()
