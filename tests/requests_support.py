"""What the request-workflow tests share: the demo's parties as principals, a pinned clock, and a
helper that files a request in one call."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from pubdata.db.models import SharingRequest
from pubdata.errors import NotFound
from pubdata.gateway.identity import create_user, find_user
from pubdata.gateway.roles import Principal, Role, Scope
from pubdata.workflow import requests
from pubdata.workspace import Workspace

SOCIAL = "hrss_social_insurance"
HRSS = "浙江省人力资源和社会保障厅"
PARK_APP = "jx_park_workers"
CONSUMER, COMPETENT, PROVIDER = "jx_zgh", "zj_dsj", "hrss_staff"
#: A Monday morning in Hangzhou, well inside the 2026 calendar.
NOW = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=8))).astimezone(dt.UTC)
UNTIL = dt.datetime(2026, 6, 30, 15, 59, 59, tzinfo=dt.UTC)
SOCIAL_FIELDS = ("id_number", "name", "insurance_type", "enrolled_on", "status", "division_code")


def principal(workspace: Workspace, login: str) -> Principal:
    """A signed-in user with every scope, as the CLI acts."""
    with workspace.sessions() as session:
        user = find_user(session, login)
        return Principal(user, user.organisation, user.roles, frozenset(Scope))


def ensure_user(workspace: Workspace, login: str, org: str, *roles: Role) -> Principal:
    """The demo lacks some parties (the social-insurance provider's staff): make them once."""
    with workspace.sessions() as session, session.begin():
        try:
            find_user(session, login)
        except NotFound:
            create_user(session, login, roles=roles, organisation=org, password=None, actor="test")
    return principal(workspace, login)


def file_request(
    workspace: Workspace,
    items: Iterable[dict[str, Any]],
    *,
    now: dt.datetime = NOW,
    submit: bool = True,
    **terms: Any,
) -> int:
    """A request of 嘉兴市总工会 for `items` (keyword arguments of `add_item`); submitted unless not."""
    who = principal(workspace, CONSUMER)
    values: dict[str, Any] = {
        "application": PARK_APP,
        "legal_basis": "《中华人民共和国工会法》第六条",
        "purpose": "园区职工参保核查（申请）",
        "scenario": "核查园区企业职工参保情况",
        "delivery_mode": "api",
        "valid_from": now,
        "valid_until": UNTIL,
        **terms,
    }
    with workspace.sessions() as session, session.begin():
        request: SharingRequest = requests.create_request(session, who, **values)
        for item in items:
            spec = dict(item)
            requests.add_item(session, who, request.id, spec.pop("entry_code"), spec.pop("fields"), **spec)
        request_id = request.id
    if submit:
        with workspace.sessions() as session, session.begin():
            requests.submit(session, who, request_id, workspace.settings, now)
    return request_id
