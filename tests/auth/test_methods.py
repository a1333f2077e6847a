"""OAuth 2.0, JWT, subject switching and As-User, against FakeBox's token endpoint."""

from __future__ import annotations

import asyncio
import fcntl
import json
import ssl
import stat
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from box_sessions import (
    AuthenticationError,
    BoxAPIError,
    BoxClient,
    BoxError,
    BoxTimeoutError,
    CCGAuth,
    DeveloperTokenAuth,
    JSONFileTokenStore,
    JWTAuth,
    OAuth2Auth,
    OAuth2Tokens,
)
from box_sessions.testing import FakeBox, FakeClock

from ..conftest import TOKEN_URL, USERS_URL, accepted, fake_ccg, form_of, token_answer
from ..support.http import httpx
from ..support.routes import Routes

PASSPHRASE = "correct horse battery staple"
# Two encryptions of one throwaway P-256 key with PASSPHRASE (each encryption draws its own salt
# and IV). Decrypted with the wrong passphrase "nope", the first fails as cryptography's "Incorrect
# password"; the second, as about one encryption in 150 does, decrypts to bytes that fail to parse.
# Fixed here, so that which one a test meets is not left to chance.
WRONG_PASSPHRASE_SAYS_SO = """\
-----BEGIN ENCRYPTED PRIVATE KEY-----
MIH0MF8GCSqGSIb3DQEFDTBSMDEGCSqGSIb3DQEFDDAkBBAWePZqiIvRCVdApSNN
7BtJAgIIADAMBggqhkiG9w0CCQUAMB0GCWCGSAFlAwQBKgQQFEBFdl1S3S4KjMpU
qQrfkASBkNmvL62cdrA8BvGbRlYn0nKhDxEabA7WeIQ1TOD3cZ9GSYBGh+TvgD06
IHV/tadkDu2tmbopPtMc3Ooi2Vgrqa/Gre331mx5M16A6RhFCSvRMaCWVYwJ152m
wQdEPWuVTyYVF5+WWrOdnu+whAFYoSL7stdI7iV6jwIEGm5IM7tAfz+THIBihKxE
vaBUfECDVQ==
-----END ENCRYPTED PRIVATE KEY-----
"""
WRONG_PASSPHRASE_DECRYPTS_TO_GARBAGE = """\
-----BEGIN ENCRYPTED PRIVATE KEY-----
MIH0MF8GCSqGSIb3DQEFDTBSMDEGCSqGSIb3DQEFDDAkBBA4ownXHKCeEheHvjqo
9qpAAgIIADAMBggqhkiG9w0CCQUAMB0GCWCGSAFlAwQBKgQQSaq1vKfigf7fWaB3
I0NJlgSBkMfYU5cUWhwMQjhjhYGbfE10EnxGATFUD0B51aJP+6MwwGoGZ+2TjV9+
frn9O2TPBXY5t3amSCh33xm2j8KCwT/X9dMGdXRSAP0J5Kq5V6ak8JvpVjXKmjp9
fNvfpd1pYHXFtFoaxlpoRQB480OMM45q1IGGuIhtpSz2JmsOdBBrSgMGDIPtwasv
Q4lvTzAjOA==
-----END ENCRYPTED PRIVATE KEY-----
"""


def encrypted(private_pem: str) -> str:
    key = serialization.load_pem_private_key(private_pem.encode(), password=None)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(PASSPHRASE.encode()),
    ).decode()


def oauth2(fake: FakeBox, **kwargs: object) -> OAuth2Auth:
    kwargs.setdefault("refresh_token", fake.issue_refresh_token())
    return OAuth2Auth(client_id=fake.client_id, client_secret=fake.client_secret, **kwargs)  # type: ignore[arg-type]


class RecordingStore:
    """A token store that checks, at each save, that the new access token has not been used yet."""

    key = None  # names no user: the client paces on its own

    def __init__(self, fake: FakeBox) -> None:
        self.fake = fake
        self.saved: list[OAuth2Tokens] = []

    async def load(self) -> OAuth2Tokens | None:
        return self.saved[-1] if self.saved else None

    async def save(self, tokens: OAuth2Tokens) -> None:
        used = {r.token for r in self.fake.api_requests()}
        assert tokens.access_token not in used, "a new access token was used before it was saved"
        self.saved.append(tokens)


# -- OAuth 2.0 -------------------------------------------------------------------------------


async def test_oauth2_refreshes_and_saves_before_use() -> None:
    """With only a refresh token, the first call refreshes, saves the new pair, then uses it."""
    fake = FakeBox()
    store = RecordingStore(fake)
    auth = oauth2(fake, token_store=store)
    async with fake.client(auth, rate_limit=None) as client:
        await client.session_termination.terminate_groups_sessions(["1"])
    assert fake.spent_refresh_tokens == 1
    assert store.saved[-1].access_token == fake.api_requests()[0].token
    assert store.saved[-1].refresh_token.startswith("fake-refresh-")


async def test_oauth2_concurrent_refresh_is_single_flight() -> None:
    """50 concurrent calls needing a token make exactly one refresh (a second would log the user out)."""
    fake = FakeBox()
    auth = oauth2(fake)
    async with fake.client(auth, rate_limit=None) as client:
        await asyncio.gather(*(client.session_termination.terminate_groups_sessions([i]) for i in range(50)))
    assert fake.token_requests == 1
    assert fake.spent_refresh_tokens == 1
    assert fake.status_counts[202] == 50


async def test_oauth2_given_access_token_is_used_then_refreshed_after_401() -> None:
    """A given access token is used first; when Box refuses it, one refresh and the call goes through."""
    clock = FakeClock()
    fake = FakeBox(clock=clock, token_lifetime=100)
    async with fake.client(oauth2(fake), rate_limit=None) as client:
        await client.session_termination.terminate_groups_sessions(["1"])
        first_token = fake.api_requests()[0].token
    auth = oauth2(fake, access_token=first_token)
    clock.advance(101)  # the given access token has expired at Box
    async with fake.client(auth, rate_limit=None, clock=clock) as client:
        await client.session_termination.terminate_groups_sessions(["2"])
    assert [r.status for r in fake.api_requests()] == [202, 401, 202]
    assert fake.spent_refresh_tokens == 2


async def test_oauth2_rotation_is_persisted_in_a_0600_file(tmp_path: Path) -> None:
    """The JSON file store keeps the newest pair (0600); a later run resumes from it, not from a spent token."""
    fake = FakeBox()
    path = tmp_path / "tokens.json"
    first_refresh = fake.issue_refresh_token()
    auth = oauth2(fake, refresh_token=first_refresh, token_store=JSONFileTokenStore(path))
    async with fake.client(auth, rate_limit=None) as client:
        await client.session_termination.terminate_groups_sessions(["1"])
    saved = json.loads(path.read_text())
    assert saved["refresh_token"] != first_refresh
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    # No temporary file left behind; the lock file beside it is the owner's only too.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tokens.json", "tokens.json.lock"]
    assert stat.S_IMODE((tmp_path / "tokens.json.lock").stat().st_mode) == 0o600
    # A new process with the spent token on its command line still works: the store wins.
    later = oauth2(fake, refresh_token=first_refresh, token_store=JSONFileTokenStore(path))
    async with fake.client(later, rate_limit=None) as client:
        await client.session_termination.terminate_groups_sessions(["2"])
    assert fake.status_counts[202] == 2


async def test_oauth2_expired_stored_access_token_is_not_tried(tmp_path: Path) -> None:
    """A stored access token past its expires_at is skipped: the first request already carries a fresh one."""
    fake = FakeBox()
    path = tmp_path / "tokens.json"
    stale = OAuth2Tokens(access_token="old-access", refresh_token=fake.issue_refresh_token(), expires_at=1.0)
    await JSONFileTokenStore(path).save(stale)
    auth = OAuth2Auth(client_id=fake.client_id, client_secret=fake.client_secret, token_store=JSONFileTokenStore(path))
    async with fake.client(auth, rate_limit=None) as client:
        await client.session_termination.terminate_groups_sessions(["1"])
    assert [r.status for r in fake.api_requests()] == [202]  # no 401 from trying the stale token
    assert fake.spent_refresh_tokens == 1


async def test_oauth2_spent_refresh_token_raises() -> None:
    """A refresh token Box no longer accepts raises AuthenticationError with Box's description."""
    fake = FakeBox()
    auth = OAuth2Auth(client_id=fake.client_id, client_secret=fake.client_secret, refresh_token="spent")
    async with fake.client(auth, rate_limit=None) as client:
        with pytest.raises(AuthenticationError, match="Invalid refresh token"):
            await client.session_termination.terminate_groups_sessions(["1"])


async def test_oauth2_failed_save_keeps_the_new_pair_for_later() -> None:
    """If saving fails, the call fails, and the next call saves the kept pair instead of refreshing again."""
    fake = FakeBox()

    class FlakyStore(RecordingStore):
        fail = True

        async def save(self, tokens: OAuth2Tokens) -> None:
            if self.fail and tokens.access_token is not None:
                self.fail = False
                raise OSError("disk full")
            await super().save(tokens)

    store = FlakyStore(fake)
    async with fake.client(oauth2(fake, token_store=store), rate_limit=None) as client:
        with pytest.raises(OSError, match="disk full"):
            await client.session_termination.terminate_groups_sessions(["1"])
        await client.session_termination.terminate_groups_sessions(["2"])
    assert fake.spent_refresh_tokens == 1  # the pair from the first refresh was kept, not lost
    assert store.saved[-1].access_token == fake.api_requests()[-1].token


def test_oauth2_arguments_checked() -> None:
    """OAuth2Auth needs a refresh token or a store, and a store with async load/save."""
    with pytest.raises(ValueError, match="refresh_token"):
        OAuth2Auth(client_id="c", client_secret="s")
    with pytest.raises(TypeError, match="token_store"):
        OAuth2Auth(client_id="c", client_secret="s", refresh_token="r", token_store=object())  # type: ignore[arg-type]
    auth = OAuth2Auth(client_id="c", client_secret="s3cr3t", refresh_token="r3fr3sh", access_token="acc3ss")
    assert "s3cr3t" not in repr(auth)
    assert "r3fr3sh" not in repr(auth)
    assert "acc3ss" not in repr(auth)


async def test_file_store_refuses_a_broken_file(tmp_path: Path) -> None:
    """A token file that is not JSON, or has no refresh token, raises BoxError without its content."""
    path = tmp_path / "tokens.json"
    path.write_text("{not json, secret-ish")
    with pytest.raises(BoxError, match="cannot read the token file") as info:
        await JSONFileTokenStore(path).load()
    assert "secret-ish" not in str(info.value)
    path.write_text('{"access_token": "a"}')
    with pytest.raises(BoxError, match="no refresh_token"):
        await JSONFileTokenStore(path).load()
    assert await JSONFileTokenStore(tmp_path / "absent.json").load() is None


async def test_file_store_waits_for_another_holder_of_its_lock_only_so_long(tmp_path: Path) -> None:
    """A refresh waits for the token file's lock held elsewhere only lock_wait: BoxTimeoutError, no token request."""
    fake = FakeBox()
    path = tmp_path / "tokens.json"
    await JSONFileTokenStore(path).save(OAuth2Tokens(refresh_token=fake.issue_refresh_token()))
    with (tmp_path / "tokens.json.lock").open("w") as other:
        fcntl.flock(other, fcntl.LOCK_EX)  # another process's refresh, as the system sees it
        auth = OAuth2Auth(
            client_id=fake.client_id,
            client_secret=fake.client_secret,
            token_store=JSONFileTokenStore(path, lock_wait=0.2),
        )
        async with fake.client(auth, rate_limit=None) as client:
            with pytest.raises(BoxTimeoutError, match="has held the lock of the token file"):
                await client.session_termination.terminate_groups_sessions(["1"])
    assert fake.token_requests == 0


async def test_file_store_lock_file_that_cannot_be_opened(tmp_path: Path) -> None:
    """A token file in a folder that does not exist: the lock says which file, as a BoxError."""
    store = JSONFileTokenStore(tmp_path / "missing" / "tokens.json")
    with pytest.raises(BoxError, match="cannot open the token file's lock"):
        async with store.lock():
            pass


@pytest.mark.parametrize(("value", "error"), [(0, ValueError), (-1, ValueError), ("5", TypeError), (True, TypeError)])
def test_file_store_lock_wait_is_checked(value: object, error: type[Exception]) -> None:
    """JSONFileTokenStore(lock_wait=) must be a positive number of seconds."""
    with pytest.raises(error, match="lock_wait"):
        JSONFileTokenStore("tokens.json", lock_wait=value)  # type: ignore[arg-type]


# -- JWT -------------------------------------------------------------------------------------


def jwt_config(fake: FakeBox, private_pem: str, passphrase: str = "") -> dict[str, object]:
    return {
        "boxAppSettings": {
            "clientID": fake.client_id,
            "clientSecret": fake.client_secret,
            "appAuth": {"publicKeyID": "key-1", "privateKey": private_pem, "passphrase": passphrase},
        },
        "enterpriseID": "42",
    }


async def test_jwt_from_config_file_authenticates(tmp_path: Path, rsa_keys: tuple[str, str]) -> None:
    """JWTAuth.from_config_file reads the console's JSON; the fake accepts its RS256 assertion."""
    private, public = rsa_keys
    fake = FakeBox(jwt_public_key=public)
    path = tmp_path / "config.json"
    path.write_text(json.dumps(jwt_config(fake, encrypted(private), PASSPHRASE)))
    auth = JWTAuth.from_config_file(path)
    async with fake.client(auth, rate_limit=None) as client:
        await client.session_termination.terminate_users_sessions(["1"])
    assert fake.status_counts == {200: 1, 202: 1}
    assert PASSPHRASE not in repr(auth)
    assert "PRIVATE KEY" not in repr(auth)


async def test_jwt_assertion_claims(routes: Routes, rsa_keys: tuple[str, str]) -> None:
    """The assertion is RS256 with kid, a random jti, exp at most 60 s ahead, and the enterprise subject."""
    private, public = rsa_keys
    route = routes.post(TOKEN_URL).mock(side_effect=[token_answer("a", 1), token_answer("b", 1)])
    routes.post(USERS_URL).mock(return_value=accepted())
    clock = FakeClock()
    auth = JWTAuth(client_id="cid", client_secret="sec", public_key_id="kid-7", private_key=private, enterprise_id="42")
    async with BoxClient(auth, rate_limit=None, clock=clock, transport=routes.transport) as client:
        await client.session_termination.terminate_users_sessions(["1"])
        clock.advance(2)
        await client.session_termination.terminate_users_sessions(["1"])
    forms = [form_of(c.request) for c in route.calls]
    assert forms[0]["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer"
    claims = [
        jwt.decode(
            f["assertion"],
            public,
            algorithms=["RS256"],
            audience="https://api.box.com/oauth2/token",
            options={"verify_exp": False},
        )
        for f in forms
    ]
    assert jwt.get_unverified_header(forms[0]["assertion"])["kid"] == "kid-7"
    assert (claims[0]["iss"], claims[0]["sub"], claims[0]["box_sub_type"]) == ("cid", "42", "enterprise")
    assert claims[0]["jti"] != claims[1]["jti"]
    assert 0 < claims[0]["exp"] - clock.time() + 2 <= 60


async def test_jwt_clock_skew_retries_once_with_box_time(rsa_keys: tuple[str, str]) -> None:
    """When Box refuses the exp (this clock is 5 min behind), one retry with the Date header's time succeeds."""
    private, public = rsa_keys
    fake = FakeBox(jwt_public_key=public, clock_skew=300)
    auth = JWTAuth.from_config(jwt_config(fake, private))
    async with fake.client(auth, rate_limit=None) as client:
        await client.session_termination.terminate_users_sessions(["1"])
        await client.session_termination.terminate_users_sessions(["2"])
    assert fake.token_requests == 2  # one refused for exp, one accepted; the token is then cached
    assert fake.status_counts[202] == 2


async def test_jwt_other_rejections_are_not_retried(rsa_keys: tuple[str, str]) -> None:
    """A refusal that is not about exp (a key Box does not know) raises at once."""
    private, _ = rsa_keys
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    fake = FakeBox(
        jwt_public_key=other.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode()
    )
    async with fake.client(JWTAuth.from_config(jwt_config(fake, private)), rate_limit=None) as client:
        with pytest.raises(AuthenticationError, match="Invalid assertion"):
            await client.session_termination.terminate_users_sessions(["1"])
    assert fake.token_requests == 1


def test_jwt_bad_key_or_passphrase_says_so_without_secrets() -> None:
    """A wrong passphrase or a non-key raises ValueError naming the problem, not the secret."""
    with pytest.raises(ValueError, match="passphrase") as info:
        JWTAuth(
            client_id="c",
            client_secret="s",
            public_key_id="k",
            private_key=WRONG_PASSPHRASE_SAYS_SO,
            passphrase="nope",
            enterprise_id="1",
        )
    assert "nope" not in str(info.value)
    with pytest.raises(ValueError, match="not a PEM private key"):
        JWTAuth(client_id="c", client_secret="s", public_key_id="k", private_key="-----BEGIN junk", enterprise_id="1")
    with pytest.raises(ValueError, match="not a Box JWT app config"):
        JWTAuth.from_config({"boxAppSettings": {}})


def test_jwt_wrong_passphrase_is_named_whatever_it_decrypts_to() -> None:
    """A wrong passphrase is named as such even when it decrypts the key to bytes that do not parse."""
    with pytest.raises(ValueError, match="passphrase") as info:
        JWTAuth(
            client_id="c",
            client_secret="s",
            public_key_id="k",
            private_key=WRONG_PASSPHRASE_DECRYPTS_TO_GARBAGE,
            passphrase="nope",
            enterprise_id="1",
        )
    assert "nope" not in str(info.value)


def test_jwt_passphrase_and_encryption_that_do_not_match_are_named(rsa_keys: tuple[str, str]) -> None:
    """An encrypted key without a passphrase, or a passphrase for a plain key, is named as such."""
    private, _ = rsa_keys
    for key, passphrase, reason in (
        (WRONG_PASSPHRASE_SAYS_SO, None, "the key is encrypted: pass its passphrase"),
        (private, "unneeded-secret", "a passphrase was given but the key is not encrypted"),
    ):
        with pytest.raises(ValueError, match=reason) as info:
            JWTAuth(
                client_id="c",
                client_secret="s",
                public_key_id="k",
                private_key=key,
                passphrase=passphrase,
                enterprise_id="1",
            )
        assert "unneeded-secret" not in str(info.value)


async def test_jwt_user_subject(routes: Routes, rsa_keys: tuple[str, str]) -> None:
    """from_config(user_id=...) and with_user_subject() sign for the user."""
    private, public = rsa_keys
    route = routes.post(TOKEN_URL).mock(return_value=token_answer())
    routes.post(USERS_URL).mock(return_value=accepted())
    config = jwt_config(FakeBox(), private)
    for auth in (JWTAuth.from_config(config, user_id=7), JWTAuth.from_config(config).with_user_subject(7)):
        async with BoxClient(auth, rate_limit=None, transport=routes.transport) as client:
            await client.session_termination.terminate_users_sessions(["1"])
        form = form_of(route.calls.last.request)
        claims = jwt.decode(
            form["assertion"], public, algorithms=["RS256"], audience="https://api.box.com/oauth2/token"
        )
        assert (claims["sub"], claims["box_sub_type"]) == ("7", "user")


# -- subjects, As-User, redirects, TLS ------------------------------------------------------------


async def test_ccg_with_user_subject_has_its_own_token() -> None:
    """with_user_subject gives the same app as a user, with a token cache of its own."""
    fake = FakeBox()
    enterprise = fake_ccg(fake)
    user = enterprise.with_user_subject(99)
    assert (user.user_id, user.enterprise_id) == ("99", None)
    async with fake.client(enterprise, rate_limit=None) as a, fake.client(user, rate_limit=None) as b:
        await a.session_termination.terminate_groups_sessions(["1"])
        await b.session_termination.terminate_groups_sessions(["1"])
        await a.session_termination.terminate_groups_sessions(["2"])
    tokens = [r.token for r in fake.api_requests()]
    assert tokens[0] != tokens[1]
    assert tokens[0] == tokens[2]
    assert fake.token_requests == 2


async def test_as_user_header(routes: Routes) -> None:
    """BoxClient(as_user=...) sends As-User on API calls, not on the token request."""
    token = routes.post(TOKEN_URL).mock(return_value=token_answer())
    api = routes.post(USERS_URL).mock(return_value=accepted())
    auth = CCGAuth(client_id="c", client_secret="s", enterprise_id="1")
    async with BoxClient(auth, as_user=12345, rate_limit=None, transport=routes.transport) as client:
        await client.session_termination.terminate_users_sessions(["1"])
    assert api.calls.last.request.headers["as-user"] == "12345"
    assert "as-user" not in token.calls.last.request.headers
    with pytest.raises(ValueError, match="as_user"):
        BoxClient(auth, as_user="someone")


@pytest.mark.parametrize("follow", [False, True], ids=["own-client", "caller-client-following-redirects"])
async def test_redirects_are_not_followed(routes: Routes, follow: bool) -> None:
    """A redirect is an error, never followed with the bearer token, even by a client set to follow."""
    routes.post(USERS_URL).mock(
        return_value=httpx.Response(307, headers={"location": "https://evil.example.com/steal"})
    )
    evil = routes.post("https://evil.example.com/steal").mock(return_value=accepted())
    async with httpx.AsyncClient(follow_redirects=follow, transport=routes.transport) as http:
        kwargs = {"http_client": http} if follow else {"transport": routes.transport}
        async with BoxClient(DeveloperTokenAuth("dev-token"), rate_limit=None, **kwargs) as client:
            with pytest.raises(BoxAPIError) as info:
                await client.session_termination.terminate_users_sessions(["1"])
    assert info.value.status == 307
    assert evil.call_count == 0


async def test_tls_verification_is_on_by_default() -> None:
    """The client's own connection pool verifies certificates and host names."""
    async with BoxClient(DeveloperTokenAuth("dev-token")) as client:
        context = client._http._transport._pool._ssl_context  # type: ignore[attr-defined]
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname is True
