"""The source distribution holds what its own tests read, and the license."""

from __future__ import annotations

from pathlib import Path

import pytest

hatchling_sdist = pytest.importorskip("hatchling.builders.sdist")

ROOT = Path(__file__).resolve().parents[2]
#: Files outside ``box_sessions/`` and ``tests/`` that the shipped tests open or run, and the license.
NEEDED = ("LICENSE", "README.md", "examples/fastapi_app.py")


def test_sdist_holds_the_license_and_what_the_tests_read() -> None:
    """The sdist's file list (hatchling's, as `python -m build` makes it) has the license, the README and examples."""
    builder = hatchling_sdist.SdistBuilder(str(ROOT))
    shipped = {included.distribution_path for included in builder.recurse_included_files()}
    assert [path for path in NEEDED if path not in shipped] == []
