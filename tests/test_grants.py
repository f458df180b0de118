"""Grants (REQ-14, 15, 17, 27) and security assessments (REQ-26): every check made when a grant is
created, its lifecycle (revoke, renew, list) with its audit trail, the CLI, and the assessment level
rule. The decisions the grants feed are executed end to end in test_access.py, on this world."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from sqlalchemy import select
from typer.testing import CliRunner

from pubdata.catalog.classes import (
    FieldType,
    NationalLevel,
    OpenClass,
    OrgType,
    PiiKind,
    ShareClass,
    UpdateCycle,
    WriteMode,
)
from pubdata.catalog.service import create_entry, get_entry, publish_entry, register_organisation
from pubdata.catalog.specs import EntrySpec, FieldSpec, OrganisationSpec
from pubdata.cli.main import app as cli
from pubdata.db.models import AuditEvent, Grant
from pubdata.errors import InputError, NotFound, RuleViolation
from pubdata.gateway.assessments import assess_level, find_covering, record_assessment
from pubdata.gateway.grants import (
    grant_access,
    grant_state,
    list_grants,
    parse_row_predicate,
    renew_grant,
    revoke_grant,
)
from pubdata.gateway.identity import create_application, create_user
from pubdata.gateway.roles import Role
from pubdata.identifiers import make_id_number, make_uscc
from pubdata.settings import Settings
from pubdata.store.delta import DatasetStore
from pubdata.workspace import Workspace

SETTINGS = Settings()
#: A fixed instant: the library calls take it as `now`, the CLI as its root ``--now``.
NOW = dt.datetime(2026, 12, 1, 2, 0, tzinfo=dt.UTC)
LATER = NOW + dt.timedelta(days=30)
runner = CliRunner()

HR = "嘉兴市人力资源和社会保障局"
CIVIL = "嘉兴市民政局"
UNION = "嘉兴市总工会"
ORGS = (
    (HR, "嘉兴人社", OrgType.STATE_ORGAN, "JX000011"),
    (CIVIL, "嘉兴民政", OrgType.STATE_ORGAN, "JX000012"),
    (UNION, "嘉兴总工会", OrgType.AUTHORISED_ORG, "JX000013"),
)

# People of 南湖区 and 秀洲区 (嘉兴, 3304), 西湖区 (杭州, 3301) and 南浔区 (湖州, 3305).
ID_NANHU = make_id_number("330402", "19800101", 123)
ID_XIUZHOU = make_id_number("330411", "19900505", 456)
ID_XIHU = make_id_number("330106", "19700707", 789)
ID_NANXUN = make_id_number("330503", "20000202", 246)
PEOPLE = {
    "id_number": [ID_NANHU, ID_XIUZHOU, ID_XIHU, ID_NANXUN],
    "name": ["张三", "欧阳娜娜", "李四", "王五"],
    "mobile": ["13800138000", "13900139000", "13700137000", "13600136000"],
    "division_code": ["330402007024", "330411002003", "330106002051", "330503001001"],  # known villages
    "income": [5200, 6100, 7300, 4800],
}
SUBSIDIES = {
    "id_number": [ID_NANHU, ID_XIHU, ID_NANXUN],
    "name": ["张三", "李四", "王五"],
    "division_code": ["330402001001", "330106001001", "330503001001"],
    "amount": [300, 500, 200],
}


def _field(name: str, level: int, kind: PiiKind = PiiKind.NONE, **more: Any) -> FieldSpec:
    return FieldSpec(name, name, level=level, pii_kind=kind, **more)


PERSON_FIELDS = [
    _field("id_number", 4, PiiKind.ID_NUMBER, validator="id_number"),
    _field("name", 2, PiiKind.NAME),
    _field("mobile", 3, PiiKind.MOBILE, validator="mobile"),
    _field("division_code", 1, validator="division_code"),
    _field("income", 2, data_type=FieldType.INTEGER),
]
SUBSIDY_FIELDS = [
    _field("id_number", 4, PiiKind.ID_NUMBER, validator="id_number"),
    _field("name", 2, PiiKind.NAME),
    _field("division_code", 1, validator="division_code"),
    _field("amount", 1, data_type=FieldType.INTEGER),
]


def _entry(code: str, provider: str, fields: list[FieldSpec], share: ShareClass, **more: Any) -> EntrySpec:
    return EntrySpec(
        code=code, name=f"{code} 名录", provider=provider, fields=fields, abstract="摘要",
        category_class="基础信息", share_class=share, legal_basis="《浙江省公共数据条例》",
        share_conditions="按职责使用", open_class=OpenClass.PROHIBITED, update_cycle=UpdateCycle.MONTHLY,
        **more,
    )  # fmt: skip


ENTRIES = (
    (_entry("people", HR, PERSON_FIELDS, ShareClass.RESTRICTED), PEOPLE),
    (_entry("subsidies", CIVIL, SUBSIDY_FIELDS, ShareClass.UNCONDITIONAL), SUBSIDIES),
    (_entry("secrets", HR, [_field("note", 1)], ShareClass.NOT_SHARED), {"note": ["内部"]}),
    (
        _entry(
            "reserves", HR, [_field("item", 1), _field("stock", 1, data_type=FieldType.INTEGER)],
            ShareClass.RESTRICTED, national_level=NationalLevel.IMPORTANT,
        ),
        {"item": ["粮食"], "stock": [100]},
    ),
    (
        _entry(
            "firms", CIVIL, [_field("uscc", 1, PiiKind.USCC), _field("firm", 1)], ShareClass.UNCONDITIONAL
        ),
        {"uscc": [make_uscc("91", "330402", "JX100001")], "firm": ["嘉兴某公司"]},
    ),
)  # fmt: skip


@dataclass
class World:
    """A workspace with three organisations, five published entries with rows, users and apps."""

    workspace: Workspace
    store: DatasetStore

    @property
    def home(self) -> Path:
        return self.workspace.home


def build_world(workspace: Workspace) -> World:
    store = DatasetStore(workspace.data_dir, workspace.sessions)
    with workspace.sessions() as s, s.begin():
        for name, short, org_type, body in ORGS:
            uscc = make_uscc("11", "330400", body)
            persons = {"head_name": "负责人", "security_officer_name": "安全员"}
            register_organisation(
                s, OrganisationSpec(name, org_type, uscc, "330400", short, **persons), "admin"
            )
        for spec, _rows in ENTRIES:
            create_entry(s, spec, "admin", SETTINGS)
            publish_entry(s, spec.code, "admin", SETTINGS)
        for login, org, role in (("union.clerk", UNION, Role.CONSUMER), ("hr.clerk", HR, Role.PROVIDER)):
            create_user(s, login, roles=[role], organisation=org, password=None, actor="admin")
        create_user(
            s, "union.auditor", roles=[Role.AUDITOR], organisation=UNION, password=None, actor="admin"
        )
        for code, org in (
            ("union_care", UNION),
            ("union_other", UNION),
            ("hr_portal", HR),
            ("civil_app", CIVIL),
        ):
            create_application(
                s, code, name=code, organisation=org, purpose="帮扶", system_owner="系统负责人", actor="admin"
            )
    for spec, rows in ENTRIES:
        with workspace.sessions() as s:
            entry = get_entry(s, spec.code)
        table = pa.table(rows)
        store.write(entry, table.to_batches(), WriteMode.REPLACE, operator="admin")
    return World(workspace, store)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    built = build_world(Workspace.init(tmp_path_factory.mktemp("grants") / "home"))
    yield built
    built.workspace.engine.dispose()


def make_grant(world: World, **changes: Any) -> Grant:
    values: dict[str, Any] = {
        "organisation": UNION,
        "application": "union_care",
        "entry_code": "people",
        "fields": ["id_number", "name", "division_code", "income"],
        "purpose": "困难职工帮扶",
        "legal_basis": "《工会法》第六条",
        "valid_from": NOW,
        "valid_until": LATER,
        "actor": "hr.head",
        "settings": SETTINGS,
        "now": NOW,
    }
    values.update(changes)
    with world.workspace.sessions() as s, s.begin():
        grant = grant_access(s, **values)
        s.flush()
        return grant


def events(world: World, action: str) -> list[AuditEvent]:
    with world.workspace.sessions() as s:
        return list(s.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)))


# --- creation --------------------------------------------------------------------------------------


@pytest.mark.req("REQ-17", "grant-terms")
def test_a_grant_records_fields_region_predicate_deid_purpose_and_period(world: World) -> None:
    grant = make_grant(
        world,
        region_prefix="3304",
        region_field="division_code",
        row_predicate="income >= 5000",
        deid={"name": "suppress", "id_number": {"function": "pseudonym", "params": {"length": 32}}},
    )
    assert grant.fields == ["id_number", "name", "division_code", "income"]
    assert (grant.region_prefix, grant.region_field, grant.row_predicate) == (
        "3304",
        "division_code",
        "income >= 5000",
    )
    assert grant.deid == {
        "name": {"function": "suppress", "params": {}},
        "id_number": {"function": "pseudonym", "params": {"length": 32}},
    }
    assert grant.policy_version == 1 and grant_state(grant, NOW) == "active"
    created = [e for e in events(world, "grant.create") if e.target == f"grant:{grant.id}"]
    assert len(created) == 1 and created[0].outcome == "ok"
    assert created[0].detail["purpose"] == "困难职工帮扶" and created[0].detail["region_prefix"] == "3304"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"fields": ["id_number", "salary"]}, "no field salary"),
        ({"fields": []}, "at least one field"),
        ({"region_prefix": "3304"}, "both a division prefix"),
        ({"region_prefix": "33049", "region_field": "division_code"}, "not the prefix of a division"),
        ({"region_prefix": "3304", "region_field": "hometown"}, "no field hometown"),
        ({"row_predicate": "income > (SELECT max(amount) FROM subsidies)"}, "a subquery"),
        ({"row_predicate": "salary > 1"}, "salary, which is not a field"),
        ({"row_predicate": "read_csv('/etc/passwd') IS NULL"}, "the function READ_CSV"),
        ({"row_predicate": "income + 1"}, "not a condition"),
        ({"row_predicate": "income > 1; DROP TABLE people"}, "does not parse"),
        ({"deid": {"name": "scramble"}}, "unknown de-identification 'scramble'"),
        ({"deid": {"mobile": "mask_mobile"}}, "which the grant does not share"),
        (
            {"deid": {"name": {"function": "generalise_date", "params": {"granularity": "week"}}}},
            "granularity",
        ),
        ({"deid": {"name": {"function": "mask_name", "params": {"keep": 2}}}}, "takes no parameter keep"),
        ({"deid": {"id_number": {"function": "pseudonym", "params": {"slot": "x"}}}}, "assigned per grant"),
        ({"valid_until": NOW - dt.timedelta(days=1)}, "end after it starts"),
        ({"organisation": HR, "application": "hr_portal"}, "reads it without a grant"),
    ],
)
def test_bad_grants_are_refused_with_what_to_fix(world: World, changes: dict[str, Any], message: str) -> None:
    with pytest.raises(InputError, match=message):
        make_grant(world, **changes)


@pytest.mark.parametrize(
    ("changes", "message", "req"),
    [
        ({"entry_code": "secrets", "fields": ["note"]}, "not shared", "REQ-14"),
        ({"application": "hr_portal"}, "belongs to another organisation", "REQ-17"),
        ({"purpose": "  "}, "purpose and legal basis", "REQ-15"),
        ({"legal_basis": ""}, "purpose and legal basis", "REQ-15"),
        ({"valid_until": NOW + dt.timedelta(days=400)}, "at most 365 days", "REQ-15"),
        ({"valid_from": NOW - dt.timedelta(days=10)}, "in the past", "REQ-17"),
    ],
)
@pytest.mark.req("REQ-14", "sharing-classes")
def test_grants_against_a_rule_are_refused_and_audited(
    world: World, changes: dict[str, Any], message: str, req: str
) -> None:
    before = len(events(world, "grant.create"))
    with pytest.raises(RuleViolation, match=message) as refused:
        make_grant(world, **changes)
    assert refused.value.req == req
    after = events(world, "grant.create")
    assert (
        len(after) == before + 1 and after[-1].outcome == "refused" and message in after[-1].detail["reason"]
    )


def test_drafts_and_unknown_entries_cannot_be_granted(workspace: Workspace) -> None:
    world = World(workspace, DatasetStore(workspace.data_dir, workspace.sessions))
    with workspace.sessions() as s, s.begin():
        for name, short, org_type, body in ORGS:
            uscc = make_uscc("11", "330400", body)
            register_organisation(s, OrganisationSpec(name, org_type, uscc, "330400", short), "admin")
        create_entry(s, ENTRIES[0][0], "admin", SETTINGS)
        create_application(
            s, "union_care", name="c", organisation=UNION, purpose="p", system_owner="o", actor="a"
        )
    with pytest.raises(RuleViolation, match="draft; only published entries"):
        make_grant(world)
    with pytest.raises(NotFound):
        make_grant(world, entry_code="nothing")


def test_a_deactivated_application_cannot_receive_a_grant(world: World) -> None:
    with world.workspace.sessions() as s, s.begin():
        create_application(
            s, "union_old", name="o", organisation=UNION, purpose="p", system_owner="o", actor="a"
        )
        s.flush()
        from pubdata.gateway.identity import deactivate_application

        deactivate_application(s, "union_old", "admin")
    with pytest.raises(RuleViolation, match="deactivated"):
        make_grant(world, application="union_old")


@hsettings(max_examples=60, deadline=None)
@given(st.text(max_size=40))
def test_any_accepted_predicate_names_only_the_entry_fields(text: str) -> None:
    fields = {"income", "name"}
    try:
        parsed = parse_row_predicate(text, fields)
    except InputError:
        return
    from sqlglot import exp

    assert {c.name for c in parsed.find_all(exp.Column)} <= fields
    assert not list(parsed.find_all(exp.Table)) and not list(parsed.find_all(exp.Query))


# --- lifecycle -------------------------------------------------------------------------------------


def test_revoke_and_renew_are_audited_and_renewing_raises_the_policy_version(world: World) -> None:
    grant = make_grant(world, purpose="续期测试")
    with world.workspace.sessions() as s, s.begin():
        renewed = renew_grant(
            s, grant.id, valid_until=NOW + dt.timedelta(days=200), actor="hr.head", settings=SETTINGS, now=NOW
        )
        assert renewed.policy_version == 2
    with world.workspace.sessions() as s, s.begin(), pytest.raises(RuleViolation, match="at most 365"):
        renew_grant(
            s, grant.id, valid_until=NOW + dt.timedelta(days=500), actor="hr.head", settings=SETTINGS, now=NOW
        )
    with world.workspace.sessions() as s, s.begin():
        revoked = revoke_grant(s, grant.id, actor="hr.head", reason="项目结束", now=NOW)
        first = revoked.revoked_at
        again = revoke_grant(s, grant.id, actor="someone", reason="again", now=LATER)
        assert again.revoked_at == first and again.revoke_reason == "项目结束"
        assert grant_state(again, NOW + dt.timedelta(seconds=1)) == "revoked"
    with (
        world.workspace.sessions() as s,
        s.begin(),
        pytest.raises(RuleViolation, match="revoked; make a new one"),
    ):
        renew_grant(s, grant.id, valid_until=LATER, actor="hr.head", settings=SETTINGS, now=NOW)
    mine = f"grant:{grant.id}"
    assert [e.outcome for e in events(world, "grant.renew") if e.target == mine] == [
        "ok",
        "refused",
        "refused",
    ]
    assert [e.detail["reason"] for e in events(world, "grant.revoke") if e.target == mine] == ["项目结束"]


def test_list_grants_filters_by_organisation_entry_application_and_time(world: World) -> None:
    grant = make_grant(
        world, application="union_other", purpose="列表测试", valid_from=NOW + dt.timedelta(days=2)
    )
    with world.workspace.sessions() as s:
        mine = list_grants(s, organisation="嘉兴总工会", entry_code="people", application="union_other")
        assert grant.id in [g.id for g in mine]
        assert grant.id not in [g.id for g in list_grants(s, active_at=NOW)]
        assert grant.id in [g.id for g in list_grants(s, active_at=NOW + dt.timedelta(days=3))]
        assert list_grants(s, entry_code="firms") == []


def test_cli_grants_add_list_renew_revoke(world: World) -> None:
    home = str(world.home)
    until = (NOW + dt.timedelta(days=20)).date().isoformat()
    added = runner.invoke(
        cli,
        ["--now", NOW.isoformat(), "grants", "add", "--home", home, "--org", UNION, "--app", "union_care",
         "--entry", "people",
         "--field", "name", "--field", "division_code", "--region-prefix", "3304", "--region-field",
         "division_code", "--deid", "name=mask_name",
         "--deid", "division_code=generalise_division:level=county",
         "--purpose", "命令行测试", "--legal-basis", "《工会法》", "--until", until, "--json"],
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    facts = json.loads(added.output)
    assert facts["fields"] == ["name", "division_code"] and facts["region_prefix"] == "3304"
    assert facts["deid"]["division_code"] == {
        "function": "generalise_division",
        "params": {"level": "county"},
    }
    listed = runner.invoke(
        cli, ["--now", NOW.isoformat(), "grants", "list", "--home", home, "--entry", "people", "--json"]
    )
    assert listed.exit_code == 0, listed.output
    assert facts["id"] in [g["id"] for g in json.loads(listed.output)]
    renewed = runner.invoke(
        cli,
        [
            "--now",
            NOW.isoformat(),
            "grants",
            "renew",
            str(facts["id"]),
            "--home",
            home,
            "--days",
            "60",
            "--json",
        ],
    )
    assert renewed.exit_code == 0, renewed.output
    assert json.loads(renewed.output)["policy_version"] == 2
    revoked = runner.invoke(
        cli,
        ["--now", NOW.isoformat(), "grants", "revoke", str(facts["id"]), "--home", home, "--reason", "结束"],
    )
    assert revoked.exit_code == 0, revoked.output
    refused = runner.invoke(
        cli,
        ["--now", NOW.isoformat(), "grants", "add", "--home", home, "--org", UNION, "--app", "union_care",
         "--entry", "secrets",
         "--field", "note", "--purpose", "x", "--legal-basis", "y", "--days", "5"],
    )  # fmt: skip
    assert refused.exit_code != 0 and "not shared" in refused.output


# --- assessments (REQ-26) --------------------------------------------------------------------------


@pytest.mark.req("REQ-26", "result-level")
@pytest.mark.req("REQ-31", "derived-highest")
def test_assessment_level_takes_the_highest_input_and_rises_when_quasi_identifiers_combine(
    world: World,
) -> None:
    with world.workspace.sessions() as s:
        people, subsidies, firms = (get_entry(s, c) for c in ("people", "subsidies", "firms"))
        assert assess_level([firms]) == 1
        assert assess_level([people]) == 4  # 就高从严: the identity number is L4
        assert assess_level([subsidies, firms]) == 4
    names = EntrySpec("a", "a", HR, [_field("name", 2, PiiKind.NAME)])
    births = EntrySpec("b", "b", HR, [_field("birth", 2, PiiKind.BIRTH_DATE)])
    places = EntrySpec("c", "c", HR, [_field("division_code", 1, validator="division_code")])
    assert assess_level([names, births]) == 2  # two classes: not yet singling anyone out
    assert assess_level([names, births, places]) == 3  # name + birth date + division from three entries


@pytest.mark.req("REQ-26", "assessment-required")
def test_assessments_are_recorded_audited_and_cover_subsets_until_they_expire(world: World) -> None:
    with world.workspace.sessions() as s, s.begin():
        row = record_assessment(
            s, ["subsidies", "people"], None, "可以关联", "安全官", LATER, organisation=CIVIL
        )
        assert row.entry_codes == ["people", "subsidies"] and row.result_level == 4
        civil = row.organisation_id
        assert find_covering(s, ["people", "subsidies"], NOW, civil) is not None
        assert find_covering(s, ["people"], NOW, civil) is not None
        assert find_covering(s, ["people", "subsidies"], NOW, None) is None  # made for 民政 only
        assert find_covering(s, ["people", "subsidies", "firms"], NOW, civil) is None
        assert find_covering(s, ["people", "subsidies"], LATER + dt.timedelta(seconds=1), civil) is None
        with pytest.raises(InputError, match="needs a written conclusion"):
            record_assessment(s, ["people", "subsidies"], 2, "", "安全官", LATER)
        with pytest.raises(InputError, match="at least two entries"):
            record_assessment(s, ["people"], None, "x", "安全官", LATER)
        with pytest.raises(NotFound):
            record_assessment(s, ["people", "ghosts"], None, "x", "安全官", LATER)
    recorded = events(world, "assessment.record")
    assert (
        recorded[-1].detail["entries"] == ["people", "subsidies"]
        and recorded[-1].detail["computed_level"] == 4
    )


def test_cli_assessments_add_and_list(world: World) -> None:
    home = str(world.home)
    added = runner.invoke(
        cli,
        ["--now", NOW.isoformat(), "assessments", "add", "--home", home, "--entry", "firms",
         "--entry", "subsidies",
         "--conclusion", "企业与补贴可关联", "--approved-by", "安全官", "--days", "90", "--json"],
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    facts = json.loads(added.output)
    assert facts["entry_codes"] == ["firms", "subsidies"] and facts["result_level"] == 4
    listed = runner.invoke(cli, ["--now", NOW.isoformat(), "assessments", "list", "--home", home, "--json"])
    assert listed.exit_code == 0, listed.output
    assert facts["id"] in [a["id"] for a in json.loads(listed.output)]
