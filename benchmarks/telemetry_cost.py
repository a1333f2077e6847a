"""Benchmark of the ``cpu`` part: what OpenTelemetry costs the bulk call, in CPU seconds per 1,000 requests.

Three configurations, each in a fresh process so that no import leaks from one to the next:

- ``absent``: as if ``opentelemetry-api`` were not installed (``sys.modules["opentelemetry"] = None``
  before box_sessions is imported); the process checks that box_sessions found it unavailable and
  imported nothing of it.
- ``api``: ``opentelemetry-api`` installed, no SDK configured: the global providers are the API's
  no-op proxies (the process checks that no SDK was imported).
- ``sdk``: ``opentelemetry-sdk`` providers given to ``BoxClient(tracer_provider=, meter_provider=)``:
  a ``BatchSpanProcessor`` whose exporter counts the spans and drops them, and a ``MeterProvider``
  with an ``InMemoryMetricReader``, collected after each round. The processor's thread is part
  of the process, so its CPU counts.

``python telemetry_cost.py CONFIG REQUESTS URL`` runs one configuration against the FakeBox at ``URL``
and prints its CPU seconds per 1,000 requests; box_sessions is imported only after the
configuration is set, so this module imports none of it at the top.
"""

from __future__ import annotations

import asyncio
import gc
import math
import os
import subprocess
import sys
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Sequence

    from opentelemetry.sdk.trace import ReadableSpan

TOKEN = "fake-developer-token"  # noqa: S105 - FakeBox's well-known developer token, not a secret
BATCH = 100
CONFIGS = {"absent": "absent", "api": "api only", "sdk": "sdk"}
#: Rounds of the bulk call in each process (the lower counts), and passes over the configurations,
#: interleaved to even out the noise of a shared machine (the lowest counts).
ROUNDS = 2
PASSES = 2
#: Seconds one configuration's process may take.
BOUND = 600.0


async def bulk_call(url: str, user_ids: list[str], **options: Any) -> None:
    """The bulk call the ``cpu`` part measures: its limiter's code runs, it never waits; ``options`` go to BoxClient."""
    import box_sessions  # noqa: PLC0415 - imported once the configuration is set

    fast = box_sessions.RateLimit(requests_per_minute=1e9)
    async with box_sessions.BoxClient(
        box_sessions.DeveloperTokenAuth(TOKEN), base_url=url, rate_limit=fast, **options
    ) as client:
        report = await client.session_termination.terminate(user_ids=user_ids)
        assert report.ok, str(report)  # noqa: S101


class SdkTelemetry:
    """SDK providers for ``BoxClient``: a BatchSpanProcessor with an exporter that drops, an in-memory reader."""

    def __init__(self) -> None:
        from opentelemetry.sdk.metrics import MeterProvider  # noqa: PLC0415 - the sdk configuration only
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader  # noqa: PLC0415
        from opentelemetry.sdk.trace import TracerProvider  # noqa: PLC0415
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult  # noqa: PLC0415

        class Dropping(SpanExporter):
            """Counts the spans it is given and drops them: the SDK's work without an exporter's I/O."""

            spans = 0

            def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
                Dropping.spans += len(spans)
                return SpanExportResult.SUCCESS

        self._exporter = Dropping
        self._tracer_provider = TracerProvider()
        self._tracer_provider.add_span_processor(BatchSpanProcessor(Dropping()))
        self._reader = InMemoryMetricReader()
        self._meter_provider = MeterProvider(metric_readers=[self._reader])
        self._measured: set[str] = set()
        self.options = {"tracer_provider": self._tracer_provider, "meter_provider": self._meter_provider}

    def flush(self) -> None:
        """Export the spans and collect the measurements, as a real set-up does now and then."""
        self._tracer_provider.force_flush()
        data = self._reader.get_metrics_data()
        if data is not None:
            self._measured.update(m.name for r in data.resource_metrics for s in r.scope_metrics for m in s.metrics)

    def check(self, requests: int) -> None:
        """Every round's requests reached the exporter, with their durations measured; shut down."""
        spans = self._exporter.spans
        if spans < ROUNDS * requests or "http.client.request.duration" not in self._measured:
            raise SystemExit(
                f"sdk: {spans} spans exported for {ROUNDS} x {requests} requests, measured {self._measured}"
            )
        self._tracer_provider.shutdown()
        self._meter_provider.shutdown()


def telemetry_round(config: str, requests: int, url: str) -> float:
    """In this fresh process: set ``config`` up, run the bulk call `ROUNDS` times; the lowest CPU s per 1,000 requests.

    Raises:
        SystemExit: the configuration is not what it claims (OpenTelemetry imported when absent, an
            SDK loaded with the API only, spans or measurements missing with the SDK).
    """
    if config == "absent":
        sys.modules["opentelemetry"] = None  # type: ignore[assignment] # as if not installed
    from box_sessions import _telemetry  # noqa: PLC0415 - after the configuration is set

    loaded = sorted(name for name, module in sys.modules.items() if name.startswith("opentelemetry") and module)
    if config == "absent" and (_telemetry.AVAILABLE or loaded):
        raise SystemExit(f"absent: box_sessions found OpenTelemetry ({_telemetry.AVAILABLE=}, imported: {loaded})")
    if config != "absent" and not _telemetry.AVAILABLE:
        raise SystemExit(f"{config}: opentelemetry-api is not installed")
    sdk = SdkTelemetry() if config == "sdk" else None
    options = sdk.options if sdk is not None else {}
    user_ids = [str(10_000_000 + i) for i in range(requests * BATCH)]
    gc.collect()
    gc.freeze()
    best = math.inf
    for _ in range(ROUNDS):
        started = time.process_time()
        asyncio.run(bulk_call(url, user_ids, **options))
        if sdk is not None:
            sdk.flush()  # inside the round: exporting and collecting are part of the cost
        best = min(best, time.process_time() - started)
    if sdk is not None:
        sdk.check(requests)
    if config == "api":
        from opentelemetry import trace  # noqa: PLC0415

        if not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider) or "opentelemetry.sdk" in sys.modules:
            raise SystemExit("api: an SDK was loaded or a tracer provider set")
    return best / requests * 1000


def telemetry_cost(requests: int, url: str) -> dict[str, float]:
    """CPU seconds per 1,000 requests of the bulk call in each configuration, each in a fresh process."""
    # OTEL_* variables could make the API load an SDK (OTEL_PYTHON_TRACER_PROVIDER) or configure one.
    env = {key: value for key, value in os.environ.items() if not key.startswith("OTEL_")}
    found: dict[str, float] = {}
    for _ in range(PASSES):
        for config in CONFIGS:
            args = [sys.executable, __file__, config, str(requests), url]
            done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=BOUND, check=False)  # noqa: S603 - this interpreter, our own script
            if done.returncode != 0:
                raise SystemExit(f"the {config} configuration failed:\n{done.stderr[-2000:]}")
            found[config] = min(found.get(config, math.inf), float(done.stdout.split()[-1]))
    absent = found["absent"]
    return {
        **{f"{config}_cpu_s_per_1000": round(found[config], 3) for config in CONFIGS},
        **{f"{config}_over_absent": round(found[config] / absent, 2) for config in CONFIGS if config != "absent"},
    }


def describe(cost: dict[str, float]) -> str:
    """``absent X s/1000 requests, api only Y (Y/X), sdk Z (Z/X)``."""
    parts = [f"{CONFIGS['absent']} {cost['absent_cpu_s_per_1000']:.3f} s/1000 requests"]
    parts += [
        f"{CONFIGS[config]} {cost[f'{config}_cpu_s_per_1000']:.3f} ({cost[f'{config}_over_absent']:.2f}x)"
        for config in CONFIGS
        if config != "absent"
    ]
    return ", ".join(parts)


if __name__ == "__main__":
    config, requests, url = sys.argv[1:]
    print(f"{telemetry_round(config, int(requests), url):.4f}")  # noqa: T201 - read by `telemetry_cost`
