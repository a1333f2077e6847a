"""The pytest plugin of box_sessions (entry point ``pytest11``): the ``fake_box`` fixture.

Example test a user can copy (the marker is pytest-asyncio's; with its ``asyncio_mode = "auto"``
it can go)::

    import pytest


    @pytest.mark.asyncio
    async def test_offboarding_ends_sessions(fake_box):
        async with fake_box.client() as client:
            report = await client.session_termination.terminate(user_ids=["123", "456"])
        assert report.ok
        assert fake_box.terminated["user_ids"] == ["123", "456"]
"""

from __future__ import annotations

import pytest

from ._fakebox import FakeBox


@pytest.fixture
def fake_box() -> FakeBox:
    """A fresh `FakeBox` that accepts every id, with no limits and no faults.

    Configure it in the test (``fake_box.rate_limit = 600``), use ``fake_box.client()`` for an
    in-process `BoxClient`, or ``async with fake_box.serve() as base_url`` for a real server on
    127.0.0.1.
    """
    return FakeBox()
