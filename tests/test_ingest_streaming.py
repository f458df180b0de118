"""The streamed ingest: batch gates never skip needed work, batching never changes the outcome."""

from __future__ import annotations

import datetime as dt
from functools import cache
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pubdata.errors import InputError
from pubdata.identifiers import make_id_number
from pubdata.ingest.normalise import NULL_MARKERS, clean, clean_needed, clean_sql, column_bytes
from pubdata.ingest.pipeline import ingest_file
from pubdata.ingest.validators import VALIDATORS
from pubdata.store.delta import ROW_GROUP_ROWS, DatasetStore
from pubdata.workspace import Workspace
from test_ingest_pipeline import BAD_ROWS, GOOD_ROWS, HEADER, TODAY, entry_of, make_entry, read, write_csv

NOISY = st.text(st.sampled_from(list("ab1０９ＡｚX -—/无NUL\t\u3000\u00a0张(+)86")), max_size=8)
VALUES = st.lists(st.one_of(NOISY, st.sampled_from(NULL_MARKERS), st.none()), min_size=1, max_size=30)


@cache
def _connection() -> duckdb.DuckDBPyConnection:
    return duckdb.connect()


def _sliced(values: list[str | None], cut: int) -> pa.Array:
    """`values` as a slice of a larger array, as batches cut by the readers are."""
    padding = ["\u3000pad ", None][: cut % 3]
    whole = pa.array(padding + values + padding, pa.string())
    return whole.slice(len(padding), len(values))


@settings(max_examples=150, deadline=None)
@given(VALUES, st.integers(0, 5))
def test_a_batch_said_clean_is_left_unchanged_by_clean(values: list[str | None], cut: int) -> None:
    batch = _sliced(values, cut)
    assert column_bytes(batch) == "".join(v or "" for v in values).encode()
    if not clean_needed(batch):
        assert [clean(v) for v in values] == values


@pytest.mark.parametrize("value", ["", " 1", "1 ", "１", "ｚ", "1\u3000", "\u00a0x", *NULL_MARKERS])
def test_one_value_needing_work_marks_its_batch(value: str) -> None:
    batch = pa.array(["330102199001011234"] * 50 + [value], pa.string())
    assert clean_needed(batch)
    assert not clean_needed(batch.slice(0, 50))


@settings(max_examples=150, deadline=None)
@given(VALUES, st.sampled_from(sorted(VALIDATORS)))
def test_a_batch_said_normal_is_left_unchanged_by_normalising(values: list[str | None], name: str) -> None:
    validator = VALIDATORS[name]
    cleaned = [clean(v) for v in values]
    batch = pa.array(cleaned, pa.string())
    if validator.normalise_needed(batch, column_bytes(batch)):
        return
    con = _connection()
    con.register("raw_values", pa.table({"v": batch}))
    rows = con.sql(f"SELECT {validator.normalise_sql('v')} FROM raw_values").fetchall()
    con.unregister("raw_values")
    assert [row[0] for row in rows] == cleaned


def test_mobile_digits_with_a_0086_prefix_need_normalising() -> None:
    batch = pa.array(["13800138000", "008613800138000"], pa.string())
    assert VALIDATORS["mobile"].normalise_needed(batch, column_bytes(batch))
    assert not VALIDATORS["mobile"].normalise_needed(batch.slice(0, 1), column_bytes(batch.slice(0, 1)))


def test_clean_sql_still_agrees_on_batches_the_gate_lets_through() -> None:
    values = ["１２３", " a ", "无", None, "b"]
    con = _connection()
    con.register("raw_values", pa.table({"v": pa.array(values, pa.string())}))
    rows = con.sql(f"SELECT {clean_sql('v')} FROM raw_values").fetchall()
    con.unregister("raw_values")
    assert [r[0] for r in rows] == [clean(v) for v in values]


# --- end to end ----------------------------------------------------------------------------------


def _outcome(workspace: Workspace, code: str, path: Path, batch_rows: int, policy: str) -> dict[str, Any]:
    result = ingest_file(
        workspace, code, path, operator="clerk", today=TODAY, batch_rows=batch_rows, policy=policy
    )
    quality = dict(result.quality)
    held = (
        pq.read_table(workspace.home / quality.pop("quarantine_file")).to_pylist()
        if policy == "quarantine"
        else []
    )
    quality.pop("sha256")
    return {"quality": quality, "rows": read(workspace, code), "held": held}


@pytest.mark.parametrize("policy", ["quarantine", "flag"])
def test_batch_size_changes_nothing_but_speed(workspace: Workspace, tmp_path: Path, policy: str) -> None:
    # Clean runs long enough to fill whole batches, messy rows in some batches only.
    clean_rows = [
        f"{make_id_number('330106', '19900101', i)},人{i},1380013{i:04d},330106,"
        f"2022-01-{1 + i % 28:02d},{i}.5,1,是,"
        for i in range(300)
    ]
    rows = clean_rows[:120] + GOOD_ROWS + clean_rows[120:250] + BAD_ROWS + clean_rows[250:]
    path = write_csv(tmp_path / "mixed.csv", rows)
    code = make_entry(workspace)
    outcomes = [_outcome(workspace, code, path, size, policy) for size in (7, 64, 100_000)]
    assert outcomes[0] == outcomes[1] == outcomes[2]
    quality = outcomes[0]["quality"]
    assert quality["rows_read"] == len(rows)
    if policy == "quarantine":
        assert [r["__file_row"] for r in outcomes[0]["held"]] == [3 + 253, 3 + 254]  # title, header
    names = {r["name"] for r in outcomes[0]["rows"]}
    assert {"张三", "李四", "王五"} <= names  # full-width, padded and lower-case values in mid-file batches


def test_file_rows_survive_streaming_in_order(workspace: Workspace, tmp_path: Path) -> None:
    bad = "330106199001011230,坏,2,330106,2022-01-01,1,1,是,"
    good = [
        f"{make_id_number('330106', '19900101', i)},人{i},13800138000,330106,2022-01-01,1,1,是,"
        for i in range(50)
    ]
    rows = [r for i in range(40) for r in ([bad] if i % 7 == 3 else good[:3])]
    path = write_csv(tmp_path / "order.csv", rows, title=False, total=False)
    code = make_entry(workspace)
    result = ingest_file(workspace, code, path, operator="clerk", today=TODAY, batch_rows=5)
    held = pq.read_table(workspace.home / result.quality["quarantine_file"]).column("__file_row").to_pylist()
    expected = [2 + n for n, row in enumerate(rows) if row == bad]
    assert held == expected
    examples = [e["row"] for e in result.quality["columns"]["mobile"]["examples"]]
    assert examples == expected[: len(examples)]


def test_a_reader_error_mid_file_comes_out_as_itself(workspace: Workspace, tmp_path: Path) -> None:
    good = f"{make_id_number('330106', '19900101', 1)},人,13800138000,330106,2022-01-01,1,1,是,"
    rows = [good] * 3000 + ["1,2,3"] + [good] * 10
    path = write_csv(tmp_path / "ragged.csv", rows, title=False, total=False)
    code = make_entry(workspace)
    with pytest.raises(InputError) as caught:
        ingest_file(workspace, code, path, operator="clerk", today=TODAY, batch_rows=100)
    assert (caught.value.file, caught.value.row) == ("ragged.csv", 3002)


def test_invalid_utf8_deep_in_the_file_names_its_line(workspace: Workspace, tmp_path: Path) -> None:
    good = f"{make_id_number('330106', '19900101', 1)},人,13800138000,330106,2022-01-01,1,1,是,"
    path = tmp_path / "mixed.csv"
    path.write_bytes((HEADER + "\n" + (good + "\n") * 20_000).encode() + "王,".encode("gbk") + b"\n")
    code = make_entry(workspace)
    with pytest.raises(InputError, match="line 20002"):
        ingest_file(workspace, code, path, operator="clerk", today=TODAY, batch_rows=1000)


def test_utf8_with_bom_reads_its_header(workspace: Workspace, tmp_path: Path) -> None:
    path = tmp_path / "bom.csv"
    path.write_bytes(b"\xef\xbb\xbf" + "\n".join([HEADER, *GOOD_ROWS]).encode() + b"\n")
    code = make_entry(workspace)
    result = ingest_file(workspace, code, path, operator="clerk", today=TODAY)
    assert result.quality["rows_written"] == 3 and result.quality["unmapped_columns"] == ["备注"]


def test_today_is_kept_by_the_stream(workspace: Workspace, tmp_path: Path) -> None:
    born = make_id_number("330106", "20240601", 5)
    path = write_csv(tmp_path / "t.csv", [f"{born},婴,13800138000,330106,2024-06-02,1,0,否,"])
    code = make_entry(workspace)
    early = ingest_file(workspace, code, path, operator="clerk", today=dt.date(2024, 5, 1), policy="flag")
    later = ingest_file(workspace, code, path, operator="clerk", today=dt.date(2024, 7, 1), policy="flag")
    assert early.quality["rows_flagged"] == 1 and later.quality["rows_flagged"] == 0


def test_stored_files_are_compressed_in_bounded_row_groups(workspace: Workspace, tmp_path: Path) -> None:
    good = [
        f"{make_id_number('330106', '19900101', i % 900)},人,13800138000,330106,2022-01-01,1,1,是,"
        for i in range(3000)
    ]
    code = make_entry(workspace)
    ingest_file(workspace, code, write_csv(tmp_path / "c.csv", good), operator="clerk", today=TODAY)
    files = DatasetStore(workspace.data_dir, workspace.sessions).file_uris(entry_of(workspace, code))
    assert files
    for uri in files:
        metadata = pq.ParquetFile(uri.removeprefix("file://")).metadata
        assert all(metadata.row_group(g).num_rows <= ROW_GROUP_ROWS for g in range(metadata.num_row_groups))
        assert metadata.row_group(0).column(0).compression == "SNAPPY"
