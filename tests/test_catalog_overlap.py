"""What the platform already holds of a new collection (REQ-9), and who is the source (REQ-8)."""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from pubdata.catalog.classes import OpenClass, OrgType, ShareClass, UpdateCycle
from pubdata.catalog.overlap import OverlapHit, overlap_for_columns, overlap_for_file
from pubdata.catalog.service import create_entry, publish_entry, register_organisation
from pubdata.catalog.specs import EntrySpec, FieldSpec, OrganisationSpec
from pubdata.identifiers import make_uscc
from pubdata.settings import Settings

SETTINGS = Settings()


def entry(code: str, provider: str, fields: list[FieldSpec]) -> EntrySpec:
    return EntrySpec(
        code=code, name=f"{code} 名录", provider=provider, fields=fields, abstract="摘要",
        category_class="基础信息", share_class=ShareClass.RESTRICTED, legal_basis="条例",
        share_conditions="政务使用", open_class=OpenClass.PROHIBITED, update_cycle=UpdateCycle.MONTHLY,
    )  # fmt: skip


@pytest.fixture
def platform(session: Session) -> Session:
    """Police hold the population register; health holds patients, verifying ID numbers."""
    holders = (("杭州市公安局", "公安", "00250240"), ("杭州市卫生健康委员会", "卫健", "00250241"))
    for name, short, body in holders:
        uscc = make_uscc("11", "330100", body)
        persons = {"head_name": "负责人", "security_officer_name": "安全员"}
        spec = OrganisationSpec(name, OrgType.STATE_ORGAN, uscc, "330100", short, **persons)
        register_organisation(session, spec, "admin")
    population = [
        FieldSpec("sfzh", "公民身份号码", element_code="DE0001", authoritative=True),
        FieldSpec("xm", "姓名", element_code="DE0002", authoritative=True, aliases=["名字"]),
        FieldSpec("hjdz", "户籍地址", element_code="DE0003", authoritative=True),
    ]
    patients = [
        FieldSpec("id_number", "身份证号", element_code="DE0001"),
        FieldSpec("diagnosis", "诊断"),
    ]
    create_entry(session, entry("population", "公安", population), "admin", SETTINGS)
    create_entry(session, entry("patients", "卫健", patients), "admin", SETTINGS)
    publish_entry(session, "population", "admin", SETTINGS)
    publish_entry(session, "patients", "admin", SETTINGS)
    create_entry(session, entry("draft_only", "卫健", [FieldSpec("blood_type", "血型")]), "admin", SETTINGS)
    return session


def by_column(hits: list[OverlapHit]) -> dict[str, list[tuple[str, str, str]]]:
    grouped: dict[str, list[tuple[str, str, str]]] = {}
    for hit in hits:
        grouped.setdefault(hit.column, []).append((hit.matched_by, hit.entry_code, hit.field_name))
    return grouped


@pytest.mark.req("REQ-9", "already-held")
def test_element_codes_find_every_holder_and_name_the_authoritative_source(platform: Session) -> None:
    hits = overlap_for_columns(platform, [FieldSpec("cert_no", "证件号", element_code="DE0001")])
    assert [(h.entry_code, h.authoritative) for h in hits] == [("population", True), ("patients", False)]
    assert {(h.authoritative_entry, h.authoritative_provider) for h in hits} == {
        ("population", "杭州市公安局")
    }
    assert hits[1].provider == "杭州市卫生健康委员会" and hits[1].matched_by == "element_code"


@pytest.mark.req("REQ-9", "already-held")
def test_names_titles_aliases_and_kinds_find_held_elements(platform: Session) -> None:
    hits = overlap_for_columns(platform, ["xm", "户籍地址", "名字", "zjhm", "诊断", "血型", "营业面积"])
    grouped = by_column(hits)
    assert grouped["xm"] == [("name", "population", "xm")]
    assert grouped["户籍地址"] == [("title", "population", "hjdz")]
    assert grouped["名字"] == [("alias", "population", "xm")]
    # zjhm is held under other names: found by the kind of personal information it holds.
    assert grouped["zjhm"] == [("pii_kind", "population", "sfzh"), ("pii_kind", "patients", "id_number")]
    assert grouped["诊断"] == [("title", "patients", "diagnosis")]
    assert "血型" not in grouped, "draft entries are not held data yet"
    assert "营业面积" not in grouped
    name_hit = next(h for h in hits if h.column == "xm")
    assert name_hit.authoritative and name_hit.element_code == "DE0002"
    diagnosis = next(h for h in hits if h.column == "诊断")
    assert diagnosis.authoritative_entry is None and diagnosis.element_code is None


@pytest.mark.req("REQ-9", "already-held")
def test_an_unknown_element_code_falls_back_to_names_but_never_across_codes(platform: Session) -> None:
    hits = overlap_for_columns(platform, [FieldSpec("xm", element_code="DE9999")])
    assert hits == [], "a field with another element code is another element, whatever its name"
    hits = overlap_for_columns(platform, [FieldSpec("diagnosis", element_code="DE9999")])
    assert [(h.matched_by, h.entry_code) for h in hits] == [("name", "patients")]


def test_empty_platform_holds_nothing(session: Session) -> None:
    assert overlap_for_columns(session, ["sfzh", "xm"]) == []


@pytest.mark.req("REQ-9", "already-held")
def test_overlap_for_a_file_header(platform: Session, tmp_path: Path) -> None:
    readers = importlib.util.find_spec("pubdata.ingest.readers")
    if readers is None or not hasattr(importlib.import_module("pubdata.ingest.readers"), "open_source"):
        pytest.skip("file readers are not available yet")
    path = tmp_path / "new_form.csv"
    path.write_text("姓名,身份证号,营业面积\n张三,330102198001010018,10\n", "utf-8")
    grouped = by_column(overlap_for_file(platform, path))
    assert grouped["身份证号"] == [("title", "patients", "id_number")]
    assert grouped["姓名"] == [("title", "population", "xm")]
    assert "营业面积" not in grouped
