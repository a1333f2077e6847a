"""OpenTelemetry, native: spans and metrics through ``opentelemetry-api`` when it is installed, nothing otherwise.

Install the extra ``[otel]`` (``opentelemetry-api`` only) and configure an SDK in the application:
the tracer and the meter are named ``box_sessions``, and come from the global providers unless a
client is given its own. Without ``opentelemetry-api`` nothing is imported, and every hook below
is a method that returns at once.

Spans: ``box_sessions.terminate`` per bulk call (INTERNAL), and one CLIENT span per HTTP request
on the wire (token requests and hedged copies included), after OpenTelemetry's HTTP client
conventions. Metrics: ``http.client.request.duration``, ``box_sessions.ids``,
``box_sessions.retries``, ``box_sessions.token_requests``, ``box_sessions.pacing.rate``. The
README's "Telemetry" section lists every attribute.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from ._http import httpx
from ._version import __version__

try:
    from opentelemetry import metrics as _metrics
    from opentelemetry import trace as _trace
except ImportError:  # pragma: no cover - the suite runs with opentelemetry-api; a test runs without it
    _metrics = _trace = None  # type: ignore[assignment]

if TYPE_CHECKING:
    from opentelemetry.metrics import MeterProvider
    from opentelemetry.trace import Span, TracerProvider

__all__ = ["AVAILABLE", "AttemptSpan", "JobSpan", "Telemetry"]

#: Whether ``opentelemetry-api`` could be imported.
AVAILABLE = _trace is not None
NAME = "box_sessions"
#: Bucket boundaries of ``http.client.request.duration``, OpenTelemetry's advice for HTTP clients.
_DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)


class AttemptSpan:
    """What one request on the wire reports: its answer, or the error it met. A no-op without a span."""

    __slots__ = ("_attributes", "_span")

    def __init__(self, span: Span | None, attributes: dict[str, Any]) -> None:
        self._span = span
        self._attributes = attributes  # the duration's, beside the span's

    def answered(self, response: httpx.Response) -> None:
        """The request was answered: its status and Box's request id."""
        if self._span is None:
            return
        status = response.status_code
        self._attributes["http.response.status_code"] = status
        self._span.set_attribute("http.response.status_code", status)
        request_id = response.headers.get("box-request-id")
        if request_id:
            self._span.set_attribute("box_sessions.request_id", request_id)
        if status >= 400:
            self._attributes["error.type"] = str(status)
            self._span.set_attribute("error.type", str(status))
            self._span.set_status(_trace.StatusCode.ERROR)

    def failed(self, error: BaseException) -> None:
        """The request met an error before any answer (a timeout, a dropped connection)."""
        if self._span is None:
            return
        kind = type(error).__qualname__
        self._attributes["error.type"] = kind
        self._span.set_attribute("error.type", kind)
        self._span.set_status(_trace.StatusCode.ERROR, str(error))


class JobSpan:
    """The ``box_sessions.terminate`` span of one bulk call: made current in each batch, ended with the job's counts.

    A no-op without a span.
    """

    __slots__ = ("_span",)

    def __init__(self, span: Span | None) -> None:
        self._span = span

    @contextlib.contextmanager
    def current(self) -> Iterator[None]:
        """Make the job's span the current one in this task: the requests a batch sends are its children."""
        if self._span is None:
            yield
            return
        with _trace.use_span(self._span, end_on_exit=False, record_exception=False, set_status_on_exception=False):
            yield

    def end(
        self,
        *,
        terminated: int,
        failed: int,
        requests: int,
        retries: int,
        rate_limited: int,
        stopped_by: BaseException | None,
    ) -> None:
        """End the span with the job's counts; a job that stopped early (``stopped_by``) ends with an error status."""
        if self._span is None:
            return
        self._span.set_attributes(
            {
                "box_sessions.inputs": terminated + failed,
                "box_sessions.terminated": terminated,
                "box_sessions.failed": failed,
                "box_sessions.requests": requests,
                "box_sessions.retries": retries,
                "box_sessions.rate_limited": rate_limited,
            }
        )
        if stopped_by is not None:
            self._span.set_attribute("error.type", type(stopped_by).__qualname__)
            self._span.set_status(_trace.StatusCode.ERROR, str(stopped_by))
        self._span.end()


def _url_attributes(url: httpx.URL) -> tuple[str, int, str]:
    """A request URL's ``server.address``, ``server.port`` and ``url.full`` (no query, no user info)."""
    port = url.port or (443 if url.scheme == "https" else 80)
    return url.host, port, str(url.copy_with(query=None, fragment=None, username=None, password=None))


class Telemetry:
    """A client's tracer and meter (named ``box_sessions``), or nothing when OpenTelemetry is not installed.

    Args:
        tracer_provider: Where spans go; the global provider by default.
        meter_provider: Where measurements go; the global provider by default.
    """

    def __init__(self, *, tracer_provider: TracerProvider | None = None, meter_provider: MeterProvider | None = None):
        self._tracer = None if _trace is None else _trace.get_tracer(NAME, __version__, tracer_provider)
        # Each URL's attributes, computed once: a client sends to a handful of URLs, every request.
        self._urls: dict[httpx.URL, tuple[str, int, str]] = {}
        self._meter = None if _metrics is None else _metrics.get_meter(NAME, __version__, meter_provider)
        if self._meter is None:
            return
        self._duration = self._meter.create_histogram(
            "http.client.request.duration",
            unit="s",
            description="Duration of HTTP client requests",
            explicit_bucket_boundaries_advisory=list(_DURATION_BUCKETS),
        )
        self._ids = self._meter.create_counter("box_sessions.ids", unit="{id}", description="Input values by outcome")
        self._retries = self._meter.create_counter(
            "box_sessions.retries", unit="{retry}", description="Requests sent again, by reason"
        )
        self._token_requests = self._meter.create_counter(
            "box_sessions.token_requests", unit="{request}", description="Requests to the token endpoint"
        )
        self._rate = self._meter.create_gauge(
            "box_sessions.pacing.rate", unit="{request}/min", description="The rate the client paces at now"
        )

    @contextlib.contextmanager
    def attempt(self, url: httpx.URL, *, resends: int, waited: float, token: bool) -> Iterator[AttemptSpan]:
        """A CLIENT span around one request on the wire, and its duration measured.

        Args:
            url: Where it goes (never holds a secret: no query, no user info).
            resends: How many times its call was sent before (``http.request.resend_count``).
            waited: Seconds it waited for the rate limiter and the cool-down before it.
            token: It is a request to the token endpoint.
        """
        if self._tracer is None:
            yield _NO_ATTEMPT
            return
        if (known := self._urls.get(url)) is None:
            known = self._urls[url] = _url_attributes(url)
        host, port, full = known
        measured: dict[str, Any] = {"http.request.method": "POST", "server.address": host, "server.port": port}
        attributes = {**measured, "url.full": full, "box_sessions.pacing.wait": waited}
        if resends:
            attributes["http.request.resend_count"] = resends
        if token:
            self._token_requests.add(1)
        started = time.perf_counter()
        with self._tracer.start_as_current_span(
            f"POST {url.path}", kind=_trace.SpanKind.CLIENT, attributes=attributes, record_exception=False
        ) as span:
            report = AttemptSpan(span, measured)
            try:
                yield report
            except BaseException as exc:
                if "http.response.status_code" not in measured:
                    report.failed(exc)
                raise
            finally:
                self._duration.record(time.perf_counter() - started, measured)

    def job(self) -> JobSpan:
        """Start the ``box_sessions.terminate`` span of a bulk call (a child of the caller's current span)."""
        if self._tracer is None:
            return _NO_JOB
        return JobSpan(self._tracer.start_span("box_sessions.terminate", kind=_trace.SpanKind.INTERNAL))

    def ids(self, *, terminated: int, failed: int) -> None:
        """Input values that ended, by outcome."""
        if self._meter is None:
            return
        if terminated:
            self._ids.add(terminated, {"outcome": "terminated"})
        if failed:
            self._ids.add(failed, {"outcome": "failed"})

    def retry(self, reason: str) -> None:
        """A request is sent again, for ``reason``: ``429``, ``5xx``, ``timeout``, ``connection`` or ``401``."""
        if self._meter is not None:
            self._retries.add(1, {"reason": reason})

    def rate(self, per_second: float | None) -> None:
        """The rate the client paces at now (``None``: not paced, nothing measured)."""
        if self._meter is not None and per_second is not None:
            self._rate.set(per_second * 60)


_NO_ATTEMPT = AttemptSpan(None, {})
_NO_JOB = JobSpan(None)
