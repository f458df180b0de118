"""The demo's workflow cases, walked through the same services a person uses (REQ-12, 15, 16).

* **approved** — 嘉兴市总工会 asks 浙江省人力资源和社会保障厅 for the social-insurance enrolment of the
  pilot parks' workers; the data bureau checks it, the department approves it for 嘉兴 (3304) only,
  with identity numbers and names masked, and the approval becomes the grant the union queries with;
* **refused** — the union asks 浙江省公安厅 for household addresses; the department refuses, saying why;
* **overdue** — a request to 国网浙江省电力有限公司 filed two weeks ago, checked, and never decided: the
  tick escalates it to the data bureau;
* **flagged** — the union objects to one enrolment record; the data bureau accepts the objection, so
  the record is served marked disputed until the department verifies it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import duckdb
from sqlalchemy import select

from pubdata.db.models import CatalogEntry, RequestItem
from pubdata.demo.world import GRANTS, PARK_CHECK_PURPOSE, DemoGrant
from pubdata.errors import PubdataError
from pubdata.gateway.identity import local_principal
from pubdata.gateway.roles import Principal
from pubdata.store.delta import DatasetStore
from pubdata.workflow import escalation, objections, requests
from pubdata.workflow.decisions import Decision, act
from pubdata.workflow.request_states import Action
from pubdata.workspace import Workspace

CONSUMER, BUREAU = "jx_zgh", "zj_dsj"
#: Who decides for each providing organisation in the demo.
DECIDERS = {"浙江省人力资源和社会保障厅": "zj_rst", "浙江省公安厅": "zj_gat"}
PARK_LEGAL_BASIS = "《中华人民共和国工会法》第六条；《浙江省公共数据条例》第二十一条"
REFUSAL = (
    "申请用途为核查园区企业职工参保情况，户籍地址不属于该用途的必要数据项；"
    "请改为申请人社厅参保数据，或通过人口信息核验接口核验身份"
)
OBJECTION = "该职工所在企业已于本月补缴，参保状态应为正常缴费，请核实更正"


@dataclass(frozen=True)
class _Ask:
    """One request of the union: an entry, the fields and region wanted, and its terms."""

    entry: str
    fields: tuple[str, ...]
    purpose: str
    scenario: str
    region_prefix: str | None = "3304"
    region_field: str | None = "division_code"
    days: int = 180


def _principal(workspace: Workspace, login: str) -> Principal:
    with workspace.sessions() as session:
        return local_principal(session, login)


def _file(workspace: Workspace, ask: _Ask, now: dt.datetime) -> int:
    """Create and submit the union's request for `ask` at `now`; returns the item id."""
    union = _principal(workspace, CONSUMER)
    with workspace.sessions() as session, session.begin():
        request = requests.create_request(
            session,
            union,
            application="jx_park_workers",
            legal_basis=PARK_LEGAL_BASIS,
            purpose=ask.purpose,
            scenario=ask.scenario,
            valid_from=now,
            valid_until=now + dt.timedelta(days=ask.days),
        )
        item = requests.add_item(
            session,
            union,
            request.id,
            ask.entry,
            ask.fields,
            region_prefix=ask.region_prefix,
            region_field=ask.region_field if ask.region_prefix else None,
        )
        requests.submit(session, union, request.id, workspace.settings, now)
        return item.id


def _act(
    workspace: Workspace, login: str, item_id: int, action: Action, now: dt.datetime, **say: Any
) -> None:
    act(
        workspace.sessions,
        _principal(workspace, login),
        item_id,
        action,
        Decision(**say),
        workspace.settings,
        now,
    )


def approved(workspace: Workspace, spec: DemoGrant, now: dt.datetime) -> dict[str, Any]:
    """The park check: asked, checked, approved with masks; returns the grant as the accounts list it."""
    ask = _Ask(
        spec.entry, spec.fields, spec.purpose, "园区企业职工参保核查（产改试点）", spec.region_prefix,
        spec.region_field, spec.days,
    )  # fmt: skip
    item_id = _file(workspace, ask, now)
    _act(workspace, BUREAU, item_id, Action.CHECK, now)
    decider = DECIDERS[_entry(workspace, spec.entry).provider.name]
    _act(workspace, decider, item_id, Action.APPROVE, now, deid=dict(spec.deid))
    with workspace.sessions() as session:
        item = session.get(RequestItem, item_id)
        grant_id = item.grant_id if item is not None else None
    return {
        "id": grant_id,
        "request_item": item_id,
        "organisation": spec.organisation,
        "application": spec.application,
        "entry": spec.entry,
        "purpose": spec.purpose,
        "region_prefix": spec.region_prefix,
    }


def _entry(workspace: Workspace, code: str) -> CatalogEntry:
    with workspace.sessions() as session:
        entry = session.scalars(select(CatalogEntry).where(CatalogEntry.code == code)).one()
        _ = entry.provider
        return entry


def refused(workspace: Workspace, now: dt.datetime) -> int:
    ask = _Ask("gat_population", ("id_number", "name", "address"), PARK_CHECK_PURPOSE, "核对园区职工户籍地址")
    item_id = _file(workspace, ask, now)
    _act(workspace, BUREAU, item_id, Action.CHECK, now)
    _act(workspace, "zj_gat", item_id, Action.REFUSE, now, reason=REFUSAL)
    return item_id


def overdue(workspace: Workspace, now: dt.datetime) -> int:
    """Filed 14 days ago and checked the next day; nobody at the utility has decided since."""
    filed = now - dt.timedelta(days=14)
    ask = _Ask(
        "gw_enterprise_electricity", ("uscc", "enterprise_name", "month", "kwh", "division_code"),
        "园区企业用电监测，服务产业工人稳岗", "园区企业开工用电监测",
    )  # fmt: skip
    item_id = _file(workspace, ask, filed)
    _act(workspace, BUREAU, item_id, Action.CHECK, filed + dt.timedelta(days=1))
    escalation.escalate_overdue(workspace, now)
    return item_id


def flagged(workspace: Workspace, now: dt.datetime) -> int:
    """The union objects to one enrolment record in 嘉兴; the data bureau accepts and flags it."""
    with workspace.sessions() as session:
        entry = session.scalars(
            select(CatalogEntry).where(CatalogEntry.code == "hrss_social_insurance")
        ).one()
        files = DatasetStore(workspace.data_dir, workspace.sessions).file_uris(entry)
    with duckdb.connect() as con:
        found = con.execute(
            "SELECT id_number, insurance_type FROM read_parquet($files) "
            "WHERE division_code LIKE '3304%' ORDER BY id_number, insurance_type LIMIT 1",
            {"files": files},
        ).fetchone()
    if found is None:
        raise PubdataError("the demo's enrolment data holds no 嘉兴 rows to object to")
    record = {"id_number": found[0], "insurance_type": found[1]}
    with workspace.sessions() as session, session.begin():
        objection = objections.raise_objection(
            session, _principal(workspace, CONSUMER), "hrss_social_insurance", [record], OBJECTION,
            now=now, settings=workspace.settings,
        )  # fmt: skip
        objection_id = objection.id
    with workspace.sessions() as session, session.begin():
        objections.accept(
            session, _principal(workspace, BUREAU), objection_id, now=now, settings=workspace.settings
        )
    return objection_id


def seed_cases(workspace: Workspace, now: dt.datetime) -> dict[str, Any]:
    """Every case above; returns what the accounts file lists about them."""
    grants = [approved(workspace, spec, now) for spec in GRANTS]
    return {
        "grants": grants,
        "requests": {
            "approved": [g["request_item"] for g in grants],
            "refused": refused(workspace, now),
            "overdue": overdue(workspace, now),
        },
        "objections": {"flagged": flagged(workspace, now)},
    }
