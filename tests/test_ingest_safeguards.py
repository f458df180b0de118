"""Ingest never loses or invents data: missing columns, mostly-bad files, empty replaces, repeated keys."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from pubdata.catalog.classes import WriteMode
from pubdata.cli.main import app
from pubdata.errors import InputError
from pubdata.identifiers import make_id_number
from pubdata.ingest.pipeline import ingest_file
from pubdata.ingest.sorting import TooManyRejected
from pubdata.store.delta import DatasetStore
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
