"""FakeBox behaves as Box documents, in-process and as a loopback server."""

from __future__ import annotations

import contextlib
import json

import pytest

from box_sessions import (
    AuthenticationError,
    BadRequestError,
    BoxConnectionError,
    BoxTimeoutError,
    DeveloperTokenAuth,
    NotFoundError,
    PermissionDeniedError,
    RateLimit,
    RetryPolicy,
    ServerError,
)
from box_sessions.testing import ControlEndpoint, DropConnection, FakeBox, FakeClock, Request

from ..conftest import fake_ccg
from ..support.http import httpx

NO_RETRY = RetryPolicy(max_attempts=1)


def post(path: str, body: bytes, token: str = "fake-developer-token") -> Request:
    """A POST with a bearer token and a JSON body, as a client sends it."""
    return Request("POST", path, {"authorization": f"Bearer {token}", "content-type": "application/json"}, body)


async def test_accepts_and_records(fake_box: FakeBox) -> None:
    """A valid request gets Box's 202 message and is recorded with what it terminated."""
    async with fake_box.client(rate_limit=None) as client:
        msg = await client.session_termination.terminate_users_sessions(["1", "2"], ["a@example.com"])
        await client.session_termination.terminate_groups_sessions(["9"])
    assert msg.message == "Request is successful, please check the admin events for the status of the job"
    assert fake_box.terminated == {"user_ids": ["1", "2"], "user_logins": ["a@example.com"], "group_ids": ["9"]}
    assert [r.status for r in fake_box.api_requests()] == [202, 202]
    assert fake_box.requests[0].body == {"user_ids": ["1", "2"], "user_logins": ["a@example.com"]}
    assert fake_box.status_counts[202] == 2


async def test_unknown_user_fails_the_whole_request() -> None:
    """With known users configured, one unknown id makes Box answer 404 for the request."""
    fake = FakeBox(users=["1", "2"], groups=[5])
    async with fake.client(rate_limit=None, retry=NO_RETRY) as client:
        with pytest.raises(NotFoundError, match="User not found"):
            await client.session_termination.terminate_users_sessions(["1", "3"])
        with pytest.raises(NotFoundError, match="Group not found"):
            await client.session_termination.terminate_groups_sessions(["6"])
        await client.session_termination.terminate_groups_sessions([5])
    assert fake.terminated["user_ids"] == []
    assert fake.terminated["group_ids"] == ["5"]


async def test_bulk_isolates_unknown_ids_against_the_fake() -> None:
    """The bulk call's bisection, end to end: only the unknown ids fail."""
    fake = FakeBox(users=[str(i) for i in range(200) if i not in (3, 150)])
    async with fake.client(rate_limit=None) as client:
        report = await client.session_termination.terminate(user_ids=range(200))
    assert sorted(str(f.value) for f in report.failed) == ["150", "3"]
    assert sorted(fake.terminated["user_ids"], key=int) == [str(i) for i in range(200) if i not in (3, 150)]


async def test_rate_limit_answers_429_with_lower_case_integer_retry_after() -> None:
    """Over its limit the fake answers 429 with a lower-case whole-second retry-after."""
    clock = FakeClock()
    fake = FakeBox(rate_limit=60, burst=2, clock=clock)
    statuses = [(await fake.handle(post("/2.0/groups/terminate_sessions", b'{"group_ids":["1"]}'))) for _ in range(3)]
    assert [r.status for r in statuses] == [202, 202, 429]
    assert statuses[2].headers["retry-after"] == "1"
    assert json.loads(statuses[2].body)["code"] == "rate_limit_exceeded"
    clock.advance(1.0)
    assert (await fake.handle(post("/2.0/groups/terminate_sessions", b'{"group_ids":["1"]}'))).status == 202


async def test_rate_limit_set_on_a_live_fake_applies_at_once() -> None:
    """Setting rate_limit and burst on a fake already answering limits its very next requests."""
    fake = FakeBox(clock=FakeClock())
    request = post("/2.0/groups/terminate_sessions", b'{"group_ids":["1"]}')
    assert [(await fake.handle(request)).status for _ in range(3)] == [202, 202, 202]
    fake.rate_limit = 60
    fake.burst = 1
    statuses = [(await fake.handle(request)).status for _ in range(2)]
    assert statuses == [202, 429]


async def test_fractional_retry_after_when_asked() -> None:
    """integer_retry_after=False sends the exact wait."""
    fake = FakeBox(rate_limit=600, burst=1, integer_retry_after=False, clock=FakeClock())
    await fake.handle(post("/2.0/groups/terminate_sessions", b'{"group_ids":["1"]}'))
    reply = await fake.handle(post("/2.0/groups/terminate_sessions", b'{"group_ids":["1"]}'))
    assert reply.headers["retry-after"] == "0.100"


async def test_client_paces_itself_under_the_fakes_limit() -> None:
    """Through the client, the fake's 429s are absorbed and every id terminated."""
    fake = FakeBox(rate_limit=6000, burst=1, integer_retry_after=False)
    async with fake.client(rate_limit=RateLimit(requests_per_minute=60000)) as client:
        report = await client.session_termination.terminate(user_ids=range(300), batch_size=10)
    assert report.ok
    assert fake.status_counts[429] == report.rate_limited
    assert len(fake.terminated["user_ids"]) == 300


@pytest.mark.parametrize(
    ("body", "message"),
    [
        pytest.param(b"not json", "Supported payload format is JSON", id="not-json"),
        pytest.param(b"[1]", "Supported payload format is JSON", id="not-object"),
        pytest.param(b'{"user_ids": [], "user_logins": []}', "Users can not be NULL or EMPTY", id="empty"),
        pytest.param(b'{"user_ids": [1]}', "User id format is string", id="int-id"),
        pytest.param(b'{"user_ids": ["1a"]}', "User id format is string", id="non-digit"),
    ],
)
async def test_bad_bodies_get_boxs_400(body: bytes, message: str) -> None:
    """Bodies Box refuses get its documented 400 messages."""
    reply = await FakeBox().handle(post("/2.0/users/terminate_sessions", body))
    assert reply.status == 400
    assert json.loads(reply.body)["message"] == message


async def test_groups_messages() -> None:
    """The groups endpoint has its own wording."""
    reply = await FakeBox().handle(post("/2.0/groups/terminate_sessions", b'{"group_ids": []}'))
    assert json.loads(reply.body)["message"] == "Groups can not be NULL or EMPTY"


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        pytest.param({}, "unauthorized", id="missing"),
        pytest.param({"authorization": "Bearer nope"}, "invalid_token", id="unknown"),
        pytest.param({"authorization": "Basic abc"}, "unauthorized", id="not-bearer"),
    ],
)
async def test_bad_tokens_get_401(headers: dict[str, str], code: str) -> None:
    """A missing, malformed or unknown token is answered 401."""
    reply = await FakeBox().handle(Request("POST", "/2.0/groups/terminate_sessions", headers, b'{"group_ids":["1"]}'))
    assert reply.status == 401
    assert json.loads(reply.body)["code"] == code


async def test_unknown_path_is_404() -> None:
    """Anything but the three endpoints is 404."""
    assert (await FakeBox().handle(Request("GET", "/2.0/users", {}, b""))).status == 404


async def test_ccg_token_expires_and_is_refreshed() -> None:
    """Tokens expire after token_lifetime; the client refreshes ahead of expiry and keeps going."""
    clock = FakeClock()
    fake = FakeBox(token_lifetime=10, clock=clock)
    async with fake.client(fake_ccg(fake), rate_limit=None, clock=clock) as client:
        await client.session_termination.terminate_groups_sessions(["1"])
        clock.advance(6)  # past half-life: refreshed before use
        await client.session_termination.terminate_groups_sessions(["2"])
    assert fake.token_requests == 2
    assert fake.status_counts[401] == 0


async def test_expired_token_is_401_then_refreshed() -> None:
    """A token used after expiry gets 401; the client refreshes once and succeeds."""
    clock = FakeClock()
    fake = FakeBox(token_lifetime=10, clock=clock)
    client_clock = FakeClock()  # the client believes its token is still fresh
    async with fake.client(fake_ccg(fake), rate_limit=None, clock=client_clock) as client:
        await client.session_termination.terminate_groups_sessions(["1"])
        clock.advance(11)
        await client.session_termination.terminate_groups_sessions(["2"])
    assert fake.status_counts[401] == 1
    assert fake.token_requests == 2


async def test_token_endpoint_refuses_bad_credentials() -> None:
    """Wrong client credentials get the OAuth error shape; no secret is recorded."""
    fake = FakeBox()
    async with fake.client(fake_ccg(fake, client_secret="wrong"), rate_limit=None) as client:
        with pytest.raises(AuthenticationError, match="The client credentials are invalid"):
            await client.session_termination.terminate_groups_sessions(["1"])
    assert all(r.body is None for r in fake.requests if r.path == "/oauth2/token")
    assert "wrong" not in repr(fake.requests)


async def test_token_endpoint_other_grants() -> None:
    """An unsupported grant type and a missing subject are refused."""
    fake = FakeBox()
    reply = await fake.handle(Request("POST", "/oauth2/token", {}, b"grant_type=password"))
    assert json.loads(reply.body)["error"] == "unsupported_grant_type"
    form = b"grant_type=client_credentials&client_id=fake-client-id&client_secret=fake-client-secret"
    reply = await fake.handle(Request("POST", "/oauth2/token", {}, form))
    assert json.loads(reply.body)["error"] == "invalid_request"


async def test_max_batch_answers_too_many_and_bulk_halves() -> None:
    """Over max_batch the fake answers 400 "Too many ids"; the bulk call halves and finishes."""
    fake = FakeBox(max_batch=30)
    async with fake.client(rate_limit=None) as client:
        with pytest.raises(BadRequestError, match="Too many ids"):
            await client.session_termination.terminate_users_sessions(list(range(31)))
        report = await client.session_termination.terminate(user_ids=range(500), batch_size=100, max_concurrency=1)
    assert report.ok
    assert max(len(r.body["user_ids"]) for r in fake.api_requests() if r.status == 202) <= 30


async def test_forbidden_answers_403_and_stops_bulk() -> None:
    """forbidden=True answers 403; a bulk job stops and reports every id."""
    fake = FakeBox(forbidden=True)
    async with fake.client(rate_limit=None) as client:
        report = await client.session_termination.terminate(user_ids=range(300), max_concurrency=1)
    assert isinstance(report.stopped_by, PermissionDeniedError)
    assert len(report.failed) == 300
    assert fake.status_counts[403] == 1


async def test_error_rate_gives_5xx() -> None:
    """error_rate=1 answers every call 500, 502 or 503."""
    fake = FakeBox(error_rate=1.0, seed=1)
    async with fake.client(rate_limit=None, retry=NO_RETRY) as client:
        with pytest.raises(ServerError):
            await client.session_termination.terminate_groups_sessions(["1"])
    assert fake.faults["error"] == 1


async def test_drop_rate_drops_in_process() -> None:
    """drop_rate=1 ends every call without an answer: a connection error for the client."""
    fake = FakeBox(drop_rate=1.0)
    async with fake.client(rate_limit=None, retry=NO_RETRY) as client:
        with pytest.raises(BoxConnectionError):
            await client.session_termination.terminate_groups_sessions(["1"])
    assert fake.status_counts[0] == 1


async def test_stall_times_out_in_process() -> None:
    """A stalled answer runs into the client's read timeout."""
    fake = FakeBox(stall_rate=1.0, stall_seconds=5)
    async with fake.client(rate_limit=None, retry=NO_RETRY, timeout=0.05) as client:
        with pytest.raises(BoxTimeoutError):
            await client.session_termination.terminate_groups_sessions(["1"])
    assert fake.terminated["group_ids"] == []


async def test_seed_repeats_the_same_faults_whatever_the_latency() -> None:
    """The n-th request meets the same fault with or without jitter: latency has its own stream."""

    async def statuses(fake: FakeBox) -> list[int]:
        for i in range(60):
            with contextlib.suppress(DropConnection):
                await fake.handle(post("/2.0/groups/terminate_sessions", json.dumps({"group_ids": [str(i)]}).encode()))
        return [r.status for r in fake.requests]

    def fake(latency: float, jitter: float) -> FakeBox:
        return FakeBox(
            error_rate=0.2,
            drop_rate=0.1,
            stall_rate=0.1,
            stall_seconds=1.0,
            latency=latency,
            jitter=jitter,
            seed=7,
            clock=FakeClock(),
        )

    still = await statuses(fake(0.0, 0.0))
    jittery = await statuses(fake(0.2, 0.1))
    assert still == jittery
    assert {0, 202} <= set(still)
    assert set(still) & {500, 502, 503}


async def test_latency_is_waited_on_the_clock() -> None:
    """latency and jitter are slept on the fake's clock."""
    clock = FakeClock()
    fake = FakeBox(latency=0.15, jitter=0.05, seed=3, clock=clock)
    for _ in range(20):
        await fake.handle(post("/2.0/groups/terminate_sessions", b'{"group_ids":["1"]}'))
    assert len(clock.sleeps) == 20
    assert all(0.1 <= s <= 0.2 for s in clock.sleeps)
    assert len(set(clock.sleeps)) > 1


@pytest.mark.parametrize(
    "kwargs",
    [
        pytest.param({"error_rate": 1.5}, id="share-above-1"),
        pytest.param({"drop_rate": -0.1}, id="negative-share"),
        pytest.param({"rate_limit": 0}, id="rate-0"),
        pytest.param({"max_batch": 0}, id="batch-0"),
    ],
)
def test_bad_settings_refused(kwargs: dict[str, float]) -> None:
    """Nonsense settings raise at construction, naming the setting."""
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        FakeBox(**kwargs)  # type: ignore[arg-type]


async def test_serves_on_loopback() -> None:
    """serve() gives a real HTTP server on 127.0.0.1 that the client uses over sockets."""
    fake = FakeBox(latency=0.01)
    async with fake.serve() as base_url:
        assert base_url.startswith("http://127.0.0.1:")
        async with httpx.AsyncClient() as http:
            response = await http.post(f"{base_url}/2.0/groups/terminate_sessions", json={"group_ids": ["1"]})
        assert response.status_code == 401
        from box_sessions import BoxClient  # noqa: PLC0415 - kept next to its one use

        auth = DeveloperTokenAuth(fake.developer_token)
        async with BoxClient(auth, base_url=base_url, rate_limit=None) as client:
            report = await client.session_termination.terminate(user_ids=range(1000), group_ids=[1, 2])
    assert report.ok
    assert fake.terminated_count == 1002


async def test_fixture_gives_a_fresh_fake(fake_box: FakeBox) -> None:
    """The pytest plugin's fake_box fixture is a FakeBox that accepts everything."""
    assert isinstance(fake_box, FakeBox)
    assert fake_box.requests == []
    assert fake_box.users is None


async def test_stats_endpoint_reports_counts() -> None:
    """GET /_fakebox/stats answers the counts as JSON, for measuring a standalone fake."""
    fake = FakeBox(record_requests=False)
    async with fake.client(rate_limit=None) as client:
        await client.session_termination.terminate(user_ids=["1", "2"], group_ids=["3"])
    reply = await fake.handle(Request("GET", "/_fakebox/stats", {}, b""))
    stats = json.loads(reply.body)
    assert stats["status_counts"] == {"202": 2}
    assert stats["distinct_terminated"] == {"user_ids": 2, "user_logins": 0, "group_ids": 1}
    assert fake.requests == []  # record_requests=False keeps counts only


CCG_FORM = {
    "grant_type": "client_credentials",
    "client_id": "fake-client-id",
    "client_secret": "fake-client-secret",
    "box_subject_type": "enterprise",
    "box_subject_id": "1",
}


@pytest.mark.parametrize(
    ("lifetime", "expires_in"),
    [pytest.param(3600.0, 3600, id="default"), pytest.param(2.5, 2, id="fraction-rounded-down")],
)
async def test_token_answer_expires_in_is_an_integer(lifetime: float, expires_in: int) -> None:
    """The token answer's expires_in is an integer, as Box's specification says: whole seconds, rounded down."""
    fake = FakeBox(token_lifetime=lifetime)
    async with httpx.AsyncClient(transport=fake.transport(), base_url="https://api.box.com") as http:
        response = await http.post("/oauth2/token", data=CCG_FORM)
    assert response.status_code == 200
    assert type(response.json()["expires_in"]) is int
    assert response.json()["expires_in"] == expires_in


async def test_served_token_answer_expires_in_is_an_integer() -> None:
    """Over 127.0.0.1 the token answer's expires_in is written as a JSON integer (no decimal point)."""
    fake = FakeBox()
    async with fake.serve() as base_url, httpx.AsyncClient(base_url=base_url) as http:
        response = await http.post("/oauth2/token", data=CCG_FORM)
    assert b'"expires_in": 3600,' in response.content


async def test_each_server_error_has_its_own_code_and_message() -> None:
    """Injected 500, 502 and 503 answers each carry their own code and message, in Box's error shape."""
    fake = FakeBox(error_rate=1.0, seed=5)
    seen: dict[int, tuple[str, str]] = {}
    async with httpx.AsyncClient(transport=fake.transport(), base_url="https://api.box.com") as http:
        for _ in range(30):
            response = await http.post(
                "/2.0/groups/terminate_sessions",
                json={"group_ids": ["1"]},
                headers={"authorization": "Bearer fake-developer-token"},
            )
            body = response.json()
            assert body["type"] == "error"
            assert body["status"] == response.status_code
            seen[response.status_code] = (body["code"], body["message"])
    assert seen == {
        500: ("internal_server_error", "Internal Server Error"),
        502: ("bad_gateway", "Bad Gateway"),
        503: ("unavailable", "Service Unavailable"),
    }


def test_control_endpoints_are_listed() -> None:
    """FakeBox lists its own endpoints (method, path, description) for banners and docs."""
    assert [(e.method, e.path) for e in FakeBox.control_endpoints] == [("GET", "/_fakebox/stats")]
    assert all(isinstance(e, ControlEndpoint) for e in FakeBox.control_endpoints)
    assert all(e.description for e in FakeBox.control_endpoints)


async def test_every_listed_control_endpoint_answers_json() -> None:
    """Every endpoint in control_endpoints answers 200 with JSON over 127.0.0.1."""
    fake = FakeBox()
    async with fake.serve() as base_url, httpx.AsyncClient(base_url=base_url) as http:
        for endpoint in fake.control_endpoints:
            response = await http.request(endpoint.method, endpoint.path)
            assert response.status_code == 200, endpoint
            assert response.headers["content-type"] == "application/json"
            assert isinstance(response.json(), dict)
