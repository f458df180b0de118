"""Every transition of the request workflow and who may take it, driven by the transition table
itself: the right role of the right organisation passes; a wrong role, a wrong organisation or a
wrong state is refused, and the refusal is audited (REQ-15, REQ-16, REQ-17)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from pubdata import audit
from pubdata.clock import fixed_clock
from pubdata.db.models import RequestItem, SharingRequest
from pubdata.demo.build import build_demo
from pubdata.errors import RuleViolation
from pubdata.gateway.grants import grant_access
from pubdata.gateway.roles import NotAuthorised, Role
from pubdata.workflow.decisions import Decision, act
from pubdata.workflow.request_states import OPEN_STEPS, TRANSITIONS, Action, ItemState, Party, after_check
from pubdata.workspace import Workspace
from requests_support import (
    COMPETENT,
    CONSUMER,
    HRSS,
    NOW,
    PARK_APP,
    PROVIDER,
    SOCIAL,
    ensure_user,
    file_request,
)

#: Who stands for each party, and who is a near miss: same organisation wrong role, or wrong organisation.
#: The countersigner is the provider by default (`not_shared_consent = "provider"`).
RIGHT = {
    Party.REQUESTER: CONSUMER,
    Party.PROVIDER: PROVIDER,
    Party.COMPETENT: COMPETENT,
    Party.COUNTERSIGNER: PROVIDER,
}
WRONG_ROLE = {
    Party.REQUESTER: "jx_zgh_provider",
    Party.PROVIDER: "hrss_consumer",
    Party.COMPETENT: "zj_security",
    Party.COUNTERSIGNER: "hrss_consumer",
}
WRONG_ORG = {
    Party.REQUESTER: "nx_zgh",
    Party.PROVIDER: "zj_gat",
    Party.COMPETENT: PROVIDER,
    Party.COUNTERSIGNER: "zj_gat",
}
PEOPLE_STEPS = [
    (s, a) for (s, a), t in TRANSITIONS.items() if t.party is not Party.SYSTEM and a is not Action.SUBMIT
]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    home: Path = tmp_path_factory.mktemp("request-states") / "home"
    build_demo(home, scale=0.02, clock=fixed_clock(NOW))
    workspace = Workspace.open(home, clock=fixed_clock(NOW))
    ensure_user(workspace, PROVIDER, HRSS, Role.PROVIDER)
    ensure_user(workspace, "hrss_consumer", HRSS, Role.CONSUMER)
    ensure_user(workspace, "jx_zgh_provider", "嘉兴市总工会", Role.PROVIDER)
    ensure_user(workspace, "nx_zgh", "湖州市南浔区总工会", Role.CONSUMER)
    return workspace


def _item_in(workspace: Workspace, state: ItemState) -> int:
    """A fresh social-insurance item of 嘉兴市总工会 put straight into `state` (with a grant if needed)."""
    request_id = file_request(workspace, [{"entry_code": SOCIAL, "fields": ["id_number", "status"]}])
    with workspace.sessions() as session, session.begin():
        item = session.query(RequestItem).filter_by(request_id=request_id).one()
        if state in (ItemState.APPROVED, ItemState.PENDING_RENEWAL):
            grant = grant_access(
                session, organisation="嘉兴市总工会", application=PARK_APP, entry_code=SOCIAL,
                fields=["id_number", "status"], purpose="状态测试", legal_basis="测试", valid_from=NOW,
                valid_until=NOW + dt.timedelta(days=30), actor="test", settings=workspace.settings.default,
                now=NOW,
            )  # fmt: skip
            item.grant_id = grant.id
        if state is ItemState.PENDING_RENEWAL:
            audit.record(
                session,
                CONSUMER,
                "request.renew",
                f"request-item:{item.id}",
                valid_until=NOW + dt.timedelta(days=60),
            )
        if state is ItemState.REFUSED:
            item.reason = "测试拒绝"
        if state is ItemState.PENDING_CONSENT:  # the coordinated approval waiting for its countersignature
            proposed = {
                "fields": ["id_number", "status"],
                "valid_until": (NOW + dt.timedelta(days=30)).isoformat(),
            }
            audit.record(
                session, COMPETENT, "request.coordinate-approve", f"request-item:{item.id}", proposed=proposed
            )
        item.state = state.value
        return item.id


def _decision(action: Action) -> Decision:
    later = NOW + dt.timedelta(days=60) if action is Action.RENEW else None
    return Decision(reason="依法说明的理由", valid_until=later)


def _act(workspace: Workspace, login: str, item_id: int, action: Action) -> dict[str, object]:
    from requests_support import principal

    return act(workspace.sessions, principal(workspace, login), item_id, action, _decision(action),
               workspace.settings, NOW + dt.timedelta(hours=1))  # fmt: skip


@pytest.mark.req("REQ-16", "restricted-path")
@pytest.mark.parametrize(("state", "action"), PEOPLE_STEPS, ids=lambda v: str(v))
def test_each_step_only_by_its_party(workspace: Workspace, state: ItemState, action: Action) -> None:
    step = TRANSITIONS[(state, action)]
    parties = [Party.PROVIDER, Party.COMPETENT] if step.party is Party.PROVIDER_OR_COMPETENT else [step.party]
    item_id = _item_in(workspace, state)
    for party in parties:
        for login in (WRONG_ROLE[party], WRONG_ORG[party]):
            if step.party is Party.PROVIDER_OR_COMPETENT and login in RIGHT.values():
                continue  # the provider is a right party of a revocation
            with pytest.raises(NotAuthorised, match="may not"):
                _act(workspace, login, item_id, action)
    with workspace.sessions() as session:
        refused = audit.list_events(session, f"request.{action}", limit=1)[-1]
        assert refused.outcome == "refused" and refused.target == f"request-item:{item_id}"
    for party in parties:
        item_id = _item_in(workspace, state)
        done = _act(workspace, RIGHT[party], item_id, action)
        assert done["state"] in [s.value for s in step.to]
        assert (done["step"] is not None) == (ItemState(done["state"]) in OPEN_STEPS)
        with workspace.sessions() as session:
            event = audit.list_events(session, f"request.{action}", limit=1)[-1]
            assert event.outcome == "ok" and event.detail["from_state"] == state.value
            assert event.detail["to_state"] == done["state"]


@pytest.mark.parametrize("action", sorted({a for _s, a in PEOPLE_STEPS}), ids=str)
def test_a_step_from_the_wrong_state_is_refused(workspace: Workspace, action: Action) -> None:
    wrong = next(s for s in (ItemState.WITHDRAWN, ItemState.PENDING_CHECK, ItemState.APPROVED)
                 if (s, action) not in TRANSITIONS)  # fmt: skip
    party = TRANSITIONS[next((s, a) for s, a in PEOPLE_STEPS if a is action)].party
    login = RIGHT[Party.PROVIDER if party is Party.PROVIDER_OR_COMPETENT else party]
    item_id = _item_in(workspace, wrong)
    with pytest.raises(RuleViolation, match="REQ-16"):
        _act(workspace, login, item_id, action)


@pytest.mark.req("REQ-16", "refusal-reasons")
def test_refusals_and_returns_need_a_reason(workspace: Workspace) -> None:
    from pubdata.errors import InputError
    from requests_support import principal

    for state, action in [(s, a) for (s, a), t in TRANSITIONS.items() if t.needs_reason]:
        party = TRANSITIONS[(state, action)].party
        login = RIGHT[Party.PROVIDER if party is Party.PROVIDER_OR_COMPETENT else party]
        item_id = _item_in(workspace, state)
        with pytest.raises(InputError, match="needs a reason"):
            act(workspace.sessions, principal(workspace, login), item_id, action, Decision(reason="  "),
                workspace.settings, NOW)  # fmt: skip
        with workspace.sessions() as session:
            assert session.get(RequestItem, item_id).state == state.value  # type: ignore[union-attr]


@pytest.mark.req("REQ-16", "unconditional-path", "restricted-path", "not-shared-path")
def test_the_check_leads_by_sharing_class() -> None:
    from pubdata.catalog.classes import ShareClass

    assert after_check(ShareClass.UNCONDITIONAL, None) is ItemState.APPROVED
    assert after_check(ShareClass.RESTRICTED, None) is ItemState.PENDING_DECISION
    assert after_check(ShareClass.NOT_SHARED, "履职必需") is ItemState.IN_COORDINATION
    with pytest.raises(RuleViolation, match="only through a dispute"):
        after_check(ShareClass.NOT_SHARED, " ")


def test_another_organisations_request_is_not_found(workspace: Workspace) -> None:
    from pubdata.errors import NotFound
    from pubdata.workflow.request_views import visible_request
    from requests_support import principal

    request_id = file_request(workspace, [{"entry_code": SOCIAL, "fields": ["status"]}])
    with workspace.sessions() as session:
        assert visible_request(session, principal(workspace, PROVIDER), request_id).id == request_id
        with pytest.raises(NotFound):
            visible_request(session, principal(workspace, "nx_zgh"), request_id)
        assert session.get(SharingRequest, request_id) is not None
