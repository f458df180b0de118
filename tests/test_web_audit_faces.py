"""The audit page and the `pubdata audit` commands answer alike: one action filter, one key check."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pubdata import audit
from pubdata.catalog.service import register_organisation
from pubdata.catalog.specs import organisation_from_dict
from pubdata.cli.main import app
from pubdata.clock import Clock
from pubdata.gateway.identity import create_user
from pubdata.gateway.roles import Role
from pubdata.identifiers import make_uscc
from pubdata.workspace import Workspace
from web_support import client_for, clocked_app, csrf_of

PASSWORD = "correct horse battery staple"
#: Actions whose names share a prefix but not all a family: ``request`` owns only the first three.
ACTIONS = ("request", "request.submit", "request.submit.late", "request_draft.save", "requests.escalate")
_EVENT_ID = re.compile(r"<tr><td>(\d+)</td>")


@pytest.fixture
def auditing(pinned_clock: Clock, pinned_now: dt.datetime, tmp_path: Path) -> Workspace:
    workspace = Workspace.init(tmp_path / "home", clock=pinned_clock)
    office = {
        "name": "浙江省大数据发展管理局",
        "short_name": "省数据局",
        "org_type": "state_organ",
        "uscc": make_uscc("11", "330000", "00250009"),
        "division_code": "330000",
        "head_name": "负责人",
        "security_officer_name": "安全员",
    }
    with workspace.sessions() as session, session.begin():
        register_organisation(session, organisation_from_dict(office), "t")
        roles = [Role.AUDITOR]
        create_user(session, "auditor", roles=roles, organisation="省数据局", password=PASSWORD, actor="t")
        for action in ACTIONS:
            audit.record(session, "someone", action, "x")
        audit.write_checkpoint(session, workspace.home)
    return workspace


def _portal_ids(workspace: Workspace, now: dt.datetime, action: str) -> list[int]:
    client = client_for(clocked_app(workspace, now), {"auditor": {"password": PASSWORD}}, "auditor")
    page = client.get("/audit", params={"action": action})
    assert page.status_code == 200, page.text
    return sorted(int(found) for found in _EVENT_ID.findall(page.text))


def _cli_ids(workspace: Workspace, action: str) -> list[int]:
    args = ["audit", "list", "--home", str(workspace.home), "--action", action, "--json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    return sorted(event["id"] for event in json.loads(result.output))


@pytest.mark.parametrize(
    ("action", "expected"),
    [
        ("request", ["request", "request.submit", "request.submit.late"]),
        ("request.submit", ["request.submit", "request.submit.late"]),
        ("req", []),
    ],
)
def test_an_action_filter_gives_the_same_events_on_the_page_and_the_command_line(
    auditing: Workspace, pinned_now: dt.datetime, action: str, expected: list[str]
) -> None:
    with auditing.sessions() as session:
        names = {e.id: e.action for e in audit.list_events(session)}
    on_page = _portal_ids(auditing, pinned_now, action)
    assert on_page == _cli_ids(auditing, action)
    assert sorted(names[i] for i in on_page) == expected


def _verify_page(workspace: Workspace, now: dt.datetime) -> str:
    client = client_for(clocked_app(workspace, now), {"auditor": {"password": PASSWORD}}, "auditor")
    token = csrf_of(client.get("/audit").text)
    answer = client.post("/audit/verify", data={"csrf_token": token})
    assert answer.status_code == 200, answer.text
    return str(answer.text)


def test_a_readable_key_verifies_the_chain_with_its_signatures(
    auditing: Workspace, pinned_now: dt.datetime
) -> None:
    said = _verify_page(auditing, pinned_now)
    assert 'data-ok="true"' in said and "校验通过" in said and "signatures-unchecked" not in said


@pytest.mark.parametrize("damage", ["unreadable", "truncated"])
def test_an_unreadable_signing_key_is_said_plainly_and_never_called_verified(
    auditing: Workspace, pinned_now: dt.datetime, damage: str
) -> None:
    key = auditing.home / "keys" / "audit-signing.key"
    key.unlink()
    if damage == "unreadable":
        key.mkdir()  # reading it fails as an unreadable file does, even for root
    else:
        key.write_bytes(b"short")
    said = _verify_page(auditing, pinned_now)
    assert 'data-ok="false"' in said and "无法检查签名" in said and "哈希链未经核验" in said
    assert "校验通过" not in said
    result = CliRunner().invoke(app, ["audit", "verify", "--home", str(auditing.home)])
    assert result.exit_code != 0
