"""The demo province: its world obeys the regulation, its files are what agencies send, and the
build runs through the public paths with the planted bad rows showing up in the quality reports."""

from __future__ import annotations

import csv
import json
from collections import Counter

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from python_calamine import CalamineWorkbook
from sqlalchemy import select

from pubdata.audit import verify_chain
from pubdata.catalog import rules
from pubdata.catalog.classes import EntryState, OpenClass, ShareClass
from pubdata.catalog.service import get_entry
from pubdata.clock import Clock
from pubdata.db.models import AuditEvent
from pubdata.demo import DemoSummary, build_demo
from pubdata.demo.generate import DemoFile, Layout, write_files
from pubdata.demo.people import YINLUN, enterprises, generator
from pubdata.demo.world import DRAFT_ON_PURPOSE, EL_ID_NUMBER, EL_USCC, ENTRIES, ORGANISATIONS
from pubdata.divisions import divisions
from pubdata.errors import PubdataError
from pubdata.identifiers import id_number_problem, make_id_number, mobile_problem, uscc_problem
from pubdata.store.delta import DatasetStore
from pubdata.workspace import Workspace

Built = tuple[Workspace, DemoSummary, list[tuple[str, int, int]]]


def _levels(spec_code: str) -> list[int]:
    spec = next(e for e in ENTRIES if e.code == spec_code)
    return [f.level or 0 for f in spec.fields]


# --- the world, at the spec level ---------------------------------------------------------------


def test_world_is_large_enough_and_every_entry_is_classified_and_graded() -> None:
    assert len(ENTRIES) >= 14
    assert len({e.provider for e in ENTRIES}) >= 10
    assert len(ORGANISATIONS) >= 10
    for entry in ENTRIES:
        assert entry.share_class is not None and entry.open_class is not None, entry.code
        assert all(f.level in (1, 2, 3, 4) for f in entry.fields), entry.code
        rules.apply_rules(entry, rules.DRAFT_RULES + rules.PUBLISH_RULES)


def test_unconditional_opening_is_all_l1_and_l4_is_prohibited() -> None:
    unconditional = [e for e in ENTRIES if e.open_class is OpenClass.UNCONDITIONAL]
    assert {"scjg_enterprise_register", "scjg_training_ad_cases"} <= {e.code for e in unconditional}
    for entry in unconditional:
        assert set(_levels(entry.code)) == {1}, entry.code
    l4 = [e for e in ENTRIES if 4 in _levels(e.code)]
    assert len(l4) >= 5
    assert all(e.open_class is OpenClass.PROHIBITED for e in l4)


def test_exceptions_to_sharing_state_legal_basis_and_conditions() -> None:
    excepted = [e for e in ENTRIES if e.share_class is not ShareClass.UNCONDITIONAL]
    assert any(e.share_class is ShareClass.NOT_SHARED for e in excepted)
    for entry in excepted:
        assert entry.legal_basis.strip() and entry.share_conditions.strip(), entry.code


def test_each_shared_element_has_one_authoritative_source_and_verification_sources() -> None:
    owners: dict[str, list[str]] = {}
    holders: Counter[str] = Counter()
    for entry in ENTRIES:
        for f in entry.fields:
            if f.element_code:
                holders[f.element_code] += 1
                if f.authoritative:
                    owners.setdefault(f.element_code, []).append(entry.provider)
    assert all(len(providers) == 1 for providers in owners.values()), owners
    assert owners[EL_ID_NUMBER] == ["浙江省公安厅"]
    assert owners[EL_USCC] == ["浙江省市场监督管理局"]
    assert holders[EL_ID_NUMBER] >= 6 and holders[EL_USCC] >= 6


def test_one_organisation_lacks_its_security_officer_and_its_entry_stays_draft() -> None:
    lacking = [o.spec.name for o in ORGANISATIONS if not o.spec.security_officer_name]
    assert len(lacking) == 1
    assert all(o.spec.head_name for o in ORGANISATIONS)
    held_back = [e for e in ENTRIES if e.code in DRAFT_ON_PURPOSE]
    assert [e.provider for e in held_back] == lacking


def test_organisations_have_valid_credit_codes_and_division_codes() -> None:
    names = {o.spec.name for o in ORGANISATIONS}
    assert all(e.provider in names for e in ENTRIES)
    for org in ORGANISATIONS:
        assert uscc_problem(org.spec.uscc) is None, org.spec.name
        assert divisions().find(org.spec.division_code) is not None
    competent = {o.spec.division_code[:6] for o in ORGANISATIONS if o.spec.is_competent_department}
    assert competent == {"330000", "330400", "330503", "331023"}
    assert {o.spec.org_type.value for o in ORGANISATIONS} >= {
        "state_organ",
        "public_service_operator",
        "national_agency_branch",
    }


# --- generated people and enterprises -----------------------------------------------------------


@pytest.fixture(scope="module")
def people() -> duckdb.DuckDBPyConnection:
    return generator(seed=11)


@settings(max_examples=25, deadline=None)
@given(start=st.integers(0, 30_000_000), count=st.integers(1, 200))
def test_any_range_of_persons_has_valid_unique_identity_numbers(
    people: duckdb.DuckDBPyConnection, start: int, count: int
) -> None:
    rows = people.sql(
        "SELECT id_number, mobile, gender, birth_date FROM persons($lo, $hi)",
        params={"lo": start, "hi": start + count},
    ).fetchall()
    assert len(rows) == count
    assert len({r[0] for r in rows}) == count
    for id_number, mobile, gender, birth in rows:
        assert id_number_problem(id_number) is None, id_number
        assert id_number == make_id_number(id_number[:6], birth.strftime("%Y%m%d"), int(id_number[14:17]))
        assert (int(id_number[16]) % 2 == 1) == (gender == "男")
        assert mobile_problem(mobile) is None, mobile


def test_persons_are_reproducible_and_some_carry_abolished_codes(people: duckdb.DuckDBPyConnection) -> None:
    again = generator(seed=11)
    query = "SELECT id_number, name FROM persons(0, 3000) ORDER BY 1"
    assert people.sql(query).fetchall() == again.sql(query).fetchall()
    abolished = people.sql(
        "SELECT count(*) FROM persons(0, 20000) WHERE id_county IN ('330103', '330104')"
    ).fetchall()[0][0]
    assert abolished > 10


def test_enterprises_have_valid_credit_codes() -> None:
    table = enterprises(3)
    codes = table.column("uscc").to_pylist()
    assert len(set(codes)) == len(codes) == table.num_rows
    assert all(uscc_problem(c) is None for c in codes)
    assert table.column("name").to_pylist().count(YINLUN) == 1


# --- the files at scale 1 -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[DemoFile]]:
    written: dict[str, list[DemoFile]] = {}
    for demo_file in write_files(tmp_path_factory.mktemp("demo-files"), scale=1.0):
        written.setdefault(demo_file.entry_code, []).append(demo_file)
    return written


def _bad(rows: list[dict[str, str]], id_col: str, mobile_col: str | None) -> int:
    problems = 0
    for row in rows:
        mobile = row.get(mobile_col or "", "") or ""
        if id_number_problem(row[id_col]) or (mobile_col and mobile and mobile_problem(mobile)):
            problems += 1
    return problems


def test_jiaxing_members_are_a_gbk_csv_matching_the_seed(files: dict[str, list[DemoFile]]) -> None:
    [demo_file] = files["jxzgh_park_members"]
    with pytest.raises(UnicodeDecodeError):
        demo_file.path.read_text("utf-8")
    with demo_file.path.open(encoding="gbk", newline="") as source:
        rows = list(csv.DictReader(source))
    assert len(rows) == demo_file.rows == 10_444
    assert len({r["所在园区"] for r in rows}) == 16
    assert len({r["单位信用代码"] for r in rows}) == 813
    assert _bad(rows, "公民身份号码", "手机号码") == demo_file.bad_rows == 5


def test_nanxun_members_are_messy_as_sent(files: dict[str, list[DemoFile]]) -> None:
    [demo_file] = files["nxzgh_new_form_members"]
    with demo_file.path.open(encoding="utf-8", newline="") as source:
        rows = list(csv.DictReader(source, delimiter="\t"))
    assert len(rows) == 12_322
    assert len({r["所属工会"] for r in rows}) == 232
    assert any(r["公民身份号码"][0] == "３" for r in rows)
    assert any(r["手机号码"].startswith("+86") for r in rows)
    assert any(r["红色工匠培育入库日期"] in ("—", "无") for r in rows)
    assert sum(r["红色工匠培育入库日期"].endswith("日") for r in rows) == 100
    assert all("年" in r["入会日期"] for r in rows)
    impossible = sum(r["入会日期"] == "2021年2月30日" for r in rows)
    assert impossible == 2
    assert _bad(rows, "公民身份号码", "手机号码") + impossible == demo_file.bad_rows == 4


def test_tiantai_gifts_are_a_spreadsheet_with_title_and_total_rows(files: dict[str, list[DemoFile]]) -> None:
    [demo_file] = files["tt_gift_records"]
    sheet = CalamineWorkbook.from_path(str(demo_file.path)).get_sheet_by_index(0).to_python()
    assert "送温暖" in str(sheet[0][0])
    header, records, total = sheet[2], sheet[3:-1], sheet[-1]
    assert total[0] == "合计" and total[6] == "1500份"
    rows = [dict(zip(header, (str(v) for v in r), strict=True)) for r in records]
    assert len(rows) == 1_500
    by_enterprise = Counter(r["单位名称"] for r in rows)
    assert len(by_enterprise) == 74 and by_enterprise[YINLUN] == 147
    assert _bad(rows, "公民身份号码", "手机号码") == demo_file.bad_rows == 2


def test_large_tables_are_parquet_and_updates_come_second(files: dict[str, list[DemoFile]]) -> None:
    for code in ("gat_population", "hrss_social_insurance"):
        [demo_file] = files[code]
        assert demo_file.path.suffix == ".parquet" and demo_file.rows > 20_000
    electricity = files["gw_enterprise_electricity"]
    assert [f.mode for f in electricity] == [None, electricity[1].mode] and electricity[1].mode is not None
    first_line = json.loads(electricity[0].path.read_text("utf-8").splitlines()[0])
    assert set(first_line) == {"uscc", "enterprise_name", "month", "kwh", "division_code"}
    assert len(files["scjg_enterprise_register"]) == 2
    population = duckdb.sql(f"SELECT count(DISTINCT id_number) FROM '{files['gat_population'][0].path}'")
    assert population.fetchall()[0][0] == files["gat_population"][0].rows


def test_scale_multiplies_person_tables_only() -> None:
    small, big = Layout(0.05).params, Layout(2.0).params
    assert small["j"] == 522 and big["j"] == 20_888
    assert small["parks"] == big["parks"] == 813 and small["tiantai"] == 74
    assert big["p"] >= big["j"] + big["nx"] + big["g"] + big["x"]


# --- the build, through the public paths --------------------------------------------------------


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, pinned_clock: Clock) -> Built:
    home = tmp_path_factory.mktemp("demo") / "home"
    steps: list[tuple[str, int, int]] = []
    summary = build_demo(
        home,
        scale=0.05,
        progress=lambda label, done, total: steps.append((label, done, total)),
        clock=pinned_clock,
    )
    return Workspace.open(home, clock=pinned_clock), summary, steps


@pytest.mark.req("REQ-25", "publish-blocked")
def test_build_publishes_every_entry_but_the_one_without_security_officer(built: Built) -> None:
    workspace, summary, steps = built
    assert summary.entries == len(ENTRIES) and summary.organisations == len(ORGANISATIONS)
    assert summary.published == len(ENTRIES) - 1
    assert list(summary.drafts) == list(DRAFT_ON_PURPOSE)
    assert "REQ-25" in next(iter(summary.drafts.values()))
    with workspace.sessions() as session:
        assert get_entry(session, "jgzgh_courier_dormitory_rooms").state is EntryState.DRAFT
        assert get_entry(session, "gat_population").state is EntryState.PUBLISHED
        refused = session.scalars(select(AuditEvent).where(AuditEvent.outcome == "refused")).all()
        assert [e.target for e in refused] == ["jgzgh_courier_dormitory_rooms"]
        assert verify_chain(session)[0]
    assert steps[-1][1] == steps[-1][2] and [s[1] for s in steps] == list(range(1, len(steps) + 1))


def test_build_quality_reports_show_exactly_the_planted_bad_rows(built: Built) -> None:
    _, summary, _ = built
    assert summary.bad_rows_planted >= 10
    assert summary.quality_issues == summary.bad_rows_planted
    for version in summary.ingested:
        assert version.rows_rejected + version.rows_flagged == version.bad_rows_planted, version
        assert version.rows_written + version.rows_rejected == version.rows_read, version
    by_code = {v.entry_code: v for v in summary.ingested}
    assert by_code["jxzgh_park_members"].rows_rejected == 5  # quarantined
    assert by_code["nxzgh_new_form_members"].rows_flagged == 4  # accepted with flags
    assert by_code["tt_gift_records"].rows_read == Layout(0.05).params["g"]  # 合计 row dropped


def test_build_keeps_two_versions_for_time_travel(built: Built) -> None:
    workspace, summary, _ = built
    assert summary.versions == len(summary.ingested) == 19
    store = DatasetStore(workspace.data_dir, workspace.sessions)
    with workspace.sessions() as session:
        register = get_entry(session, "scjg_enterprise_register")
        first, second = [v.version for v in store.versions(session, register)][-2:]
        before = store.read(register, first, ["uscc", "status"])
        after = store.read(register, second, ["uscc", "status"])
    assert after.num_rows == before.num_rows + 20
    assert (
        after.column("status").to_pylist().count("注销")
        == before.column("status").to_pylist().count("注销") + 15
    )


def test_build_writes_accounts_and_refuses_a_second_build(built: Built) -> None:
    workspace, _, _ = built
    listed = json.loads((workspace.home / "demo-accounts.json").read_text("utf-8"))["organisations"]
    assert len(listed) == len(ORGANISATIONS)
    assert {o["role"] for o in listed} == {"competent_department", "provider"}
    assert [o["name"] for o in listed if o["security_officer"] is None] == ["湖州市南浔区旧馆街道总工会"]
    assert all(uscc_problem(o["uscc"]) is None for o in listed)
    assert len(list((workspace.home / "demo-files").iterdir())) == 19
    with pytest.raises(PubdataError, match="already holds a demo"):
        build_demo(workspace.home, scale=0.05)
