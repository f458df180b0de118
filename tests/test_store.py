"""The versioned dataset store: write modes, the version index, time travel, change feed."""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import threading
from collections.abc import Iterator, Sequence
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from deltalake import DeltaTable, write_deltalake
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from pubdata.catalog.classes import FieldType, OrgType, WriteMode
from pubdata.db.models import AuditEvent, CatalogEntry, CatalogField, Organisation, Tenant
from pubdata.errors import InputError, NotFound, PubdataError
from pubdata.store.delta import ROW_FLAGS, DatasetStore, VersionSummary, arrow_schema
from pubdata.store.schema import DECIMAL_TYPE
from pubdata.store.stream import FILE_ROW
from pubdata.store.tables import UnsupportedTable
from pubdata.workspace import Workspace

FIELDS: list[tuple[str, FieldType]] = [
    ("id_number", FieldType.STRING),
    ("name", FieldType.STRING),
    ("amount", FieldType.DECIMAL),
    ("born", FieldType.DATE),
    ("seen_at", FieldType.TIMESTAMP),
    ("active", FieldType.BOOLEAN),
    ("visits", FieldType.INTEGER),
]
_codes = itertools.count()


def make_entry(workspace: Workspace, key_fields: Sequence[str] = ("id_number",)) -> CatalogEntry:
    """An entry written straight through the ORM (fields listed out of position order on purpose)."""
    code = f"people_{next(_codes)}"
    with workspace.sessions() as s, s.begin():
        tenant = s.scalars(select(Tenant).where(Tenant.division_code == "330000000000")).one()
        org = Organisation(
            name=f"民政厅 {code}",
            org_type=OrgType.STATE_ORGAN,
            uscc=f"{next(_codes):018d}",
            division_code="330000000000",
            tenant=tenant,
        )
        fields = [
            CatalogField(position=i, name=name, data_type=kind) for i, (name, kind) in enumerate(FIELDS)
        ]
        entry = CatalogEntry(
            code=code,
            name="居民",
            provider=org,
            tenant_id=tenant.id,
            key_fields=list(key_fields),
            fields=list(reversed(fields)),
        )
        s.add(entry)
    return entry


def rows(keys: Sequence[int], tag: str = "a") -> pa.RecordBatch:
    """One batch of people whose every column depends on the key and `tag`."""
    return pa.record_batch(
        {
            "id_number": [f"33010219800101{k:04d}" for k in keys],
            "name": [f"{tag}-{k}" for k in keys],
            "amount": pa.array([Decimal(k) / 100 for k in keys], DECIMAL_TYPE),
            "born": [dt.date(1980, 1, 1) + dt.timedelta(days=k) for k in keys],
            "seen_at": pa.array(
                [dt.datetime(2024, 1, 1, tzinfo=dt.UTC) + dt.timedelta(seconds=k) for k in keys],
                pa.timestamp("us", tz="UTC"),
            ),
            "active": [k % 2 == 0 for k in keys],
            "visits": pa.array(list(keys), pa.int64()),
            ROW_FLAGS: pa.array([None] * len(keys), pa.string()),
        }
    )


def content(table: pa.Table) -> list[dict[str, Any]]:
    """Rows in key order: versions are compared by content, not by file layout."""
    return sorted(table.to_pylist(), key=lambda r: (r["id_number"], r["name"]))


def digest(table: pa.Table) -> str:
    return hashlib.sha256(repr(content(table)).encode()).hexdigest()


@pytest.fixture
def store(workspace: Workspace) -> DatasetStore:
    return DatasetStore(workspace.data_dir, workspace.sessions)


@pytest.fixture
def entry(workspace: Workspace) -> CatalogEntry:
    return make_entry(workspace)


def listed(store: DatasetStore, entry: CatalogEntry) -> list[int]:
    with store.sessions() as s:
        return [v.version for v in store.versions(s, entry)]


def test_arrow_schema_follows_positions_and_types(entry: CatalogEntry) -> None:
    schema = arrow_schema(entry)
    assert schema.names == [name for name, _ in FIELDS] + [ROW_FLAGS]
    assert schema.field("amount").type == pa.decimal128(38, 6)
    assert schema.field("born").type == pa.date32()
    assert schema.field("seen_at").type == pa.timestamp("us", tz="UTC")
    assert schema.field("active").type == pa.bool_()
    assert schema.field("visits").type == pa.int64()
    assert schema.field(ROW_FLAGS).type == pa.string() and schema.field(ROW_FLAGS).nullable


def test_nothing_written_reads_as_empty_table_with_schema(store: DatasetStore, entry: CatalogEntry) -> None:
    assert store.file_uris(entry) == []
    empty = store.read(entry)
    assert empty.num_rows == 0 and empty.schema == arrow_schema(entry)
    assert store.row_count(entry) == 0
    with pytest.raises(NotFound):
        store.read(entry, version=1)


def test_append_indexes_each_write_with_its_provenance(
    workspace: Workspace, store: DatasetStore, entry: CatalogEntry
) -> None:
    first = store.write(
        entry,
        iter([rows(range(3))]),
        WriteMode.APPEND,
        operator="alice",
        source_file="a.csv",
        source_sha256="ab" * 32,
    )
    second = store.write(
        entry,
        iter([rows(range(3, 5)), rows(range(5, 6))]),
        WriteMode.APPEND,
        operator="bob",
        summary=lambda: VersionSummary(4, 3, 1, 0, {"note": "x"}),
    )
    assert (first.version, second.version) == (1, 2)
    assert listed(store, entry) == [1, 2]
    assert store.row_count(entry, 1) == 3 and store.row_count(entry) == 6
    assert content(store.read(entry)) == content(pa.Table.from_batches([rows(range(6))]))
    with workspace.sessions() as s:
        v1, v2 = store.versions(s, entry)
        assert (v1.operator, v1.source_file, v1.source_sha256, v1.rows_read, v1.rows_written) == (
            "alice",
            "a.csv",
            "ab" * 32,
            3,
            3,
        )
        assert (v2.rows_read, v2.rows_written, v2.rows_rejected, v2.quality) == (4, 3, 1, {"note": "x"})
        stored = s.get(CatalogEntry, entry.id)
        assert stored is not None and stored.data_updated_at is not None
    assert entry.data_updated_at is not None
    log = {c["version"]: c for c in DeltaTable(str(store.table_path(entry))).history()}
    assert log[1]["pubdata.operator"] == "alice" and log[1]["pubdata.source_file"] == "a.csv"
    assert log[2]["pubdata.operator"] == "bob" and len(log[2]["pubdata.write_id"]) == 32


def test_replace_overwrites_and_keeps_the_previous_version(store: DatasetStore, entry: CatalogEntry) -> None:
    store.write(entry, iter([rows(range(10))]), WriteMode.APPEND, operator="t")
    version = store.write(entry, iter([rows([100, 101], "new")]), WriteMode.REPLACE, operator="t")
    assert content(store.read(entry)) == content(pa.Table.from_batches([rows([100, 101], "new")]))
    assert store.row_count(entry, 1) == 10 and version.mode is WriteMode.REPLACE
    with pytest.raises(InputError, match="leave the table empty"):
        store.write(entry, iter([]), WriteMode.REPLACE, operator="t")
    assert store.row_count(entry) == 2 and listed(store, entry) == [1, 2]
    empty = store.write(entry, iter([]), WriteMode.REPLACE, operator="t", allow_empty=True)
    assert store.read(entry).num_rows == 0 and store.read(entry).schema == arrow_schema(entry)
    assert listed(store, entry) == [1, 2, empty.version]
    # An empty table may be replaced by nothing again: nothing is lost.
    again = store.write(entry, iter([]), WriteMode.REPLACE, operator="t")
    assert listed(store, entry) == [1, 2, empty.version, again.version]


def test_upsert_updates_matches_and_inserts_the_rest(store: DatasetStore, entry: CatalogEntry) -> None:
    store.write(entry, iter([rows(range(5))]), WriteMode.APPEND, operator="t")
    store.write(entry, iter([rows([3, 4], "upd"), rows([5, 6], "ins")]), WriteMode.UPSERT, operator="t")
    got = {r["id_number"][-4:]: r["name"] for r in store.read(entry).to_pylist()}
    assert got == {
        "0000": "a-0",
        "0001": "a-1",
        "0002": "a-2",
        "0003": "upd-3",
        "0004": "upd-4",
        "0005": "ins-5",
        "0006": "ins-6",
    }


def test_upsert_into_a_new_table_with_no_rows_is_still_one_version(
    store: DatasetStore, entry: CatalogEntry
) -> None:
    version = store.write(entry, iter([]), WriteMode.UPSERT, operator="t")
    assert listed(store, entry) == [version.version] and store.read(entry).num_rows == 0


@pytest.mark.parametrize("split", [False, True], ids=["one-batch", "across-batches"])
def test_upsert_refuses_duplicate_keys_and_commits_nothing(
    store: DatasetStore, entry: CatalogEntry, split: bool
) -> None:
    store.write(entry, iter([rows(range(4))]), WriteMode.APPEND, operator="t")
    before = digest(store.read(entry))
    delta_before = DeltaTable(str(store.table_path(entry))).version()
    incoming = [rows([10, 11]), rows([11, 12, 12, 12])] if split else [rows([10, 11, 11, 12, 12, 12])]
    with pytest.raises(InputError) as refused:
        store.write(entry, iter(incoming), WriteMode.UPSERT, operator="t", source_file="dup.csv")
    message = str(refused.value)
    assert "id_number" in message and "dup.csv" in message
    assert "2 key value(s)" in message and "in 5 rows" in message
    assert "330102198001010012" not in message and "3301" in message and "*" in message
    assert listed(store, entry) == [1] and digest(store.read(entry)) == before
    assert DeltaTable(str(store.table_path(entry))).version() == delta_before


def numbered(batch: pa.RecordBatch, first_row: int) -> pa.RecordBatch:
    """`batch` with the file rows a reader would give it, starting at `first_row`."""
    rows = pa.array(range(first_row, first_row + batch.num_rows), pa.int64())
    return batch.append_column(FILE_ROW, rows)


@pytest.mark.parametrize("mode", [WriteMode.APPEND, WriteMode.REPLACE, WriteMode.UPSERT])
def test_keys_repeated_in_the_file_are_refused_in_every_mode_with_both_rows(
    store: DatasetStore, entry: CatalogEntry, mode: WriteMode
) -> None:
    store.write(entry, iter([rows(range(3))]), WriteMode.APPEND, operator="t")
    incoming = [numbered(rows([10, 11, 12]), 2), numbered(rows([13, 11]), 5)]
    with pytest.raises(InputError) as refused:
        store.write(entry, iter(incoming), mode, operator="t", source_file="dup.csv")
    assert refused.value.row == 3 and refused.value.column == "id_number"
    assert "in rows 3 and 6" in str(refused.value) and "1 key value(s)" in str(refused.value)
    assert store.row_count(entry) == 3 and listed(store, entry) == [1]


def test_an_append_refuses_keys_already_stored_and_names_the_file_row(
    store: DatasetStore, entry: CatalogEntry
) -> None:
    store.write(entry, iter([rows(range(5))]), WriteMode.APPEND, operator="t")
    with pytest.raises(InputError) as refused:
        store.write(
            entry,
            iter([numbered(rows([7, 8, 3, 4]), 2)]),
            WriteMode.APPEND,
            operator="t",
            source_file="b.csv",
        )
    assert refused.value.row == 4 and "2 row(s)" in str(refused.value)
    assert "already stored" in str(refused.value) and "330102198001010003" not in str(refused.value)
    assert store.row_count(entry) == 5 and listed(store, entry) == [1]
    store.write(entry, iter([numbered(rows([7, 8]), 2)]), WriteMode.APPEND, operator="t")
    assert store.row_count(entry) == 7


def test_an_upsert_limited_to_some_fields_keeps_the_others_stored(
    store: DatasetStore, entry: CatalogEntry
) -> None:
    store.write(entry, iter([rows(range(3))]), WriteMode.APPEND, operator="t")
    incoming = rows([1, 2, 9], "new").set_column(2, "amount", pa.nulls(3, DECIMAL_TYPE))
    store.write(entry, iter([incoming]), WriteMode.UPSERT, operator="t", update_fields=["id_number", "name"])
    got = {r["id_number"][-1]: (r["name"], r["amount"]) for r in store.read(entry).to_pylist()}
    assert got == {
        "0": ("a-0", Decimal("0.000000")),
        "1": ("new-1", Decimal("0.010000")),
        "2": ("new-2", Decimal("0.020000")),
        "9": ("new-9", None),
    }


def test_upsert_refuses_missing_keys(store: DatasetStore, entry: CatalogEntry) -> None:
    batch = rows([1, 2]).set_column(0, "id_number", pa.array([None, "x"], pa.string()))
    with pytest.raises(InputError, match="1 row"):
        store.write(entry, iter([batch]), WriteMode.UPSERT, operator="t")
    assert listed(store, entry) == []


def test_upsert_needs_key_fields(workspace: Workspace, store: DatasetStore) -> None:
    keyless = make_entry(workspace, key_fields=())
    with pytest.raises(PubdataError, match="no key fields"):
        store.write(keyless, iter([rows([1])]), WriteMode.UPSERT, operator="t")


class FileRejected(InputError):
    pass


@pytest.mark.parametrize("mode", list(WriteMode))
def test_an_iterator_that_raises_aborts_the_write(
    store: DatasetStore, entry: CatalogEntry, mode: WriteMode
) -> None:
    store.write(entry, iter([rows(range(3))]), WriteMode.APPEND, operator="t")
    before = digest(store.read(entry))

    def failing() -> Iterator[pa.RecordBatch]:
        yield rows(range(100, 110))
        yield rows(range(110, 120))
        raise FileRejected("too many bad rows", file="x.csv", row=21)

    with pytest.raises(FileRejected, match="too many bad rows"):
        store.write(entry, failing(), mode, operator="t")
    assert listed(store, entry) == [1] and digest(store.read(entry)) == before
    assert DeltaTable(str(store.table_path(entry))).version() == 1
    after = store.write(entry, iter([rows([50])]), WriteMode.APPEND, operator="t")
    assert after.version == 2 and store.row_count(entry) == 4


def test_a_failure_after_the_commit_is_rolled_back_and_audited(
    workspace: Workspace, store: DatasetStore, entry: CatalogEntry
) -> None:
    store.write(entry, iter([rows(range(3))]), WriteMode.APPEND, operator="t")
    before = digest(store.read(entry))

    def broken_summary() -> VersionSummary:
        raise RuntimeError("quality report lost")

    with pytest.raises(PubdataError, match="quality report lost"):
        store.write(
            entry, iter([rows(range(10, 20))]), WriteMode.APPEND, operator="t", summary=broken_summary
        )
    assert listed(store, entry) == [1] and digest(store.read(entry)) == before
    store.write(entry, iter([rows([99])]), WriteMode.APPEND, operator="t")
    assert content(store.read(entry)) == content(pa.Table.from_batches([rows([0, 1, 2, 99])]))
    with workspace.sessions() as s:
        event = s.scalars(select(AuditEvent).where(AuditEvent.action == "store.rollback")).one()
    assert event.target == entry.code and event.detail["restored_to"] == 1
    assert [c["version"] for c in event.detail["rolled_back"]] == [2]


def test_a_commit_never_indexed_is_rolled_back_before_the_next_write(
    workspace: Workspace, store: DatasetStore, entry: CatalogEntry
) -> None:
    """A process killed between the Delta commit and the index leaves exactly this state."""
    store.write(entry, iter([rows(range(3))]), WriteMode.APPEND, operator="t")
    path = str(store.table_path(entry))
    write_deltalake(path, rows(range(500, 510)), mode="append")
    assert DeltaTable(path).version() == 2
    assert store.row_count(entry) == 3  # readers serve the last indexed version
    assert store.recover(entry) == [2] and store.recover(entry) == []
    nxt = store.write(entry, iter([rows([7])]), WriteMode.APPEND, operator="t")
    assert nxt.version == 4 and listed(store, entry) == [1, 4]
    assert content(store.read(entry)) == content(pa.Table.from_batches([rows([0, 1, 2, 7])]))
    feed = store.changes(entry, 1)
    assert sorted(set(feed["_commit_version"].to_pylist())) == [1, 4]
    assert feed.num_rows == 4


def test_time_travel_and_change_feed(store: DatasetStore, entry: CatalogEntry) -> None:
    store.write(entry, iter([rows(range(4))]), WriteMode.APPEND, operator="t")
    store.write(entry, iter([rows([2], "upd"), rows([9], "ins")]), WriteMode.UPSERT, operator="t")
    feed = store.changes(entry, 2, 2)
    kinds = sorted(zip(feed["_change_type"].to_pylist(), feed["name"].to_pylist(), strict=True))
    assert kinds == [("insert", "ins-9"), ("update_postimage", "upd-2"), ("update_preimage", "a-2")]
    assert feed.schema.field("name").type == pa.string()
    assert store.changes(entry, 1).num_rows == 4 + 3
    with pytest.raises(NotFound):
        store.changes(entry, 5)


def test_equality_filters_work_on_strings_after_a_merge(store: DatasetStore, entry: CatalogEntry) -> None:
    store.write(entry, iter([rows(range(5))]), WriteMode.APPEND, operator="t")
    store.write(entry, iter([rows([1], "upd")]), WriteMode.UPSERT, operator="t")
    table = store.read(entry, columns=["id_number", "name"])
    assert table.schema.names == ["id_number", "name"]
    hit = table.filter(pc.equal(table["name"], "upd-1"))
    assert hit["id_number"].to_pylist() == ["330102198001010001"]
    assert pc.equal(table["name"], table["name"]).to_pylist() == [True] * 5
    with pytest.raises(InputError, match="no such field"):
        store.read(entry, columns=["nope"])


def test_batches_are_conformed_to_the_table_schema(store: DatasetStore, entry: CatalogEntry) -> None:
    batch = rows([1, 2]).drop_columns([ROW_FLAGS])
    reordered = batch.select(list(reversed(batch.schema.names)))
    loose = reordered.set_column(
        reordered.schema.get_field_index("name"), "name", reordered.column("name").cast(pa.large_string())
    )
    store.write(entry, iter([loose]), WriteMode.APPEND, operator="t")
    assert content(store.read(entry)) == content(pa.Table.from_batches([rows([1, 2])]))
    with pytest.raises(InputError, match="column born"):
        store.write(entry, iter([rows([3]).drop_columns(["born"])]), WriteMode.APPEND, operator="t")
    assert listed(store, entry) == [1]


def test_tables_with_deletion_vectors_are_refused(store: DatasetStore, entry: CatalogEntry) -> None:
    DeltaTable.create(
        str(store.table_path(entry)),
        arrow_schema(entry),
        configuration={"delta.enableDeletionVectors": "true"},
    )
    with pytest.raises(UnsupportedTable, match="deletion vectors"):
        store.write(entry, iter([rows([1])]), WriteMode.APPEND, operator="t")


def test_writers_of_one_entry_are_serialised(store: DatasetStore, entry: CatalogEntry) -> None:
    errors: list[BaseException] = []

    def writer(start: int) -> None:
        try:
            for i in range(3):
                store.write(entry, iter([rows([start + i])]), WriteMode.APPEND, operator=f"w{start}")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in (0, 100)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert listed(store, entry) == [1, 2, 3, 4, 5, 6] and store.row_count(entry) == 6


OPS = st.lists(
    st.tuples(st.sampled_from(list(WriteMode)), st.sets(st.integers(0, 30), max_size=12)),
    min_size=1,
    max_size=5,
)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=OPS)
def test_every_version_reads_back_as_it_was_written(
    workspace: Workspace, store: DatasetStore, ops: list[tuple[WriteMode, set[int]]]
) -> None:
    entry = make_entry(workspace)
    model: list[dict[str, Any]] = []
    expected: dict[int, list[dict[str, Any]]] = {}
    for n, (mode, keys) in enumerate(ops):
        incoming = rows(sorted(keys), tag=f"op{n}").to_pylist()
        stored_keys = {r["id_number"] for r in model}
        refused = (mode is WriteMode.APPEND and stored_keys & {r["id_number"] for r in incoming}) or (
            mode is WriteMode.REPLACE and model and not incoming
        )
        if refused:  # an append repeating a stored key; a replace that would empty the table
            with pytest.raises(InputError):
                store.write(entry, iter([rows(sorted(keys), tag=f"op{n}")]), mode, operator="t")
            continue
        if mode is WriteMode.APPEND:
            model = model + incoming
        elif mode is WriteMode.REPLACE:
            model = incoming
        else:
            fresh = {r["id_number"]: r for r in incoming}
            present = {r["id_number"] for r in model}
            model = [fresh.get(r["id_number"], r) for r in model]
            model += [r for key, r in fresh.items() if key not in present]
        version = store.write(entry, iter([rows(sorted(keys), tag=f"op{n}")]), mode, operator="t")
        expected[version.version] = sorted(model, key=lambda r: (r["id_number"], r["name"]))
    assert listed(store, entry) == sorted(expected)
    for version, want in expected.items():
        assert content(store.read(entry, version)) == want
        assert store.row_count(entry, version) == len(want)


def test_a_field_added_to_the_entry_extends_the_table(
    workspace: Workspace, store: DatasetStore, entry: CatalogEntry
) -> None:
    store.write(entry, iter([rows([1, 2])]), WriteMode.APPEND, operator="t")
    with workspace.sessions() as s, s.begin():
        stored = s.get(CatalogEntry, entry.id)
        assert stored is not None
        stored.fields.append(CatalogField(position=99, name="district", data_type=FieldType.STRING))
        s.flush()
        grown = arrow_schema(stored)
    with workspace.sessions() as s:
        wider = s.get(CatalogEntry, entry.id)
        assert wider is not None and len(wider.fields) == len(FIELDS) + 1
    batch = rows([3]).append_column("district", pa.array(["330102"]))
    store.write(wider, iter([batch]), WriteMode.APPEND, operator="t")
    latest = store.read(wider)
    assert latest.schema == grown and latest.schema.names[-1] == ROW_FLAGS
    assert latest["district"].null_count == 2 and latest["district"].drop_null().to_pylist() == ["330102"]
    assert "district" not in store.read(wider, 1).schema.names
