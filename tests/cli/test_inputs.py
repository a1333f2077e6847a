"""What the command reads: value files as people have them (encodings, byte-order marks, stray CSV
rows, empty exports), run as a real process against FakeBox on 127.0.0.1."""

from __future__ import annotations

import codecs
import json
from pathlib import Path

import pytest

from box_sessions.testing import FakeBox

from ..support.cli_process import DEV, run, write


async def test_a_csv_row_given_as_a_login_is_invalid_input_and_not_sent(tmp_path: Path) -> None:
    """A CSV row in a logins file (``30003,Carol,carol@example.com``) is reported invalid and never sent."""
    fake = FakeBox()
    logins = write(tmp_path / "logins.txt", ["alice@example.com", "30003,Carol,carol@example.com"])
    report = tmp_path / "report.jsonl"
    async with fake.serve() as base_url:
        code, out, _ = await run(
            ["terminate", "--user-logins", logins, "--report", str(report), "--base-url", base_url], DEV
        )
    assert code == 1
    assert fake.terminated["user_logins"] == ["alice@example.com"]
    rows = {row["value"]: row for row in map(json.loads, report.read_text().splitlines())}
    assert rows["30003,Carol,carol@example.com"]["status"] == "failed"
    assert "comma" in rows["30003,Carol,carol@example.com"]["error"]
    assert "1 invalid input" in out


async def test_a_byte_order_mark_is_not_part_of_the_first_value(tmp_path: Path) -> None:
    """A value file saved by a spreadsheet (UTF-8 with a byte-order mark) terminates its first id too."""
    fake = FakeBox()
    ids = tmp_path / "ids.txt"
    ids.write_bytes(codecs.BOM_UTF8 + b"101\r\n102\r\n")
    async with fake.serve() as base_url:
        code, out, err = await run(["terminate", "--user-ids", str(ids), "--base-url", base_url], DEV)
    assert code == 0, err
    assert fake.terminated["user_ids"] == ["101", "102"]
    assert "none failed" in out


async def test_a_file_in_another_encoding_is_a_usage_error_naming_the_line(tmp_path: Path) -> None:
    """A Latin-1 logins file exits 2 with one sentence naming the file and the line; nothing is sent."""
    fake = FakeBox()
    logins = tmp_path / "logins.txt"
    logins.write_bytes("alice@example.com\nrené@example.com\n".encode("latin-1"))
    async with fake.serve() as base_url:
        code, out, err = await run(["terminate", "--user-logins", str(logins), "--base-url", base_url], DEV)
    assert code == 2
    assert f"{logins}: line 2 is not UTF-8" in err
    assert "Traceback" not in err
    assert len(err.splitlines()) == 1
    assert out == ""
    assert fake.requests == []


@pytest.mark.parametrize("journal", [False, True], ids=["streamed", "with-journal"])
async def test_a_line_of_stdin_that_is_not_utf8_is_invalid_input(tmp_path: Path, journal: bool) -> None:
    """A stdin line that is not UTF-8 is an invalid input of the report; the other lines are terminated."""
    fake = FakeBox()
    report = tmp_path / "report.jsonl"
    args = ["terminate", "--user-logins", "-", "--report", str(report)]
    args += ["--journal", str(tmp_path / "journal.sqlite")] if journal else []
    async with fake.serve() as base_url:
        code, out, err = await run(
            [*args, "--base-url", base_url], DEV, stdin="a@example.com\nrené@example.com\n".encode("latin-1")
        )
    assert code == 1, err
    assert "Traceback" not in err
    assert fake.terminated["user_logins"] == ["a@example.com"]
    rows = [json.loads(line) for line in report.read_text().splitlines()]
    failed = [row for row in rows if row["status"] == "failed"]
    assert len(failed) == 1
    assert "line 2 of stdin is not UTF-8" in failed[0]["value"]
    assert "1 invalid input" in out


@pytest.mark.parametrize(
    ("content", "extra"),
    [
        pytest.param("# incident 42: nobody yet\n\n", [], id="comments-only"),
        pytest.param("", ["--bulk-file"], id="bulk-header-only"),
    ],
)
async def test_inputs_without_a_value_are_a_usage_error(tmp_path: Path, content: str, extra: list[str]) -> None:
    """An export with only comments or a header exits 2 before anything is sent: it must not look like success."""
    fake = FakeBox()
    path = tmp_path / ("users.csv" if extra else "ids.txt")
    path.write_text(content or "user_ids,name\n", encoding="utf-8")
    async with fake.serve() as base_url:
        option = extra or ["--user-ids"]
        code, out, err = await run(["terminate", *option, str(path), "--base-url", base_url], DEV)
    assert code == 2
    assert "no value to terminate" in err
    assert "--allow-empty" in err
    assert out == ""
    assert fake.requests == []


async def test_allow_empty_lets_an_empty_job_succeed(tmp_path: Path) -> None:
    """--allow-empty: inputs without a value exit 0 and send nothing."""
    fake = FakeBox()
    ids = write(tmp_path / "ids.txt", ["# nobody"])
    async with fake.serve() as base_url:
        code, out, err = await run(["terminate", "--user-ids", ids, "--allow-empty", "--base-url", base_url], DEV)
    assert code == 0, err
    assert out.startswith("Terminated 0 of 0 distinct inputs")
    assert fake.requests == []


async def test_empty_stdin_is_a_usage_error() -> None:
    """Stdin that streams no value exits 2, and nothing is sent."""
    fake = FakeBox()
    async with fake.serve() as base_url:
        code, _, err = await run(["terminate", "--user-ids", "-", "--base-url", base_url], DEV, stdin="# none\n")
    assert code == 2
    assert "stdin held no value" in err
    assert fake.requests == []


async def test_box_cli_csv_bulk_file_is_read_unchanged_and_batched(tmp_path: Path) -> None:
    """A Box CLI bulk CSV (byte-order mark, Box CLI's column spellings, other columns, empty cells) is batched."""
    fake = FakeBox()
    bulk = tmp_path / "terminate.csv"
    rows = [
        "User-Ids,user_logins,notes,user_ids_2",
        "101,a@example.com,left in March,201",
        "102,,,",
        ',b@example.com,"said ""bye""",202',
    ]
    bulk.write_bytes(codecs.BOM_UTF8 + "\r\n".join(rows).encode() + b"\r\n")
    async with fake.serve() as base_url:
        code, out, err = await run(["terminate", "--bulk-file-path", str(bulk), "--base-url", base_url], DEV)
    assert code == 0, err
    assert sorted(fake.terminated["user_ids"]) == ["101", "102", "201", "202"]
    assert fake.terminated["user_logins"] == ["a@example.com", "b@example.com"]
    assert len(fake.api_requests()) == 1  # Box CLI sends one request a row
    assert "Terminated 6 of 6 distinct inputs" in out


@pytest.mark.parametrize(
    "document",
    [
        pytest.param([{"group_ids": "7"}, {"groupIds": 8, "name": "x"}, {"group_ids": ["9", "10"]}], id="array"),
        pytest.param(
            {"entries": [{"group-ids": "7"}, {"group_ids_1": "8", "group_ids_2": None}, {"GroupIds": ["9", "10"]}]},
            id="entries",
        ),
    ],
)
async def test_box_cli_json_bulk_file_is_read_unchanged(tmp_path: Path, document: object) -> None:
    """A Box CLI bulk JSON file, an array of objects or {"entries": [...]}, is read with Box CLI's key names."""
    fake = FakeBox()
    bulk = tmp_path / "groups.json"
    bulk.write_text(json.dumps(document), encoding="utf-8")
    async with fake.serve() as base_url:
        code, _, err = await run(["terminate", "--bulk-file", str(bulk), "--base-url", base_url], DEV)
    assert code == 0, err
    assert sorted(fake.terminated["group_ids"], key=int) == ["7", "8", "9", "10"]


ADMIN_EXPORT = [
    "Name,Email,Status,Last Login",
    "Alice,alice@example.com,active,2024-05-01",
    "Bob,,inactive,",
    '"Carol, Jr.",carol@example.com,active,2024-05-02',
]


async def test_column_reads_a_field_from_a_named_column_of_another_export(tmp_path: Path) -> None:
    """--column user_logins=Email reads an admin console's user export; other columns are ignored."""
    fake = FakeBox()
    export = write(tmp_path / "users.csv", ADMIN_EXPORT)
    async with fake.serve() as base_url:
        code, _, err = await run(
            ["terminate", "--bulk-file", export, "--column", "user_logins=Email", "--base-url", base_url], DEV
        )
    assert code == 0, err
    assert fake.terminated["user_logins"] == ["alice@example.com", "carol@example.com"]
    assert fake.terminated["user_ids"] == []


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        pytest.param(["--column", "user_logins=E-mail"], "has no column 'E-mail'", id="missing-header"),
        pytest.param([], "no column of", id="no-input-column"),
    ],
)
async def test_a_column_that_is_not_there_is_a_usage_error_naming_the_headers(
    tmp_path: Path, extra: list[str], message: str
) -> None:
    """A bulk file without the column asked for (or any input column) exits 2 and lists the headers it has."""
    export = write(tmp_path / "users.csv", ADMIN_EXPORT)
    code, out, err = await run(["terminate", "--bulk-file", export, *extra, "--base-url", "http://127.0.0.1:9"], DEV)
    assert code == 2
    assert message in err
    assert "'Name', 'Email', 'Status', 'Last Login'" in err
    assert "Traceback" not in err
    assert out == ""


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        pytest.param("ids.json", b'[{"user_ids": "1"}', "is not valid JSON", id="bad-json"),
        pytest.param("ids.json", b'{"user_ids": "1"}', "array of objects", id="json-object"),
        pytest.param("ids.csv", "user_ids\n1\nré\n".encode("latin-1"), "line 3 is not UTF-8", id="latin-1-csv"),
    ],
)
async def test_a_bulk_file_that_cannot_be_read_is_a_usage_error(
    tmp_path: Path, name: str, content: bytes, message: str
) -> None:
    """A bulk file that is not valid JSON, not Box CLI's shape or not UTF-8 exits 2 with one sentence."""
    bulk = tmp_path / name
    bulk.write_bytes(content)
    code, _, err = await run(["terminate", "--bulk-file", str(bulk), "--base-url", "http://127.0.0.1:9"], DEV)
    assert code == 2
    assert message in err
    assert "Traceback" not in err


async def test_an_excel_workbook_given_as_a_bulk_file_is_named_as_such(tmp_path: Path) -> None:
    """An .xlsx workbook where a CSV is expected exits 2 asking for CSV UTF-8, before anything is sent."""
    workbook = tmp_path / "users.xlsx"
    workbook.write_bytes(b"PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00\xa3\xff" + bytes(range(256)))
    code, _, err = await run(["terminate", "--bulk-file", str(workbook), "--base-url", "http://127.0.0.1:9"], DEV)
    assert code == 2
    assert (
        err
        == f"box-sessions: --bulk-file: {workbook} is a zip file (an Excel workbook?), not text; save it as CSV UTF-8\n"
    )
