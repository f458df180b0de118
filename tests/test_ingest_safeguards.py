"""Ingest never loses or invents data: missing columns, mostly-bad files, empty replaces, repeated keys."""

from __future__ import annotations

import csv
from decimal import Decimal
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import xlsxwriter
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from pubdata.catalog.classes import WriteMode
from pubdata.cli.main import app
from pubdata.errors import InputError, PubdataError
from pubdata.identifiers import id_number_problem, make_id_number
from pubdata.ingest import formulas
from pubdata.ingest.normalise import clean_sql
from pubdata.ingest.pipeline import ingest_file
from pubdata.ingest.sorting import TooManyRejected
from pubdata.store.delta import ROW_FLAGS, DatasetStore
from pubdata.workspace import Workspace
from test_ingest_pipeline import TODAY, entry_of, make_entry, read

HEADER = "身份证号,姓名,缴费基数"
PEOPLE = [make_id_number("330106", f"1980010{d}", d) for d in range(1, 8)]


def people_csv(path: Path, header: str, rows: list[str]) -> Path:
    path.write_text("\n".join([header, *rows]) + "\n", "utf-8")
    return path


def full_rows(amount: int) -> list[str]:
    return [f"{p},人{i},{amount + i}" for i, p in enumerate(PEOPLE)]


def with_settings(workspace: Workspace, toml: str) -> Workspace:
    """The same workspace opened again after its settings file says `toml`."""
    workspace.settings_path.write_text(toml, "utf-8")
    return Workspace.open(workspace.home)


def stored_count(workspace: Workspace, code: str) -> int:
    return DatasetStore(workspace.data_dir, workspace.sessions).row_count(entry_of(workspace, code))


# --- 1. a column the file lacks -------------------------------------------------------------------


def test_an_upsert_without_a_column_keeps_the_stored_values(workspace: Workspace, tmp_path: Path) -> None:
    code = make_entry(workspace, key_fields=["id_number"])
    ingest_file(workspace, code, people_csv(tmp_path / "a.csv", HEADER, full_rows(100)), operator="c")
    # 缴费基数 is missing: before, every updated row lost its stored amount (NULL) with success.
    partial = people_csv(tmp_path / "b.csv", "身份证号,姓名", [f"{PEOPLE[0]},改名", f"{PEOPLE[6]},新人"])
    result = ingest_file(workspace, code, partial, operator="c", today=TODAY)
    rows = {r["id_number"]: r for r in read(workspace, code)}
    assert rows[PEOPLE[0]]["name"] == "改名" and rows[PEOPLE[0]]["base"] == Decimal(100)
    assert rows[PEOPLE[6]]["base"] == Decimal(106)  # stored, not in the file: untouched
    assert all(r["base"] is not None for r in rows.values())
    assert "field 'base' has no column in the file; its stored values are kept" in result.quality["notes"]


def test_a_header_with_a_bracketed_note_still_feeds_its_field(workspace: Workspace, tmp_path: Path) -> None:
    code = make_entry(workspace, key_fields=["id_number"])
    ingest_file(workspace, code, people_csv(tmp_path / "a.csv", HEADER, full_rows(100)), operator="c")
    noted_header = "【必填】身份证号,姓名 (选填),缴费基数（元）,手机号码(选填)"
    noted = people_csv(tmp_path / "b.csv", noted_header, [f"{PEOPLE[1]},乙,7,"])
    result = ingest_file(workspace, code, noted, operator="c", today=TODAY)
    assert result.quality["unmapped_columns"] == []
    rows = {r["id_number"]: r for r in read(workspace, code)}
    assert rows[PEOPLE[1]]["base"] == Decimal(7) and rows[PEOPLE[1]]["name"] == "乙"


def test_the_setting_refuse_makes_an_upsert_without_a_column_fail(
    workspace: Workspace, tmp_path: Path
) -> None:
    code = make_entry(workspace, key_fields=["id_number"])
    ingest_file(workspace, code, people_csv(tmp_path / "a.csv", HEADER, full_rows(100)), operator="c")
    workspace = with_settings(workspace, 'upsert_missing_columns = "refuse"\n')
    partial = people_csv(tmp_path / "b.csv", "身份证号,姓名", [f"{PEOPLE[0]},改名"])
    with pytest.raises(InputError, match="no column for mobile, division_code, enrol_date, base"):
        ingest_file(workspace, code, partial, operator="c", today=TODAY)
    assert read(workspace, code)[0]["base"] is not None


def test_a_missing_required_field_names_the_headers_and_the_nearest(
    workspace: Workspace, tmp_path: Path
) -> None:
    code = make_entry(workspace)
    typo = people_csv(tmp_path / "a.csv", "身份证号码号,姓名,缴费基数", full_rows(1))
    with pytest.raises(InputError) as refused:
        ingest_file(workspace, code, typo, operator="c", mode="append")
    message = str(refused.value)
    assert "required field id_number (身份证号) has no column" in message
    assert "the file's columns are 身份证号码号, 姓名, 缴费基数" in message
    assert "the nearest is '身份证号码号'" in message


# --- 2. mostly bad files, empty replaces ----------------------------------------------------------


def test_a_file_of_bad_rows_writes_nothing_and_keeps_its_quarantine(
    workspace: Workspace, tmp_path: Path
) -> None:
    code = make_entry(workspace)
    ingest_file(workspace, code, people_csv(tmp_path / "a.csv", HEADER, full_rows(1)), operator="c")
    bad = people_csv(tmp_path / "b.csv", HEADER, [f"33010{i},某,1" for i in range(20)])
    with pytest.raises(TooManyRejected) as refused:
        ingest_file(workspace, code, bad, operator="c", mode="replace", today=TODAY)
    assert "20 of 20 rows failed validation (100.0%), more than the 10.0% allowed" in str(refused.value)
    held = refused.value.report.quarantine_file
    assert held is not None and len(pq.read_table(workspace.home / held)) == 20
    assert stored_count(workspace, code) == len(PEOPLE)


def test_the_reject_ratio_is_a_setting_and_a_parameter(workspace: Workspace, tmp_path: Path) -> None:
    code = make_entry(workspace)
    rows = [*full_rows(1), "330101,坏,1"]  # 1 bad row in 8: 12.5 %
    path = people_csv(tmp_path / "a.csv", HEADER, rows)
    with pytest.raises(TooManyRejected):
        ingest_file(workspace, code, path, operator="c", today=TODAY)
    workspace = with_settings(workspace, "ingest_max_reject_ratio = 0.2\n")
    assert ingest_file(workspace, code, path, operator="c", today=TODAY).version.rows_written == 7
    with pytest.raises(TooManyRejected):
        ingest_file(workspace, code, path, operator="c", today=TODAY, max_reject_ratio=0.05)


def test_a_replace_by_no_rows_needs_allow_empty(workspace: Workspace, tmp_path: Path) -> None:
    code = make_entry(workspace)
    header = HEADER
    ingest_file(workspace, code, people_csv(tmp_path / "a.csv", header, full_rows(1)), operator="c")
    empty = people_csv(tmp_path / "empty.csv", header, [])
    with pytest.raises(InputError, match="leave the table empty"):
        ingest_file(workspace, code, empty, operator="c", mode="replace")
    assert stored_count(workspace, code) == len(PEOPLE)
    home = str(workspace.home)
    runner = CliRunner()
    command = ["ingest", code, str(empty), "--home", home, "--mode", "replace"]
    refused = runner.invoke(app, command)
    assert refused.exit_code != 0 and "✓" not in refused.output
    done = runner.invoke(app, [*command, "--allow-empty"])
    assert done.exit_code == 0, done.output
    assert stored_count(workspace, code) == 0


# --- 3. keys are unique in every mode -------------------------------------------------------------


@pytest.mark.parametrize("mode", [WriteMode.APPEND, WriteMode.REPLACE, WriteMode.UPSERT])
def test_a_key_repeated_in_the_file_is_refused_in_every_mode(
    workspace: Workspace, tmp_path: Path, mode: WriteMode
) -> None:
    code = make_entry(workspace, key_fields=["id_number"])
    rows = [*full_rows(1), f"{PEOPLE[2]},重复,5"]
    path = people_csv(tmp_path / "a.csv", HEADER, rows)
    with pytest.raises(InputError) as refused:
        ingest_file(workspace, code, path, operator="c", mode=mode, today=TODAY)
    assert "in rows 4 and 9" in str(refused.value) and refused.value.row == 4
    assert PEOPLE[2] not in str(refused.value)
    assert stored_count(workspace, code) == 0


def test_an_append_of_a_stored_key_is_refused(workspace: Workspace, tmp_path: Path) -> None:
    code = make_entry(workspace, key_fields=["id_number"])
    header = HEADER
    ingest_file(workspace, code, people_csv(tmp_path / "a.csv", header, full_rows(1)[:3]), operator="c")
    again = people_csv(tmp_path / "b.csv", header, full_rows(1)[2:])
    with pytest.raises(InputError) as refused:
        ingest_file(workspace, code, again, operator="c", mode="append", today=TODAY)
    assert "already stored" in str(refused.value) and refused.value.row == 2
    assert stored_count(workspace, code) == 3
    new = people_csv(tmp_path / "c.csv", header, full_rows(1)[3:])
    ingest_file(workspace, code, new, operator="c", mode="append", today=TODAY)
    assert stored_count(workspace, code) == len(PEOPLE)


# --- 4. identity numbers rounded by Excel ---------------------------------------------------------


def test_an_identity_number_from_a_number_cell_is_invalid_even_when_its_check_passes(
    workspace: Workspace, tmp_path: Path
) -> None:
    code = make_entry(workspace)
    path = tmp_path / "送温暖.xlsx"
    book = xlsxwriter.Workbook(str(path))
    sheet = book.add_worksheet("名单")
    sheet.write_row(0, 0, HEADER.split(","))
    # Typed as a number, 330106198001012217 became 330106198001012000, which passes every check.
    assert id_number_problem("330106198001012000") is None
    sheet.write_number(1, 0, 330106198001012217)
    sheet.write_row(1, 1, ["甲", 100])
    for row, person in enumerate(PEOPLE, start=2):
        sheet.write_row(row, 0, [person, "乙", 200])
    book.close()
    result = ingest_file(workspace, code, path, operator="c", policy="flag", today=TODAY)
    reason = "invalid identity number (a number cell of more than 15 digits, rounded by Excel)"
    assert result.quality["columns"]["id_number"]["problems"] == {reason: 1}
    [example] = result.quality["columns"]["id_number"]["examples"]
    assert example["row"] == 2 and "\x00" not in example["value"]
    flagged = [r for r in read(workspace, code) if r["name"] == "甲"]
    assert flagged[0][ROW_FLAGS] == f"id_number: {reason}"
    assert flagged[0]["id_number"] == "330106198001012000"
    quarantined = ingest_file(
        workspace, code, path, operator="c", policy="quarantine", today=TODAY, max_reject_ratio=0.5
    )
    assert quarantined.version.rows_rejected == 1 and quarantined.version.rows_written == len(PEOPLE)
    held = pq.read_table(workspace.home / quarantined.quality["quarantine_file"]).to_pylist()
    assert held[0]["身份证号"] == "330106198001012000"


# --- 5. the wrong sheet ---------------------------------------------------------------------------


def test_a_first_sheet_without_the_data_names_the_sheet_that_has_it(
    workspace: Workspace, tmp_path: Path
) -> None:
    code = make_entry(workspace)
    path = tmp_path / "报表.xlsx"
    book = xlsxwriter.Workbook(str(path))
    notes = book.add_worksheet("填表说明")
    notes.write_row(0, 0, ["说明", "填报人"])
    notes.write_row(1, 0, ["请如实填写", "张三"])
    data = book.add_worksheet("参保名单")
    data.write_row(0, 0, ["身份证号（必填）", "姓名", "缴费基数(元)"])
    for row, person in enumerate(PEOPLE, start=1):
        data.write_row(row, 0, [person, "乙", 200])
    book.close()
    with pytest.raises(InputError) as refused:
        ingest_file(workspace, code, path, operator="c", today=TODAY)
    assert "sheet '填表说明' has no column of the entry" in str(refused.value)
    assert "'参保名单'" in str(refused.value)
    done = ingest_file(workspace, code, path, operator="c", sheet="参保名单", today=TODAY)
    assert done.version.rows_written == len(PEOPLE)


# --- 7. formula-like text -------------------------------------------------------------------------

FORMULA_VALUES = [
    '=HYPERLINK("http://x")',
    "@SUM(A1)",
    "-2+3+cmd|' /C calc'!A0",
    "+1+1",
    "\t制表符开头",
    "\r回车开头",
    "  =1+1",
    "-5",
    "+86 571 8888 8888",
    "-",
    "—",
    "a=b",
    "张-三",
    "",
    None,
]


@settings(max_examples=80, deadline=None)
@given(st.lists(st.text(st.sampled_from(list("=+-@\t\r 1２a(). 张")), max_size=6), max_size=20))
def test_the_formula_rule_in_sql_says_what_its_oracle_says(noise: list[str]) -> None:
    values = FORMULA_VALUES + noise
    with duckdb.connect() as con:
        con.register("raw_values", pa.table({"v": pa.array(values, pa.string())}))
        got = con.sql(
            f"SELECT {formulas.formula_sql('n', 'v')} FROM (SELECT v, {clean_sql('v')} AS n FROM raw_values)"
        ).fetchall()
    assert [row[0] is not None for row in got] == [formulas.formula_like(v) for v in values]


def test_formula_like_text_is_flagged_and_kept_never_rejected(workspace: Workspace, tmp_path: Path) -> None:
    code = make_entry(workspace)
    names = ['=HYPERLINK("http://x")', "@SUM(1+1)", "-2+3+cmd", "+86 571 8888 8888", "-7", "张三", "李四"]
    path = tmp_path / "a.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([*HEADER.split(","), "手机号码"])
        writer.writerows([p, n, "-100", "+86 138 0013 8000"] for p, n in zip(PEOPLE, names, strict=True))
    result = ingest_file(workspace, code, path, operator="c", policy="quarantine", today=TODAY)
    q = result.quality
    assert (q["rows_written"], q["rows_rejected"], q["rows_flagged"]) == (7, 0, 3)
    assert q["columns"]["name"]["problems"] == {formulas.REASON: 3}
    assert q["columns"]["name"]["nulls"] == 0 and q["columns"]["base"]["problems"] == {}
    assert q["columns"]["mobile"]["problems"] == {}  # +86 in a mobile field is a prefix, not a formula
    stored = {r["name"]: r for r in read(workspace, code)}
    assert stored["@SUM(1+1)"][ROW_FLAGS] == f"name: {formulas.REASON}"
    assert stored["-7"][ROW_FLAGS] is None and stored["-7"]["base"] == Decimal(-100)
    assert stored["张三"]["mobile"] == "13800138000"


def test_settings_out_of_their_range_are_refused(workspace: Workspace, tmp_path: Path) -> None:
    code = make_entry(workspace, key_fields=["id_number"])
    path = people_csv(tmp_path / "a.csv", "身份证号,姓名", [f"{PEOPLE[0]},甲"])
    with pytest.raises(PubdataError, match="from 0 to 1"):
        ingest_file(workspace, code, path, operator="c", max_reject_ratio=10)
    with pytest.raises(PubdataError, match="keep or refuse"):
        ingest_file(with_settings(workspace, 'upsert_missing_columns = "kept"\n'), code, path, operator="c")
