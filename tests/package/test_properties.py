"""Property tests: parsers and validators take anything and only ever raise what they document."""

# ruff: noqa: PT017 - a property holds for both outcomes (returns or raises), so pytest.raises does not fit

from __future__ import annotations

import json
import math
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from box_sessions import BoxAPIError
from box_sessions._errors import error_from_response
from box_sessions._sending import parse_retry_after
from box_sessions._validation import normalise_id, normalise_id_list, normalise_login

from ..support.http import httpx

anything = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True),
    st.text(),
    st.binary(),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
box_keys = st.sampled_from(["type", "status", "code", "message", "request_id", "help_url", "context_info"])


@given(anything)
def test_normalise_id_returns_digits_or_raises_documented_errors(value: Any) -> None:
    """An id is a digit string afterwards, or TypeError/ValueError naming the argument."""
    try:
        result = normalise_id(value, "user_ids")
    except (TypeError, ValueError) as exc:
        assert "user_ids" in str(exc)
    else:
        assert result.isascii()
        assert result.isdigit()


@given(anything)
def test_normalise_login_returns_the_login_or_raises_documented_errors(value: Any) -> None:
    """A login comes back unchanged, or TypeError/ValueError naming the argument."""
    try:
        result = normalise_login(value, "user_logins")
    except (TypeError, ValueError) as exc:
        assert "user_logins" in str(exc)
    else:
        assert result == value
        assert "@" in result


@given(st.one_of(anything, st.lists(anything, max_size=5), st.tuples(anything, anything)))
def test_normalise_id_list_never_crashes(values: Any) -> None:
    """Any value as a list argument gives a list of unique digit strings, or a documented error."""
    try:
        result = normalise_id_list(values, "group_ids")
    except (TypeError, ValueError) as exc:
        assert "group_ids" in str(exc)
    else:
        assert len(result) == len(set(result))


@given(st.one_of(st.none(), st.text(), st.from_regex(r"\A[0-9]{1,6}(\.[0-9]{1,3})?\Z")))
@settings(deadline=200)  # a hang would show as a deadline failure
def test_retry_after_is_none_or_a_finite_non_negative_number(value: str | None) -> None:
    """Any header value gives None or seconds in [0, inf)."""
    seconds = parse_retry_after(value, now=1_800_000_000.0)
    assert seconds is None or (math.isfinite(seconds) and seconds >= 0)


@given(
    st.integers(min_value=400, max_value=599),
    st.one_of(
        st.binary(max_size=300),
        json_values.map(lambda v: json.dumps(v).encode()),
        st.dictionaries(box_keys, json_values, max_size=7).map(lambda v: json.dumps(v).encode()),
    ),
    st.booleans(),
)
@settings(deadline=200)
def test_error_body_parser_always_gives_a_typed_error(status: int, body: bytes, token_endpoint: bool) -> None:
    """Any error body gives a BoxAPIError with the status and a printable one-line message."""
    error = error_from_response(httpx.Response(status, content=body), token_endpoint=token_endpoint)
    assert isinstance(error, BoxAPIError)
    assert error.status == status
    assert str(error).startswith(str(status))
    assert isinstance(error.context_info, dict)
    assert repr(error)
