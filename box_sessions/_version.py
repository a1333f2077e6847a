"""The package version, read from the installed distribution's metadata."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("box-sessions")
except PackageNotFoundError:  # pragma: no cover - only when run from a source tree never installed
    __version__ = "0+unknown"
