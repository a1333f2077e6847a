"""The journal: each batch's outcome in SQLite, so a rerun of the same job resumes where it stopped."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Iterator

from .._termination import BatchResult
from ._exit import UsageError


def _connect(path: str) -> sqlite3.Connection:
    """A connection to the journal at ``path``, its table created; closed again if that fails."""
    db = sqlite3.connect(path)
    try:
        db.execute(
            "CREATE TABLE IF NOT EXISTS outcomes (field TEXT NOT NULL, value TEXT NOT NULL, "
            "status TEXT NOT NULL, error TEXT, PRIMARY KEY (field, value))"
        )
        db.commit()
    except BaseException:
        db.close()  # a file that is no journal (or a full disk) must not leave its connection open
        raise
    return db


class Journal:
    """Each batch's outcome in SQLite, committed when the batch completes, so a rerun resumes.

    A value recorded as terminated is skipped by the next run of the same job; failed values are
    tried again.
    """

    def __init__(self, path: str) -> None:
        try:
            self._db = _connect(path)
        except sqlite3.Error as exc:
            raise UsageError(f"--journal: cannot use {path!r} as a journal: {exc}") from None
        self.skipped = 0

    def is_done(self, field: str, value: str) -> bool:
        row = self._db.execute(
            "SELECT 1 FROM outcomes WHERE field = ? AND value = ? AND status = 'terminated'", (field, value)
        ).fetchone()
        return row is not None

    def skip_done(self, field: str, values: Iterable[object], on_skip: Callable[[str, str], None]) -> Iterator[object]:
        for value in values:
            if isinstance(value, str) and self.is_done(field, value):
                self.skipped += 1
                on_skip(field, value)
            else:
                yield value

    def record(self, result: BatchResult) -> None:
        rows: list[tuple[str, str, str, str | None]] = [(f, v, "terminated", None) for f, v in result.terminated]
        rows += [(f.field, str(f.value), "failed", str(f.error)) for f in result.failed if isinstance(f.value, str)]
        with self._db:  # one transaction per batch
            self._db.executemany("INSERT OR REPLACE INTO outcomes VALUES (?, ?, ?, ?)", rows)

    def close(self) -> None:
        self._db.close()
