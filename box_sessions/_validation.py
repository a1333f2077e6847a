"""Input normalisation at the edge: every value is checked before anything is sent."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import AsyncIterable, Iterable

from ._http import httpx

__all__ = [
    "check_iterable",
    "check_positive_int",
    "check_secure_url",
    "normalise_id",
    "normalise_id_list",
    "normalise_login",
    "normalise_login_list",
    "shown",
]

_DIGITS = re.compile(r"[0-9]+")
_SHOWN_BITS = 256  # an int longer than this (77 digits) is described, not written out


def _type_name(value: object) -> str:
    return type(value).__name__


def shown(value: object) -> str:
    """``repr(value)`` for a message, never raising: an int too long for `repr` is described instead."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > _SHOWN_BITS:
        return f"<an int of {value.bit_length():,} bits>"  # repr of one over 4,300 digits raises
    try:
        return repr(value)
    except Exception:  # noqa: BLE001 - a caller's object whose repr fails is still shown
        return f"<a {_type_name(value)} whose repr failed>"


def normalise_id(value: object, argument: str) -> str:
    """Return a Box id as a digit string.

    Args:
        value: A ``str`` of ASCII digits or a non-negative ``int`` (not a ``bool``).
        argument: The argument's name, for the error message.

    Raises:
        TypeError: ``value`` is neither ``str`` nor ``int`` (``None``, ``bool``, ``float``, ...).
        ValueError: ``value`` is empty, negative or not made of digits.
    """
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise TypeError(f"{argument}: an id must be a str or int, got {_type_name(value)} {shown(value)}")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"{argument}: an id must not be negative, got {shown(value)}")
        if value.bit_length() > _SHOWN_BITS:
            raise ValueError(f"{argument}: an id far longer than any Box id, got {shown(value)}")
        return str(value)
    if not _DIGITS.fullmatch(value):
        text = "an empty string" if not value else repr(value[:64])
        raise ValueError(f"{argument}: an id must be a string of digits, got {text}")
    return value


def normalise_login(value: object, argument: str) -> str:
    """Return a Box login (an email address) unchanged after checking it.

    Raises:
        TypeError: ``value`` is not a ``str``.
        ValueError: ``value`` is empty, has white space or a comma in it (a pasted list or CSV
            row, never one address), or has no ``@``.
    """
    if not isinstance(value, str):
        raise TypeError(f"{argument}: a login must be a str, got {_type_name(value)} {shown(value)}")
    if not value:
        raise ValueError(f"{argument}: a login must not be empty")
    if value.strip() != value or any(ch.isspace() for ch in value):
        raise ValueError(f"{argument}: a login must not contain white space, got {value[:64]!r}")
    if "," in value:
        raise ValueError(f"{argument}: a login must not contain a comma (a list or a CSV row?), got {value[:64]!r}")
    if "@" not in value:
        raise ValueError(f"{argument}: a login is an email address and needs an '@', got {value[:64]!r}")
    return value


def check_iterable(values: object, argument: str, *, allow_async: bool = False) -> None:
    """Refuse what is not a collection of values: a bare string (a classic slip), a dict, a scalar.

    Raises:
        TypeError: naming ``argument`` and what was given instead.
    """
    kind = "an iterable or async iterable of values" if allow_async else "a list of values"
    if isinstance(values, (str, bytes, bytearray)):
        raise TypeError(
            f"{argument}: expected {kind}, got a bare {_type_name(values)} {values!r}; write {argument}=[{values!r}]"
        )
    accepted: tuple[type, ...] = (Iterable, AsyncIterable) if allow_async else (Iterable,)
    if isinstance(values, dict) or not isinstance(values, accepted):
        raise TypeError(f"{argument}: expected {kind}, got {_type_name(values)}")


def check_positive_int(value: object, argument: str) -> int:
    """Return ``value`` if it is an ``int`` of at least 1 (not a ``bool``).

    Raises:
        TypeError, ValueError: naming ``argument``.
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{argument} must be an int, got {_type_name(value)}")
    if value < 1:
        raise ValueError(f"{argument} must be at least 1, got {value}")
    return value


def _check_collection(values: object, argument: str) -> Iterable[object]:
    check_iterable(values, argument)
    assert isinstance(values, Iterable)  # noqa: S101 - check_iterable refused everything else
    return values


def _dedupe(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(values))


def normalise_id_list(values: object, argument: str) -> list[str]:
    """Check and normalise a list of ids; ``None`` means none. Duplicates are sent once."""
    if values is None:
        return []
    return _dedupe(normalise_id(v, argument) for v in _check_collection(values, argument))


def normalise_login_list(values: object, argument: str) -> list[str]:
    """Check a list of logins; ``None`` means none. Duplicates are sent once."""
    if values is None:
        return []
    return _dedupe(normalise_login(v, argument) for v in _check_collection(values, argument))


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_secure_url(url: object, argument: str) -> httpx.URL:
    """Parse a URL that credentials will be sent to: https, or http to a loopback host only.

    Raises:
        TypeError: ``url`` is not a ``str`` or `httpx.URL`.
        ValueError: the URL is not absolute, not http(s), or plain http to a non-loopback host.
    """
    if not isinstance(url, (str, httpx.URL)):
        raise TypeError(f"{argument} must be a str or httpx.URL, got {_type_name(url)}")
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise ValueError(f"{argument} is not a valid URL: {exc}") from exc
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ValueError(f"{argument} must be an absolute http(s) URL, got {str(url)!r}")
    if parsed.scheme == "http" and not _is_loopback(parsed.host):
        raise ValueError(
            f"{argument} uses plain http to {parsed.host!r}: credentials are only sent over https "
            "(plain http is allowed to loopback hosts, for tests)"
        )
    return parsed
