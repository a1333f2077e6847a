"""`box_sessions.redis.RedisShare` against a real redis-server on 127.0.0.1: tokens shared, failures survived.

Two auth objects stand for two processes here (each has its own token cache); the tests with real
processes are in test_redis_processes.py.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from box_sessions import (
    AuthenticationError,
    BoxClient,
    BoxError,
    BoxTimeoutError,
    CCGAuth,
    OAuth2Auth,
    OAuth2Tokens,
    RateLimit,
    SharedStateError,
)
from box_sessions.redis import RedisShare
from box_sessions.testing import FakeBox, FakeClock, LoopbackServer, Reply, Request

from ..support.redis_acl import add_acl_user
from ..support.redis_server import RedisServer, free_port

#: Generous bound for any wait on the loopback servers.
BOUND = 20.0


def ccg(fake: FakeBox, subject: str = "42") -> CCGAuth:
    return CCGAuth(client_id=fake.client_id, client_secret=fake.client_secret, enterprise_id=subject)


async def terminate(client: BoxClient, user: str = "1") -> None:
    await asyncio.wait_for(client.session_termination.terminate_users_sessions([user]), BOUND)


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "box_sessions" and r.levelno == logging.WARNING]


# -- one access token per expiry -------------------------------------------------------------------


@pytest.mark.redis
async def test_second_process_reads_the_token_the_first_stored(redis_server: RedisServer) -> None:
    """Two CCG auth objects of the same identity sharing Redis make one token request between them."""
    fake = FakeBox()
    async with fake.serve() as url, RedisShare(redis_server.url) as share:
        for auth in (ccg(fake), ccg(fake)):
            async with BoxClient(auth, base_url=url, rate_limit=None, shared=share) as client:
                await terminate(client)
    assert fake.token_requests == 1
    assert fake.status_counts[202] == 2
    assert fake.api_requests()[0].token == fake.api_requests()[1].token


@pytest.mark.redis
async def test_other_subjects_have_tokens_of_their_own(redis_server: RedisServer) -> None:
    """The key is the Box identity: another enterprise of the same app gets a token of its own."""
    fake = FakeBox()
    async with fake.serve() as url, RedisShare(redis_server.url) as share:
        for auth in (ccg(fake, "42"), ccg(fake, "43"), ccg(fake, "42").with_user_subject(7)):
            async with BoxClient(auth, base_url=url, rate_limit=None, shared=share) as client:
                await terminate(client)
    assert fake.token_requests == 3


@pytest.mark.redis
async def test_redis_holds_only_the_token_and_its_expiry_under_the_prefix(redis_server: RedisServer) -> None:
    """One key under the prefix, holding the token and its times, expiring with the token; no secret in its name."""
    fake = FakeBox(token_lifetime=600)
    async with (
        fake.serve() as url,
        RedisShare(redis_server.url, prefix="acme-box") as share,
        BoxClient(ccg(fake), base_url=url, rate_limit=None, shared=share) as client,
    ):
        await terminate(client)
    raw = aioredis.Redis.from_url(redis_server.url, decode_responses=True)
    try:
        keys = [str(key) for key in await raw.keys("*")]
        assert len(keys) == 1
        assert keys[0].startswith("acme-box:access-token:")
        assert fake.client_secret not in keys[0]
        assert fake.client_id not in keys[0]
        value = await raw.get(keys[0])
        assert value is not None
        stored = json.loads(value)
        assert set(stored) == {"access_token", "expires_at", "refresh_at"}
        assert stored["access_token"] == fake.api_requests()[0].token
        assert 590_000 < await raw.pttl(keys[0]) <= 600_000  # the key expires with the token
    finally:
        await raw.aclose()


@pytest.mark.redis
async def test_a_token_box_refused_is_not_taken_back_from_redis(redis_server: RedisServer) -> None:
    """After a 401 on the shared token, one process asks Box for a new one and the others read it."""
    box_clock = FakeClock()
    fake = FakeBox(clock=box_clock)
    async with fake.serve() as url, RedisShare(redis_server.url) as share:
        first, second = ccg(fake), ccg(fake)
        async with (
            BoxClient(first, base_url=url, rate_limit=None, shared=share) as a,
            BoxClient(second, base_url=url, rate_limit=None, shared=share) as b,
        ):
            await terminate(a)
            await terminate(b)
            assert fake.token_requests == 1
            box_clock.advance(3601)  # Box no longer accepts the shared token; Redis still holds it
            await terminate(a)
            await terminate(b)
    assert fake.token_requests == 2
    assert [r.status for r in fake.api_requests()] == [202, 202, 401, 202, 401, 202]
    tokens = [r.token for r in fake.api_requests()]
    assert tokens[3] == tokens[5] != tokens[0]


# -- failures of Redis ------------------------------------------------------------------------------


async def test_unreachable_redis_falls_back_to_own_tokens_with_one_warning(caplog: pytest.LogCaptureFixture) -> None:
    """With no Redis listening, CCG gets its own token at once, and says so once at WARNING."""
    fake = FakeBox(token_lifetime=4)
    clock = FakeClock()
    async with (
        fake.serve() as url,
        RedisShare(f"redis://127.0.0.1:{free_port()}/0") as share,
        BoxClient(ccg(fake), base_url=url, rate_limit=None, shared=share, clock=clock) as client,
    ):
        started = asyncio.get_running_loop().time()
        await terminate(client)
        assert asyncio.get_running_loop().time() - started < 2.0
        clock.advance(3)  # due for refresh: Redis is tried again, fails again, quietly
        await terminate(client)
    assert fake.token_requests == 2
    assert fake.status_counts[202] == 2
    [warning] = warnings_of(caplog)
    assert "The share failed" in warning
    assert "ConnectionError" in warning


@pytest.mark.redis
async def test_redis_killed_mid_job_then_back(redis_server: RedisServer, caplog: pytest.LogCaptureFixture) -> None:
    """Redis killed mid-job: CCG goes on with its own tokens (one WARNING); once Redis is back, tokens are shared."""
    fake = FakeBox(token_lifetime=4)
    clock = FakeClock()
    async with fake.serve() as url, RedisShare(redis_server.url, timeout=1.0) as share:
        async with BoxClient(ccg(fake), base_url=url, rate_limit=None, shared=share, clock=clock) as client:
            await terminate(client)
            redis_server.kill()
            for _ in range(3):  # each needs a new token: Redis is tried each time, warned about once
                clock.advance(3)
                await terminate(client)
            assert len(warnings_of(caplog)) == 1
            redis_server.start()
            clock.advance(3)
            await terminate(client)
        assert any("takes writes again" in r.getMessage() for r in caplog.records)
        async with BoxClient(ccg(fake), base_url=url, rate_limit=None, shared=share, clock=clock) as other:
            await terminate(other)  # reads the token stored after Redis came back
    assert fake.token_requests == 5
    assert fake.status_counts[202] == 6
    assert len(warnings_of(caplog)) == 1


async def test_a_redis_that_never_answers_holds_nothing_up(caplog: pytest.LogCaptureFixture) -> None:
    """A Redis that accepts connections and never answers: each call waits at most the share's timeout, then goes on."""
    connections: list[asyncio.StreamWriter] = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(writer)  # read nothing, answer nothing

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    fake = FakeBox()
    try:
        async with (
            fake.serve() as url,
            RedisShare(f"redis://127.0.0.1:{port}/0", timeout=0.3) as share,
            BoxClient(ccg(fake), base_url=url, rate_limit=None, shared=share) as client,
        ):
            started = asyncio.get_running_loop().time()
            await terminate(client)
            assert asyncio.get_running_loop().time() - started < 2.0
    finally:
        for writer in connections:
            writer.close()
        server.close()
        await server.wait_closed()
    assert fake.status_counts[202] == 1
    [warning] = warnings_of(caplog)
    assert "Redis did not answer reading a token in time" in warning


async def test_oauth2_refresh_without_redis_fails_at_once(caplog: pytest.LogCaptureFixture) -> None:
    """With Redis unreachable an OAuth 2.0 refresh is not tried: AuthenticationError saying why, no token request."""
    fake = FakeBox()
    async with fake.serve() as url, RedisShare(f"redis://127.0.0.1:{free_port()}/0") as share:
        auth = OAuth2Auth(
            client_id=fake.client_id,
            client_secret=fake.client_secret,
            refresh_token=fake.issue_refresh_token(),
            token_store=share.token_store("user-42"),
        )
        async with BoxClient(auth, base_url=url, rate_limit=None) as client:
            started = asyncio.get_running_loop().time()
            with pytest.raises(AuthenticationError, match="log the user out") as info:
                await terminate(client)
            assert asyncio.get_running_loop().time() - started < 2.0
    assert info.value.code == "token_store_unavailable"
    assert isinstance(info.value.__cause__, SharedStateError)
    assert fake.token_requests == 0


@pytest.mark.redis
async def test_oauth2_refresh_fails_when_redis_is_killed(redis_server: RedisServer) -> None:
    """Redis killed after a refresh: the next refresh fails with the clear AuthenticationError, none is sent."""
    fake = FakeBox()
    clock = FakeClock()
    async with fake.serve() as url, RedisShare(redis_server.url, timeout=1.0) as share:
        store = share.token_store("user-42")
        await store.save(OAuth2Tokens(refresh_token=fake.issue_refresh_token()))
        auth = OAuth2Auth(client_id=fake.client_id, client_secret=fake.client_secret, token_store=store)
        async with BoxClient(auth, base_url=url, rate_limit=None, clock=clock) as client:
            await terminate(client)
            redis_server.kill()
            clock.advance(3600)  # the access token is due: a refresh is needed
            with pytest.raises(AuthenticationError, match="token store could not be taken") as info:
                await terminate(client)
    assert info.value.code == "token_store_unavailable"
    assert (fake.token_requests, fake.spent_refresh_tokens) == (1, 1)


@pytest.mark.redis
async def test_wrong_redis_password_is_never_shown(redis_binary: str, tmp_path: Path) -> None:
    """A Redis refusing the password: CCG falls back; neither the repr nor the warning shows the password."""
    server = RedisServer(redis_binary, tmp_path / "redis", ["--requirepass", "s3cr3t-right"])
    server.start()
    fake = FakeBox()
    try:
        url = f"redis://:s3cr3t-wrong@127.0.0.1:{server.port}/0"
        async with RedisShare(url) as share:
            assert "s3cr3t" not in repr(share)
            with pytest.raises(SharedStateError) as info:
                await share.tokens.load("anything")
            assert "s3cr3t" not in str(info.value)
            async with fake.serve() as base, BoxClient(ccg(fake), base_url=base, rate_limit=None, shared=share) as c:
                await terminate(c)
    finally:
        server.kill()
    assert fake.status_counts[202] == 1


# -- the share's own surface --------------------------------------------------------------------------


def test_reprs_show_no_password_and_no_token() -> None:
    """RedisShare's repr hides the password in its URL; a store's repr names only its key."""
    share = RedisShare("rediss://box:s3cr3t@redis.example.com:6380/2", prefix="p")
    assert repr(share) == "RedisShare('rediss://box:***@redis.example.com:6380/2', prefix='p')"
    assert repr(RedisShare("redis://:s3cr3t@h/0")) == "RedisShare('redis://:***@h/0', prefix='box-sessions')"
    assert repr(share.token_store("user-42")) == "RedisTokenStore(key='user-42', prefix='p')"


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        pytest.param({}, TypeError, "exactly one of url and client", id="nothing"),
        pytest.param({"url": "redis://h", "client": object()}, TypeError, "exactly one", id="both"),
        pytest.param({"client": object()}, TypeError, "client must be a redis.asyncio.Redis", id="not-a-client"),
        pytest.param({"url": "redis://h", "prefix": ""}, ValueError, "prefix", id="empty-prefix"),
        pytest.param({"url": "redis://h", "timeout": 0}, ValueError, "timeout", id="zero-timeout"),
        pytest.param({"url": "redis://h", "lock_ttl": "10"}, TypeError, "lock_ttl", id="str-ttl"),
        pytest.param({"url": 5}, TypeError, "url must be a str", id="int-url"),
        pytest.param({"url": "https://u:s3cr3t@h"}, ValueError, "url must be a redis://", id="https-url"),
    ],
)
def test_share_arguments_are_checked(kwargs: dict[str, object], error: type[Exception], message: str) -> None:
    """Bad RedisShare arguments raise at construction, naming the argument."""
    with pytest.raises(error, match=message):
        RedisShare(**kwargs)  # type: ignore[arg-type]


def test_box_client_checks_shared() -> None:
    """BoxClient(shared=) refuses what is not a box_sessions.Shared."""
    with pytest.raises(TypeError, match=r"shared must be a box_sessions\.Shared"):
        BoxClient(CCGAuth(client_id="c", client_secret="s", enterprise_id="1"), shared=object())  # type: ignore[arg-type]


def test_the_core_never_imports_redis() -> None:
    """Importing box_sessions (and using its client) does not import redis; only box_sessions.redis does."""
    code = (
        "import sys, box_sessions, box_sessions.testing;"
        "box_sessions.BoxClient(box_sessions.DeveloperTokenAuth('x'));"
        "print('redis' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)  # noqa: S603
    assert result.stdout.strip() == "False"


# -- at rest and in transit ---------------------------------------------------------------------------


@pytest.mark.redis
async def test_an_acl_user_limited_to_the_prefix_is_enough(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    """A Redis user made with the README's ACL line (the prefix's keys, the share's commands) is enough."""
    url = add_acl_user(redis_server)  # the line read from README.md, so that the two cannot drift
    fake = FakeBox()
    async with fake.serve() as base, RedisShare(url) as share:
        store = share.token_store("user-42")
        await store.save(OAuth2Tokens(refresh_token=fake.issue_refresh_token()))
        oauth = OAuth2Auth(client_id=fake.client_id, client_secret=fake.client_secret, token_store=store)
        for auth in (ccg(fake), ccg(fake), oauth):
            # Paced: the pacing scripts' commands run under the same user.
            async with BoxClient(auth, base_url=base, rate_limit=RateLimit(), shared=share) as client:
                await terminate(client)
        async with RedisShare(url, prefix="elsewhere") as outside:
            with pytest.raises(SharedStateError, match=r"NOPERM.*may not use the share's keys"):
                await outside.tokens.load("anything")
    assert fake.token_requests == 2  # one CCG token for both, one OAuth 2.0 refresh
    assert fake.status_counts[202] == 3
    assert warnings_of(caplog) == []  # every command (locks released too) was allowed


def write_tls_files(directory: Path) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for 127.0.0.1 signed by it: (ca, cert, key) files."""
    now = datetime.datetime.now(datetime.timezone.utc)

    def certificate(
        subject: str, key: rsa.RSAPrivateKey, issuer: x509.Name, signer: rsa.RSAPrivateKey, *, ca: bool
    ) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(issuer)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
            # Python 3.13 verifies strictly (VERIFY_X509_STRICT): key identifiers and key usage
            # must be there, as in any real certificate.
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()), critical=False)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=not ca,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=ca,
                    crl_sign=ca,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
        )
        if not ca:
            names = [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        return builder.sign(signer, hashes.SHA256())

    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "box-sessions test CA")])
    ca_cert = certificate("box-sessions test CA", ca_key, ca_name, ca_key, ca=True)
    server_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    server_cert = certificate("127.0.0.1", server_key, ca_name, ca_key, ca=False)
    paths = directory / "ca.pem", directory / "server.pem", directory / "server.key"
    paths[0].write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(server_cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        server_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return paths


@pytest.mark.redis
async def test_rediss_url_uses_verified_tls(redis_binary: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A rediss:// URL reaches a TLS-only Redis, checking its certificate and name: an unknown CA or name is refused."""
    ca, cert, key = write_tls_files(tmp_path)
    tls_args = ["--tls-cert-file", str(cert), "--tls-key-file", str(key), "--tls-ca-cert-file", str(ca)]
    server = RedisServer(redis_binary, tmp_path / "redis", [*tls_args, "--tls-auth-clients", "no"])
    server.start(tls=True)
    url = f"rediss://127.0.0.1:{server.port}/0"
    fake = FakeBox()
    try:
        async with RedisShare(url) as untrusting:  # the system's CAs do not know this one
            # redis-py quotes OpenSSL's reason from version 6 only; every version says "Error 1"
            # (ssl's error number; a refused connection is "Error 111").
            with pytest.raises(SharedStateError, match="Error 1 connecting"):
                await untrusting.tokens.load("anything")
        monkeypatch.setenv("SSL_CERT_FILE", str(ca))  # OpenSSL's default verify paths honour it
        async with RedisShare(f"rediss://localhost:{server.port}/0") as wrong_name:  # the certificate is for 127.0.0.1
            with pytest.raises(SharedStateError, match="Error 1 connecting"):
                await wrong_name.tokens.load("anything")
        async with fake.serve() as base, RedisShare(url) as share:
            for auth in (ccg(fake), ccg(fake)):
                async with BoxClient(auth, base_url=base, rate_limit=None, shared=share) as client:
                    await terminate(client)
    finally:
        server.kill()
    assert fake.token_requests == 1  # the second read the token through TLS


# -- Redis lost mid-refresh, odd contents, a lock held too long -------------------------------------------


@pytest.mark.redis
async def test_redis_lost_mid_refresh_keeps_the_new_pair_for_later(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Redis killed while a refresh is in flight: the call fails, the new pair is kept and saved when Redis is back."""
    fake = FakeBox()
    first_refresh = fake.issue_refresh_token()
    arrived, release = asyncio.Event(), asyncio.Event()

    async def held_refresh(request: Request) -> Reply:
        reply = await fake.handle(request)  # Box spends the refresh token on receipt
        if request.path.startswith("/oauth2/token"):
            arrived.set()
            await release.wait()
        return reply

    async with (
        LoopbackServer(held_refresh) as server,
        RedisShare(redis_server.url, timeout=0.5, lock_ttl=0.6, lock_wait=1.0) as share,
    ):
        store = share.token_store("user-42")
        await store.save(OAuth2Tokens(refresh_token=first_refresh))
        auth = OAuth2Auth(client_id=fake.client_id, client_secret=fake.client_secret, token_store=store)
        async with BoxClient(auth, base_url=server.url, rate_limit=None) as client:
            call = asyncio.create_task(terminate(client))
            await asyncio.wait_for(arrived.wait(), BOUND)
            redis_server.kill()
            await asyncio.sleep(0.5)  # the lock's renewal fails meanwhile
            release.set()
            # The save is tried again for lock_wait (1 s here), on fresh connections, then given up:
            with pytest.raises(AuthenticationError, match=r"could not save the new pair.*storing the OAuth 2\.0"):
                await asyncio.wait_for(call, BOUND)
            redis_server.start()  # empty: no persistence
            await terminate(client)  # saves the kept pair first, then uses it
        saved = await store.load()
    assert (fake.spent_refresh_tokens, fake.status_counts[400]) == (1, 0)  # never refreshed twice
    assert saved is not None
    assert saved.access_token == fake.api_requests()[-1].token
    warnings = " ".join(warnings_of(caplog))
    assert "renewing the OAuth 2.0 lock" in warnings
    assert "releasing the OAuth 2.0 lock" in warnings


@pytest.mark.redis
async def test_unreadable_stored_values(redis_server: RedisServer) -> None:
    """A token key not in this module's JSON counts as absent; an unreadable OAuth 2.0 pair is a BoxError."""
    fake = FakeBox()
    raw = aioredis.Redis.from_url(redis_server.url, decode_responses=True)
    try:
        async with fake.serve() as url, RedisShare(redis_server.url) as share:
            async with BoxClient(ccg(fake), base_url=url, rate_limit=None, shared=share) as client:
                await terminate(client)
            [key] = [str(k) for k in await raw.keys("box-sessions:access-token:*")]
            await raw.set(key, "not json")
            async with BoxClient(ccg(fake), base_url=url, rate_limit=None, shared=share) as client:
                await terminate(client)  # asks Box, and stores a good token again
            value = await raw.get(key)
            assert value is not None
            assert json.loads(value)["access_token"] == fake.api_requests()[-1].token
            await raw.set("box-sessions:oauth2:{user-42}", '{"access_token": "a"}')
            with pytest.raises(BoxError, match="not usable: stored tokens have no refresh_token"):
                await share.token_store("user-42").load()
    finally:
        await raw.aclose()
    assert fake.token_requests == 2


@pytest.mark.redis
async def test_oauth2_lock_held_too_long_is_a_timeout(redis_server: RedisServer) -> None:
    """Another process holding the OAuth 2.0 lock longer than lock_wait: BoxTimeoutError, nothing sent to Box."""
    fake = FakeBox()
    raw = aioredis.Redis.from_url(redis_server.url)
    try:
        await raw.set("box-sessions:oauth2:{user-42}:lock", "someone-else", px=60_000)
        async with fake.serve() as url, RedisShare(redis_server.url, lock_wait=0.3) as share:
            store = share.token_store("user-42")
            await store.save(OAuth2Tokens(refresh_token=fake.issue_refresh_token()))
            auth = OAuth2Auth(client_id=fake.client_id, client_secret=fake.client_secret, token_store=store)
            async with BoxClient(auth, base_url=url, rate_limit=None) as client:
                with pytest.raises(BoxTimeoutError, match=r"held the OAuth 2\.0 lock of 'user-42' for 0\.3 s"):
                    await terminate(client)
        assert await raw.get("box-sessions:oauth2:{user-42}:lock") == b"someone-else"  # not taken from its holder
    finally:
        await raw.aclose()
    assert fake.token_requests == 0


@pytest.mark.redis
async def test_a_client_given_by_the_caller_stays_open(redis_server: RedisServer) -> None:
    """RedisShare(client=...) leaves closing the client to its owner."""
    own = aioredis.Redis.from_url(redis_server.url)
    try:
        async with RedisShare(client=own, prefix="mine") as share:
            assert repr(share) == "RedisShare(client=<redis.asyncio.Redis>, prefix='mine')"
            assert await share.tokens.load("anything") is None
        assert await own.ping()
    finally:
        await own.aclose()


@pytest.mark.redis
async def test_a_renewal_redis_did_not_answer_is_tried_again_and_the_lock_kept(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Redis paused past the share's timeout at a renewal: the holder renews again, and no one takes its lock.

    Before, the first renewal that failed ended them all: the lease ran out under its live holder,
    and a second process took the lock and sent the refresh token the first was spending.
    """
    async with (
        RedisShare(redis_server.url, timeout=0.4, lock_ttl=3.0, lock_wait=1.0) as holder,
        RedisShare(redis_server.url, lock_ttl=3.0, lock_wait=6.5) as other,
        holder.token_store("user-42").lock(),
    ):
        # Paused from now for 1.8 s: a renewal is due within 1 s of its start (a third of the
        # lease, plus the last renewal's own time on a busy machine) and waits out the rest, at
        # least 0.5 s, past the holder's 0.4 s timeout. The lease outlasts the pause: the holder's
        # renewal, queued in it, runs first when it ends.
        redis_server.command("CLIENT", "PAUSE", 1800, "ALL")
        await asyncio.to_thread(redis_server.command, "PING")  # answered once the pause is over
        # Six and a half seconds, two leases, in which the other process may not take the lock.
        with pytest.raises(BoxTimeoutError, match=r"another process has held the OAuth 2\.0 lock"):
            async with other.token_store("user-42").lock():
                pytest.fail("the other process took a lock its holder still held")
    warnings = " ".join(warnings_of(caplog))
    assert "renewing the OAuth 2.0 lock" in warnings  # the renewal did fail, and was tried again
