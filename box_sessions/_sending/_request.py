"""`Request`: one call as every layer of the sender sees it, the same for each of its attempts."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs
import httpx

from ._hooks import CallObserver
from ._policy import RetryBudget

__all__ = ["Request"]


@attrs.frozen
class Request:
    """One call: what is sent where, and what bounds it.

    Attributes:
        url: Where it goes.
        json_body: The JSON body of an API call (``None`` for the token request).
        form: The form of a token request (``None`` for an API call).
        deadline: The call's deadline on the client clock's ``monotonic()``, or ``None``.
        hedge: The caller says a second copy is harmless.
        budget: The job's retry quota, or ``None``.
        observer: Told of each request, answer and retry.
    """

    url: httpx.URL
    json_body: Any
    form: Mapping[str, str] | None
    deadline: float | None
    hedge: bool = False  # the caller says a second copy is harmless
    budget: RetryBudget | None = None
    observer: CallObserver | None = None

    @property
    def what(self) -> str:
        return f"POST {self.url.path}"
