"""The journal: one job's outcomes in SQLite, so that running the same job again resumes it.

A journal belongs to one job: its inputs (the hash of their values), the base URL and the
credentials' subject, written in the journal when it is created. A value the journal records as
terminated by an earlier run is not sent again, so a journal reused for another job would skip
users of that job whom nobody signed out: running a different job against a journal is a usage
error, found before anything is sent. So is a journal that cannot be written (a read-only file,
a full disk): each run records its start, and commits it, before the first request.

For each terminated value it keeps Box's request id and the time Box accepted it, so that a
resumed job reports the values of earlier runs with their original evidence.

It holds the logins of the people being locked out: it is created ``0600``, and so are the side
files SQLite makes beside it (``-journal``, ``-wal``, ``-shm``), which take the journal's mode; one an
earlier run left wider is narrowed (see `_private`).
"""

from __future__ import annotations

import collections
import datetime
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from typing import TextIO

import attrs

from .._termination import BatchResult, utc_text
from .._termination._seen import SeenSet
from ._exit import UsageError
from ._private import create_private, narrow

__all__ = ["Evidence", "JobIdentity", "Journal"]

_FORMAT = "box-sessions journal 2"
#: Journals of this format are upgraded in place: format 2 added Box's request id and acceptance time.
_UPGRADED = "box-sessions journal 1"
#: How a message names each part of a job's identity.
_NAMES = {"format": "journal format", "inputs": "inputs", "base_url": "base URL", "credentials": "credentials"}
#: The files SQLite keeps beside a database while it writes: they hold its data too.
_SIDE_FILES = ("-journal", "-wal", "-shm")
_SCHEMA = (
    "CREATE TABLE job (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE runs (run INTEGER PRIMARY KEY AUTOINCREMENT, started TEXT NOT NULL)",
    (
        "CREATE TABLE outcomes (field TEXT NOT NULL, value TEXT NOT NULL, status TEXT NOT NULL, error TEXT, "
        "run INTEGER NOT NULL, request_id TEXT, accepted_at TEXT, PRIMARY KEY (field, value))"
    ),
)
#: What a format-1 journal lacks.
_UPGRADE = (
    "ALTER TABLE outcomes ADD COLUMN request_id TEXT",
    "ALTER TABLE outcomes ADD COLUMN accepted_at TEXT",
    "UPDATE job SET value = 'box-sessions journal 2' WHERE key = 'format'",
)


@attrs.frozen
class Evidence:
    """What ties a terminated value to Box: the request id of the request that carried it, and when Box accepted it."""

    request_id: str | None
    accepted_at: str | None  # ISO 8601, UTC


@attrs.frozen(kw_only=True)
class JobIdentity:
    """What makes a job the same job: a rerun with all three equal resumes it.

    Attributes:
        inputs: The SHA-256 of the input values, per field and in order.
        base_url: The API host.
        credentials: Whom the credentials act for (never a secret in clear).
    """

    inputs: str
    base_url: str
    credentials: str

    def rows(self) -> dict[str, str]:
        """The identity as the journal's ``job`` table holds it."""
        return {"format": _FORMAT, "inputs": self.inputs, "base_url": self.base_url, "credentials": self.credentials}


def _check(db: sqlite3.Connection, path: str, job: JobIdentity) -> None:
    """Check that the database at ``db`` is ``job``'s journal, or empty; it is only read.

    Raises:
        UsageError: it is another job's journal, an older journal, or another database.
    """
    tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if not tables:
        return
    if "job" not in tables:
        what = (
            "an older box-sessions journal, which does not say which job it belongs to"
            if "outcomes" in tables
            else "an SQLite database that is not a box-sessions journal"
        )
        raise UsageError(f"--journal: {path!r} is {what}; give a new journal file for this job")
    recorded = dict(db.execute("SELECT key, value FROM job").fetchall())
    if recorded.get("format") == _UPGRADED:
        recorded["format"] = _FORMAT  # upgraded when this run starts
    differ = [_NAMES[key] for key, value in job.rows().items() if recorded.get(key) != value]
    if differ:
        raise UsageError(
            f"--journal: {path!r} belongs to another job (not the same {' and '.join(differ)}), and resuming "
            "it would skip values that job terminated; give a new journal file for this job"
        )


def _start(db: sqlite3.Connection, job: JobIdentity) -> int:
    """Make the checked journal ``job``'s (if new) and record this run; return its number."""
    with db:  # a journal that cannot be written fails here, before anything is sent
        if db.execute("SELECT 1 FROM sqlite_master WHERE name = 'job'").fetchone() is None:
            for statement in _SCHEMA:
                db.execute(statement)
            db.executemany("INSERT INTO job VALUES (?, ?)", job.rows().items())
        elif db.execute("SELECT 1 FROM job WHERE key = 'format' AND value = ?", (_UPGRADED,)).fetchone():
            for statement in _UPGRADE:
                db.execute(statement)
        cursor = db.execute(
            "INSERT INTO runs (started) VALUES (?)", (datetime.datetime.now(datetime.timezone.utc).isoformat(),)
        )
    return int(cursor.lastrowid or 0)


class Journal:
    """One job's outcomes in SQLite, committed as each batch completes, so that a rerun resumes.

    A value recorded as terminated by an earlier run is skipped once, and its repeats count as
    duplicates; failed values are tried again.

    Args:
        path: The journal file; created ``0600`` if it does not exist, else narrowed to it.
        job: The job this run is; a journal of another job is refused.
        err: Where to say that an existing file's mode was narrowed.

    Raises:
        UsageError: the file is not a journal, is another job's, or cannot be written.
    """

    def __init__(self, path: str, job: JobIdentity, *, err: TextIO) -> None:
        self._path = path
        try:
            create_private(path)
        except OSError as exc:
            raise UsageError(f"--journal: cannot use {path!r} as a journal: {exc.strerror or exc}") from None
        try:
            self._db = sqlite3.connect(path)
        except sqlite3.Error as exc:
            raise UsageError(f"--journal: cannot use {path!r} as a journal: {exc}") from None
        try:
            _check(self._db, path, job)
            for name in (path, *(f"{path}{suffix}" for suffix in _SIDE_FILES)):
                narrow(name, option="--journal", err=err)  # before the first write, and only once it is this job's
            self._run = _start(self._db, job)
            self.earlier: int = self._db.execute(
                "SELECT COUNT(*) FROM outcomes WHERE status = 'terminated' AND run < ?", (self._run,)
            ).fetchone()[0]
            """Distinct values earlier runs terminated, when this run began."""
        except (sqlite3.Error, OSError) as exc:
            self._db.close()
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            raise UsageError(f"--journal: cannot use {path!r} as a journal: {reason}") from None
        except BaseException:
            self._db.close()
            raise
        self.skipped: collections.Counter[str] = collections.Counter()
        """Values skipped as terminated by an earlier run, per field."""
        self.skipped_duplicates = 0
        """Repeats of skipped values, dropped as duplicates."""
        self._seen: collections.defaultdict[str, SeenSet] = collections.defaultdict(SeenSet)

    def _done_before(self, field: str, value: str) -> Evidence | None:
        """How an earlier run terminated ``value``: Box's request id and acceptance time; ``None`` if it did not."""
        try:
            row = self._db.execute(
                "SELECT request_id, accepted_at FROM outcomes "
                "WHERE field = ? AND value = ? AND status = 'terminated' AND run < ?",
                (field, value, self._run),
            ).fetchone()
        except sqlite3.Error as exc:
            raise UsageError(f"--journal: cannot read {self._path!r} any more: {exc}") from None
        return None if row is None else Evidence(row[0], row[1])

    def skip_done(
        self, field: str, values: Iterable[object], on_skip: Callable[[str, str, Evidence], None]
    ) -> Iterator[object]:
        """``values`` without those an earlier run terminated; ``on_skip`` is told of each, once, with its evidence."""
        for value in values:
            done = self._done_before(field, value) if self.earlier and isinstance(value, str) else None
            if done is None:
                yield value
            elif self._seen[field].add(str(value), numeric=field != "user_logins"):
                self.skipped[field] += 1
                on_skip(field, str(value), done)
            else:
                self.skipped_duplicates += 1

    def record(self, result: BatchResult) -> None:
        """Commit one batch's outcome.

        Raises:
            UsageError: the journal cannot be written any more (the disk is full).
        """
        rows: list[tuple[str, str, str, str | None, int, str | None, str | None]] = [
            (f, v, "terminated", None, self._run, acceptance.request_id, utc_text(acceptance.accepted_at))
            for acceptance in result.accepted
            for f, v in acceptance.terminated
        ]
        rows += [
            (f.field, f.value, "failed", str(f.error), self._run, None, None)
            for f in result.failed
            if isinstance(f.value, str)
        ]
        try:
            with self._db:  # one transaction per batch
                self._db.executemany(
                    "INSERT OR REPLACE INTO outcomes (field, value, status, error, run, request_id, accepted_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    rows,
                )
        except sqlite3.Error as exc:
            raise UsageError(f"--journal: cannot write {self._path!r} any more: {exc}") from None

    def close(self) -> None:
        """Close the database."""
        self._db.close()
