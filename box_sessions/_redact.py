"""Secrets scrubbed from text a server sent back: every spelling of each one replaced by ``***``."""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Iterable, Sequence

__all__ = ["REDACTED", "scrub_text", "secret_spellings"]

#: What stands in the place of a secret in every text kept from an answer.
REDACTED = "***"
# Shorter values are not secrets worth scrubbing (and would scrub innocent text).
_MIN_SECRET_CHARS = 6


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


def scrub_text(text: str, spellings: Sequence[str]) -> str:
    """``text`` with each of ``spellings`` replaced by ``***``."""
    for spelling in spellings:
        text = text.replace(spelling, REDACTED)
    return text
