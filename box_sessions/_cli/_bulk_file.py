"""Bulk files: Box CLI's ``--bulk-file-path`` files read unchanged, and named columns of other exports.

A bulk file is JSON when its name ends in ``.json`` (an array of objects, or ``{"entries": [...]}``),
CSV with a header row otherwise. Column and key names are matched as Box CLI matches them: a
trailing ``_<digits>`` dropped (so a column can repeat), lower-cased, ``-`` and ``_`` removed, so
``user_ids``, ``User-Ids`` and ``user_ids_2`` all feed ``user_ids``; other columns are ignored.
With ``--column FIELD=HEADER`` only the named columns are read, by their exact header. Empty cells
are skipped. Box CLI sends one request per row; the job batches the values of every row.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from .._termination import Field
from ._exit import UsageError

__all__ = ["FIELD_OF_NAME", "bulk_values", "normalised_name", "parse_columns"]

#: Input fields by their normalised names (``--user-ids`` is Box CLI's flag, ``userids`` its key).
FIELD_OF_NAME: Mapping[str, Field] = {"userids": "user_ids", "userlogins": "user_logins", "groupids": "group_ids"}
_REPEAT_SUFFIX = re.compile(r"_\d+$")
#: How many header names a message lists before it says "...".
_SHOWN_HEADERS = 20


def normalised_name(name: str) -> str:
    """A column or key name as Box CLI matches it: ``User-Ids_2`` -> ``userids``."""
    return _REPEAT_SUFFIX.sub("", name.strip()).lower().replace("-", "").replace("_", "")


def parse_columns(specs: Sequence[str]) -> dict[Field, list[str]]:
    """The ``--column FIELD=HEADER`` options: the headers each field is read from.

    Raises:
        UsageError: a spec without ``=``, an unknown field or an empty header.
    """
    columns: dict[Field, list[str]] = {}
    for spec in specs:
        name, sep, header = spec.partition("=")
        field = FIELD_OF_NAME.get(normalised_name(name))
        if not sep or field is None or not header.strip():
            raise UsageError(
                f"--column: expected FIELD=HEADER with FIELD one of user_ids, user_logins, group_ids, got {spec!r}"
            )
        columns.setdefault(field, []).append(header.strip())
    return columns


def _shown(headers: Iterable[str]) -> str:
    names = list(dict.fromkeys(headers))
    shown = ", ".join(repr(h) for h in names[:_SHOWN_HEADERS])
    return (shown + ", ...") if len(names) > _SHOWN_HEADERS else (shown or "none")


def _pick(path: str, headers: Sequence[str], columns: Mapping[Field, list[str]]) -> list[tuple[int, Field]]:
    """Which column feeds which field: by ``--column``, else by Box CLI's names."""
    stripped = [h.strip() for h in headers]
    if columns:
        picked = []
        for field, names in columns.items():
            for name in names:
                if name not in stripped:
                    raise UsageError(
                        f"--column {field}={name}: {path} has no column {name!r}; its columns are {_shown(stripped)}"
                    )
                picked += [(i, field) for i, h in enumerate(stripped) if h == name]
        return picked
    picked = [
        (i, FIELD_OF_NAME[normalised_name(h)]) for i, h in enumerate(stripped) if normalised_name(h) in FIELD_OF_NAME
    ]
    if not picked:
        raise UsageError(
            f"--bulk-file: no column of {path} names an input (user_ids, user_logins or group_ids, as in Box CLI's "
            f"bulk files); its columns are {_shown(stripped)}; name one with --column FIELD=HEADER"
        )
    return picked


def _cell(value: object) -> object | None:
    """A cell's value: trimmed text or a whole number as text, else as given (reported invalid); None if empty."""
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


def _csv_values(path: str, lines: Iterable[str], columns: Mapping[Field, list[str]]) -> Iterator[tuple[Field, object]]:
    reader = csv.reader(lines)
    try:
        header = next(reader, None)
        if header is None:
            return  # an empty file has no values; the caller decides whether that is allowed
        picked = _pick(path, header, columns)
        for row in reader:
            for index, field in picked:
                value = _cell(row[index]) if index < len(row) else None
                if value is not None:
                    yield field, value
    except csv.Error as exc:
        raise UsageError(f"--bulk-file: {path} line {reader.line_num} is not valid CSV: {exc}") from None


def _flatten(entry: Mapping[str, Any], path: str) -> Iterator[tuple[str, object]]:
    """An entry's ``(key, value)`` pairs as Box CLI reads them: lists give one pair a value, lists of
    objects are entries of their own, an object one level down is read as ``key`` + ``nested key``."""
    for key, value in entry.items():
        if isinstance(value, dict):
            for nested, inner in value.items():
                yield f"{key}{nested}", inner
        elif isinstance(value, list):
            if all(isinstance(v, dict) for v in value):
                for inner_entry in value:
                    yield from _flatten(inner_entry, path)
            elif any(isinstance(v, dict) for v in value):
                raise UsageError(f"--bulk-file: {path}: the list under {key!r} mixes objects and values")
            else:
                yield from ((key, v) for v in value)
        else:
            yield key, value


def _json_values(path: str, lines: Iterable[str], columns: Mapping[Field, list[str]]) -> Iterator[tuple[Field, object]]:
    try:
        data = json.loads("".join(lines))
    except json.JSONDecodeError as exc:
        raise UsageError(f"--bulk-file: {path} is not valid JSON: {exc.msg} at line {exc.lineno}") from None
    entries = data["entries"] if isinstance(data, dict) and "entries" in data else data
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise UsageError(f'--bulk-file: {path} must hold an array of objects, or {{"entries": [...]}}')
    pairs = [pair for entry in entries for pair in _flatten(entry, path)]
    if columns:
        keys = [key for key, _ in pairs]
        picked = {name: field for field, names in columns.items() for name in names}
        for name, wanted in picked.items():
            if name not in keys:
                raise UsageError(f"--column {wanted}={name}: {path} has no key {name!r}; its keys are {_shown(keys)}")
        chosen = ((picked.get(key), value) for key, value in pairs)
    else:
        chosen = ((FIELD_OF_NAME.get(normalised_name(key)), value) for key, value in pairs)
        if entries and not any(normalised_name(key) in FIELD_OF_NAME for key, _ in pairs):
            raise UsageError(
                f"--bulk-file: no key of {path} names an input (user_ids, user_logins or group_ids, as in Box CLI's "
                f"bulk files); its keys are {_shown(k for k, _ in pairs)}; name one with --column FIELD=HEADER"
            )
    for field, value in chosen:
        cell = None if field is None else _cell(value)
        if field is not None and cell is not None:
            yield field, cell


def bulk_values(path: str, lines: Iterable[str], columns: Mapping[Field, list[str]]) -> Iterator[tuple[Field, object]]:
    """The ``(field, value)`` pairs of a bulk file, in file order.

    Args:
        path: The file's name: ``.json`` is read as JSON, anything else as CSV with a header row.
        lines: Its lines, decoded.
        columns: The ``--column`` choices; empty to match columns by Box CLI's names.

    Raises:
        UsageError: the file is not valid CSV or JSON, has no column that names an input, or lacks
            a column ``--column`` names; the message lists the columns it has.
    """
    if path.lower().endswith(".json"):
        return _json_values(path, lines, columns)
    return _csv_values(path, lines, columns)
