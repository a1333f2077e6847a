"""Sessions for tests, lint and typing.

`python -m nox` runs the tests on the Python running nox, on every core (a first answer in
minutes), with the HTTP stack every install has (httpx), then lint and typing; `python -m nox -s
matrix` runs the tests on each Python found under each HTTP stack (httpx, and httpx2 on 3.11+).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from pathlib import Path

import nox

# The versions pyproject.toml's classifiers claim. `matrix` runs the tests on each one this machine has.
PYTHONS = ["3.10", "3.11", "3.12", "3.13"]
# The HTTP stacks the package runs on (box_sessions/_http.py): httpx, its dependency, and httpx2,
# the package's `httpx2` extra, preferred where installed. The suite runs under each as it is.
STACKS = ["httpx", "httpx2"]
#: The first Python httpx2 installs on: the `httpx2` extra's marker says ``python_version >= '3.11'``.
HTTPX2_FROM = (3, 11)

nox.options.sessions = ["tests", "lint", "typing"]
nox.options.reuse_existing_virtualenvs = True
# A missing Python skips its `matrix` session with one line ("Session matrix-3.13 skipped: Python
# interpreter 3.13 not found") rather than failing the run. Set here because nox's own default
# fails it whenever CI is in the environment; a missing Python is never downloaded either.
nox.options.error_on_missing_interpreters = False
nox.options.download_python = "never"
# nox says before each such skip that missing interpreters "will error by default on CI systems";
# with the option above they do not, on CI or off it, so the line would only mislead.
logging.getLogger("nox").addFilter(lambda record: "will error by default on CI" not in record.getMessage())


def _pyenv_bin_dirs(versions: list[str], root: Path) -> list[str]:
    """The `bin` folders of pyenv's builds of `versions` under `root`, the highest patch release of each.

    pyenv's shims run only the versions pyenv has selected, so `python3.12` can be on PATH and
    still fail; the build's own folder runs it whatever is selected.
    """
    found = []
    for version in versions:
        patches = [
            int(build.name.rsplit(".", 1)[1])
            for build in root.glob(f"{version}.*")
            if re.fullmatch(rf"{re.escape(version)}\.\d+", build.name) and (build / "bin").is_dir()
        ]
        if patches:
            found.append(str(root / f"{version}.{max(patches)}" / "bin"))
    return found


_PYENV_VERSIONS = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv") / "versions"
os.environ["PATH"] = os.pathsep.join([*_pyenv_bin_dirs(PYTHONS, _PYENV_VERSIONS), os.environ.get("PATH", "")])


def run_suite(session: nox.Session, *extras: str, coverage: bool = True) -> None:
    """Install the package with its test extra and run the suite on every core, the soak alone after it.

    With ``coverage``, branch coverage is measured and fail_under applies to each run.
    pytest-xdist's workers are subprocesses, measured as the command line's are (pyproject's
    ``patch = ["subprocess"]``), and combined at the end.

    Args:
        session: The session to run it in.
        extras: More of the package's extras to install beside ``test``: a dimension of the matrix
            (``@nox.parametrize`` on `matrix`) is one extra.
        coverage: Measure coverage (the matrix does; the first answer, `tests`, does not, for time).
    """
    if shutil.which("redis-server") is None:
        session.warn("redis-server is not installed: the Redis tests (marker redis) are skipped")
    session.install("-e", f".[{','.join(['test', *extras])}]")
    run = ["coverage", "run", "-m", "pytest"] if coverage else ["pytest"]
    if coverage:
        # Each session keeps its coverage data in its own environment, so runs on different Pythons
        # (even at the same time) never erase or combine each other's files.
        session.env["COVERAGE_FILE"] = str(Path(session.bin).parent / ".coverage")
        session.run("coverage", "erase")
    session.run(*run, "-n", "auto", "-m", "not soak", *session.posargs)
    # The soak runs alone after the rest: its client gives each attempt 0.3 s against a faulty
    # FakeBox in the same event loop, and beside the tests that start real processes it ran out
    # of retries (1,100 timeouts). Exit status 5: the arguments selected no soak test.
    session.run(*run, "-m", "soak", *session.posargs, success_codes=[0, 5])
    if coverage:
        session.run("coverage", "combine", "--quiet")
        session.run("coverage", "report")


@nox.session
def tests(session: nox.Session) -> None:
    """The test suite on the Python running nox, on every core: the first answer, in minutes.

    Without coverage, which cost it about a tenth of its time (2 min 50 s against 2 min 32 s); `matrix`
    measures it.
    """
    run_suite(session, coverage=False)


@nox.session(python=PYTHONS)
@nox.parametrize("stack", STACKS)
def matrix(session: nox.Session, stack: str) -> None:
    """The test suite on each Python found (3.10 to 3.13), under each HTTP stack; a missing Python is skipped.

    ``stack='httpx2'`` installs the package's ``httpx2`` extra, and is skipped on Python 3.10, where
    the extra installs nothing. ``stack='httpx'`` sets ``BOX_SESSIONS_HTTP=httpx``, so that it tests
    httpx even where httpx2 is installed. ``nox -l`` lists the sessions: ``matrix-3.11(stack='httpx2')``.
    """
    if stack == "httpx2":
        version = tuple(int(part) for part in str(session.python).split("."))
        if version < HTTPX2_FROM:
            session.skip(f"httpx2 needs Python {'.'.join(map(str, HTTPX2_FROM))}+ (the httpx2 extra's marker)")
        run_suite(session, "httpx2")
    else:
        session.env["BOX_SESSIONS_HTTP"] = "httpx"
        run_suite(session)


@nox.session
def lint(session: nox.Session) -> None:
    """Check style and formatting with ruff."""
    session.install("ruff>=0.6")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typing(session: nox.Session) -> None:
    """Type-check the package, the tests, the examples, the benchmarks and this file with mypy --strict."""
    session.install("-e", ".[test]", "mypy>=1.10", "nox>=2024.4")
    session.run("mypy", "--strict", "box_sessions", "tests", "examples", "benchmarks", "noxfile.py")


@nox.session
def soak(session: nox.Session) -> None:
    """The soak at full size: 50,000 ids through a faulty FakeBox with expiring tokens."""
    session.install("-e", ".[test]")
    session.run("pytest", "-m", "soak", "-v", *session.posargs, env={"BOX_SESSIONS_SOAK_IDS": "50000"})


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks against Box's official SDK (installed here only), a hand-written loop and bare httpx.

    ``nox -s bench -- --only single`` runs one part (throughput; cpu, which also measures
    OpenTelemetry's cost absent, API only and with the SDK; memory; single; shared: four processes
    through a redis-server and a 3-master Redis Cluster it starts on 127.0.0.1, which needs
    redis-server and redis-cli on PATH); ``-- --only throughput --profile drop --ours-only`` one
    throughput profile for box_sessions.
    """
    # otel and opentelemetry-sdk: the cpu part's API-only and SDK configurations (its "absent" one
    # hides the API from its own process).
    session.install("-e", ".[redis,otel]", "opentelemetry-sdk>=1.27", "boxsdk>=10,<11")
    session.run("python", "benchmarks/bench.py", *session.posargs)


@nox.session
def redis_as_run(session: nox.Session) -> None:
    """Issue 17's table measured: two worker processes through Redis as companies run it, one line per set-up.

    Real ``redis-server`` processes on 127.0.0.1 (cluster, Sentinel, replica, eviction, restarts, ACLs;
    ``redis-server`` and ``redis-cli`` 7 must be on PATH), a FakeBox process at 1,000 requests a minute;
    a few minutes. ``-- --only eviction restart`` runs some rows, ``-- --keep DIR`` keeps every log line.
    """
    session.install("-e", ".[redis]", "valkey>=6")  # the Valkey row gives valkey-py's own client
    session.run("python", "benchmarks/redis_as_run.py", *session.posargs)
