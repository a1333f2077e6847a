"""The README's examples work as printed: its test in a fresh project, its installs from a checkout."""

from __future__ import annotations

import re
import subprocess
import sys
from importlib.metadata import metadata
from pathlib import Path

import pytest

from ..support.readme import readme_python_block

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))

STRICT_MODE = re.compile(r"asyncio: mode=(Mode\.)?strict", re.IGNORECASE)  # pytest-asyncio's header line


def run_in_fresh_project(tmp_path: Path, test_source: str) -> subprocess.CompletedProcess[str]:
    """Run pytest on ``test_source`` in a new project whose configuration says nothing about asyncio."""
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "fresh"\nversion = "0"\n\n[tool.pytest.ini_options]\n')
    (tmp_path / "test_offboarding.py").write_text(test_source, encoding="utf-8")
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "test_offboarding.py"]
    # Any warning fails the run, except pytest's deprecation warnings: pytest-asyncio gives one to
    # every project that leaves its fixture loop scope unset, which is the user's to choose.
    command += ["-W", "error", "-W", "ignore::pytest.PytestDeprecationWarning"]
    return subprocess.run(  # noqa: S603 - this interpreter running pytest on a file the test wrote
        command, cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False
    )


def test_readme_fake_box_test_passes_as_printed(tmp_path: Path) -> None:
    """The test printed in "Testing with the fake Box" passes in a fresh project in pytest-asyncio's strict mode."""
    result = run_in_fresh_project(tmp_path, readme_python_block("## Testing with the fake Box"))
    assert STRICT_MODE.search(result.stdout), result.stdout
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"\b1 passed\b", result.stdout), result.stdout


def test_readme_fake_box_test_needs_its_marker_in_strict_mode(tmp_path: Path) -> None:
    """Without its asyncio marker the README's test does not pass in strict mode: the marker is needed."""
    source = readme_python_block("## Testing with the fake Box")
    unmarked = source.replace("@pytest.mark.asyncio\n", "")
    assert unmarked != source
    result = run_in_fresh_project(tmp_path, unmarked)
    assert STRICT_MODE.search(result.stdout), result.stdout
    assert result.returncode != 0
    assert not re.search(r"\b1 passed\b", result.stdout), result.stdout


#: ``pip install``, its options, then the first package it names (quoted or bare): what a reader would paste.
PIP_INSTALL = re.compile(r"""pip install(?:\s+-\S+)*\s+(?:"([^"]*)"|'([^']*)'|([^\s`'"]+))""")


def pip_install_targets(text: str) -> list[str]:
    """The first package each ``pip install`` command in ``text`` installs, unquoted."""
    return ["".join(match.groups(default="")) for match in PIP_INSTALL.finditer(text)]


@pytest.mark.parametrize("path", [README, *EXAMPLES], ids=lambda path: path.name)
def test_install_commands_install_this_package_from_the_checkout(path: Path) -> None:
    """This package is installed as ``.`` or ``".[extra]"`` with an extra it has: no index holds box-sessions yet."""
    targets = pip_install_targets(path.read_text(encoding="utf-8"))
    ours = [target for target in targets if target.startswith((".", "box"))]
    extras = metadata("box-sessions").get_all("Provides-Extra") or []
    assert [target for target in ours if target not in {".", *(f".[{extra}]" for extra in extras)}] == []
