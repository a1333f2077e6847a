"""`Dispatcher`: one request of a call on its way to the wire: hedged when it stalls, paced, its answer recorded.

The layers below a call's auth, one method each, as the `Sender` above them:

- `Dispatcher.send` (hedging): a request that is safe to send twice and has not been answered
  after the hedger's delay gets a second copy, paced like any request; the first answer wins;
- ``_send_handling_pacing``: a slot of the rate limit, never inside the 429 cool-down (`Pacer`);
- ``_send_paced``: the request in its slot, and its answer recorded (a 429 holds every sender
  off, for Box's ``retry-after`` or the attempt's back-off);
- `Dispatcher.send_single`: one request on the wire (`Wire`), counted, its latency noted.
"""

from __future__ import annotations

from collections.abc import Mapping

from .._clock import Clock
from .._errors import BoxError, BoxTimeoutError, ClientClosedError
from .._http import httpx
from .._pacing import Pacer, PacingRefused
from .._shared import Reservation
from .._telemetry import Telemetry
from ._hedge import Hedger
from ._policy import parse_retry_after
from ._request import Attempt, Request
from ._retrying import Final
from ._wire import Wire

__all__ = ["Dispatcher", "Lifecycle"]


class Lifecycle:
    """Whether a sender is closed: by its own `close`, or by the one it was derived from."""

    def __init__(self, parent: Lifecycle | None = None) -> None:
        self._closed = False
        self._parent = parent

    @property
    def closed(self) -> bool:
        return self._closed or (self._parent is not None and self._parent.closed)

    def close(self) -> None:
        self._closed = True

    def check_open(self) -> None:
        """Raise `Final` with `ClientClosedError` when closed: the request is not sent."""
        if self.closed:
            raise Final(ClientClosedError("the client was closed; this request was not sent"))


class Dispatcher:
    """Sends one request of a call: hedging, pacing, the wire.

    Args:
        pacer: The client's rate limit and cool-down.
        hedger: The client's latencies, and the race of a second copy.
        wire: One request on the wire (the client's connections, its gate, one attempt's timeouts).
        clock: The client's clock.
        lifecycle: Whether the client is closed.
    """

    def __init__(
        self, *, pacer: Pacer, hedger: Hedger, wire: Wire, clock: Clock, lifecycle: Lifecycle, telemetry: Telemetry
    ) -> None:
        self.pacer = pacer
        self.hedger = hedger
        self.wire = wire
        self._clock = clock
        self._lifecycle = lifecycle
        self._telemetry = telemetry

    def derive(self, *, wire: Wire, lifecycle: Lifecycle) -> Dispatcher:
        """The same pacing, hedging and telemetry over another wire (other timeouts) and lifecycle."""
        return Dispatcher(
            pacer=self.pacer,
            hedger=self.hedger,
            wire=wire,
            clock=self._clock,
            lifecycle=lifecycle,
            telemetry=self._telemetry,
        )

    async def send(self, request: Request, headers: Mapping[str, str], attempt: Attempt) -> httpx.Response:
        """Send ``request`` with ``headers``, hedged when it may be and stalls; return the first answer."""
        delay = self.hedger.delay if request.hedge else None
        if delay is None:
            return await self._send_handling_pacing(request, headers, attempt)
        started = self._clock.monotonic()
        slot = await self._reserve(request)  # the first copy's wait is not the stall a second copy is for
        waited = self._clock.monotonic() - started
        return await self.hedger.race(
            lambda: self._send_paced(request, headers, attempt, slot, waited),
            lambda: self._send_handling_pacing(request, headers, attempt),  # a request like any other
            delay,
            what=request.what,
        )

    async def _send_handling_pacing(
        self, request: Request, headers: Mapping[str, str], attempt: Attempt
    ) -> httpx.Response:
        started = self._clock.monotonic()
        slot = await self._reserve(request)
        return await self._send_paced(request, headers, attempt, slot, self._clock.monotonic() - started)

    async def _reserve(self, request: Request) -> Reservation | None:
        """Wait for a slot; a wait the request may not make fails it, unsent."""
        self._lifecycle.check_open()
        try:
            slot = await self.pacer.reserve(deadline=request.deadline, max_cooldown=request.max_cooldown)
        except PacingRefused as refused:
            raise Final(refused.error) from None
        self._lifecycle.check_open()
        return slot

    async def _send_paced(
        self, request: Request, headers: Mapping[str, str], attempt: Attempt, slot: Reservation | None, waited: float
    ) -> httpx.Response:
        """Send in ``slot`` and record the answer: a 429 holds every sender off (``retry-after``, else the back-off)."""
        response = await self.send_single(request, headers, attempt, waited=waited)
        cooldown = None
        if response.status_code == 429:
            retry_after = parse_retry_after(response.headers.get("retry-after"), now=self._clock.time())
            cooldown = attempt.backoff if retry_after is None else retry_after
        await self.pacer.record(slot, response.status_code, cooldown=cooldown)
        self._telemetry.rate(self.pacer.rate)
        return response

    async def send_single(
        self, request: Request, headers: Mapping[str, str], attempt: Attempt, *, waited: float = 0.0
    ) -> httpx.Response:
        """One request on the wire, bounded by the call's deadline; its answer read up to a limit.

        ``waited``: the seconds it waited for the rate limit and the cool-down before (for its span).

        Raises:
            Final: the deadline passed before it could be sent, or the client was closed.
            BoxError: the request failed (`BoxTimeoutError`, `BoxConnectionError`, ...).
        """
        self._lifecycle.check_open()
        remaining = None if request.deadline is None else request.deadline - self._clock.monotonic()
        if remaining is not None and remaining <= 0:
            raise Final(BoxTimeoutError("the call's deadline passed before the request could be sent"))
        if request.observer is not None:
            request.observer.sent()
        started = self._clock.monotonic()
        token = request.form is not None
        with self._telemetry.attempt(request.url, resends=attempt.resends, waited=waited, token=token) as span:
            try:
                response = await self.wire.send(request, headers, remaining=remaining)
            except BoxError as exc:
                if self._lifecycle.closed:
                    raise Final(ClientClosedError("the client was closed while this request was in flight")) from exc
                raise
            span.answered(response)
        if request.observer is not None:
            request.observer.answered(response.status_code)
        if request.form is None and response.is_success:
            self.hedger.record(self._clock.monotonic() - started)
        return response
