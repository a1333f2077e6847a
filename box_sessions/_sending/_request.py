"""`Request`: one call as every layer of the sender sees it, the same for each of its attempts."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from .._http import httpx
from ._hooks import CallObserver
from ._policy import RetryBudget

__all__ = ["Attempt", "Request"]


@attrs.frozen
class Request:
    """One call: what is sent where, and what bounds it.

    Attributes:
        url: Where it goes.
        json_body: The JSON body of an API call (``None`` for the token request).
        form: The form of a token request (``None`` for an API call).
        deadline: The call's deadline on the client clock's ``monotonic()``, or ``None``.
        hedge: A second copy of a stalled request is harmless (the caller says so) and allowed
            (the retry policy says so).
        budget: The job's retry quota, or ``None``.
        observer: Told of each request, answer and retry.
        max_cooldown: The longest 429 cool-down it waits out (``RetryPolicy.max_retry_after``).
    """

    url: httpx.URL
    json_body: Any
    form: Mapping[str, str] | None
    deadline: float | None
    hedge: bool = False  # the caller says a second copy is harmless, and the retry policy allows it
    budget: RetryBudget | None = None
    observer: CallObserver | None = None
    max_cooldown: float = 120.0  # the longest 429 cool-down it waits out (RetryPolicy.max_retry_after)

    @property
    def what(self) -> str:
        return f"POST {self.url.path}"


@attrs.frozen
class Attempt:
    """One attempt of a call, as the layers below the retry rules see it.

    Attributes:
        number: The attempt's number, from 1.
        backoff: Seconds the call waits before the next attempt if this one fails without a
            ``retry-after``: a 429 without one holds every sender off that long.
        resends: How many times the call was sent before this request (earlier attempts, and a
            resend after a 401); a hedged copy is no resend.
    """

    number: int
    backoff: float
    resends: int = 0
