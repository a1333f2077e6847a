"""The bulk call: batching, bisection, fatal stops, budget, duplicates, invalid input, cancellation."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import attrs
import pytest

from box_sessions import (
    AuthenticationError,
    BadRequestError,
    BatchResult,
    BoxClient,
    CCGAuth,
    DeveloperTokenAuth,
    NotFoundError,
    PermissionDeniedError,
    Progress,
    RateLimit,
    RetryPolicy,
    ServerError,
    TerminationReport,
)
from box_sessions.testing import FakeBox, LoopbackServer

from ..conftest import (
    FAST_RETRY,
    GROUPS_URL,
    TOKEN_URL,
    USERS_URL,
    MakeClient,
    accepted,
    box_error,
    tasks_in,
    token_answer,
    until,
    wait_for_no_connections,
)
from ..support.http import httpx
from ..support.routes import Route, Routes


def body_of(request: httpx.Request) -> dict[str, list[str]]:
    body: dict[str, list[str]] = json.loads(request.content)
    return body


def ids_in(request: httpx.Request) -> list[str]:
    body = body_of(request)
    return body.get("user_ids", []) + body.get("user_logins", []) + body.get("group_ids", [])


def sent_ids(route: Route) -> list[str]:
    return [i for call in route.calls for i in ids_in(call.request)]


def accounted(report: TerminationReport) -> list[object]:
    """Every value in the report, terminated or failed (each must appear once)."""
    values: list[object] = [v for vs in report.terminated.values() for v in vs]
    return values + [f.value for f in report.failed]


async def test_all_inputs_terminated_in_batches(routes: Routes, client: BoxClient) -> None:
    """Ids and logins share user batches of batch_size; groups go to their endpoint."""
    users = routes.post(USERS_URL).mock(return_value=accepted())
    groups = routes.post(GROUPS_URL).mock(return_value=accepted())
    ids = [str(i) for i in range(250)]
    logins = [f"u{i}@example.com" for i in range(30)]
    report = await client.session_termination.terminate(
        user_ids=ids, user_logins=logins, group_ids=[7, 8, 9], batch_size=100
    )
    assert report.ok
    assert sorted(report.terminated["user_ids"], key=int) == ids  # in completion order
    assert sorted(report.terminated["user_logins"]) == sorted(logins)
    assert report.terminated["group_ids"] == ["7", "8", "9"]
    assert report.failed == []
    bodies = sorted((body_of(c.request) for c in users.calls), key=lambda b: len(b["user_logins"]))
    assert [(len(b["user_ids"]), len(b["user_logins"])) for b in bodies] == [(100, 0), (100, 0), (50, 30)]
    assert body_of(groups.calls.last.request) == {"group_ids": ["7", "8", "9"]}
    assert (report.requests, report.retries, report.rate_limited) == (4, 0, 0)


async def test_mixed_batch_carries_both_lists(routes: Routes, client: BoxClient) -> None:
    """A batch that crosses from ids to logins sends both in one users request."""
    users = routes.post(USERS_URL).mock(return_value=accepted())
    await client.session_termination.terminate(user_ids=["1", "2"], user_logins=["a@example.com"], batch_size=10)
    assert body_of(users.calls.last.request) == {"user_ids": ["1", "2"], "user_logins": ["a@example.com"]}


@pytest.mark.parametrize(
    ("status", "cls"),
    [pytest.param(404, NotFoundError, id="404"), pytest.param(400, BadRequestError, id="400")],
)
async def test_bisection_isolates_two_bad_ids_among_100(
    routes: Routes, client: BoxClient, status: int, cls: type[Exception]
) -> None:
    """A batch poisoned by two bad ids is halved down to them: 98 terminated, 2 failed with Box's error."""
    bad = {"17", "64"}

    def box(request: httpx.Request) -> httpx.Response:
        return box_error(status, "not_found", "User not found") if bad & set(ids_in(request)) else accepted()

    route = routes.post(USERS_URL).mock(side_effect=box)
    ids = [str(i) for i in range(100)]
    report = await client.session_termination.terminate(user_ids=ids, batch_size=100)
    assert sorted(report.terminated["user_ids"]) == sorted(set(ids) - bad)
    assert sorted(str(f.value) for f in report.failed) == sorted(bad)
    assert all(type(f.error) is cls and f.field == "user_ids" for f in report.failed)
    assert not report.ok
    assert route.call_count <= 1 + 2 * 2 * 7  # at most two halvings per level, per bad id
    assert sorted(accounted(report), key=str) == sorted(ids)


async def test_too_large_halves_batch_size_for_the_rest_of_the_job(routes: Routes, client: BoxClient) -> None:
    """A 400 saying the batch is too large splits it, and later batches are sent at the smaller size."""

    def box(request: httpx.Request) -> httpx.Response:
        if len(ids_in(request)) > 25:
            return box_error(400, "bad_request", "Too many ids in one request: at most 25")
        return accepted()

    route = routes.post(USERS_URL).mock(side_effect=box)
    ids = [str(i) for i in range(400)]
    report = await client.session_termination.terminate(user_ids=ids, batch_size=100, max_concurrency=1)
    assert report.ok
    assert sorted(report.terminated["user_ids"]) == sorted(ids)
    sizes = [len(ids_in(c.request)) for c in route.calls]
    assert sizes[:3] == [100, 50, 25]
    assert all(size == 25 for size in sizes[-12:])  # later batches are read at the halved size
    assert len(sizes) < 25


async def test_413_also_halves(routes: Routes, client: BoxClient) -> None:
    """A 413 Payload Too Large is treated as "too large" too."""

    def box(request: httpx.Request) -> httpx.Response:
        return httpx.Response(413) if len(ids_in(request)) > 10 else accepted()

    routes.post(USERS_URL).mock(side_effect=box)
    report = await client.session_termination.terminate(user_ids=range(40), batch_size=40)
    assert report.ok
    assert len(report.terminated["user_ids"]) == 40


async def test_fatal_403_stops_the_job_and_reports_every_unsent_id(routes: Routes, client: BoxClient) -> None:
    """A 403 mid-job stops sending; every unsent id fails with it; the report is returned."""
    route = routes.post(USERS_URL).mock(
        side_effect=[accepted(), accepted(), accepted(), box_error(403, "access_denied_insufficient_permissions", "no")]
    )
    ids = [str(i) for i in range(1000)]
    report = await client.session_termination.terminate(user_ids=ids, batch_size=100, max_concurrency=1)
    assert route.call_count == 4
    assert report.terminated["user_ids"] == ids[:300]
    assert [f.value for f in report.failed] == ids[300:]
    assert all(isinstance(f.error, PermissionDeniedError) for f in report.failed)
    assert isinstance(report.stopped_by, PermissionDeniedError)
    assert not report.ok
    assert "Stopped early" in str(report)


async def test_fatal_stop_still_rejects_invalid_and_counts_duplicates(routes: Routes, client: BoxClient) -> None:
    """After a fatal stop, remaining input is still read: invalid values fail as invalid, duplicates count."""
    routes.post(USERS_URL).mock(return_value=box_error(403, "forbidden", "no"))
    report = await client.session_termination.terminate(
        user_ids=["1", "2", "3", "x", "3"], batch_size=2, max_concurrency=1
    )
    errors = {str(f.value): type(f.error) for f in report.failed}
    assert errors == {
        "1": PermissionDeniedError,
        "2": PermissionDeniedError,
        "3": PermissionDeniedError,
        "x": ValueError,
    }
    assert report.duplicates == 1
    assert report.requests == 1


async def test_401_after_fresh_token_is_fatal(routes: Routes, make_client: MakeClient) -> None:
    """A 401 right after a fresh token stops the job: one request, every id failed with it."""
    routes.post(TOKEN_URL).mock(return_value=token_answer())
    route = routes.post(USERS_URL).mock(return_value=box_error(401, "unauthorized", "no"))
    auth = CCGAuth(client_id="c", client_secret="s", enterprise_id="1")
    async with make_client(auth) as client:
        report = await client.session_termination.terminate(user_ids=range(500), batch_size=50, max_concurrency=1)
    assert route.call_count == 1
    assert len(report.failed) == 500
    assert isinstance(report.stopped_by, AuthenticationError)


async def test_batch_failing_after_retries_fails_only_its_ids(routes: Routes, client: BoxClient) -> None:
    """A batch that still gets 5xx after the retries fails with that error; the other batches go through."""

    def box(request: httpx.Request) -> httpx.Response:
        return box_error(500, "internal_server_error", "boom") if "13" in ids_in(request) else accepted()

    routes.post(USERS_URL).mock(side_effect=box)
    report = await client.session_termination.terminate(user_ids=range(50), batch_size=10)
    assert sorted(str(f.value) for f in report.failed) == [str(i) for i in range(10, 20)]
    assert all(isinstance(f.error, ServerError) for f in report.failed)
    assert len(report.terminated["user_ids"]) == 40
    assert report.retries == 4


async def test_retry_budget_exhausted_fails_fast(routes: Routes, make_client: MakeClient) -> None:
    """When Box keeps failing, the job's retry budget runs out and later batches get one attempt each."""
    route = routes.post(USERS_URL).mock(return_value=box_error(500, "internal_server_error", "down"))
    async with make_client(retry=RetryPolicy(max_attempts=5, jitter=False)) as client:
        report = await client.session_termination.terminate(user_ids=range(1000), batch_size=10, max_concurrency=1)
    # Capacity 500 at 5 per retry pays 100 retries: 25 batches of 5 attempts, then 75 of one.
    assert route.call_count == 25 * 5 + 75
    assert len(report.failed) == 1000
    assert "retry budget is spent" in str(report.failed[-1].error)
    assert "retry budget" not in str(report.failed[0].error)


async def test_duplicates_are_sent_once_and_counted(routes: Routes, client: BoxClient) -> None:
    """The same id as int and str, repeated ids and logins: each sent once, drops counted."""
    route = routes.post(USERS_URL).mock(return_value=accepted())
    groups = routes.post(GROUPS_URL).mock(return_value=accepted())
    report = await client.session_termination.terminate(
        user_ids=[1, "1", 2, 2, "3"], user_logins=["a@example.com", "a@example.com"], group_ids=["5", 5]
    )
    assert sent_ids(route) == ["1", "2", "3", "a@example.com"]
    assert sent_ids(groups) == ["5"]
    assert report.duplicates == 4
    assert report.terminated == {"user_ids": ["1", "2", "3"], "user_logins": ["a@example.com"], "group_ids": ["5"]}


async def test_invalid_items_are_reported_not_sent(routes: Routes, client: BoxClient) -> None:
    """Invalid values fail with ValueError and their raw value; the valid ones go through."""
    route = routes.post(USERS_URL).mock(return_value=accepted())
    report = await client.session_termination.terminate(
        user_ids=[1, None, "x", True, 2.5, "", "3"], user_logins=["nobody", "ok@example.com"]
    )
    assert sent_ids(route) == ["1", "3", "ok@example.com"]
    assert [(f.field, f.value) for f in report.failed] == [
        ("user_ids", None),
        ("user_ids", "x"),
        ("user_ids", True),
        ("user_ids", 2.5),
        ("user_ids", ""),
        ("user_logins", "nobody"),
    ]
    assert all(type(f.error) is ValueError for f in report.failed)
    assert "user_ids" in str(report.failed[0].error)
    assert not report.ok  # ok means nothing failed, invalid input included
    assert report.terminated == {"user_ids": ["1", "3"], "user_logins": ["ok@example.com"], "group_ids": []}
    assert report.terminated_count == 3
    assert "6 invalid input" in str(report)


async def test_a_repeated_invalid_value_fails_once_and_counts_as_duplicates(routes: Routes, client: BoxClient) -> None:
    """An invalid value given three times is one failure and two duplicates."""
    routes.post(USERS_URL).mock(return_value=accepted())
    report = await client.session_termination.terminate(user_ids=["1", "abc", "abc", "abc"])
    assert [failure.value for failure in report.failed] == ["abc"]
    assert report.duplicates == 2


async def test_async_iterable_inputs(routes: Routes, client: BoxClient) -> None:
    """Inputs may be async iterables."""
    routes.post(USERS_URL).mock(return_value=accepted())

    async def ids() -> AsyncIterator[int]:
        for i in range(30):
            yield i

    report = await client.session_termination.terminate(user_ids=ids(), batch_size=7)
    assert sorted(report.terminated["user_ids"], key=int) == [str(i) for i in range(30)]


async def test_inputs_are_read_lazily(routes: Routes, client: BoxClient) -> None:
    """With every slot busy, no more input is read than the batches in flight hold."""
    read = 0
    release = asyncio.Event()
    in_flight = 0
    all_busy = asyncio.Event()

    def ids() -> Iterator[int]:
        nonlocal read
        for i in range(1_000_000):
            read += 1
            yield i

    async def box(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight
        in_flight += 1
        if in_flight == 3:
            all_busy.set()
        await release.wait()
        return accepted()

    routes.post(USERS_URL).mock(side_effect=box)
    job = asyncio.create_task(client.session_termination.terminate(user_ids=ids(), batch_size=10, max_concurrency=3))
    await all_busy.wait()
    for _ in range(5):  # a few turns of the loop, in which reading ahead would show
        await asyncio.sleep(0)
    assert read == 30  # three batches of ten, nothing read ahead
    job.cancel()
    with pytest.raises(asyncio.CancelledError):
        await job


async def test_cancellation_mid_job_leaves_nothing_running(routes: Routes, client: BoxClient) -> None:
    """Cancelling the job cancels in-flight requests, closes the input and re-raises CancelledError."""
    started = asyncio.Event()
    closed = False
    requests = 0

    async def box(request: httpx.Request) -> httpx.Response:
        nonlocal requests
        requests += 1
        if requests >= 3:
            started.set()
            await asyncio.Event().wait()  # hangs until cancelled
        return accepted()

    async def ids() -> AsyncIterator[int]:
        nonlocal closed
        try:
            for i in range(10_000):
                yield i
        finally:
            closed = True

    routes.post(USERS_URL).mock(side_effect=box)
    before = asyncio.all_tasks()
    job = asyncio.create_task(client.session_termination.terminate(user_ids=ids(), batch_size=10, max_concurrency=4))
    await started.wait()
    job.cancel()
    with pytest.raises(asyncio.CancelledError):
        await job
    assert asyncio.all_tasks() == before
    assert closed


async def test_progress_callback_sees_counts(routes: Routes, client: BoxClient) -> None:
    """on_progress is called after each batch with running counts; an async callback is awaited."""
    routes.post(USERS_URL).mock(return_value=accepted())
    seen: list[Progress] = []

    async def on_progress(progress: Progress) -> None:
        seen.append(progress)

    await client.session_termination.terminate(
        user_ids=["1", "2", "3", "x", "3"], batch_size=2, max_concurrency=1, on_progress=on_progress
    )
    assert seen[-1] == Progress(terminated=3, failed=1, sent=3, read=5, duplicates=1, requests=2)
    assert [p.terminated for p in seen if p.failed == 0] == [2]
    assert len(seen) == 3  # two batches and the rejected value


async def test_iter_terminate_yields_each_batch(routes: Routes, client: BoxClient) -> None:
    """iter_terminate yields a BatchResult per batch, adding up to every input."""
    routes.post(USERS_URL).mock(return_value=accepted())
    routes.post(GROUPS_URL).mock(return_value=accepted())
    results: list[BatchResult] = [
        r
        async for r in client.session_termination.iter_terminate(
            user_ids=range(25), group_ids=["1", "bad"], batch_size=10, max_concurrency=1
        )
    ]
    # "bad" is read only after the third user batch is sent, when the group batch is being filled.
    assert [r.kind for r in results] == ["users", "users", "users", "invalid", "groups"]
    assert sum(len(r.terminated) for r in results) == 26
    assert results[-1].progress.terminated == 26
    assert results[-1].progress.failed == 1


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        pytest.param({}, ValueError, "at least one", id="nothing"),
        pytest.param({"user_ids": "123"}, TypeError, "user_ids: expected an iterable.*bare str", id="bare-string"),
        pytest.param({"group_ids": 5}, TypeError, "group_ids: expected an iterable", id="int"),
        pytest.param({"user_ids": [1], "batch_size": 0}, ValueError, "batch_size", id="batch-0"),
        pytest.param({"user_ids": [1], "batch_size": 2.0}, TypeError, "batch_size", id="batch-float"),
        pytest.param({"user_ids": [1], "max_concurrency": True}, TypeError, "max_concurrency", id="bool"),
        pytest.param({"user_ids": [1], "on_progress": "print"}, TypeError, "on_progress", id="not-callable"),
    ],
)
async def test_bad_arguments_raise_before_sending(
    routes: Routes, client: BoxClient, kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    """A wrong argument (not a wrong value inside an input) raises at once, naming it; nothing is sent."""
    route = routes.post(USERS_URL).mock(return_value=accepted())
    with pytest.raises(error, match=match):
        await client.session_termination.terminate(**kwargs)
    with pytest.raises(error, match=match):
        client.session_termination.iter_terminate(**kwargs)
    assert route.call_count == 0


async def test_report_str_and_json(routes: Routes, client: BoxClient) -> None:
    """The report reads as one paragraph and serialises to JSON without secrets."""
    routes.post(USERS_URL).mock(
        side_effect=lambda r: box_error(404, "not_found", "User not found") if "9" in ids_in(r) else accepted()
    )
    report = await client.session_termination.terminate(user_ids=["1", "9", "9"], user_logins=["bad"])
    text = str(report)
    assert text.startswith("Terminated 1 of 3 distinct inputs (1 user id, 0 logins, 0 groups); 2 failed")
    assert "1 NotFoundError" in text
    assert "1 duplicate dropped. 3 requests" in text
    data = json.loads(json.dumps(report.to_dict()))
    assert data["terminated"]["user_ids"] == ["1"]
    assert {f["value"] for f in data["failed"]} == {"9", "bad"}
    assert next(f for f in data["failed"] if f["value"] == "9")["http_status"] == 404
    assert "dev-token" not in json.dumps(data) + text + repr(report)
    assert repr(report) == "TerminationReport(ok=False, terminated=1, failed=2, duplicates=1, requests=3)"


async def test_nothing_lost_when_progress_callback_fails(routes: Routes, client: BoxClient) -> None:
    """An exception from on_progress propagates; no task is left behind."""
    routes.post(USERS_URL).mock(return_value=accepted())
    before = asyncio.all_tasks()

    def on_progress(progress: Progress) -> None:
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        await client.session_termination.terminate(user_ids=range(100), batch_size=10, on_progress=on_progress)
    assert asyncio.all_tasks() == before


class InterruptError(Exception):
    """What the progress callback raises."""


async def test_an_exception_from_on_progress_keeps_what_box_accepted(routes: Routes, client: BoxClient) -> None:
    """An exception raised by on_progress propagates with the report so far as its termination_report.

    The chosen design: `terminate` re-raises the callback's own exception (not a wrapper), with
    the `TerminationReport` so far attached as the attribute ``termination_report``, in which
    every id Box accepted is listed as terminated.
    """
    route = routes.post(USERS_URL).mock(return_value=accepted())
    ids = [str(1000 + i) for i in range(50)]
    seen: list[Progress] = []

    def on_progress(progress: Progress) -> None:
        seen.append(progress)
        if len(seen) == 2:
            raise InterruptError("stop after the second batch")

    with pytest.raises(InterruptError) as raised:
        await client.session_termination.terminate(
            user_ids=ids, batch_size=10, max_concurrency=1, on_progress=on_progress
        )
    assert sent_ids(route) == ids[:20]  # one batch at a time: the third was never sent
    report = getattr(raised.value, "termination_report", None)
    assert isinstance(report, TerminationReport)
    assert sorted(report.terminated["user_ids"]) == sorted(sent_ids(route))


async def test_batches_that_ended_while_on_progress_ran_are_in_the_report(routes: Routes, client: BoxClient) -> None:
    """Batches Box accepted while ``on_progress`` ran, then raised, are in the report it carries.

    The callback waits until every other batch has ended (Box accepted them), then raises: those
    results were never yielded, and were once left out of the report, though Box had accepted them.
    """
    route = routes.post(USERS_URL).mock(return_value=accepted())
    ids = [str(1000 + i) for i in range(30)]

    async def on_progress(progress: Progress) -> None:
        await until(lambda: tasks_in("_run_batch") == 0)  # the other two batches have ended
        raise InterruptError("stop after the first batch")

    with pytest.raises(InterruptError) as raised:
        await client.session_termination.terminate(
            user_ids=ids, batch_size=10, max_concurrency=3, on_progress=on_progress
        )
    assert sorted(sent_ids(route)) == sorted(ids)  # all three batches were sent and accepted
    report = getattr(raised.value, "termination_report", None)
    assert isinstance(report, TerminationReport)
    assert sorted(report.terminated["user_ids"]) == sorted(ids)
    assert len(report.accepted) == 3


def test_seen_set_is_exact_across_merges() -> None:
    """The compact de-duplication set drops only true repeats, before and after it merges."""
    from box_sessions._termination._seen import SeenSet  # noqa: PLC0415 - a private helper, tested directly

    seen = SeenSet()
    seen.MERGE_EVERY = 100
    values = [str(i * 7919 % 100_003) for i in range(1000)]
    assert all(seen.add(v, numeric=True) for v in values)  # all distinct
    assert not any(seen.add(v, numeric=True) for v in values)  # all repeats, in the array or the set
    assert seen.add("007", numeric=True)  # not canonical: kept as text, distinct from "7"
    assert not seen.add("007", numeric=True)
    assert seen.add("a@example.com", numeric=False)
    assert not seen.add("a@example.com", numeric=False)


def test_seen_set_merges_copy_ids_in_number_linear_in_its_size() -> None:
    """Adding n ids copies at most 32 n ids in all its merges: a job's de-duplication is linear, not quadratic."""
    from box_sessions._termination._seen import SeenSet  # noqa: PLC0415 - a private helper, tested directly

    seen = SeenSet()
    seen.MERGE_EVERY = 100  # the real threshold, scaled down with the job
    n, copied, merges, current = 100_000, 0, 0, seen._sorted
    for i in range(n):
        seen.add(str(i * 7919 % 1_000_003), numeric=True)
        if seen._sorted is not current:  # a merge built a new array of every id so far
            current, copied, merges = seen._sorted, copied + len(seen._sorted), merges + 1
    assert merges > 10  # the threshold was met, many times
    assert copied <= 32 * n


# -- over sockets, against a faulty FakeBox -------------------------------------------------------


async def test_10000_ids_through_rate_limited_faulty_server_all_accounted_once() -> None:
    """10,000 inputs through FakeBox with a rate limit and 5xx answers: each ends terminated, exactly once."""
    fake = FakeBox(rate_limit=24_000, burst=20, integer_retry_after=False, error_rate=0.05, seed=3)
    user_ids = [str(i) for i in range(1, 8001)]
    logins = [f"user{i}@example.com" for i in range(1500)]
    groups = [str(900_000 + i) for i in range(500)]
    async with LoopbackServer(fake.handle) as server:
        async with BoxClient(
            DeveloperTokenAuth(fake.developer_token),
            base_url=server.url,
            # No hedging: a copy sent when a loaded machine is slow would make the request counts
            # below depend on timing. Hedging has its own tests.
            retry=attrs.evolve(FAST_RETRY, hedge=False),
            rate_limit=RateLimit(requests_per_minute=36_000, burst=10),
        ) as client:
            report = await client.session_termination.terminate(
                user_ids=user_ids, user_logins=logins, group_ids=groups, batch_size=50
            )
        await wait_for_no_connections(server)
    assert report.ok, str(report)
    assert report.failed == []
    for field, given in (("user_ids", user_ids), ("user_logins", logins), ("group_ids", groups)):
        assert sorted(report.terminated[field]) == sorted(given)  # each reported once
        assert sorted(fake.terminated[field]) == sorted(given)  # and Box got each exactly once
    statuses = fake.status_counts
    assert report.requests == sum(statuses.values())
    assert report.rate_limited == statuses[429]
    assert fake.faults["error"] >= 1
    assert report.retries == statuses[429] + sum(n for status, n in statuses.items() if status >= 500)
