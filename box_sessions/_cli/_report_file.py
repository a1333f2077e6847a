"""The report file: one JSON line per input value, written as batches complete."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .._termination import BatchResult
from ._exit import UsageError


class ReportFile:
    """JSON lines, one per input value, written as batches complete."""

    def __init__(self, path: str) -> None:
        try:
            self._file = Path(path).open("w", encoding="utf-8")  # noqa: SIM115 - closed in close()
        except OSError as exc:
            raise UsageError(f"--report: cannot write {path!r}: {exc.strerror or exc}") from None

    def line(self, data: dict[str, Any]) -> None:
        self._file.write(json.dumps(data) + "\n")

    def record(self, result: BatchResult) -> None:
        for field, value in result.terminated:
            self.line({"field": field, "value": value, "status": "terminated", "error": None})
        for failure in result.failed:
            data = failure.to_dict()
            self.line({"field": data["field"], "value": data["value"], "status": "failed", "error": data["error"]})
        self._file.flush()

    def close(self) -> None:
        self._file.close()
