"""Secrets scrubbed from text a server sent back: every spelling of each one replaced by ``***``."""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Iterable
from typing import TypeVar

__all__ = ["REDACTED", "scrub_text", "scrub_value", "secret_spellings"]

#: What stands in the place of a secret in every text kept from an answer.
REDACTED = "***"
# Shorter values are not secrets worth scrubbing (and would scrub innocent text).
_MIN_SECRET_CHARS = 6

_T = TypeVar("_T")


def _spellings(secret: str) -> set[str]:
    """The ways a server may echo ``secret``: as sent in a form, as JSON, as it is."""
    return {
        secret,
        urllib.parse.quote_plus(secret),
        urllib.parse.quote(secret, safe=""),
        json.dumps(secret)[1:-1],
    }


def secret_spellings(secrets: Iterable[str | None]) -> list[str]:
    """Every spelling of every secret worth scrubbing, longest first."""
    spellings = {s for secret in secrets if secret and len(secret) >= _MIN_SECRET_CHARS for s in _spellings(secret)}
    # Longest first, so an encoded spelling is not half-replaced by a shorter one.
    return sorted(spellings, key=len, reverse=True)


def scrub_text(text: str, spellings: list[str]) -> str:
    """``text`` with each of ``spellings`` replaced by ``***``."""
    for spelling in spellings:
        text = text.replace(spelling, REDACTED)
    return text


def scrub_value(value: _T, spellings: list[str]) -> _T:
    """A JSON-like value with every string in it scrubbed."""
    if isinstance(value, str):
        return scrub_text(value, spellings)  # type: ignore[return-value]
    if isinstance(value, dict):
        return {scrub_value(k, spellings): scrub_value(v, spellings) for k, v in value.items()}  # type: ignore[return-value]
    if isinstance(value, list):
        return [scrub_value(v, spellings) for v in value]  # type: ignore[return-value]
    return value
