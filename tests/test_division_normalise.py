"""Division codes are stored in one form: 6- and 9-digit codes padded to 12 digits at ingest, so
that GROUP BY never splits a division in two; anything malformed is flagged, never "fixed"."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa

from pubdata.catalog.classes import BadRowPolicy
from pubdata.identifiers import make_id_number
from pubdata.ingest.normalise import clean_sql
from pubdata.ingest.pipeline import ingest_file
from pubdata.ingest.validators import VALIDATORS
from pubdata.store.delta import ROW_FLAGS
from pubdata.workspace import Workspace
from test_ingest_pipeline import ID_A, ID_B, ID_C, TODAY, make_entry, read, write_csv
from test_validators import sql_problems


def normalised(values: list[str | None]) -> list[str | None]:
    """The division validator's normalising SQL over raw strings, cleaned as the pipeline does."""
    con = duckdb.connect()
    con.register("raw_values", pa.table({"v": pa.array(values, pa.string())}))
    sql = VALIDATORS["division_code"].normalise_sql(f"({clean_sql('v')})")
    return [row[0] for row in con.sql(f"SELECT {sql} FROM raw_values").fetchall()]


def test_county_and_township_codes_are_padded_and_nothing_else_changes() -> None:
    assert normalised(["330106", "330106001", "330106001000", " ３３０１０６ ", None]) == [
        "330106000000",
        "330106001000",
        "330106001000",
        "330106000000",
        None,
    ]
    # Not 6, 9 or 12 digits: kept exactly as cleaned, for the check to flag.
    assert normalised(["33010", "3301060", "33010600100", "3301O6", "3301060010001"]) == [
        "33010",
        "3301060",
        "33010600100",
        "3301O6",
        "3301060010001",
    ]


def test_the_padded_code_is_checked_as_the_file_wrote_it() -> None:
    values = ["330106", "330106001", "339999", "33010", "3301O6", "330102001"]
    assert sql_problems("division_code", values) == [
        VALIDATORS["division_code"].check(v, TODAY) for v in values
    ]
    assert sql_problems("division_code", ["339999", "33010"]) == ["unknown division", "format"]


def test_ingest_stores_twelve_digits_and_group_by_sees_one_division(
    workspace: Workspace, tmp_path: Path
) -> None:
    code = make_entry(workspace, policy=BadRowPolicy.FLAG)
    id_d = make_id_number("330106", "19910101", 21)
    rows = [
        f"{ID_A},张三,13800138000,330106,2022-01-25,1,1,是,",
        f"{ID_B},李四,13900139000,330106000000,2022-01-25,1,1,是,",
        f"{ID_C},王五,13700137000,330106002,2022-01-25,1,1,是,",
        f"{id_d},赵六,13600136000,3301060,2022-01-25,1,1,是,",  # 7 digits: malformed, flagged
    ]
    path = write_csv(tmp_path / "codes.csv", rows, title=False, total=False)
    result = ingest_file(workspace, code, path, operator="tester", today=TODAY)
    assert result.quality["rows_flagged"] == 1
    stored = {r["name"]: (r["division_code"], r[ROW_FLAGS]) for r in read(workspace, code)}
    assert stored["张三"] == ("330106000000", None)
    assert stored["李四"] == ("330106000000", None)
    assert stored["王五"] == ("330106002000", None)
    kept, reasons = stored["赵六"]
    assert kept == "3301060" and "invalid division code (format)" in reasons
    groups = {r["division_code"] for r in read(workspace, code) if r[ROW_FLAGS] is None}
    assert groups == {"330106000000", "330106002000"}
