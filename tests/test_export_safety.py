"""Exports that are safe to open: CSV cells a spreadsheet would run as formulas arrive as text, and
XLSX writes zoned timestamps in the workspace's zone instead of failing.

Writer-level tests pin the bytes; the demo province's gateway (API and CLI) shows the same through
the real query path, with a real ``TIMESTAMPTZ`` column from the engine.
"""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st
from python_calamine import CalamineWorkbook
from typer.testing import CliRunner

from gateway_support import demo_users
from pubdata.api.app import create_app
from pubdata.cli.main import app as cli
from pubdata.clock import Clock
from pubdata.demo.build import build_demo
from pubdata.demo.world import PARK_CHECK_PURPOSE
from pubdata.gateway.csv_cells import FORMULA_STARTS, neutralise_text
from pubdata.gateway.export import FORMATS, UTF8_BOM, ExportJob
from pubdata.workspace import Workspace

#: Text a spreadsheet would evaluate, and what the CSV for Excel must carry instead.
HOSTILE = {
    '=HYPERLINK("http://x","点我")': '\'=HYPERLINK("http://x","点我")',
    "+1+1": "'+1+1",
    "-2+3": "'-2+3",
    "@SUM(A1:A9)": "'@SUM(A1:A9)",
    "\t=1": "'\t=1",
    "\r=1": "'\r=1",
}
#: Text that is not a formula, unchanged.
ORDINARY = ["张三", "a=b", "3.14", "330402198001011234", "", "'already quoted"]
SOCIAL = "hrss_social_insurance"
APP = "jx_park_workers"


def _table() -> pa.Table:
    texts = [*HOSTILE, *ORDINARY, None]
    size = len(texts)
    return pa.table(
        {
            "备注": pa.array(texts, pa.string()),
            "视图": pa.array(texts, pa.string_view()),
            "n": pa.array([-5] * (size - 1) + [None], pa.int64()),
            "x": pa.array([-1.5] * size, pa.float64()),
            "金额": pa.array([decimal.Decimal("-4200.50")] * size, pa.decimal128(12, 2)),
            "日期": pa.array([dt.date(2026, 1, 2)] * size, pa.date32()),
            "=cmd|' /C calc'!A0": pa.array(["ok"] * size),
        }
    )


def _export(name: str, table: pa.Table, **options: Any) -> bytes:
    job = ExportJob(table.schema, table.to_batches(max_chunksize=4), **options)
    return b"".join(FORMATS[name].write(job))


def _read_csv(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))


def test_csv_for_excel_neutralises_formula_text_and_keeps_every_other_value() -> None:
    data = _export("csv", _table())
    assert data.startswith(UTF8_BOM)
    assert b"\r\n" in data and data.count(b"\n") == data.count(b"\r\n")
    rows = _read_csv(data)
    assert rows[0] == ["备注", "视图", "n", "x", "金额", "日期", "'=cmd|' /C calc'!A0"]
    body = rows[1:]
    expected = [*HOSTILE.values(), *ORDINARY, ""]
    assert [r[0] for r in body] == expected
    assert [r[1] for r in body] == expected  # string views too
    # Numbers stay numbers: a negative value of a numeric column is not text and is not touched.
    assert {r[2] for r in body[:-1]} == {"-5"} and body[-1][2] == ""
    assert {r[3] for r in body} == {"-1.5"} and {r[4] for r in body} == {"-4200.50"}
    assert {r[5] for r in body} == {"2026-01-02"}
    # Numeric cells are written unquoted, so a spreadsheet reads them as numbers.
    assert b",-5," in data and b'"-5"' not in data


def test_csv_raw_writes_values_as_stored_for_programs() -> None:
    data = _export("csv", _table(), csv_raw=True)
    assert not data.startswith(UTF8_BOM) and b"\r\n" not in data.replace(b"\r=1", b"")
    rows = _read_csv(data)
    assert rows[0][-1] == "=cmd|' /C calc'!A0"
    assert [r[0] for r in rows[1:]] == [*HOSTILE, *ORDINARY, ""]
    assert _export("csv", _table(), csv_raw=True, bom=True).startswith(UTF8_BOM)
    assert not _export("csv", _table(), bom=False).startswith(UTF8_BOM)


def test_neutralising_is_vectorised_per_column_not_per_cell() -> None:
    """Dictionary-encoded text is neutralised in its dictionary; a batch without hits is returned as is."""
    coded = pa.array(["=1", "x", "=1", None]).dictionary_encode()
    table = pa.table({"c": coded, "n": [1, 2, 3, 4]})
    rows = _read_csv(_export("csv", table))
    assert [r[0] for r in rows[1:]] == ["'=1", "x", "'=1", ""]
    plain = pa.array(["a", "b"])
    assert neutralise_text(plain) is plain


_cells = st.none() | st.text(st.sampled_from("=+-@\t\r'a张 1"), max_size=6)


@settings(max_examples=60, deadline=None)
@given(
    values=st.lists(_cells, max_size=30),
    cut=st.integers(0, 30),
    kind=st.sampled_from([pa.string(), pa.large_string(), pa.string_view()]),
)
def test_neutralising_agrees_with_the_rule_cell_by_cell(
    values: list[str | None], cut: int, kind: pa.DataType
) -> None:
    """Whatever the text layout or slicing: a mark before exactly the cells that start with a
    formula character, every other cell (and null) unchanged."""
    whole = pa.array(["=x", *values, "y"], kind).slice(1, len(values))
    for part in (whole.slice(0, cut), whole.slice(cut)):
        expected = [v if v is None or not v.startswith(FORMULA_STARTS) else "'" + v for v in part.to_pylist()]
        assert neutralise_text(part).to_pylist() == expected


def test_xlsx_writes_zoned_timestamps_as_shanghai_wall_time() -> None:
    moments = [dt.datetime(2026, 1, 1, 16, 30, tzinfo=dt.UTC), None]
    table = pa.table(
        {
            "办结时间": pa.array(moments, pa.timestamp("us", tz="UTC")),
            "本地时间": pa.array([dt.datetime(2026, 1, 2, 8, 0), None], pa.timestamp("us")),
        }
    )
    sheet = CalamineWorkbook.from_filelike(io.BytesIO(_export("xlsx", table))).get_sheet_by_index(0)
    rows = sheet.to_python()
    assert rows[0] == ["办结时间", "本地时间"]
    assert rows[1] == [dt.datetime(2026, 1, 2, 0, 30), dt.datetime(2026, 1, 2, 8, 0)]


# --- through the gateway of the demo province ---------------------------------------------------


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory, pinned_clock: Clock) -> Path:
    path = tmp_path_factory.mktemp("export-safety") / "home"
    build_demo(path, scale=0.02, clock=pinned_clock)
    return path


@pytest.fixture(scope="module")
def client(home: Path, pinned_clock: Clock) -> Iterator[TestClient]:
    workspace = Workspace.open(home, clock=pinned_clock)
    with TestClient(create_app(workspace)) as test_client:
        yield test_client
    workspace.engine.dispose()


@pytest.fixture(scope="module")
def token(home: Path) -> str:
    return str(demo_users(home)["jx_zgh"]["token"])


def _post(client: TestClient, token: str, **body: Any) -> Any:
    body = {"purpose": PARK_CHECK_PURPOSE, "application": APP, **body}
    return client.post("/api/v1/query", json=body, headers={"Authorization": f"Bearer {token}"})


HOSTILE_SQL = (
    "SELECT '=1+1' AS \"=formula\", '@cmd' AS note, -3 AS n, division_code "
    f"FROM {SOCIAL} ORDER BY division_code LIMIT 2"
)


def test_the_gateway_csv_is_for_excel_unless_raw_is_asked(client: TestClient, token: str) -> None:
    answer = _post(client, token, sql=HOSTILE_SQL, format="csv")
    assert answer.status_code == 200, answer.text
    assert answer.content.startswith(UTF8_BOM)
    rows = _read_csv(answer.content)
    assert rows[0][:4] == ["'=formula", "note", "n", "division_code"]
    assert [r[:3] for r in rows[1:3]] == [["'=1+1", "'@cmd", "-3"]] * 2
    assert all(r[3].startswith("3304") for r in rows[1:3])
    raw = _post(client, token, sql=HOSTILE_SQL, format="csv", csv_raw=True)
    assert raw.status_code == 200, raw.text
    assert not raw.content.startswith(UTF8_BOM) and b"\r\n" not in raw.content
    assert [r[:3] for r in _read_csv(raw.content)[1:3]] == [["=1+1", "@cmd", "-3"]] * 2


ZONED_SQL = (
    "SELECT TIMESTAMPTZ '2026-01-01 16:30:00+00' AS 办结时间, division_code "
    f"FROM {SOCIAL} ORDER BY division_code LIMIT 1"
)


def test_the_gateway_xlsx_holds_a_timestamptz_column(client: TestClient, token: str) -> None:
    answer = _post(client, token, sql=ZONED_SQL, format="xlsx")
    assert answer.status_code == 200, answer.text
    rows = CalamineWorkbook.from_filelike(io.BytesIO(answer.content)).get_sheet_by_index(0).to_python()
    assert rows[0][0] == "办结时间"
    assert rows[1][0] == dt.datetime(2026, 1, 2, 0, 30)


def test_the_query_command_writes_timestamptz_to_xlsx_and_raw_csv(home: Path, tmp_path: Path) -> None:
    base = ["query", "--home", str(home), "--as", "jx_zgh", "--purpose", PARK_CHECK_PURPOSE]
    base += ["--application", APP]
    out = tmp_path / "办结.xlsx"
    result = CliRunner().invoke(cli, [*base, ZONED_SQL, "--format", "xlsx", "--out", str(out)])
    assert result.exit_code == 0, result.output
    rows = CalamineWorkbook.from_path(str(out)).get_sheet_by_index(0).to_python()
    assert rows[1][0] == dt.datetime(2026, 1, 2, 0, 30)
    raw = tmp_path / "raw.csv"
    result = CliRunner().invoke(cli, [*base, HOSTILE_SQL, "--format", "csv", "--csv-raw", "--out", str(raw)])
    assert result.exit_code == 0, result.output
    assert _read_csv(raw.read_bytes())[1][:2] == ["=1+1", "@cmd"]
    excel = tmp_path / "excel.csv"
    result = CliRunner().invoke(cli, [*base, HOSTILE_SQL, "--format", "csv", "--out", str(excel)])
    assert result.exit_code == 0, result.output
    assert excel.read_bytes().startswith(UTF8_BOM)
    assert _read_csv(excel.read_bytes())[1][:2] == ["'=1+1", "'@cmd"]
    assert json.loads(json.dumps(rows[0][0])) == "办结时间"
