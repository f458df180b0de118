"""The regulation's catalogue rules, enforced where entries are written (catalog.service / rules)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from pubdata.audit import verify_chain
from pubdata.catalog import rules
from pubdata.catalog.classes import (
    EntryState,
    NationalLevel,
    OpenClass,
    OrgType,
    PiiKind,
    ShareClass,
    UpdateCycle,
)
from pubdata.catalog.service import (
    create_entry,
    find_organisation,
    get_entry,
    publish_entry,
    register_organisation,
    retire_entry,
    set_responsible_persons,
    update_entry,
)
from pubdata.catalog.specs import EntrySpec, FieldSpec, OrganisationSpec
from pubdata.db.models import AuditEvent, CatalogEntry, CatalogField
from pubdata.errors import InputError, NotFound, PubdataError, RuleViolation
from pubdata.identifiers import make_uscc
from pubdata.settings import Settings
from pubdata.workspace import Workspace

SETTINGS = Settings()
POLICE = make_uscc("11", "330100", "00250240")
HEALTH = make_uscc("11", "330100", "00250241")


def police(**overrides: Any) -> OrganisationSpec:
    values: dict[str, Any] = {
        "name": "杭州市公安局",
        "org_type": OrgType.STATE_ORGAN,
        "uscc": POLICE,
        "division_code": "330100",
        "short_name": "市公安局",
        "head_name": "张局长",
        "security_officer_name": "李安全",
    }
    return OrganisationSpec(**{**values, **overrides})


def health() -> OrganisationSpec:
    return OrganisationSpec("杭州市卫生健康委员会", OrgType.STATE_ORGAN, HEALTH, "330100", "市卫健委",
                            head_name="王主任", security_officer_name="赵安全")  # fmt: skip


def spec(code: str = "population", **overrides: Any) -> EntrySpec:
    """A publishable entry: restricted sharing with its basis, prohibited from opening."""
    values: dict[str, Any] = {
        "name": "户籍人口",
        "provider": "市公安局",
        "fields": [
            FieldSpec("sfzh", "公民身份号码", element_code="DE0001", authoritative=True),
            FieldSpec("xm", "姓名", element_code="DE0002", authoritative=True),
            FieldSpec("remark", "备注"),
        ],
        "abstract": "本市户籍人口基本信息",
        "category_class": "基础信息",
        "share_class": ShareClass.RESTRICTED,
        "legal_basis": "《浙江省公共数据条例》第二十三条",
        "share_conditions": "仅用于政务服务身份核验",
        "open_class": OpenClass.PROHIBITED,
        "update_cycle": UpdateCycle.DAILY,
        "key_fields": ["sfzh"],
    }
    return EntrySpec(code=code, **{**values, **overrides})


def open_data(code: str = "parks", **overrides: Any) -> EntrySpec:
    """An entry that may be opened unconditionally: all L1."""
    values: dict[str, Any] = {
        "name": "公园名录",
        "fields": [FieldSpec("park_name", "公园名称", level=1), FieldSpec("area", "面积", level=1)],
        "share_class": ShareClass.UNCONDITIONAL,
        "open_class": OpenClass.UNCONDITIONAL,
        "key_fields": [],
    }
    return spec(code, **{**values, **overrides})


@pytest.fixture
def org(session: Session) -> Session:
    register_organisation(session, police(), "admin")
    return session


def counts(session: Session) -> tuple[int, int]:
    return (
        session.scalar(select(func.count()).select_from(CatalogEntry)) or 0,
        session.scalar(select(func.count()).select_from(CatalogField)) or 0,
    )


def refusals(session: Session) -> list[AuditEvent]:
    return list(session.scalars(select(AuditEvent).where(AuditEvent.outcome == "refused")))


# --- organisations -----------------------------------------------------------------------------


@pytest.mark.req("REQ-2", "credit-code", "division-code")
def test_organisation_is_validated_placed_in_its_tenant_and_audited(session: Session) -> None:
    org = register_organisation(session, police(uscc=POLICE.lower()), "admin")
    assert org.uscc == POLICE and org.division_code == "330100000000"
    assert org.tenant.name == "杭州市"
    assert find_organisation(session, "市公安局") is org
    assert find_organisation(session, POLICE) is org
    assert find_organisation(session, "杭州市公安局") is org
    with pytest.raises(NotFound):
        find_organisation(session, "省公安厅")
    event = session.scalars(select(AuditEvent).where(AuditEvent.action == "organisation.register")).one()
    assert event.target == POLICE and event.actor == "admin"


def test_organisation_refuses_bad_codes_and_duplicates(session: Session) -> None:
    with pytest.raises(InputError, match="uscc"):
        register_organisation(session, police(uscc=POLICE[:-1] + ("0" if POLICE[-1] != "0" else "1")), "a")
    with pytest.raises(InputError, match="division_code"):
        register_organisation(session, police(division_code="999999"), "a")
    register_organisation(session, police(), "a")
    with pytest.raises(PubdataError, match="already"):
        register_organisation(session, police(name="另一个名字"), "a")


# --- REQ-1 -------------------------------------------------------------------------------------


@pytest.mark.req("REQ-1", "refuse-register", "audited")
def test_classified_entry_is_refused_and_the_refusal_survives_the_rollback(workspace: Workspace) -> None:
    with workspace.sessions() as s, s.begin():
        register_organisation(s, police(), "admin")
    with pytest.raises(RuleViolation) as refused, workspace.sessions() as s, s.begin():
        create_entry(s, spec("secret", classified=True), "clerk", SETTINGS)
    assert refused.value.req == "REQ-1"
    with workspace.sessions() as s:
        assert counts(s) == (0, 0)
        (event,) = refusals(s)
        assert (event.action, event.actor, event.target) == ("catalog.create", "clerk", "secret")
        assert event.detail["req"] == "REQ-1" and "classified" in event.detail["reason"]
        assert verify_chain(s)[0]


@pytest.mark.req("REQ-1", "refuse-register")
def test_flagging_an_entry_classified_later_is_refused_too(workspace: Workspace) -> None:
    with workspace.sessions() as s, s.begin():
        register_organisation(s, police(), "admin")
        create_entry(s, spec(), "clerk", SETTINGS)
    with pytest.raises(RuleViolation, match="REQ-1"), workspace.sessions() as s, s.begin():
        update_entry(s, "population", {"classified": True}, "clerk", SETTINGS)
    with workspace.sessions() as s:
        assert get_entry(s, "population").classified is False
        assert [e.action for e in refusals(s)] == ["catalog.update"]


@pytest.mark.req("REQ-1", "refuse-register", "audited")
def test_refusal_inside_a_transaction_that_already_wrote_is_still_recorded(org: Session) -> None:
    """SQLite has one writer: the refusal goes into the caller's transaction rather than deadlock."""
    with pytest.raises(RuleViolation, match="REQ-1"):
        create_entry(org, spec("secret", classified=True), "clerk", SETTINGS)
    assert [e.target for e in refusals(org)] == ["secret"]


# --- REQ-14 ------------------------------------------------------------------------------------


@pytest.mark.req("REQ-14", "basis-required")
@pytest.mark.parametrize("share_class", [ShareClass.RESTRICTED, ShareClass.NOT_SHARED])
@pytest.mark.parametrize("missing", ["legal_basis", "share_conditions"])
def test_restricted_or_not_shared_needs_basis_and_conditions(
    workspace: Workspace, share_class: ShareClass, missing: str
) -> None:
    with workspace.sessions() as s, s.begin():
        register_organisation(s, police(), "admin")
    with pytest.raises(RuleViolation, match="REQ-14"), workspace.sessions() as s, s.begin():
        create_entry(s, spec(share_class=share_class, **{missing: "  "}), "clerk", SETTINGS)
    with workspace.sessions() as s:
        assert counts(s) == (0, 0)
        assert refusals(s)[0].detail["req"] == "REQ-14"
    with workspace.sessions() as s, s.begin():
        assert create_entry(s, spec(share_class=share_class), "clerk", SETTINGS).share_class is share_class


@pytest.mark.req("REQ-14", "basis-required")
def test_update_cannot_drop_the_legal_basis(org: Session) -> None:
    create_entry(org, spec(), "clerk", SETTINGS)
    with pytest.raises(RuleViolation, match="REQ-14"):
        update_entry(org, "population", {"legal_basis": ""}, "clerk", SETTINGS)
    assert get_entry(org, "population").legal_basis.startswith("《浙江省")


# --- REQ-19 / REQ-31 ---------------------------------------------------------------------------


@pytest.mark.req("REQ-19", "unconditional-l1")
def test_unconditional_opening_needs_every_field_at_l1(org: Session) -> None:
    entry = create_entry(org, open_data(), "clerk", SETTINGS)
    assert entry.open_class is OpenClass.UNCONDITIONAL
    fields = [FieldSpec("park_name", level=1), FieldSpec("manager_phone", "管理员电话")]
    with pytest.raises(RuleViolation, match="REQ-19") as refused:
        create_entry(org, open_data("parks2", fields=fields), "clerk", SETTINGS)
    assert "manager_phone" in str(refused.value)


@pytest.mark.req("REQ-19", "l4-prohibited")
@pytest.mark.parametrize("open_class", [OpenClass.RESTRICTED, OpenClass.UNCONDITIONAL])
def test_l4_data_is_never_opened(org: Session, open_class: OpenClass) -> None:
    with pytest.raises(RuleViolation, match="REQ-19"):
        create_entry(org, spec(open_class=open_class), "clerk", SETTINGS)
    draft = create_entry(org, spec(open_class=None), "clerk", SETTINGS)
    assert draft.security_level == 4 and draft.open_class is None


@pytest.mark.req("REQ-31", "core-important")
@pytest.mark.parametrize("level", [NationalLevel.CORE, NationalLevel.IMPORTANT])
def test_core_and_important_data_is_never_opened_nor_shared_unconditionally(
    org: Session, level: NationalLevel
) -> None:
    fields = [FieldSpec("park_name", level=1)]
    with pytest.raises(RuleViolation, match="REQ-31"):
        create_entry(org, spec("a", fields=fields, key_fields=[], national_level=level,
                               open_class=OpenClass.RESTRICTED), "clerk", SETTINGS)  # fmt: skip
    with pytest.raises(RuleViolation, match="REQ-31"):
        create_entry(org, spec("b", fields=fields, key_fields=[], national_level=level,
                               share_class=ShareClass.UNCONDITIONAL), "clerk", SETTINGS)  # fmt: skip
    graded_field = [FieldSpec("park_name", level=1, national_level=level)]
    with pytest.raises(RuleViolation, match="REQ-31"):
        create_entry(org, spec("c", fields=graded_field, key_fields=[],
                               share_class=ShareClass.UNCONDITIONAL), "clerk", SETTINGS)  # fmt: skip
    assert create_entry(org, spec("d", fields=fields, key_fields=[], national_level=level), "c", SETTINGS)


@pytest.mark.req("REQ-19", "unconditional-l1", "l4-prohibited")
@pytest.mark.req("REQ-31", "core-important")
@pytest.mark.req("REQ-14", "basis-required")
@given(
    levels=st.lists(st.integers(1, 4), min_size=1, max_size=4),
    national=st.sampled_from(list(NationalLevel)),
    share=st.sampled_from([None, *ShareClass]),
    opening=st.sampled_from([None, *OpenClass]),
    basis=st.booleans(),
)
def test_draft_rules_accept_exactly_the_allowed_combinations(
    levels: list[int], national: NationalLevel, share: ShareClass | None, opening: OpenClass | None,
    basis: bool,
) -> None:  # fmt: skip
    candidate = spec(
        fields=[FieldSpec(f"f{i}", level=level) for i, level in enumerate(levels)],
        key_fields=[], national_level=national, share_class=share, open_class=opening,
        legal_basis="basis" if basis else "", share_conditions="conditions" if basis else "",
    )  # fmt: skip
    sensitive = national is not NationalLevel.GENERAL
    allowed = (
        (share in (None, ShareClass.UNCONDITIONAL) or basis)
        and not (opening is OpenClass.UNCONDITIONAL and max(levels) > 1)
        and not (opening in (OpenClass.UNCONDITIONAL, OpenClass.RESTRICTED) and (4 in levels or sensitive))
        and not (share is ShareClass.UNCONDITIONAL and sensitive)
    )
    try:
        rules.apply_rules(candidate, rules.DRAFT_RULES)
    except RuleViolation as refused:
        assert not allowed, refused
        assert refused.req in ("REQ-14", "REQ-19", "REQ-31")
    else:
        assert allowed


# --- REQ-8 -------------------------------------------------------------------------------------


@pytest.mark.req("REQ-8", "one-source", "verification-source")
def test_one_authoritative_source_per_element(org: Session) -> None:
    register_organisation(org, health(), "admin")
    create_entry(org, spec(), "clerk", SETTINGS)
    second = [FieldSpec("sfzh", "身份证号", element_code="DE0001", authoritative=True)]
    with pytest.raises(RuleViolation, match="REQ-8") as refused:
        create_entry(org, spec("patients", provider="市卫健委", fields=second, key_fields=[]), "c", SETTINGS)
    assert "population" in str(refused.value) and "杭州市公安局" in str(refused.value)
    verifying = [dataclasses.replace(second[0], authoritative=False)]
    entry = create_entry(org, spec("patients", provider="市卫健委", fields=verifying, key_fields=[]), "c",
                         SETTINGS)  # fmt: skip
    assert entry.fields[0].is_authoritative_source is False
    with pytest.raises(RuleViolation, match="REQ-8"):
        update_entry(org, "patients", {"fields": second}, "c", SETTINGS)


@pytest.mark.req("REQ-8", "one-source")
def test_retiring_the_source_frees_the_element(org: Session) -> None:
    create_entry(org, spec(), "clerk", SETTINGS)
    publish_entry(org, "population", "clerk", SETTINGS)
    retire_entry(org, "population", "clerk")
    assert create_entry(org, spec("population_v2"), "clerk", SETTINGS).fields[0].is_authoritative_source


@pytest.mark.req("REQ-8", "one-source")
def test_authoritative_field_needs_an_element_code_and_one_claim(org: Session) -> None:
    with pytest.raises(RuleViolation, match="element code"):
        create_entry(org, spec(fields=[FieldSpec("sfzh", authoritative=True)], key_fields=[]), "c", SETTINGS)
    twice = [FieldSpec("a", element_code="X", authoritative=True), FieldSpec("b", element_code="X",
                                                                            authoritative=True)]  # fmt: skip
    with pytest.raises(RuleViolation, match="twice"):
        create_entry(org, spec(fields=twice, key_fields=[]), "c", SETTINGS)


# --- field names, suggestions on create --------------------------------------------------------


@pytest.mark.parametrize("name", ["Name", "1st", "__x", "a-b", "a b", "x" * 64, "", "姓名", "drop;table"])
def test_field_names_must_be_safe_identifiers(org: Session, name: str) -> None:
    with pytest.raises(RuleViolation, match="field name"):
        create_entry(org, spec(fields=[FieldSpec(name)], key_fields=[]), "clerk", SETTINGS)
    assert counts(org) == (0, 0)


def test_duplicate_fields_and_unknown_key_fields_are_refused(org: Session) -> None:
    with pytest.raises(RuleViolation, match="twice"):
        create_entry(org, spec(fields=[FieldSpec("a"), FieldSpec("a")], key_fields=[]), "c", SETTINGS)
    with pytest.raises(RuleViolation, match="key field"):
        create_entry(org, spec(key_fields=["nope"]), "c", SETTINGS)
    with pytest.raises(RuleViolation, match="entry code"):
        create_entry(org, spec("../etc"), "c", SETTINGS)
    create_entry(org, spec(), "c", SETTINGS)
    with pytest.raises(PubdataError, match="already exists"):
        create_entry(org, spec(), "c", SETTINGS)


@pytest.mark.req("REQ-30", "l4-content", "combination-l3")
def test_create_fills_missing_kinds_and_levels_and_keeps_declared_ones(org: Session) -> None:
    fields = [
        FieldSpec("sfzh", "公民身份号码"),
        FieldSpec("xm", "姓名"),
        FieldSpec("lxdh", "联系电话"),
        FieldSpec("park", "公园", level=2),
        FieldSpec("contact", "联系", pii_kind=PiiKind.MOBILE),
    ]
    entry = create_entry(org, spec(fields=fields, key_fields=[]), "clerk", SETTINGS)
    got = {f.name: (f.pii_kind, f.level) for f in entry.fields}
    assert got == {
        "sfzh": (PiiKind.ID_NUMBER, 4),
        "xm": (PiiKind.NAME, 3),  # raised: name + ID number + mobile together
        "lxdh": (PiiKind.MOBILE, 3),
        "park": (PiiKind.NONE, 2),
        "contact": (PiiKind.MOBILE, 3),
    }
    event = org.scalars(select(AuditEvent).where(AuditEvent.action == "catalog.create")).one()
    suggested = event.detail["suggested"]
    assert "raised" in suggested["xm"] and "as declared" in suggested["park"] and "contact" in suggested


# --- REQ-3 / REQ-10 / REQ-25 and the lifecycle -------------------------------------------------


@pytest.mark.req("REQ-3", "graded-before-publish")
@pytest.mark.parametrize("missing", ["share_class", "open_class"])
def test_publishing_needs_sharing_and_opening_class(org: Session, missing: str) -> None:
    create_entry(org, spec(**{missing: None}), "clerk", SETTINGS)
    with pytest.raises(RuleViolation, match="REQ-3") as refused:
        publish_entry(org, "population", "clerk", SETTINGS)
    assert {"share_class": "sharing class", "open_class": "opening class"}[missing] in str(refused.value)
    assert get_entry(org, "population").state is EntryState.DRAFT
    assert refusals(org)[0].action == "catalog.publish"


@pytest.mark.req("REQ-3", "graded-before-publish")
def test_publish_rule_needs_a_level_on_every_field() -> None:
    with pytest.raises(RuleViolation, match="REQ-3"):
        rules.check_classified_and_graded(spec(fields=[FieldSpec("a", level=None)]))


@pytest.mark.req("REQ-10", "core-metadata")
@pytest.mark.parametrize("missing", ["abstract", "category_class", "name", "format"])
def test_publishing_needs_the_national_core_metadata(org: Session, missing: str) -> None:
    create_entry(org, spec(**{missing: ""}), "clerk", SETTINGS)
    with pytest.raises(RuleViolation, match="REQ-10") as refused:
        publish_entry(org, "population", "clerk", SETTINGS)
    assert missing.replace("_", " ") in str(refused.value)


@pytest.mark.req("REQ-10", "core-metadata")
def test_an_entry_without_fields_cannot_be_published(org: Session) -> None:
    create_entry(org, spec(fields=[], key_fields=[]), "clerk", SETTINGS)
    with pytest.raises(RuleViolation, match="data items"):
        publish_entry(org, "population", "clerk", SETTINGS)


@pytest.mark.req("REQ-25", "publish-blocked")
def test_publishing_waits_for_head_and_security_officer(session: Session) -> None:
    register_organisation(session, police(security_officer_name=None), "admin")
    create_entry(session, spec(), "clerk", SETTINGS)
    with pytest.raises(RuleViolation, match="REQ-25") as refused:
        publish_entry(session, "population", "clerk", SETTINGS)
    assert "security officer" in str(refused.value) and "head" not in str(refused.value)
    relaxed = dataclasses.replace(SETTINGS, require_responsible_persons=False)
    set_responsible_persons(session, POLICE, None, None, "李安全", "0571-1", "admin")
    with pytest.raises(RuleViolation, match="REQ-25"):
        publish_entry(session, "population", "clerk", SETTINGS)
    assert publish_entry(session, "population", "clerk", relaxed).state is EntryState.PUBLISHED
    org = set_responsible_persons(session, "市公安局", "张局长", "0571-2", "李安全", "0571-1", "admin")
    assert (org.head_name, org.security_officer_contact) == ("张局长", "0571-1")
    events = session.scalars(select(AuditEvent.action).where(AuditEvent.action.like("org%"))).all()
    # One event per duty that changed: the head vacated, the officer named, the head named again.
    assert events == ["organisation.register", *["org.responsible"] * 3]


@pytest.mark.req("REQ-40", "catalogue-changes")
def test_lifecycle_runs_draft_published_retired_only(org: Session) -> None:
    create_entry(org, spec(), "clerk", SETTINGS)
    with pytest.raises(RuleViolation, match="cannot become retired"):
        retire_entry(org, "population", "clerk")
    entry = publish_entry(org, "population", "clerk", SETTINGS)
    assert entry.state is EntryState.PUBLISHED and entry.published_at is not None
    with pytest.raises(RuleViolation, match="cannot become published"):
        publish_entry(org, "population", "clerk", SETTINGS)
    assert retire_entry(org, "population", "clerk").retired_at is not None
    with pytest.raises(RuleViolation, match="cannot become published"):
        publish_entry(org, "population", "clerk", SETTINGS)
    with pytest.raises(RuleViolation, match="retired"):
        update_entry(org, "population", {"abstract": "new"}, "clerk", SETTINGS)
    actions = org.scalars(select(AuditEvent.action).where(AuditEvent.outcome == "ok")).all()
    assert actions[-3:] == ["catalog.create", "catalog.publish", "catalog.retire"]
    assert verify_chain(org)[0]


@pytest.mark.req("REQ-10", "core-metadata", "one-restricted-value")
def test_update_of_a_published_entry_keeps_it_publishable(org: Session) -> None:
    create_entry(org, spec(), "clerk", SETTINGS)
    publish_entry(org, "population", "clerk", SETTINGS)
    with pytest.raises(RuleViolation, match="REQ-10"):
        update_entry(org, "population", {"abstract": ""}, "clerk", SETTINGS)
    fields = [*spec().fields, {"name": "mobile", "title": "手机号码"}]
    entry = update_entry(org, "population", {"fields": fields, "share_class": "有条件共享"}, "c", SETTINGS)
    assert [f.name for f in entry.fields] == ["sfzh", "xm", "remark", "mobile"]
    assert entry.fields[3].level == 3 and entry.share_class is ShareClass.RESTRICTED
    with pytest.raises(InputError, match="code"):
        update_entry(org, "population", {"code": "other"}, "clerk", SETTINGS)
    with pytest.raises(InputError, match="unknown key"):
        update_entry(org, "population", {"state": "draft"}, "clerk", SETTINGS)
