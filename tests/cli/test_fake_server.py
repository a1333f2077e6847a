"""``box-sessions fake-server``: its banner and help name the fake's control endpoints; a busy port or a bad
option is one sentence and exit 2. Run as a real process on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import urllib.request

import pytest

from box_sessions.testing import FakeBox

from ..support.cli_process import run, start


async def test_the_banner_lists_the_control_endpoints_with_their_urls() -> None:
    """The banner names each control endpoint with its full URL, and the URL answers."""
    proc = await start(["fake-server"])
    assert proc.stdout is not None
    try:
        base_url = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode().rsplit(" ", 1)[-1].strip()
        banner = [
            (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
            for _ in range(2 + len(FakeBox.control_endpoints))
        ]
        for endpoint in FakeBox.control_endpoints:
            line = f"  {endpoint.method} {base_url}{endpoint.path}  {endpoint.description}\n"
            assert line in banner
        stats = await asyncio.to_thread(lambda: urllib.request.urlopen(f"{base_url}/_fakebox/stats", timeout=10).read())  # noqa: S310 - our own loopback URL
        assert json.loads(stats)["token_requests"] == 0
    finally:
        proc.send_signal(signal.SIGINT)
        await asyncio.wait_for(proc.wait(), 30)
    assert proc.returncode == 0


async def test_help_lists_the_control_endpoints() -> None:
    """fake-server --help lists each control endpoint's method, path and description."""
    code, out, _ = await run(["fake-server", "--help"])
    assert code == 0
    for endpoint in FakeBox.control_endpoints:
        assert f"{endpoint.method} {endpoint.path}  {endpoint.description}" in out


async def test_a_busy_port_is_one_sentence_and_exit_2() -> None:
    """fake-server on a port in use exits 2 with one sentence naming the port, no traceback."""
    fake = FakeBox()
    async with fake.serve() as base_url:
        busy = base_url.rsplit(":", 1)[1]
        code, out, err = await run(["fake-server", "--port", busy], timeout=30)
    assert code == 2
    assert err.startswith(f"box-sessions: fake-server: cannot listen on 127.0.0.1:{busy}: ")
    assert len(err.splitlines()) == 1
    assert out == ""


@pytest.mark.parametrize(
    ("option", "message"),
    [
        pytest.param(["--rate-limit", "0"], "--rate-limit: must be more than 0", id="rate-limit-0"),
        pytest.param(["--token-lifetime", "0"], "--token-lifetime: must be more than 0", id="token-lifetime-0"),
        pytest.param(["--port", "70000"], "a port is between 0 and 65535", id="port-70000"),
        pytest.param(["--burst", "0.5"], "'burst' must be >= 1", id="burst-below-1"),
        pytest.param(["--error-rate", "2"], "a share is between 0 and 1", id="error-rate-2"),
    ],
)
async def test_a_bad_option_is_exit_2_without_traceback(option: list[str], message: str) -> None:
    """A value FakeBox cannot take exits 2 with a sentence naming it, not a traceback."""
    code, _, err = await run(["fake-server", *option], timeout=30)
    assert code == 2
    assert message in err
    assert "Traceback" not in err


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
async def test_a_fake_server_started_as_a_background_job_stops_on_a_signal(signum: signal.Signals) -> None:
    """Started with SIGINT ignored, as a shell starts a ``&`` job, the server still stops on the signal, exit 0.

    (asyncio.run leaves an ignored SIGINT ignored; the server never stopped, and a test waiting
    for it hung.)
    """
    command = f'trap "" INT QUIT; exec "{sys.executable}" -m box_sessions fake-server'
    proc = await asyncio.create_subprocess_exec(
        "/bin/sh", "-c", command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    assert proc.stdout is not None
    try:
        assert "FakeBox listening on" in (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
        proc.send_signal(signum)
        _, err = await asyncio.wait_for(proc.communicate(), 30)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0, err.decode()
