"""The README's Python examples run as copied, placeholders aside, against the embedded FakeBox.

Each ``python`` block of the README is listed in `EXAMPLES` with how it is checked, and a test
fails when a block is not listed, so that a new example cannot go unchecked. A block runs as it
is printed, in a fresh namespace, with only its placeholders filled in:

- the ``"…"`` of a keyword argument (``client_id="…"``) becomes FakeBox's value for it;
- ``box_sessions.BoxClient`` sends to FakeBox in-process (`FakeBox.transport`) instead of Box;
- a fragment (a block with ``await`` at its top level) runs as ``python -m asyncio`` runs what is
  typed into it, after the README's first example's ``import asyncio`` and ``import box_sessions``;
  names that stand for the reader's own objects (``ccg_auth``) are given.
"""

from __future__ import annotations

import ast
import asyncio
import gc
import json
import re
import subprocess
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import pytest

import box_sessions
from box_sessions.testing import FakeBox

from ..support.redis_server import RedisServer

README = Path(__file__).resolve().parents[2] / "README.md"
PLACEHOLDER = re.compile(r'(\w+)="…"')
LEAVERS = [str(i) for i in range(1, 251)]


@attrs.frozen
class Block:
    """A ``python`` block of the README: the section it is in, its place there (from 1), its source."""

    section: str
    index: int
    source: str

    @property
    def name(self) -> str:
        return f"{self.section} #{self.index}"


#: A heading, a python block, or another fenced block (whose lines may start with "#" too).
_PARTS = re.compile(r"^#{1,3} (?P<heading>.+?)$|^```python\n(?P<python>.*?)^```$|^```.*?^```$", re.M | re.S)


def readme_blocks() -> list[Block]:
    """Every ``python`` block of the README, with the heading it is under."""
    blocks: list[Block] = []
    section, count = "", 0
    for match in _PARTS.finditer(README.read_text(encoding="utf-8")):
        if match["heading"] is not None:
            section, count = match["heading"], 0
        elif match["python"] is not None:
            count += 1
            blocks.append(Block(section, count, match["python"]))
    return blocks


def block(name: str) -> Block:
    found = [b for b in readme_blocks() if b.name == name]
    assert len(found) == 1, f"README has no single python block {name!r}"
    return found[0]


def filled_in(source: str, values: dict[str, str]) -> str:
    """``source`` with each ``name="…"`` placeholder given ``values[name]``."""
    return PLACEHOLDER.sub(lambda m: f"{m.group(1)}={values[m.group(1)]!r}", source)


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> FakeBox:
    """FakeBox, where every `BoxClient` the examples make sends; the examples' files are in ``tmp_path``."""
    fake = FakeBox()

    class ToFakeBox(box_sessions.BoxClient):
        def __init__(self, auth: box_sessions.BoxAuth, **kwargs: Any) -> None:
            if "http_client" not in kwargs:
                kwargs.setdefault("transport", fake.transport())
            super().__init__(auth, **kwargs)

    monkeypatch.setattr(box_sessions, "BoxClient", ToFakeBox)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "leavers.txt").write_text("".join(f"{i}\n" for i in LEAVERS), encoding="utf-8")
    return fake


def credentials(fake: FakeBox) -> dict[str, str]:
    return {
        "client_id": fake.client_id,
        "client_secret": fake.client_secret,
        "enterprise_id": "1",
        "refresh_token": fake.issue_refresh_token(),
    }


def run_example(source: str, namespace: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run ``source`` as a script (or, with ``await`` at its top level, as ``python -m asyncio`` would);
    fail on any warning, a file left open (`ResourceWarning`) included."""
    scope: dict[str, Any] = {"__name__": "__main__", **(namespace or {})}
    code = compile(source, "README.md", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = eval(code, scope)  # noqa: S307 - the README's own example, compiled above
        if asyncio.iscoroutine(result):
            asyncio.run(result)
        gc.collect()  # a file the example dropped unclosed warns now, inside this block
    assert [str(w.message) for w in caught] == []
    return scope


def check_first_screen(fake: FakeBox, _: pytest.FixtureRequest, capsys: pytest.CaptureFixture[str]) -> None:
    run_example(filled_in(block("box_sessions #1").source, credentials(fake)))
    assert fake.terminated == {
        "user_ids": ["123", "456", "123"],
        "user_logins": ["a@example.com"],
        "group_ids": ["789"],
    }
    assert capsys.readouterr().out.startswith("Terminated 4 of 4 distinct inputs")


def check_bulk(fake: FakeBox, _: pytest.FixtureRequest, capsys: pytest.CaptureFixture[str]) -> None:
    run_example(filled_in(block("Bulk termination #1").source, credentials(fake)))
    report = json.loads(Path("report.json").read_text(encoding="utf-8"))
    assert report["terminated"]["user_ids"] == LEAVERS
    assert report["ok"] is True
    assert "Terminated 252 of 252 distinct inputs" in capsys.readouterr().out


def check_iter_terminate(fake: FakeBox, _: pytest.FixtureRequest, capsys: pytest.CaptureFixture[str]) -> None:
    run_example(filled_in(block("Bulk termination #2").source, credentials(fake)))
    lines = [json.loads(line) for line in Path("outcomes.jsonl").read_text(encoding="utf-8").splitlines()]
    assert sorted(line["value"] for line in lines) == sorted(LEAVERS)
    assert {line["status"] for line in lines} == {"terminated"}
    assert {line["request_id"] for line in lines} == {r.request_id for r in fake.requests if r.status == 202}
    assert capsys.readouterr().out.count("Progress(") == 3  # one line per batch of 100


def check_several_processes(fake: FakeBox, request: pytest.FixtureRequest, _: pytest.CaptureFixture[str]) -> None:
    redis_server: RedisServer = request.getfixturevalue("redis_server")
    source = block("Several processes #1").source
    url = re.search(r'RedisShare\("([^"]+)"', source)
    assert url is not None
    source = filled_in(source.replace(url.group(1), redis_server.url), credentials(fake))
    ccg_auth = box_sessions.CCGAuth(**{k: v for k, v in credentials(fake).items() if k != "refresh_token"})
    run_example(source, {"asyncio": asyncio, "box_sessions": box_sessions, "ccg_auth": ccg_auth})


def check_another_store(fake: FakeBox, _: pytest.FixtureRequest, __: pytest.CaptureFixture[str]) -> None:
    scope = run_example(block("Another store #1").source)
    auth = box_sessions.CCGAuth(**{k: v for k, v in credentials(fake).items() if k != "refresh_token"})

    async def two_clients() -> None:
        share = scope["MemoryShare"]()
        async with box_sessions.BoxClient(auth, shared=share) as one, box_sessions.BoxClient(auth, shared=share) as two:
            await one.session_termination.terminate_users_sessions(user_ids=["1"])
            await two.session_termination.terminate_users_sessions(user_ids=["2"])

    asyncio.run(two_clients())
    assert fake.token_requests == 1  # the store shared the token (its contract tests run it through the rest)


def check_telemetry(fake: FakeBox, _: pytest.FixtureRequest, __: pytest.CaptureFixture[str]) -> None:
    # The block sets the process's global providers: it runs in a process of its own, with a job after it.
    job = """
import asyncio
from box_sessions.testing import FakeBox

async def job():
    async with FakeBox().client(rate_limit=None) as client:
        await client.session_termination.terminate(user_ids=["1", "2"])
    tracer_provider.force_flush()

asyncio.run(job())
"""
    done = subprocess.run(  # noqa: S603 - this interpreter running the README's block and a job
        [sys.executable, "-c", block("Telemetry #1").source + job],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert '"name": "box_sessions.terminate"' in done.stdout
    assert '"name": "POST /2.0/users/terminate_sessions"' in done.stdout


Check = Callable[[FakeBox, pytest.FixtureRequest, pytest.CaptureFixture[str]], None]

#: How each python block of the README is checked: a check that runs it, or why it is not run here.
EXAMPLES: dict[str, Check | str] = {
    "box_sessions #1": check_first_screen,
    "Bulk termination #1": check_bulk,
    "Bulk termination #2": check_iter_terminate,
    "Several processes #1": check_several_processes,
    "Another store #1": check_another_store,
    "Options #1": "an excerpt of a FastAPI handler using with_options; tests/transport/test_with_options.py makes "
    "the same calls",
    "Telemetry #1": check_telemetry,
    "Testing with the fake Box #1": "a test file: tests/test_readme.py runs it with pytest in a fresh project",
    "FastAPI #1": "an excerpt of examples/fastapi_app.py, which tests/test_fastapi_example.py runs",
}


def test_every_python_block_of_the_readme_is_checked() -> None:
    """Each python block of the README is in EXAMPLES (run here, or said where it is checked), and no other."""
    assert sorted(b.name for b in readme_blocks()) == sorted(EXAMPLES)


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(name, marks=[pytest.mark.redis] if "Several processes" in name else [], id=name)
        for name, check in EXAMPLES.items()
        if callable(check)
    ],
)
def test_readme_example_runs_as_copied(
    name: str, fake: FakeBox, request: pytest.FixtureRequest, capsys: pytest.CaptureFixture[str]
) -> None:
    """The README's example runs as printed, its placeholders filled in, against FakeBox, and leaves no file open."""
    check = EXAMPLES[name]
    assert callable(check)
    check(fake, request, capsys)
