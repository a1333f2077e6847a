"""What the command says is exact: a message names where a bad value came from, and counts of one are singular.

Run as a real process against FakeBox on 127.0.0.1.
"""

from __future__ import annotations

import pytest

from ..cli_process import DEV, run


@pytest.mark.parametrize(
    ("args", "env", "named", "not_named"),
    [
        pytest.param(["--base-url", "http://box.example.com"], {}, "--base-url", "BOX_BASE_URL", id="option"),
        pytest.param([], {"BOX_BASE_URL": "http://box.example.com"}, "BOX_BASE_URL", "--base-url", id="environment"),
        pytest.param(
            ["--base-url", "ftp://box.example.com"],
            {"BOX_BASE_URL": "https://api.box.com"},
            "--base-url",
            "BOX_BASE_URL",
            id="option-over-environment",
        ),
        pytest.param(["--base-url", ""], {}, "--base-url", "BOX_BASE_URL", id="empty-option-is-not-box"),
    ],
)
async def test_a_bad_base_url_is_named_by_where_it_came_from(
    args: list[str], env: dict[str, str], named: str, not_named: str
) -> None:
    """A bad API host is reported as BOX_BASE_URL when it came from there, as --base-url when given as one."""
    code, out, err = await run(["terminate", "--user-id", "1", *args], {**DEV, **env})
    assert code == 2
    assert err.startswith(f"box-sessions: {named} ")
    assert not_named not in err
    assert len(err.splitlines()) == 1
    assert out == ""
