"""OpenTelemetry: the spans and measurements of a bulk job equal what FakeBox received and what the report says."""

from __future__ import annotations

import collections
import contextlib
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import attrs
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from box_sessions import BoxClient, CCGAuth, Clock, RateLimit, RetryPolicy, TerminationReport
from box_sessions.testing import FakeBox, FakeClock
from box_sessions.testing._fake_rules import error, server_error
from box_sessions.testing._fake_transport import HandlerTransport
from box_sessions.testing._server import Reply, Request

from ..conftest import find_secret


@attrs.frozen
class Recorded:
    """The spans and measurements of one test."""

    exporter: InMemorySpanExporter
    reader: InMemoryMetricReader
    tracer_provider: TracerProvider
    meter_provider: MeterProvider

    def spans(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())

    def points(self, name: str) -> list[Any]:
        """Every data point of the metric ``name``."""
        data = self.reader.get_metrics_data()
        assert data is not None
        return [
            point
            for resource in data.resource_metrics
            for scope in resource.scope_metrics
            if scope.scope.name == "box_sessions"
            for metric in scope.metrics
            if metric.name == name
            for point in metric.data.data_points
        ]

    def sums(self, name: str, key: str) -> dict[str, int]:
        """A counter's totals by the value of attribute ``key``."""
        return {str(p.attributes.get(key)): p.value for p in self.points(name)}


def attributes_of(span: ReadableSpan) -> dict[str, Any]:
    """A span's attributes, as plain values."""
    return dict(span.attributes or {})


@pytest.fixture
def recorded() -> Iterator[Recorded]:
    """In-memory providers of spans and metrics for the clients of one test."""
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    yield Recorded(exporter, reader, tracer_provider, meter_provider)
    tracer_provider.shutdown()
    meter_provider.shutdown()


def client_of(fake: FakeBox, recorded: Recorded, clock: Clock | None = None, **options: Any) -> Any:
    auth = CCGAuth(client_id=fake.client_id, client_secret=fake.client_secret, enterprise_id="1")
    return fake.client(
        auth,
        clock=clock or FakeClock(),
        tracer_provider=recorded.tracer_provider,
        meter_provider=recorded.meter_provider,
        **options,
    )


#: Answers FakeBox gives in place of its own, by the number of the API request: two 429s and two 5xx.
SCRIPT = {3: 429, 5: 503, 8: 429, 12: 500}


class Scripted:
    """FakeBox, with the API requests numbered in `SCRIPT` answered as scripted (and recorded by FakeBox)."""

    def __init__(self, fake: FakeBox) -> None:
        self.fake = fake
        self.api = 0

    async def handle(self, request: Request) -> Reply:
        if request.path.endswith("/terminate_sessions"):
            self.api += 1
            status = SCRIPT.get(self.api)
            if status == 429:
                reply = error(429, "rate_limit_exceeded", "Request rate limit exceeded", {"retry-after": "0.01"})
                return self.fake._record(request, None, reply, None)
            if status is not None:
                return self.fake._record(request, None, server_error(status), None)
        return await self.fake.handle(request)


async def faulty_job(recorded: Recorded) -> tuple[FakeBox, TerminationReport]:
    """A job of 400 ids in 20 requests, two answered 429 and two 5xx on the way, paced at 6,000 a minute."""
    fake = FakeBox()
    retry = RetryPolicy(initial_backoff=0.01, max_backoff=0.01, hedge=False)
    auth = CCGAuth(client_id=fake.client_id, client_secret=fake.client_secret, enterprise_id="1")
    async with BoxClient(
        auth,
        transport=HandlerTransport(Scripted(fake).handle),
        retry=retry,
        rate_limit=RateLimit(requests_per_minute=6000),
        tracer_provider=recorded.tracer_provider,
        meter_provider=recorded.meter_provider,
    ) as client:
        report = await client.session_termination.terminate(
            user_ids=[str(10_000 + n) for n in range(400)], batch_size=20
        )
    assert report.ok, str(report)
    assert (fake.status_counts[429], fake.status_counts[500] + fake.status_counts[503]) == (2, 2)
    return fake, report


async def test_spans_are_one_per_request_fakebox_received_under_the_job(recorded: Recorded) -> None:
    """One CLIENT span per request FakeBox received (the token request included), each a child of the job's span."""
    fake, report = await faulty_job(recorded)
    spans = recorded.spans()
    [job] = [s for s in spans if s.name == "box_sessions.terminate"]
    http = [s for s in spans if s.kind is SpanKind.CLIENT]
    assert len(http) == len(fake.requests)
    assert {attributes_of(s).get("box_sessions.request_id") for s in http} == {r.request_id for r in fake.requests}
    assert collections.Counter(attributes_of(s).get("http.response.status_code") for s in http) == collections.Counter(
        r.status for r in fake.requests
    )
    assert all(s.parent is not None and s.parent.span_id == job.context.span_id for s in http)
    assert attributes_of(job) == {
        "box_sessions.inputs": 400,
        "box_sessions.terminated": report.terminated_count,
        "box_sessions.failed": len(report.failed),
        "box_sessions.requests": report.requests,
        "box_sessions.retries": report.retries,
        "box_sessions.rate_limited": report.rate_limited,
    }
    assert job.status.status_code is StatusCode.UNSET


async def test_a_request_span_follows_the_http_client_conventions(recorded: Recorded) -> None:
    """Method, URL without secrets, server, status, error type, resend count, Box's request id, the wait before it."""
    fake, _ = await faulty_job(recorded)
    http = [s for s in recorded.spans() if s.kind is SpanKind.CLIENT]
    for span in http:
        attributes = attributes_of(span)
        assert attributes["http.request.method"] == "POST"
        assert attributes["url.full"] in {
            "https://api.box.com/2.0/users/terminate_sessions",
            "https://api.box.com/oauth2/token",
        }
        assert (attributes["server.address"], attributes["server.port"]) == ("api.box.com", 443)
        assert attributes["box_sessions.pacing.wait"] >= 0
        status = attributes["http.response.status_code"]
        assert attributes.get("error.type") == (str(status) if status >= 400 else None)
        assert span.status.status_code is (StatusCode.ERROR if status >= 400 else StatusCode.UNSET)
        assert find_secret(repr(attributes)) is None
    resent = [s for s in http if attributes_of(s).get("http.request.resend_count")]
    assert len(resent) == sum(1 for r in fake.requests if r.status in (429, 500, 502, 503))
    assert any(attributes_of(s)["box_sessions.pacing.wait"] > 0 for s in http)  # paced (100 a second), and cooled down


async def test_metrics_equal_what_fakebox_received_and_the_report_says(recorded: Recorded) -> None:
    """Durations per request, ids by outcome, retries by reason, token requests, and the pacing rate."""
    fake, report = await faulty_job(recorded)
    durations = recorded.points("http.client.request.duration")
    assert sum(p.count for p in durations) == len(fake.requests)
    by_status = {p.attributes["http.response.status_code"]: p.count for p in durations}
    assert by_status == dict(collections.Counter(r.status for r in fake.requests))
    assert recorded.sums("box_sessions.ids", "outcome") == {"terminated": report.terminated_count}
    retries = recorded.sums("box_sessions.retries", "reason")
    assert sum(retries.values()) == report.retries
    assert retries["429"] == fake.status_counts[429]
    assert retries["5xx"] == sum(n for status, n in fake.status_counts.items() if status >= 500)
    assert recorded.sums("box_sessions.token_requests", "None") == {"None": fake.token_requests}
    [rate] = recorded.points("box_sessions.pacing.rate")
    assert 0 < rate.value < 6000  # the 429s lowered it


async def test_a_job_stopped_by_box_ends_its_span_in_error(recorded: Recorded) -> None:
    """A 403 that stops the job: the job's span has an error status naming it, and its ids count as failed."""
    fake = FakeBox(forbidden=True)
    async with client_of(fake, recorded) as client:
        report = await client.session_termination.terminate(user_ids=["1", "2", "3"])
    [job] = [s for s in recorded.spans() if s.name == "box_sessions.terminate"]
    assert job.status.status_code is StatusCode.ERROR
    assert attributes_of(job)["error.type"] == "PermissionDeniedError"
    assert attributes_of(job)["box_sessions.failed"] == 3 == len(report.failed)
    assert recorded.sums("box_sessions.ids", "outcome") == {"failed": 3}


async def test_iter_terminate_closed_early_ends_its_span(recorded: Recorded) -> None:
    """A streamed job closed after its first batch ends its span, without an error status."""
    fake = FakeBox()
    async with client_of(fake, recorded, rate_limit=None) as client:
        results = client.session_termination.iter_terminate(user_ids=[str(n) for n in range(1, 301)], max_concurrency=1)
        async with contextlib.aclosing(results):
            async for _ in results:
                break
    [job] = [s for s in recorded.spans() if s.name == "box_sessions.terminate"]
    assert job.status.status_code is StatusCode.UNSET
    assert attributes_of(job)["box_sessions.terminated"] == 100


async def test_a_single_call_counts_its_ids_and_its_request(recorded: Recorded) -> None:
    """terminate_users_sessions: one CLIENT span for the call (and one for the token), its ids counted terminated."""
    fake = FakeBox()
    async with client_of(fake, recorded) as client:
        await client.session_termination.terminate_users_sessions(user_ids=["1", "2"], user_logins=["a@example.com"])
    assert [s.name for s in recorded.spans()] == ["POST /oauth2/token", "POST /2.0/users/terminate_sessions"]
    assert recorded.sums("box_sessions.ids", "outcome") == {"terminated": 3}


def test_without_opentelemetry_nothing_is_imported_and_jobs_run() -> None:
    """With opentelemetry unimportable, the client runs a job, records nothing, and imports no opentelemetry module."""
    script = """
import sys
sys.modules["opentelemetry"] = None  # as if not installed
import asyncio
import box_sessions
from box_sessions import _telemetry
from box_sessions.testing import FakeBox

async def main():
    async with FakeBox().client(rate_limit=None) as client:
        report = await client.session_termination.terminate(user_ids=["1", "2"])
    assert report.ok
    print(_telemetry.AVAILABLE, sorted(m for m in sys.modules if m.startswith("opentelemetry") and sys.modules[m]))

asyncio.run(main())
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False)  # noqa: S603 - this interpreter, a script of the test's
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False []"
