"""Sessions for tests, lint and typing: `python -m nox` runs all three."""

from __future__ import annotations

import shutil

import nox

nox.options.sessions = ["tests", "lint", "typing"]
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = True


@nox.session
def tests(session: nox.Session) -> None:
    """Run the test suite with branch coverage."""
    if shutil.which("redis-server") is None:
        session.warn("redis-server is not installed: the Redis tests (marker redis) are skipped")
    session.install("-e", ".[test]")
    session.run("coverage", "erase")
    session.run("coverage", "run", "-m", "pytest", *session.posargs)
    session.run("coverage", "combine", "--quiet")
    session.run("coverage", "report")


@nox.session
def lint(session: nox.Session) -> None:
    """Check style and formatting with ruff."""
    session.install("ruff>=0.6")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typing(session: nox.Session) -> None:
    """Type-check the package and the tests with mypy --strict."""
    session.install("-e", ".[test]", "mypy>=1.10", "nox>=2024.4")
    session.run("mypy", "--strict", "box_sessions", "tests", "examples", "noxfile.py")


@nox.session
def soak(session: nox.Session) -> None:
    """The soak at full size: 50,000 ids through a faulty FakeBox with expiring tokens."""
    session.install("-e", ".[test]")
    session.run("pytest", "-m", "soak", "-v", *session.posargs, env={"BOX_SESSIONS_SOAK_IDS": "50000"})


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks against Box's official SDK (installed here only) and a hand-written loop."""
    session.install("-e", ".", "boxsdk>=10,<11")
    session.run("python", "benchmarks/bench.py", *session.posargs)
