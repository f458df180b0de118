"""Ingest end to end: messy files through the readers into real Delta tables, under each policy."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from sqlalchemy import select

from pubdata.audit import verify_chain
from pubdata.catalog.classes import (
    BadRowPolicy,
    EntryState,
    FieldType,
    OpenClass,
    OrgType,
    PiiKind,
    ShareClass,
    WriteMode,
)
from pubdata.catalog.service import create_entry, get_entry, register_organisation
from pubdata.catalog.specs import EntrySpec, FieldSpec, OrganisationSpec
from pubdata.db.models import AuditEvent, CatalogEntry, DatasetVersion, Organisation
from pubdata.errors import InputError, RuleViolation
from pubdata.identifiers import make_id_number, make_uscc
from pubdata.ingest.pipeline import ingest_file
from pubdata.ingest.quality import QualityReport
from pubdata.store.delta import ROW_FLAGS, DatasetStore
from pubdata.workspace import Workspace

TODAY = dt.date(2024, 6, 15)
ID_A = make_id_number("330103", "19800101", 11)  # abolished 下城区: still valid
ID_B = make_id_number("330106", "20000229", 12)  # leap day
ID_C = next(n for n in (make_id_number("330104", "19900305", s) for s in range(300)) if n.endswith("X"))
ID_BAD = ID_A[:17] + ("0" if ID_A[17] != "0" else "1")
ID_FUTURE = make_id_number("330106", "20300101", 15)
#: The sample files are 2 bad rows in 5; the default reject ratio (10 %) would refuse them.
TOLERANT = 0.5

HEADER = "身份证号,姓名,手机号码,行政区划代码,参保日期,缴费基数,子女数,在职,备注"
GOOD_ROWS = [
    f'{ID_A},张三,+86 138-0013-8000,330103,2022年1月25日,"1,234.50",２,是,x',
    f"{ID_B.lower()},李四,13900139000,３３０１０６,2022/1/5,800,0,否,",
    f"{ID_C.lower()},王五,—,330102001,20220125,NULL,1,true,",
]
BAD_ROWS = [
    f"{ID_BAD},赵六,13700137000,330106,2022-01-25 00:00:00,100,1,1,",  # check character
    f"{ID_FUTURE},钱七,12345678901,330106,2022-02-30,abc,x,maybe,",  # future birth, bad mobile, bad types
]


def write_csv(path: Path, rows: list[str], *, title: bool = True, total: bool = True) -> Path:
    lines = (["2024年参保人员名单"] if title else []) + [HEADER, *rows]
    if total:
        lines.append(f"合计,{len(rows)},,,,,,,")
    path.write_text("\n".join(lines) + "\n", "utf-8")
    return path


def make_entry(
    workspace: Workspace,
    code: str = "enrolment",
    *,
    key_fields: list[str] | None = None,
    policy: BadRowPolicy | None = None,
) -> str:
    settings = workspace.settings.default
    org = OrganisationSpec(
        name="杭州市人力资源和社会保障局",
        org_type=OrgType.STATE_ORGAN,
        uscc=make_uscc("11", "330100", "00250240"),
        division_code="330100000000",
        head_name="负责人",
        security_officer_name="安全员",
    )
    fields = [
        FieldSpec(
            "id_number", "身份证号", validator="id_number", pii_kind=PiiKind.ID_NUMBER, level=4, required=True
        ),
        FieldSpec("name", "姓名", pii_kind=PiiKind.NAME, level=2),
        FieldSpec(
            "mobile", "手机号码", validator="mobile", pii_kind=PiiKind.MOBILE, level=3, aliases=["联系电话"]
        ),
        FieldSpec("division_code", "行政区划代码", validator="division_code", level=1),
        FieldSpec("enrol_date", "参保日期", data_type=FieldType.DATE, level=1),
        FieldSpec("base", "缴费基数", data_type=FieldType.DECIMAL, level=2),
        FieldSpec("children", "子女数", data_type=FieldType.INTEGER, level=1),
        FieldSpec("employed", "在职", data_type=FieldType.BOOLEAN, level=1),
    ]
    spec = EntrySpec(
        code=code,
        name="参保人员",
        provider=org.name,
        fields=fields,
        share_class=ShareClass.RESTRICTED,
        legal_basis="《社会保险法》",
        share_conditions="按职责使用",
        open_class=OpenClass.PROHIBITED,
        key_fields=key_fields or [],
        bad_row_policy=policy,
    )
    with workspace.sessions() as s, s.begin():
        if s.scalar(select(Organisation).where(Organisation.name == org.name)) is None:
            register_organisation(s, org, "tester")
        create_entry(s, spec, "tester", settings)
    return code


def entry_of(workspace: Workspace, code: str) -> CatalogEntry:
    with workspace.sessions() as s:
        return get_entry(s, code)


def read(workspace: Workspace, code: str, version: int | None = None) -> list[dict[str, Any]]:
    table = DatasetStore(workspace.data_dir, workspace.sessions).read(entry_of(workspace, code), version)
    return sorted(table.to_pylist(), key=lambda r: r["name"] or "")


def versions(workspace: Workspace, code: str) -> list[DatasetVersion]:
    with workspace.sessions() as s:
        entry = get_entry(s, code)
        return list(s.scalars(select(DatasetVersion).where(DatasetVersion.entry_id == entry.id)))


def ingest_events(workspace: Workspace) -> list[AuditEvent]:
    with workspace.sessions() as s:
        return list(s.scalars(select(AuditEvent).where(AuditEvent.action == "dataset.ingest")))


def set_entry(workspace: Workspace, code: str, **values: Any) -> None:
    with workspace.sessions() as s, s.begin():
        entry = s.scalar(select(CatalogEntry).where(CatalogEntry.code == code))
        assert entry is not None
        for name, value in values.items():
            setattr(entry, name, value)


# --- policies ------------------------------------------------------------------------------------


def test_quarantine_writes_good_rows_and_holds_back_bad_ones(workspace: Workspace, tmp_path: Path) -> None:
    code = make_entry(workspace)
    path = write_csv(tmp_path / "参保.csv", GOOD_ROWS + BAD_ROWS)
    progress: list[tuple[int, int]] = []
    result = ingest_file(
        workspace,
        code,
        path,
        operator="clerk",
        today=TODAY,
        on_progress=lambda d, t: progress.append((d, t)),
        max_reject_ratio=TOLERANT,
    )
    q = result.quality
    assert (q["policy"], q["mode"]) == ("quarantine", "replace")  # settings default; no key fields
    assert (q["rows_read"], q["rows_written"], q["rows_rejected"], q["rows_flagged"]) == (5, 3, 2, 0)
    assert q["rows_read"] == q["rows_written"] + q["rows_rejected"]
    version = result.version
    assert (version.rows_written, version.rows_rejected, version.mode) == (3, 2, WriteMode.REPLACE)
    assert version.source_sha256 == hashlib.sha256(path.read_bytes()).hexdigest() == q["sha256"]
    assert version.quality == q
    assert progress[-1] == (path.stat().st_size, path.stat().st_size)

    rows = read(workspace, code)
    assert [r["name"] for r in rows] == ["张三", "李四", "王五"]
    zhang, li, wang = rows
    assert zhang["id_number"] == ID_A and zhang["mobile"] == "13800138000"
    assert zhang["enrol_date"] == dt.date(2022, 1, 25) and zhang["base"] == Decimal("1234.5")
    assert (zhang["children"], zhang["employed"], zhang[ROW_FLAGS]) == (2, True, None)
    assert li["id_number"] == ID_B and li["division_code"] == "330106000000" and li["employed"] is False
    assert wang["id_number"] == ID_C and wang["mobile"] is None and wang["base"] is None

    held = pq.read_table(workspace.home / q["quarantine_file"]).to_pylist()
    assert [r["__file_row"] for r in held] == [6, 7]  # title row 1, header row 2
    assert held[0]["身份证号"] == ID_BAD
    assert "id_number: invalid identity number (check character)" in held[0][ROW_FLAGS]
    for reason in ("birth date", "mobile number (format)", "not a date", "not a decimal", "not an integer"):
        assert reason in held[1][ROW_FLAGS]
    assert not list(workspace.quarantine_dir.rglob("*.tmp"))

    columns = q["columns"]
    assert columns["id_number"]["problems"] == {
        "invalid identity number (check character)": 1,
        "invalid identity number (birth date)": 1,
    }
    assert columns["mobile"]["nulls"] == 1 and columns["base"]["nulls"] == 1
    assert columns["enrol_date"]["problems"] == {"not a date": 1}
    assert q["unmapped_columns"] == ["备注"]
    assert q["source"]["header_row"] == 2 and q["source"]["title_rows"]
    assert q["source"]["total_rows_dropped"] == [8]


def test_report_masks_every_example_value(workspace: Workspace, tmp_path: Path) -> None:
    code = make_entry(workspace)
    path = write_csv(tmp_path / "a.csv", GOOD_ROWS + BAD_ROWS)
    result = ingest_file(workspace, code, path, operator="clerk", today=TODAY, max_reject_ratio=TOLERANT)
    text = json.dumps(result.quality, ensure_ascii=False)
    for secret in (ID_BAD, ID_FUTURE, "12345678901"):
        assert secret not in text
    examples = {e["reason"]: e for c in result.quality["columns"].values() for e in c["examples"]}
    bad_id = examples["invalid identity number (check character)"]
    assert bad_id == {
        "file": "a.csv",
        "row": 6,
        "column": "身份证号",
        "reason": "invalid identity number (check character)",
        "value": ID_BAD[:4] + "*" * 10 + ID_BAD[-4:],
    }
    assert examples["invalid mobile number (format)"]["value"] == "12*******01"
    rendered = QualityReport(**{**result.quality, "columns": {}}).render_text()
    assert "rejected 2" in rendered and "备注" in rendered


def test_flag_keeps_every_row_with_its_reasons(workspace: Workspace, tmp_path: Path) -> None:
    code = make_entry(workspace, policy=BadRowPolicy.FLAG)
    path = write_csv(tmp_path / "a.csv", GOOD_ROWS + BAD_ROWS, title=False, total=False)
    result = ingest_file(workspace, code, path, operator="clerk", today=TODAY)
    q = result.quality
    assert (q["policy"], q["rows_read"], q["rows_written"], q["rows_rejected"], q["rows_flagged"]) == (
        "flag",
        5,
        5,
        0,
        2,
    )
    rows = {r["name"]: r for r in read(workspace, code)}
    assert rows["张三"][ROW_FLAGS] is None
    assert rows["赵六"][ROW_FLAGS] == "id_number: invalid identity number (check character)"
    qian = rows["钱七"]
    assert qian["id_number"] == ID_FUTURE  # a string that fails validation is kept, flagged
    assert (qian["enrol_date"], qian["base"], qian["children"], qian["employed"]) == (None, None, None, None)
    assert "employed: not a boolean" in qian[ROW_FLAGS]
    assert q["quarantine_file"] is None and not list(workspace.quarantine_dir.rglob("*.parquet"))


def test_reject_fails_the_file_and_keeps_the_previous_version(workspace: Workspace, tmp_path: Path) -> None:
    code = make_entry(workspace, policy=BadRowPolicy.REJECT)
    first = ingest_file(
        workspace, code, write_csv(tmp_path / "good.csv", GOOD_ROWS), operator="clerk", today=TODAY
    )
    before = read(workspace, code)
    bad = write_csv(tmp_path / "bad.csv", GOOD_ROWS + BAD_ROWS)
    with pytest.raises(InputError) as caught:
        ingest_file(workspace, code, bad, operator="clerk", today=TODAY)
    message = str(caught.value)
    assert caught.value.file == "bad.csv" and caught.value.row == 6 and caught.value.column == "身份证号"
    assert "row 6, column 身份证号: invalid identity number (check character)" in message
    assert ID_BAD[:4] + "*" * 10 + ID_BAD[-4:] in message and ID_BAD not in message
    assert [v.version for v in versions(workspace, code)] == [first.version.version]
    assert read(workspace, code) == before
    outcomes = [(e.outcome, e.detail.get("file")) for e in ingest_events(workspace)]
    assert outcomes == [("ok", "good.csv"), ("failed", "bad.csv")]


def test_policy_argument_overrides_the_entry(workspace: Workspace, tmp_path: Path) -> None:
    code = make_entry(workspace, policy=BadRowPolicy.REJECT)
    path = write_csv(tmp_path / "a.csv", GOOD_ROWS + BAD_ROWS)
    result = ingest_file(workspace, code, path, operator="clerk", policy=BadRowPolicy.FLAG, today=TODAY)
    assert result.quality["rows_flagged"] == 2
    again = ingest_file(
        workspace,
        code,
        path,
        operator="clerk",
        policy="quarantine",
        mode="append",
        today=TODAY,
        max_reject_ratio=TOLERANT,
    )
    assert (again.quality["policy"], again.version.mode, again.quality["rows_rejected"]) == (
        "quarantine",
        WriteMode.APPEND,
        2,
    )


def test_upsert_is_the_default_with_key_fields(workspace: Workspace, tmp_path: Path) -> None:
    code = make_entry(workspace, key_fields=["id_number"])
    ingest_file(workspace, code, write_csv(tmp_path / "a.csv", GOOD_ROWS[:2]), operator="clerk", today=TODAY)
    changed = GOOD_ROWS[1].replace("李四", "李四改")
    result = ingest_file(
        workspace, code, write_csv(tmp_path / "b.csv", [changed, GOOD_ROWS[2]]), operator="clerk", today=TODAY
    )
    assert result.version.mode == WriteMode.UPSERT and result.quality["mode"] == "upsert"
    assert [r["name"] for r in read(workspace, code)] == ["张三", "李四改", "王五"]


def test_required_value_missing_is_a_problem(workspace: Workspace, tmp_path: Path) -> None:
    code = make_entry(workspace, policy=BadRowPolicy.FLAG)
    path = write_csv(
        tmp_path / "a.csv", [",无名,13800138000,330106,2022-01-01,1,1,是,"], title=False, total=False
    )
    result = ingest_file(workspace, code, path, operator="clerk", today=TODAY)
    assert result.quality["columns"]["id_number"]["problems"] == {"missing required value": 1}
    assert read(workspace, code)[0][ROW_FLAGS] == "id_number: missing required value"


def test_small_batches_number_rows_across_batches(workspace: Workspace, tmp_path: Path) -> None:
    code = make_entry(workspace)
    rows = GOOD_ROWS * 3 + BAD_ROWS[:1] + GOOD_ROWS
    result = ingest_file(
        workspace,
        code,
        write_csv(tmp_path / "a.csv", rows, title=False),
        operator="c",
        batch_rows=4,
        today=TODAY,
    )
    assert result.quality["rows_read"] == 13 and result.quality["rows_rejected"] == 1
    assert [e["row"] for e in result.quality["columns"]["id_number"]["examples"]] == [11]


# --- refusals and file-level errors ---------------------------------------------------------------


def test_retired_entry_is_refused(workspace: Workspace, tmp_path: Path) -> None:
    code = make_entry(workspace)
    set_entry(workspace, code, state=EntryState.RETIRED)
    with pytest.raises(RuleViolation, match="retired"):
        ingest_file(workspace, code, write_csv(tmp_path / "a.csv", GOOD_ROWS), operator="clerk")
    assert versions(workspace, code) == []


@pytest.mark.req("REQ-1", "refuse-ingest", "audited")
def test_classified_entry_is_refused_and_the_refusal_audited(workspace: Workspace, tmp_path: Path) -> None:
    code = make_entry(workspace)
    set_entry(workspace, code, classified=True)
    with pytest.raises(RuleViolation, match="classified") as caught:
        ingest_file(workspace, code, write_csv(tmp_path / "a.csv", GOOD_ROWS), operator="clerk")
    assert caught.value.req == "REQ-1"
    assert versions(workspace, code) == []
    [event] = ingest_events(workspace)
    assert (event.actor, event.target, event.outcome, event.detail["req"]) == (
        "clerk",
        code,
        "refused",
        "REQ-1",
    )
    with workspace.sessions() as s:
        assert verify_chain(s)[0]


def test_a_file_whose_header_matches_nothing_is_refused(workspace: Workspace, tmp_path: Path) -> None:
    code = make_entry(workspace)
    path = tmp_path / "wrong.csv"
    path.write_text("a,b\n1,2\n", "utf-8")
    with pytest.raises(InputError, match=r"wrong\.csv.*expected columns: id_number \(身份证号\)"):
        ingest_file(workspace, code, path, operator="clerk")
    assert versions(workspace, code) == []


def test_success_is_audited_with_counts_not_values(workspace: Workspace, tmp_path: Path) -> None:
    code = make_entry(workspace)
    result = ingest_file(
        workspace,
        code,
        write_csv(tmp_path / "a.csv", GOOD_ROWS + BAD_ROWS),
        operator="clerk",
        today=TODAY,
        max_reject_ratio=TOLERANT,
    )
    [event] = ingest_events(workspace)
    detail = event.detail
    assert (event.outcome, detail["version"], detail["rows_written"], detail["rows_rejected"]) == (
        "ok",
        result.version.version,
        3,
        2,
    )
    text = json.dumps(detail, ensure_ascii=False)
    assert ID_A not in text and "张三" not in text
