"""A small province for workflow tests: a competent department, two providers in Hangzhou, a county
department elsewhere, their people, and one publishable entry. Built through the public services."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.orm import Session

from pubdata.catalog.classes import OpenClass, OrgType, ShareClass, UpdateCycle
from pubdata.catalog.service import create_entry, register_organisation
from pubdata.catalog.specs import EntrySpec, FieldSpec, OrganisationSpec
from pubdata.gateway.identity import create_user, find_user
from pubdata.gateway.roles import Principal, Role, Scope
from pubdata.identifiers import make_uscc
from pubdata.settings import Settings
from pubdata.workflow.working_days import LOCAL_TZ

SETTINGS = Settings()
BUREAU = make_uscc("11", "330000", "00350001")
POLICE = make_uscc("11", "330100", "00350002")
HEALTH = make_uscc("11", "330100", "00350003")
TIANTAI = make_uscc("11", "331023", "00350004")
#: A Monday in 2026 with working days on both sides (the calendar's data ends with 2026).
MONDAY = dt.datetime(2026, 3, 2, 10, 0, tzinfo=LOCAL_TZ)

ORGS = (
    OrganisationSpec("浙江省大数据发展管理局", OrgType.STATE_ORGAN, BUREAU, "330000", "省数据局",
                     is_competent_department=True, head_name="周局长", security_officer_name="陈安全"),
    OrganisationSpec("杭州市公安局", OrgType.STATE_ORGAN, POLICE, "330100", "市公安局",
                     head_name="张局长", head_contact="0571-1", security_officer_name="李安全"),
    OrganisationSpec("杭州市卫生健康委员会", OrgType.STATE_ORGAN, HEALTH, "330100", "市卫健委",
                     head_name="王主任", security_officer_name="赵安全"),
    OrganisationSpec("天台县数据局", OrgType.STATE_ORGAN, TIANTAI, "331023", "天台数据局",
                     is_competent_department=True, head_name="褚局长", security_officer_name="庞安全"),
)  # fmt: skip

#: login → (organisation short name or None, roles)
PEOPLE: dict[str, tuple[str | None, tuple[Role, ...]]] = {
    "dsj": ("省数据局", (Role.COMPETENT_DEPARTMENT,)),
    "auditor": ("省数据局", (Role.AUDITOR,)),
    "admin": ("省数据局", (Role.PLATFORM_ADMIN,)),
    "tiantai": ("天台数据局", (Role.COMPETENT_DEPARTMENT,)),
    "gat_officer": ("市公安局", (Role.SECURITY_OFFICER,)),
    "gat_clerk": ("市公安局", (Role.PROVIDER,)),
    "wjw_clerk": ("市卫健委", (Role.PROVIDER,)),
    "citizen": (None, (Role.OPEN_DATA_USER,)),
}


def entry_spec(code: str = "population", provider: str = "市公安局", **overrides: Any) -> EntrySpec:
    values: dict[str, Any] = {
        "name": "户籍人口",
        "provider": provider,
        "fields": [
            FieldSpec("sfzh", "公民身份号码", element_code="DE0001", authoritative=True),
            FieldSpec("xm", "姓名", element_code="DE0002", authoritative=True),
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


def build_world(session: Session) -> None:
    for spec in ORGS:
        register_organisation(session, spec, "admin")
    for login, (org, roles) in PEOPLE.items():
        create_user(session, login, roles=roles, organisation=org, password=None, actor="admin")
    create_entry(session, entry_spec(), "gat_clerk", SETTINGS)
    session.flush()


def principal(session: Session, login: str) -> Principal:
    """The user as the CLI signs them in: every scope, the roles they hold."""
    user = find_user(session, login)
    return Principal(user, user.organisation, user.roles, frozenset(Scope))
