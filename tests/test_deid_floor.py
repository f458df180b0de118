"""The de-identification floor (REQ-27): no grant shares a field less de-identified than its level and
kind allow — an L4 identity number at least masked — unless a security assessment on record names the
field raw. Checked on every path that sets de-identification: a grant made directly and from the
command line, a renewal, and an approval (the portal's form replayed, and the API); the form offers
nothing weaker than the floor. The grants run on test_grants.py's world; the approvals on the demo."""

from __future__ import annotations

import datetime as dt
import html
import re
from collections.abc import Iterator
from typing import Any

import duckdb
import pyarrow as pa
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlglot import exp
from typer.testing import CliRunner

from gateway_support import JIAXING, PARK_APP, PARK_PURPOSE, SOCIAL
from pubdata.catalog.classes import Level, PiiKind
from pubdata.catalog.service import get_entry
from pubdata.cli.main import app as cli
from pubdata.db.models import AuditEvent, RequestItem
from pubdata.gateway.access import AccessDecision, decide
from pubdata.gateway.access_rules import AccessDenied, AccessRule
from pubdata.gateway.deid import DEID_FUNCTIONS, build_deid, default_deid, pseudonym_variables
from pubdata.gateway.deid_floor import (
    FUNCTION_TREATMENTS,
    DeidFloorViolation,
    Treatment,
    check_floor,
    floor_rules,
    parse_floor_rules,
    treatment_of,
    weakest_allowed,
)
from pubdata.gateway.grant_terms import RAW, normalise_deid
from pubdata.gateway.grants import renew_grant
from pubdata.gateway.identity import find_user, issue_token
from pubdata.gateway.raw_assessments import record_raw_assessment
from pubdata.gateway.roles import Principal, Scope
from pubdata.web.error_text import say
from pubdata.workflow import requests
from pubdata.workflow.decisions import Decision, act
from pubdata.workflow.request_states import Action
from pubdata.workflow.working_days import LOCAL_TZ
from pubdata.workspace import Workspace
from test_grants import CIVIL, NOW, PEOPLE, SETTINGS, UNION, World, build_world, make_grant
from web_support import DemoPortal, client_for, clocked_app, csrf_of, demo_portal

runner = CliRunner()
REASON = "民政低保核查须比对原始身份证号，经数据安全评估确认"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    built = build_world(Workspace.init(tmp_path_factory.mktemp("floor") / "home"))
    yield built
    built.workspace.engine.dispose()


def refusals(world: World, action: str) -> list[AuditEvent]:
    with world.workspace.sessions() as s:
        query = select(AuditEvent).where(AuditEvent.action == action, AuditEvent.outcome == "refused")
        return list(s.scalars(query.order_by(AuditEvent.id)))


def assess_raw(world: World, fields: list[str], until: dt.datetime, organisation: str = CIVIL) -> None:
    with world.workspace.sessions() as s, s.begin():
        record_raw_assessment(
            s, "people", fields, REASON, "省大数据局安全评估组", until, organisation, now=NOW
        )


# --- the table -------------------------------------------------------------------------------------


@pytest.mark.req("REQ-27", "floor")
def test_the_table_names_every_kind_and_every_default_meets_its_floor() -> None:
    assert {r.pii_kind for r in floor_rules()} == set(PiiKind)
    assert set(FUNCTION_TREATMENTS) == set(DEID_FUNCTIONS)
    for kind in PiiKind:
        for level in Level:
            default = treatment_of(default_deid(level, kind), kind)
            assert default >= weakest_allowed(level, kind), (kind, level)
    assert weakest_allowed(Level.L4, PiiKind.ID_NUMBER) is Treatment.MASK
    # A kind the table does not name is suppressed until someone decides; a table is data.
    assert weakest_allowed(Level.L1, PiiKind.MOBILE, rules=()) is Treatment.SUPPRESS
    assert (
        parse_floor_rules(["pii_kind,from_level,weakest", "mobile,2,pseudonym"])[0].weakest
        is Treatment.PSEUDONYM
    )


# --- grants made directly, from the command line, and renewed --------------------------------------


@pytest.mark.req("REQ-27", "floor")
def test_raw_on_an_l4_identity_number_is_refused_audited_and_said_in_chinese(world: World) -> None:
    before = len(refusals(world, "grant.create"))
    with pytest.raises(DeidFloorViolation) as refused:
        make_grant(world, deid={"id_number": RAW})
    assert refused.value.req == "REQ-27" and refused.value.field == "id_number"
    assert "shared at least masked" in str(refused.value) and "security assessment" in str(refused.value)
    chinese = say(refused.value, "zh_CN")
    assert "至少须遮蔽" in chinese and "L4 敏感" in chinese and "安全评估" in chinese and "raw" not in chinese
    after = refusals(world, "grant.create")
    assert len(after) == before + 1 and "masked" in after[-1].detail["reason"]
    # A function meant for another kind leaves the number as it is, so it counts as raw; the refusal
    # names the function by its label, not its code.
    with pytest.raises(DeidFloorViolation) as elsewhere:
        make_grant(world, deid={"id_number": "mask_address"})
    assert "地址截断至乡镇街道" in say(elsewhere.value, "zh_CN") and "mask_address" not in str(
        elsewhere.value
    )
    # Below L3 a name may be shared as stored; an L3 mobile may not, nor merely generalised by region.
    make_grant(world, fields=["name", "income"], deid={"name": RAW})
    for choice in (RAW, "generalise_division"):
        with pytest.raises(DeidFloorViolation, match="mobile"):
            make_grant(world, fields=["mobile"], deid={"mobile": choice})


def test_the_command_line_grant_stops_at_the_same_floor(world: World) -> None:
    until = (NOW + dt.timedelta(days=20)).date().isoformat()
    added = runner.invoke(
        cli,
        ["--now", NOW.isoformat(), "grants", "add", "--home", str(world.home), "--org", UNION,
         "--app", "union_care", "--entry", "people", "--field", "id_number", "--deid", "id_number=raw",
         "--purpose", "命令行测试", "--legal-basis", "《工会法》", "--until", until],
    )  # fmt: skip
    assert added.exit_code != 0 and "shared at least masked" in added.output, added.output
    assert "Traceback" not in added.output


@pytest.mark.req("REQ-27", "floor")
def test_an_assessment_naming_the_field_raw_lets_that_organisation_share_it_as_stored(world: World) -> None:
    assess_raw(world, ["id_number"], NOW + dt.timedelta(days=60))
    grant = make_grant(world, organisation=CIVIL, application="civil_app", deid={"id_number": RAW})
    assert grant.deid == {"id_number": {"function": RAW, "params": {}}}
    # It names the organisation and the field: the union and the mobile number still stop at the floor.
    with pytest.raises(DeidFloorViolation):
        make_grant(world, deid={"id_number": RAW})
    with pytest.raises(DeidFloorViolation, match="mobile"):
        make_grant(
            world, organisation=CIVIL, application="civil_app", fields=["mobile"], deid={"mobile": RAW}
        )


def test_a_renewal_after_the_assessment_expired_is_refused(world: World) -> None:
    assess_raw(world, ["mobile"], NOW + dt.timedelta(hours=1))
    grant = make_grant(
        world, organisation=CIVIL, application="civil_app", fields=["mobile"], deid={"mobile": RAW}
    )
    later = NOW + dt.timedelta(hours=2)
    with world.workspace.sessions() as s, s.begin(), pytest.raises(DeidFloorViolation, match="mobile"):
        renew_grant(s, grant.id, valid_until=NOW + dt.timedelta(days=40), actor="hr.head", settings=SETTINGS,
                    now=later)  # fmt: skip
    renewed = runner.invoke(
        cli,
        [
            "--now",
            later.isoformat(),
            "grants",
            "renew",
            str(grant.id),
            "--home",
            str(world.home),
            "--days",
            "20",
        ],
    )
    assert renewed.exit_code != 0 and "shared at least masked" in renewed.output, renewed.output
    assert refusals(world, "grant.renew")[-1].detail["req"] == "REQ-27"


def test_an_assessment_recorded_from_the_command_line_lifts_the_floor_for_its_fields(world: World) -> None:
    home, now = str(world.home), ["--now", NOW.isoformat()]
    recorded = runner.invoke(
        cli,
        [*now, "assessments", "allow-raw", "--home", home, "--entry", "people", "--field", "id_number",
         "--reason", REASON, "--approved-by", "省大数据局安全评估组", "--org", UNION, "--days", "30",
         "--json"],
    )  # fmt: skip
    assert recorded.exit_code == 0, recorded.output
    assert '"raw_fields": [\n    "id_number"\n  ]' in recorded.output and REASON in recorded.output
    until = (NOW + dt.timedelta(days=20)).date().isoformat()
    added = runner.invoke(
        cli,
        [*now, "grants", "add", "--home", home, "--org", UNION, "--app", "union_other", "--entry", "people",
         "--field", "id_number", "--deid", "id_number=raw", "--purpose", "原号比对",
         "--legal-basis", "《工会法》", "--until", until],
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    unknown = runner.invoke(
        cli,
        [*now, "assessments", "allow-raw", "--home", home, "--entry", "people", "--field", "salary",
         "--reason", REASON, "--approved-by", "评估组", "--days", "30"],
    )  # fmt: skip
    assert unknown.exit_code != 0 and "salary" in unknown.output


@pytest.mark.req("REQ-27", "floor")
def test_the_gateway_stops_serving_a_raw_field_once_its_assessment_expires(world: World) -> None:
    def decide_at(now: dt.datetime) -> AccessDecision:
        with world.workspace.sessions() as s, s.begin():
            user = find_user(s, "union.clerk")
            principal = Principal(user, user.organisation, user.roles, frozenset(Scope))
            return decide(s, principal, "union_other", "号码核查", ["people"], now, SETTINGS, world.home)

    assess_raw(world, ["mobile"], NOW + dt.timedelta(hours=1), organisation=UNION)
    grant = make_grant(
        world, application="union_other", purpose="号码核查", fields=["mobile"], deid={"mobile": RAW}
    )
    served = decide_at(NOW + dt.timedelta(minutes=30))
    assert served.grants["people"] is not None and served.grants["people"].id == grant.id
    with pytest.raises(AccessDenied) as denied:
        decide_at(NOW + dt.timedelta(hours=2))
    assert denied.value.rule is AccessRule.DEID_FLOOR and denied.value.req == "REQ-27"
    assert "mobile" in str(denied.value) and "masked" in str(denied.value)


# --- the property: nothing accepted shows a value its floor hides ----------------------------------

CHOICES = [RAW, *DEID_FUNCTIONS]


def _served(function: str, values: list[str]) -> list[Any]:
    """What the engine serves of `values` under `function` (a pseudonym with a key of its own)."""
    with duckdb.connect() as con:
        for name, value in pseudonym_variables("prop", b"a property test key of 32 bytes!").items():
            con.execute(f"SET VARIABLE {name} = $1", [value])
        slot = {"slot": "prop"} if function == "pseudonym" else {}
        expression = build_deid(function, exp.column("v"), **slot)
        con.register("t", pa.table({"v": values}))
        try:
            return [row[0] for row in con.execute(f"SELECT {expression.sql('duckdb')} FROM t").fetchall()]
        except duckdb.Error:
            return [None] * len(values)  # a function that cannot read the value shows nothing of it


@pytest.mark.req("REQ-27", "floor")
@hsettings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.dictionaries(st.sampled_from(sorted(PEOPLE)), st.sampled_from(CHOICES), min_size=1))
def test_no_accepted_choice_is_weaker_than_the_floor(world: World, chosen: dict[str, str]) -> None:
    with world.workspace.sessions() as s:
        fields = list(get_entry(s, "people").fields)
        normalised = normalise_deid(chosen, [f.name for f in fields])
        refused = check_floor(fields, normalised)
    if refused is not None:
        below = next(f for f in fields if f.name == refused.field)
        assert treatment_of(chosen.get(below.name), below.pii_kind) < weakest_allowed(
            below.level, below.pii_kind
        )
        return
    for field in fields:
        function = chosen.get(field.name) or default_deid(field.level, field.pii_kind) or RAW
        floor = weakest_allowed(field.level, field.pii_kind)
        assert treatment_of(function, field.pii_kind) >= floor
        if floor > Treatment.RAW:
            # The oracle: the engine's own output never gives the stored value back.
            column: list[Any] = list(PEOPLE[field.name])  # type: ignore[call-overload]
            stored = [str(v) for v in column]
            assert not set(map(str, _served(function, stored))) & set(stored), (field.name, function)


# --- approvals: the portal's form, its replay, and the API -----------------------------------------


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory, pinned_now: dt.datetime) -> Iterator[DemoPortal]:
    yield from demo_portal(tmp_path_factory, "floor-demo", pinned_now)


def _checked_request(app: Any, demo: DemoPortal) -> tuple[int, int]:
    """The union asks for identity numbers and names of the social insurance; the bureau checks it."""
    workspace, users = demo
    union = client_for(app, users, "jx_zgh")
    token = csrf_of(union.get(f"/entries/{SOCIAL}").text)
    asked = ["id_number", "name", "insurance_type", "division_code"]
    cart = {"csrf_token": token, "entry": SOCIAL, "field": asked, "region_prefix": JIAXING}
    union.post("/cart/items", data={**cart, "region_field": "division_code"})
    today = app.state.clock().astimezone(LOCAL_TZ).date()
    filed = union.post(
        "/cart/submit",
        data={"csrf_token": token, "legal_basis": "《中华人民共和国工会法》第六条", "purpose": PARK_PURPOSE,
              "scenario": "园区职工参保核查", "application": PARK_APP, "delivery_mode": "api",
              "valid_from": today.isoformat(), "valid_until": (today + dt.timedelta(days=30)).isoformat()},
        follow_redirects=False,
    )  # fmt: skip
    assert filed.status_code == 303, filed.text
    request_id = int(filed.headers["location"].rsplit("/", 1)[-1])
    with workspace.sessions() as s:
        item = s.scalars(select(RequestItem).where(RequestItem.request_id == request_id)).one().id
    bureau = client_for(app, users, "zj_dsj")
    bureau.post(
        f"/requests/{request_id}/items/{item}/check", data={"csrf_token": csrf_of(bureau.get("/").text)}
    )
    return request_id, item


@pytest.mark.clock
@pytest.mark.req("REQ-27", "floor")
def test_the_approval_form_offers_nothing_below_the_floor_and_its_replay_is_refused(
    demo: DemoPortal, pinned_now: dt.datetime
) -> None:
    workspace, users = demo
    app = clocked_app(workspace, pinned_now)
    request_id, item = _checked_request(app, demo)
    provider = client_for(app, users, "zj_rst")
    page = provider.get(f"/requests/{request_id}").text
    with workspace.sessions() as s:
        fields = {f.name: f for f in get_entry(s, SOCIAL).fields}
    offered = re.findall(r'<option value="([a-z_]+):([a-z_]+)">', page)
    assert ("id_number", "mask_id_number") in offered and ("name", "mask_name") in offered
    for name, function in offered:
        field = fields[name]
        assert treatment_of(function, field.pii_kind) >= weakest_allowed(field.level, field.pii_kind), name
    assert not any(f == RAW for _, f in offered)
    # The form does not offer raw; a replay that sends it is refused, in Chinese, naming the field.
    replay = provider.post(
        f"/requests/{request_id}/items/{item}/approve",
        data={"csrf_token": csrf_of(page), "field": ["id_number", "name"], "deid": ["id_number:raw"]},
    )
    assert replay.status_code in (400, 403, 409), replay.status_code
    alert = html.unescape(re.search(r'id="item-error">(.*?)</p>', replay.text, re.S).group(1))  # type: ignore[union-attr]
    assert "公民身份号码" in alert and "遮蔽" in alert and "id_number" not in alert and "raw" not in alert
    # The API takes any map; it answers the same refusal and no grant is made.
    with workspace.sessions() as s, s.begin():
        issued = issue_token(s, "zj_rst", (Scope.WORKFLOW,), 30, "admin", SETTINGS, now=pinned_now)
    with TestClient(app) as api:
        answer = api.post(
            f"/api/v1/requests/{request_id}/items/{item}/approve",
            json={"fields": ["id_number", "name"], "deid": {"id_number": "raw", "name": "raw"}},
            headers={"Authorization": f"Bearer {issued.token}"},
        )
    assert answer.status_code in (400, 403, 409) and "shared at least masked" in answer.text, answer.text
    with workspace.sessions() as s:
        assert s.get(RequestItem, item).grant_id is None  # type: ignore[union-attr]


OUTPATIENT = "wjw_outpatient_visits"


def _principal(workspace: Workspace, login: str) -> Principal:
    with workspace.sessions() as s:
        user = find_user(s, login)
        _ = user.role_rows, user.organisation
        s.expunge_all()
    return Principal(user, user.organisation, user.roles, frozenset(Scope))


@pytest.mark.clock
@pytest.mark.req("REQ-27", "floor")
def test_a_coordinated_approval_of_not_shared_data_stops_at_the_floor(
    demo: DemoPortal, pinned_now: dt.datetime
) -> None:
    workspace = demo[0]
    union = _principal(workspace, "jx_zgh")
    with workspace.sessions() as s, s.begin():
        request = requests.create_request(
            s, union, application=PARK_APP, legal_basis="《中华人民共和国工会法》第六条",
            purpose=PARK_PURPOSE, scenario="职工医疗互助", valid_from=pinned_now,
            valid_until=pinned_now + dt.timedelta(days=30),
        )  # fmt: skip
        item = requests.add_item(
            s, union, request.id, OUTPATIENT, ["id_number", "hospital", "diagnosis_code"],
            dispute_reason="职工医疗互助救助须核实门诊记录，《工会法》第六条赋予工会维护职工权益的职责",
        )  # fmt: skip
        requests.submit(s, union, request.id, workspace.settings, pinned_now)
        item_id = item.id
    bureau = _principal(workspace, "zj_dsj")
    act(workspace.sessions, bureau, item_id, Action.CHECK, Decision(), workspace.settings, pinned_now)
    for deid in ({"id_number": "raw"}, {"id_number": "mask_id_number", "diagnosis_code": "raw"}):
        decision = Decision(fields=["id_number", "hospital", "diagnosis_code"], deid=deid)
        with pytest.raises(DeidFloorViolation):
            act(workspace.sessions, bureau, item_id, Action.COORDINATE_APPROVE, decision, workspace.settings,
                pinned_now)  # fmt: skip
    with workspace.sessions() as s:
        still = s.get(RequestItem, item_id)
        assert still is not None and still.state == "in_coordination" and still.grant_id is None
