"""The README's test example passes as printed, in a fresh project with pytest-asyncio's defaults."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from .support.readme import readme_python_block

STRICT_MODE = re.compile(r"asyncio: mode=(Mode\.)?strict", re.IGNORECASE)  # pytest-asyncio's header line
FAKE_BOX_SECTION = "## Testing with the fake Box"


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
    result = run_in_fresh_project(tmp_path, readme_python_block(FAKE_BOX_SECTION))
    assert STRICT_MODE.search(result.stdout), result.stdout
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"\b1 passed\b", result.stdout), result.stdout


def test_readme_fake_box_test_needs_its_marker_in_strict_mode(tmp_path: Path) -> None:
    """Without its asyncio marker the README's test does not pass in strict mode: the marker is needed."""
    source = readme_python_block(FAKE_BOX_SECTION)
    unmarked = source.replace("@pytest.mark.asyncio\n", "")
    assert unmarked != source
    result = run_in_fresh_project(tmp_path, unmarked)
    assert STRICT_MODE.search(result.stdout), result.stdout
    assert result.returncode != 0
    assert not re.search(r"\b1 passed\b", result.stdout), result.stdout
