"""Answers that parse and types that fit: strict JSON (no NaN, exact decimals), nested values in CSV
and spreadsheets, and types a format cannot carry refused before the first byte."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient
from httpx import Response
from python_calamine import CalamineWorkbook

from gateway_support import PARK_APP, PARK_PURPOSE, SOCIAL, bearer, demo_users
from pubdata import audit
from pubdata.api.app import create_app
from pubdata.clock import Clock
from pubdata.db.models import AuditEvent
from pubdata.demo.build import build_demo
from pubdata.gateway.export import FORMATS, ExportJob
from pubdata.gateway.export_types import UnsupportedColumn
from pubdata.gateway.quality_flags import any_flagged
from pubdata.identifiers import make_id_number
from pubdata.ingest.pipeline import ingest_file
from pubdata.store.schema import ROW_FLAGS
from pubdata.workspace import Workspace

NAN, INF = float("nan"), float("inf")


def refuse_constant(name: str) -> Any:
    raise ValueError(f"not JSON: {name}")


def strict(text: str) -> Any:
    """`json.loads` that refuses NaN, Infinity and -Infinity, as JavaScript and Go do."""
    return json.loads(text, parse_constant=refuse_constant)


ODD = pa.table(
    {
        "比率": pa.array([0.5, NAN, INF, -INF, None], pa.float64()),
        "f32": pa.array([NAN, 1.5, None, -INF, 2.0], pa.float32()),
        "金额": pa.array(
            [Decimal("4200.50"), Decimal("0.10"), None, Decimal("-3.00"), Decimal("12345678901234567890.12")],
            pa.decimal128(38, 2),
        ),
        "readings": pa.array([[1.0, NAN], None, [], [INF], [2.5]], pa.list_(pa.float64())),
        "detail": pa.array(
            [
                {"x": NAN, "d": Decimal("1.5")},
                None,
                {"x": 1.0, "d": None},
                {"x": -INF, "d": Decimal("0")},
                None,
            ],
            pa.struct([("x", pa.float64()), ("d", pa.decimal128(5, 1))]),
        ),
    }
)
EXPECTED_ROWS = [
    [0.5, None, "4200.50", [1.0, None], {"x": None, "d": "1.5"}],
    [None, 1.5, "0.10", None, None],
    [None, None, None, [], {"x": 1.0, "d": None}],
    [None, None, "-3.00", [None], {"x": None, "d": "0.0"}],
    [None, 2.0, "12345678901234567890.12", [2.5], None],
]


def export(name: str, table: pa.Table = ODD, **options: Any) -> bytes:
    job = ExportJob(table.schema, table.to_batches(max_chunksize=2), **options)
    return b"".join(FORMATS[name].write(job))


def test_json_has_no_nan_or_infinity_and_decimals_are_exact_strings() -> None:
    answer = strict(export("json").decode("utf-8"))
    assert answer["rows"] == EXPECTED_ROWS
    types = {c["name"]: c["type"] for c in answer["columns"]}
    assert types["金额"] == "decimal128(38, 2)"  # the schema says the strings are decimals


def test_jsonl_lines_parse_strictly_with_the_same_values() -> None:
    lines = export("jsonl").decode("utf-8").splitlines()
    assert [list(strict(line).values()) for line in lines] == EXPECTED_ROWS


def test_csv_writes_lists_and_structs_as_json_text() -> None:
    rows = list(csv.reader(io.StringIO(export("csv").decode("utf-8-sig"))))
    assert rows[0] == ["比率", "f32", "金额", "readings", "detail"]
    assert strict(rows[1][3]) == [1.0, None] and strict(rows[1][4]) == {"x": None, "d": "1.5"}
    assert rows[2][3] == rows[2][4] == "" and rows[1][2] == "4200.50"


def test_a_spreadsheet_shows_nan_as_an_empty_cell_and_nested_values_as_json_text() -> None:
    sheet = CalamineWorkbook.from_filelike(io.BytesIO(export("xlsx"))).get_sheet_by_index(0).to_python()
    assert sheet[1][0] == 0.5 and sheet[2][0] == "" and sheet[3][0] == ""
    assert strict(str(sheet[1][3])) == [1.0, None]


SPAN = pa.table({"span": pa.array([(1, 2, 3_000)], pa.month_day_nano_interval()), "n": [1]})
BLOB = pa.table({"raw": pa.array([b"\xab\x00"], pa.binary())})


@pytest.mark.parametrize(
    ("name", "table", "column", "what"),
    [
        ("csv", SPAN, "span", "an interval"),
        ("xlsx", SPAN, "span", "an interval"),
        ("parquet", SPAN, "span", "an interval"),
        ("csv", BLOB, "raw", "binary data"),
        ("xlsx", BLOB, "raw", "binary data"),
    ],
)
def test_a_type_the_format_cannot_carry_is_refused_by_its_schema(
    name: str, table: pa.Table, column: str, what: str
) -> None:
    with pytest.raises(UnsupportedColumn) as refused:
        FORMATS[name].check(table.schema)
    assert f"column {column} holds {what}, which the {name} format cannot carry" in str(refused.value)


@pytest.mark.parametrize("name", ["json", "jsonl", "arrow"])
def test_json_and_arrow_carry_intervals_and_binary(name: str) -> None:
    for table in (SPAN, BLOB):
        FORMATS[name].check(table.schema)
        assert export(name, table)


def test_parquet_carries_nested_values_but_not_an_interval_inside_them() -> None:
    FORMATS["parquet"].check(ODD.schema)
    inside = pa.schema([("spans", pa.list_(pa.month_day_nano_interval()))])
    with pytest.raises(UnsupportedColumn, match="column spans holds an interval"):
        FORMATS["parquet"].check(inside)


def test_timestamps_and_dates_are_unchanged_by_the_json_rules() -> None:
    table = pa.table({"at": pa.array([dt.datetime(2024, 5, 1, 8, 30)], pa.timestamp("us")), "n": [7]})
    assert strict(export("jsonl", table).decode()) == {"at": "2024-05-01 08:30:00", "n": 7}


# --- over HTTP, on the demo province ------------------------------------------------------------


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory, pinned_clock: Clock) -> Path:
    path = tmp_path_factory.mktemp("serving") / "home"
    build_demo(path, scale=0.02, clock=pinned_clock)
    return path


@pytest.fixture(scope="module")
def workspace(home: Path, pinned_clock: Clock) -> Workspace:
    return Workspace.open(home, clock=pinned_clock)


@pytest.fixture(scope="module")
def client(workspace: Workspace) -> Iterator[TestClient]:
    with TestClient(create_app(workspace)) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def token(home: Path) -> str:
    return str(demo_users(home)["jx_zgh"]["token"])


def ask(client: TestClient, token: str, sql: str, **body: Any) -> Response:
    sent = {"sql": sql, "purpose": PARK_PURPOSE, "application": PARK_APP, **body}
    answer: Response = client.post("/api/v1/query", json=sent, headers=bearer(token))
    return answer


def last_event(workspace: Workspace) -> AuditEvent:
    with workspace.sessions() as session:
        return audit.list_events(session, None, limit=1)[-1]


def test_json_answers_over_http_parse_strictly(client: TestClient, token: str) -> None:
    sql = (
        "SELECT CAST('nan' AS DOUBLE) AS x, CAST('-inf' AS DOUBLE) AS y, CAST(1.10 AS DECIMAL(10, 2)) AS d, "
        f"count(*) AS n FROM {SOCIAL}"
    )
    answer = ask(client, token, sql)
    assert answer.status_code == 200, answer.text
    body = strict(answer.text)
    assert body["rows"][0][:3] == [None, None, "1.10"] and body["rows"][0][3] > 0
    lines = ask(client, token, sql, format="jsonl")
    assert lines.status_code == 200
    assert [strict(line)["d"] for line in lines.text.splitlines()] == ["1.10"]


@pytest.mark.parametrize("name", ["csv", "parquet", "xlsx"])
def test_an_interval_is_refused_before_the_first_byte(
    client: TestClient, token: str, workspace: Workspace, name: str
) -> None:
    answer = ask(client, token, f"SELECT status, INTERVAL 3 DAY AS 间隔 FROM {SOCIAL} LIMIT 5", format=name)
    assert answer.status_code == 400, answer.text
    assert answer.headers["content-type"] == "application/json"
    refused = answer.json()
    assert refused["error"] == "unsupported_column"
    assert f"column 间隔 holds an interval, which the {name} format cannot carry" in refused["detail"]
    event = last_event(workspace)
    assert event.outcome == "refused" and event.detail["reason_kind"] == "format"


def test_a_list_column_in_csv_is_json_text(client: TestClient, token: str) -> None:
    answer = ask(client, token, f"SELECT [1, 2] AS pair, status FROM {SOCIAL} LIMIT 2", format="csv")
    assert answer.status_code == 200, answer.text
    rows = list(csv.reader(io.StringIO(answer.content.decode("utf-8-sig"))))
    assert rows[0][:2] == ["pair", "status"] and strict(rows[1][0]) == [1, 2]
    assert not any(line.startswith("# error") for line in answer.text.splitlines())


@pytest.fixture(scope="module")
def flagged_row(
    workspace: Workspace, tmp_path_factory: pytest.TempPathFactory, pinned_now: dt.datetime
) -> str:
    """One row kept with a quality flag (its employer's credit code fails its check character), in
    嘉兴 where the consumer's grant reaches; the insurance type names it."""
    person = make_id_number("330402", "19850101", 31)
    path = tmp_path_factory.mktemp("flagged") / "flagged.csv"
    header = "id_number,name,insurance_type,employer_uscc,employer_name,enrolled_on,status,division_code"
    row = f"{person},测试,质量抽检险,91330402MA2B000000,嘉兴测试有限公司,2024-01-02,参保缴费,330402"
    path.write_text(f"{header}\n{row}\n", "utf-8")
    result = ingest_file(workspace, SOCIAL, path, operator="tester", policy="flag", today=pinned_now.date())
    assert result.quality["rows_flagged"] == 1
    return "质量抽检险"


def test_a_row_flagged_at_ingest_is_served_with_its_mark(
    client: TestClient, token: str, flagged_row: str
) -> None:
    sql = f"SELECT insurance_type, division_code FROM {SOCIAL} WHERE status = '参保缴费'"
    listed = ask(client, token, sql)
    assert listed.status_code == 200, listed.text
    body = listed.json()
    names = [c["name"] for c in body["columns"]]
    assert "_quality_flagged" in names
    marks = {tuple(r[:2]): r[names.index("_quality_flagged")] for r in body["rows"]}
    assert marks[(flagged_row, "330402000000")] is True  # stored with 12 digits, too
    assert sum(marks.values()) == 1
    # SELECT * shows it, WHERE reads it, and aggregates can count it.
    star = ask(client, token, f"SELECT * FROM {SOCIAL} WHERE _quality_flagged", format="jsonl")
    assert [strict(line)["insurance_type"] for line in star.text.splitlines()] == [flagged_row]
    clean = ask(client, token, f"SELECT count(*) FILTER (WHERE NOT _quality_flagged) AS n FROM {SOCIAL}")
    assert clean.json()["rows"][0][0] > 0


def test_no_query_may_forge_the_quality_mark(client: TestClient, token: str) -> None:
    for sql in (
        f"SELECT status, true AS _quality_flagged FROM {SOCIAL}",
        f"WITH t(_quality_flagged) AS (SELECT 1) SELECT * FROM t, {SOCIAL}",
    ):
        answer = ask(client, token, sql)
        assert answer.status_code == 400 and answer.json()["error"] == "policy", sql
        assert "_quality_flagged is the platform's mark of rows flagged at ingest" in answer.json()["detail"]


def test_flagged_rows_are_found_from_the_parquet_footers(tmp_path: Path) -> None:
    def written(name: str, flags: list[str | None], **options: Any) -> str:
        path = tmp_path / name
        pq.write_table(
            pa.table({"n": range(len(flags)), ROW_FLAGS: pa.array(flags, pa.string())}), path, **options
        )
        return path.as_uri()

    clean = written("clean.parquet", [None, None])
    flagged = written("flagged.parquet", [None, "mobile: format"])
    unknown = written("bare.parquet", [None, None], write_statistics=False)
    assert not any_flagged([clean]) and any_flagged([clean, flagged])
    assert any_flagged([unknown])  # no statistics: the mark is shown rather than missing
