"""The typed error of an error answer, scrubbed of every secret its request carried."""

from __future__ import annotations

from collections.abc import Mapping

from .._errors import BoxAPIError, error_from_response
from .._http import httpx
from ._echoes import request_secrets
from ._policy import parse_retry_after

__all__ = ["error_of"]


def error_of(response: httpx.Response, *, form: Mapping[str, str] | None, token: str, now: float) -> BoxAPIError:
    """The `BoxAPIError` of ``response``, scrubbed of ``token`` and of the secret fields of ``form``.

    Args:
        response: The error answer.
        form: The token request's form; ``None`` for an API call (which carried ``token``).
        token: The bearer token the request carried ("" for none).
        now: Wall-clock time, to read an HTTP-date ``retry-after``.
    """
    retry_after = parse_retry_after(response.headers.get("retry-after"), now=now)
    secrets = [token, *request_secrets(form, {})]
    return error_from_response(response, retry_after=retry_after, token_endpoint=form is not None, secrets=secrets)
