"""A guarded FastAPI service over one BoxClient: opened in the lifespan, shared by every request.

Run it (callers' API keys and Box credentials from the environment, as the command line reads them)::

    export TERMINATE_API_KEYS=... BOX_CLIENT_ID=... BOX_CLIENT_SECRET=... BOX_ENTERPRISE_ID=...
    uvicorn examples.fastapi_app:app

``POST /terminate`` can log the whole company out, so it serves only callers that send
``Authorization: Bearer <key>`` with one of the keys in ``TERMINATE_API_KEYS`` (comma-separated;
white space around a key and empty entries are ignored; give each caller its own key, and list
the old and the new key while rotating one). Keys are compared in constant time, against every
configured key whichever matches. A missing, malformed or wrong key is a 401 (with
``WWW-Authenticate: Bearer``) before anything is sent to Box, and the app refuses to start
without a key. Each accepted request writes one JSON line to the logger ``box_sessions.audit``
(to stderr unless your logging configuration takes it): the caller key's fingerprint (the first
12 hex digits of its SHA-256, never the key), the counts, and Box's request ids: of the requests
Box accepted (the evidence of what was terminated) and of the failures.

OpenTelemetry, when ``opentelemetry-sdk`` is installed (``pip install ".[otel]" opentelemetry-sdk``
in a checkout): the client reports to the app's own providers (see `telemetry_from_env`), and
``GET /metrics`` serves the measurements in Prometheus' text format for a scraper. It needs no key
(counts only; serve it where only your scraper reaches). ``OTEL_CONSOLE_SPANS=1`` prints the
spans to stdout; an application exports them where its tracing lives.

``BOX_BASE_URL`` sends it to another API host, such as a fake Box on 127.0.0.1
(``box-sessions fake-server``); Box's own by default. A credential that is not set stops the app
at startup with one sentence naming it.

Sharing one client is what makes the SDK's guarantees hold across requests: one connection pool,
one token refreshed once for everybody, one rate limiter and one 429 cool-down for the app.

Several workers are several processes, each with its own client. Set ``BOX_REDIS_URL`` and they
share through Redis what one client shares in a process (the ``redis`` extra: ``pip install ".[redis]"``
in a checkout, ``"box-sessions[redis]"`` once it is published)::

    BOX_REDIS_URL=redis://127.0.0.1:6379/0 ... uvicorn examples.fastapi_app:app --workers 4

One token for every worker, one rate limit for the app (Box's limit is the service account's,
whatever the number of workers), and a 429 one worker sees holds them all back. Without it, four
workers send four times the rate. Redis is imported only when ``BOX_REDIS_URL`` is set: without
it the app needs no ``redis`` extra, and with it but no extra the app stops at startup with one
sentence saying how to install it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import math
import os
import re
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr

import box_sessions

if TYPE_CHECKING:  # imported at run time only when BOX_REDIS_URL is set: see share_from_env
    from box_sessions.redis import RedisShare

BOX_API = "https://api.box.com"
CREDENTIALS = ("BOX_CLIENT_ID", "BOX_CLIENT_SECRET", "BOX_ENTERPRISE_ID")
API_KEYS = "TERMINATE_API_KEYS"
UNAUTHORIZED = "send Authorization: Bearer <key> with a key the service accepts"
#: Hex digits of a key's SHA-256 that name its caller in the audit log.
FINGERPRINT = 12
AUDIT = logging.getLogger("box_sessions.audit")


class TerminateRequest(BaseModel):
    """The ids whose sessions to end; any of the three lists may be empty.

    Strict types: JSON ``true`` or ``1.0`` is a 422, never user ``1``; an unknown key (a typo
    such as ``userids``) is a 422 too, rather than a request that terminates nobody.
    """

    model_config = ConfigDict(extra="forbid")

    user_ids: list[StrictStr | StrictInt] = Field(default_factory=list)
    user_logins: list[StrictStr] = Field(default_factory=list)
    group_ids: list[StrictStr | StrictInt] = Field(default_factory=list)


def api_keys_from_env() -> dict[bytes, str]:
    """The accepted API keys from TERMINATE_API_KEYS, as their SHA-256 digests mapped to their fingerprints.

    Only digests are kept: comparing equal-length digests takes the same time whatever the key's
    length, and the keys themselves never reach the app's state.

    Raises:
        RuntimeError: TERMINATE_API_KEYS holds no key; the message names it.
    """
    keys = [key.strip() for key in os.environ.get(API_KEYS, "").split(",") if key.strip()]
    if not keys:
        raise RuntimeError(
            f"cannot start: set {API_KEYS} to the callers' API keys, comma-separated "
            "(POST /terminate serves only requests with Authorization: Bearer <one of them>)"
        )
    digests = [hashlib.sha256(key.encode()).digest() for key in keys]
    return {digest: digest.hex()[:FINGERPRINT] for digest in digests}


def caller_of(presented: str, keys: Mapping[bytes, str]) -> str | None:
    """The fingerprint of the configured key equal to ``presented``, or ``None``.

    Every configured key is compared, in constant time, whichever matches: the time taken says
    nothing about which key matched or how much of one.
    """
    digest = hashlib.sha256(presented.encode()).digest()
    caller = None
    for key, fingerprint in keys.items():
        if hmac.compare_digest(digest, key):
            caller = fingerprint
    return caller


def authenticated_caller(request: Request) -> str:
    """The caller's key fingerprint, from ``Authorization: Bearer <key>``.

    Raises:
        HTTPException: 401 with ``WWW-Authenticate: Bearer`` for a missing, malformed or wrong
            key; FastAPI answers it before the handler runs, so nothing is sent to Box.
    """
    scheme, _, presented = request.headers.get("authorization", "").partition(" ")
    caller = caller_of(presented.strip(), request.app.state.api_keys) if scheme.lower() == "bearer" else None
    if caller is None:  # answered before the handler runs: nothing is sent to Box
        raise HTTPException(401, UNAUTHORIZED, headers={"WWW-Authenticate": "Bearer"})
    return caller


def audit_line(caller: str, inputs: int, report: box_sessions.TerminationReport) -> str:
    """The one audit line of an accepted request: who sent it (a fingerprint), the counts, Box's request ids.

    ``accepted_request_ids`` are the requests Box accepted (the evidence of what was terminated),
    ``failed_request_ids`` those of the failures Box answered.
    """
    failed_request_ids = [
        failure.error.request_id for failure in report.failed if isinstance(failure.error, box_sessions.BoxAPIError)
    ]
    return json.dumps(
        {
            "key_fingerprint": caller,
            "inputs": inputs,
            "terminated": report.terminated_count,
            "failed": len(report.failed),
            "duplicates": report.duplicates,
            "requests": report.requests,
            "accepted_request_ids": [acceptance.request_id for acceptance in report.accepted],
            "failed_request_ids": list(dict.fromkeys(rid for rid in failed_request_ids if rid)),  # each once
        }
    )


def audit_to_stderr() -> None:
    """Make sure audit lines are written: to stderr, unless the logging configuration takes them.

    uvicorn configures only its own loggers, so without this the lines would go nowhere.
    """
    AUDIT.setLevel(logging.INFO)
    if not AUDIT.hasHandlers():
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(message)s"))
        AUDIT.addHandler(handler)


def share_from_env() -> RedisShare | None:
    """The Redis share of every worker, from BOX_REDIS_URL; ``None`` when it is not set (one process).

    Redis is imported only when the variable is set, so the app runs without the ``redis`` extra.

    Raises:
        RuntimeError: BOX_REDIS_URL is set and the ``redis`` extra is not installed; the message
            says how to install it.
    """
    url = os.environ.get("BOX_REDIS_URL", "").strip()
    if not url:
        return None
    try:
        from box_sessions.redis import RedisShare  # noqa: PLC0415 - only an app that shares through Redis needs it
    except ModuleNotFoundError as missing:
        if (missing.name or "").partition(".")[0] != "redis":
            raise
        raise RuntimeError(
            "cannot start: BOX_REDIS_URL is set but the redis extra is not installed "
            '(pip install ".[redis]" in a checkout of box_sessions, "box-sessions[redis]" once it is published)'
        ) from None
    return RedisShare(url)


class Telemetry:
    """The app's OpenTelemetry providers, when ``opentelemetry-sdk`` is installed; ``None`` each otherwise.

    The client reports to them (tracer and meter ``box_sessions``); `metrics_text` renders the
    measurements for ``GET /metrics``.
    """

    def __init__(self) -> None:
        self.tracer_provider: Any = None
        self.meter_provider: Any = None
        self._reader: Any = None
        try:
            from opentelemetry.sdk.metrics import MeterProvider  # noqa: PLC0415 - optional
            from opentelemetry.sdk.metrics.export import InMemoryMetricReader  # noqa: PLC0415
            from opentelemetry.sdk.trace import TracerProvider  # noqa: PLC0415
            from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter  # noqa: PLC0415
        except ImportError:
            return
        self._reader = InMemoryMetricReader()  # read when /metrics is asked for: a pull, as Prometheus scrapes
        self.meter_provider = MeterProvider(metric_readers=[self._reader])
        self.tracer_provider = TracerProvider()
        if os.environ.get("OTEL_CONSOLE_SPANS"):
            self.tracer_provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))

    def metrics_text(self) -> str | None:
        """The measurements so far in Prometheus' text format; ``None`` without ``opentelemetry-sdk``."""
        if self._reader is None:
            return None
        return prometheus_text(self._reader.get_metrics_data())

    def shutdown(self) -> None:
        for provider in (self.tracer_provider, self.meter_provider):
            if provider is not None:
                provider.shutdown()


def prometheus_text(data: Any) -> str:
    """OpenTelemetry metrics data in Prometheus' text exposition format (counters, gauges, histograms).

    Names as Prometheus writes OpenTelemetry's: dots become underscores, a unit of seconds adds
    ``_seconds``, a counter adds ``_total``; attributes become labels.
    """
    lines: list[str] = []
    for resource in getattr(data, "resource_metrics", None) or []:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                lines += _prometheus_metric(metric)
    return "".join(line + "\n" for line in lines)


def _prometheus_metric(metric: Any) -> list[str]:
    name = re.sub(r"[^a-zA-Z0-9_]", "_", metric.name) + ("_seconds" if metric.unit == "s" else "")
    points = metric.data.data_points
    if hasattr(points[0] if points else None, "bucket_counts"):
        lines = [f"# TYPE {name} histogram"]
        for point in points:
            running = 0
            for bound, count in zip([*point.explicit_bounds, math.inf], point.bucket_counts, strict=True):
                running += count
                le = "+Inf" if math.isinf(bound) else repr(float(bound))
                lines.append(f"{name}_bucket{_labels(point.attributes, le=le)} {running}")
            lines += [
                f"{name}_sum{_labels(point.attributes)} {point.sum}",
                f"{name}_count{_labels(point.attributes)} {point.count}",
            ]
        return lines
    monotonic = getattr(metric.data, "is_monotonic", False)
    total = f"{name}_total" if monotonic else name
    lines = [f"# TYPE {total if monotonic else name} {'counter' if monotonic else 'gauge'}"]
    lines += [f"{total}{_labels(point.attributes)} {point.value}" for point in points]
    return lines


def _labels(attributes: Mapping[str, Any] | None, **more: str) -> str:
    pairs = {**{re.sub(r"[^a-zA-Z0-9_]", "_", k): str(v) for k, v in (attributes or {}).items()}, **more}
    if not pairs:
        return ""
    escaped = (v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") for v in pairs.values())
    return "{" + ",".join(f'{k}="{v}"' for k, v in zip(pairs, escaped, strict=True)) + "}"


def client_from_env(
    shared: box_sessions.Shared | None = None, telemetry: Telemetry | None = None
) -> box_sessions.BoxClient:
    """A BoxClient with CCG credentials from BOX_CLIENT_ID, BOX_CLIENT_SECRET and BOX_ENTERPRISE_ID.

    The API host is BOX_BASE_URL, Box's own when it is not set.

    Args:
        shared: What the app's workers share (`share_from_env`), or ``None``.

    Raises:
        RuntimeError: A credential is not set; the message names it.
    """
    missing = [name for name in CREDENTIALS if not os.environ.get(name, "").strip()]
    if missing:
        raise RuntimeError(
            f"cannot start: set {', '.join(missing)} (the app reads its Box credentials from "
            f"{', '.join(CREDENTIALS)} in the environment)"
        )
    auth = box_sessions.CCGAuth(
        client_id=os.environ["BOX_CLIENT_ID"],
        client_secret=os.environ["BOX_CLIENT_SECRET"],
        enterprise_id=os.environ["BOX_ENTERPRISE_ID"],
    )
    return box_sessions.BoxClient(
        auth,
        base_url=os.environ.get("BOX_BASE_URL") or BOX_API,
        shared=shared,
        tracer_provider=None if telemetry is None else telemetry.tracer_provider,
        meter_provider=None if telemetry is None else telemetry.meter_provider,
    )


def create_app(
    make_client: Callable[[box_sessions.Shared | None, Telemetry], box_sessions.BoxClient] = client_from_env,
    make_share: Callable[[], RedisShare | None] = share_from_env,
) -> FastAPI:
    """Build the app; the share and the client are made at startup, so tests pass factories wired to FakeBox."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.api_keys = api_keys_from_env()  # first: no key, no service, and nothing opened
        audit_to_stderr()
        app.state.telemetry = Telemetry()
        async with AsyncExitStack() as closing:
            closing.callback(app.state.telemetry.shutdown)  # after the client
            share = make_share()
            if share is not None:
                await closing.enter_async_context(share)  # closed after the client
            app.state.box = await closing.enter_async_context(make_client(share, app.state.telemetry))
            yield

    app = FastAPI(title="Session termination", lifespan=lifespan)

    @app.get("/metrics", response_class=PlainTextResponse)
    async def metrics(request: Request) -> PlainTextResponse:
        """The client's measurements in Prometheus' text format (501 without ``opentelemetry-sdk``)."""
        text = request.app.state.telemetry.metrics_text()
        if text is None:
            raise HTTPException(501, "install opentelemetry-sdk to serve metrics")
        return PlainTextResponse(text, media_type="text/plain; version=0.0.4")

    @app.post("/terminate")
    async def terminate(
        body: TerminateRequest, request: Request, caller: Annotated[str, Depends(authenticated_caller)]
    ) -> dict[str, Any]:
        """Terminate the given users' and groups' sessions; the report accounts for every id."""
        client: box_sessions.BoxClient = request.app.state.box
        report = await client.session_termination.terminate(
            user_ids=body.user_ids, user_logins=body.user_logins, group_ids=body.group_ids
        )
        AUDIT.info(audit_line(caller, len(body.user_ids) + len(body.user_logins) + len(body.group_ids), report))
        return report.to_dict()

    return app


# Built on import, whatever the environment: keys and credentials are read at startup, where a
# missing one fails with its name rather than leaving uvicorn without an ``app`` to find.
app = create_app()
