"""Evidence: every terminated value can be traced to the request Box accepted it in, by Box's request id and time."""

from __future__ import annotations

import contextlib
import datetime
import re

import pytest

from box_sessions import Acceptance, BoxClient, DeveloperTokenAuth, RetryPolicy, ServerError
from box_sessions.testing import FakeBox, FakeClock

from ..support.http import httpx

ISO_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


def accepted_ids(fake: FakeBox) -> list[str | None]:
    """The request ids of FakeBox's 202 answers, in the order it sent them."""
    return [r.request_id for r in fake.requests if r.status == 202]


async def test_every_answer_of_fakebox_carries_a_box_request_id() -> None:
    """Like Box, FakeBox names every answer (202, 404, 429, 5xx, the token endpoint's) with a box-request-id."""
    fake = FakeBox(users={"1"}, rate_limit=60, burst=1)
    async with httpx.AsyncClient(transport=fake.transport(), base_url="https://api.box.com") as http:
        auth = {"Authorization": f"Bearer {fake.developer_token}"}
        answers = [
            await http.post("/2.0/users/terminate_sessions", json={"user_ids": ["1"], "user_logins": []}, headers=auth),
            await http.post("/2.0/users/terminate_sessions", json={"user_ids": ["2"], "user_logins": []}, headers=auth),
            await http.post("/oauth2/token", data={"grant_type": "client_credentials"}),
            await http.get("/2.0/nowhere"),
        ]
    assert [a.status_code for a in answers] == [202, 429, 400, 404]
    ids = [a.headers.get("box-request-id") for a in answers]
    assert all(ids)
    assert len(set(ids)) == len(ids)
    assert [r.request_id for r in fake.requests] == ids


async def test_a_single_call_returns_boxs_request_id_and_the_time() -> None:
    """terminate_users_sessions returns the request id Box named its answer with, and when it came (UTC)."""
    fake, clock = FakeBox(), FakeClock()
    async with fake.client(clock=clock) as client:
        message = await client.session_termination.terminate_users_sessions(user_ids=["1"])
    assert message.request_id == accepted_ids(fake)[0]
    assert message.accepted_at == datetime.datetime.fromtimestamp(clock.time(), datetime.timezone.utc)


async def test_every_terminated_value_is_in_exactly_one_acceptance() -> None:
    """A bulk job with a bad id (its batch split by bisection): each terminated value is in one acceptance, whose
    request id is one of Box's 202s, and every 202 of Box is one acceptance."""
    users = {str(n) for n in range(1, 40)} - {"17"}
    fake = FakeBox(users=users)
    async with fake.client(rate_limit=None) as client:
        report = await client.session_termination.terminate(user_ids=[str(n) for n in range(1, 40)], batch_size=10)
    carried = [(field, value) for acceptance in report.accepted for field, value in acceptance.terminated]
    assert sorted(carried) == sorted(("user_ids", value) for value in report.terminated["user_ids"])
    assert len(carried) == len(set(carried)) == 38
    assert sorted(a.request_id or "" for a in report.accepted) == sorted(r or "" for r in accepted_ids(fake))
    assert len(report.accepted) > 4  # the batch with the bad id was split: more requests than batches
    assert [f.value for f in report.failed] == ["17"]
    assert report.failed[0].error.request_id  # type: ignore[attr-defined]  # a 404 carries Box's id too


async def test_the_report_dict_holds_the_evidence_in_utc() -> None:
    """to_dict() lists each acceptance with its request id, its time as ISO 8601 UTC, and its values per field."""
    fake = FakeBox()
    async with fake.client(rate_limit=None) as client:
        report = await client.session_termination.terminate(user_ids=["1", "2"], user_logins=["a@example.com"])
    [accepted] = report.to_dict()["accepted"]
    assert accepted["request_id"] == accepted_ids(fake)[0]
    assert ISO_UTC.fullmatch(accepted["accepted_at"])
    assert (accepted["user_ids"], accepted["user_logins"]) == (["1", "2"], ["a@example.com"])
    assert "group_ids" not in accepted


async def test_iter_terminate_yields_each_batchs_acceptances() -> None:
    """Each BatchResult of iter_terminate carries the acceptances of its own values."""
    fake = FakeBox()
    async with fake.client(rate_limit=None) as client:
        seen: list[Acceptance] = []
        manager = client.session_termination
        async with contextlib.aclosing(
            manager.iter_terminate(user_ids=[str(n) for n in range(1, 6)], batch_size=2)
        ) as results:
            async for result in results:
                assert [item for a in result.accepted for item in a.terminated] == list(result.terminated)
                seen.extend(result.accepted)
    assert sorted(a.request_id or "" for a in seen) == sorted(r or "" for r in accepted_ids(fake))


async def test_an_error_without_a_body_id_takes_the_header_one() -> None:
    """A Box error whose body has no request_id (a gateway's page) keeps the box-request-id header's."""

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503, text="<html>busy</html>", headers={"box-request-id": "0hdr123"})

    async with BoxClient(
        DeveloperTokenAuth("dev-token"),
        transport=httpx.MockTransport(handler),
        rate_limit=None,
        retry=RetryPolicy(max_attempts=1),
    ) as client:
        with pytest.raises(ServerError) as raised:
            await client.session_termination.terminate_users_sessions(user_ids=["1"])
    assert raised.value.request_id == "0hdr123"
