"""What the workflow pages share: the clock, the HTTP status of a refusal, dates from forms, and
which party of a request item the signed-in person is."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import Depends, Request

from pubdata.clock import now_on
from pubdata.db.models import RequestItem
from pubdata.errors import PubdataError
from pubdata.gateway.roles import NotAuthorised, Principal, Role
from pubdata.web.visitor import signed_in
from pubdata.workflow.duties import DECIDING
from pubdata.workflow.parties import is_competent_for
from pubdata.workflow.request_states import TRANSITIONS, Action, ItemState, Party, actions_from
from pubdata.workflow.working_days import end_of_local_day, start_of_local_day

PrincipalDep = Annotated[Principal, Depends(signed_in)]


def now_of(request: Request) -> dt.datetime:
    """Now, or the app's own clock (``app.state.clock``) when a test or a replay pins one — the
    same clock the API's workflow routes read."""
    return now_on(request.app.state)


def fresh(request: Request) -> Principal:
    """The principal re-read: a rolled-back transaction that touched the cached one (a service adds
    the organisation to its session) leaves it expired and detached."""
    request.state.principal = None
    return signed_in(request)


def status_of(error: Exception) -> int:
    from pubdata.api.app import ERROR_STATUS  # the API's mapping, so both surfaces agree

    if isinstance(error, NotAuthorised):
        return 403
    return next((s for cls, s, _ in ERROR_STATUS if isinstance(error, cls)), 400)


def field_of(error: PubdataError) -> str | None:
    """The form field a refusal is about, when the service named one."""
    return getattr(error, "column", None)


def local_date(text: str, end: bool = False) -> dt.datetime | None:
    """A ``YYYY-MM-DD`` form value as a day in Zhejiang: its start, or with `end` its last second
    (as ``--until`` on the command line), so "until 1 March" keeps 1 March; empty → None."""
    text = text.strip()
    if not text:
        return None
    try:
        day = dt.date.fromisoformat(text)
    except ValueError:
        return None
    return end_of_local_day(day) if end else start_of_local_day(day)


def parties(principal: Principal, item: RequestItem) -> set[Party]:
    org = principal.organisation
    found: set[Party] = set()
    if org is None:
        return found
    if org.id == item.request.requester_org_id and principal.has_role(Role.CONSUMER):
        found.add(Party.REQUESTER)
    if org.id == item.entry.provider_id and principal.has_role(Role.PROVIDER):
        found.add(Party.PROVIDER)
    if is_competent_for(principal, item.entry.provider.division_code):
        found.add(Party.COMPETENT)
    if found & {Party.PROVIDER, Party.COMPETENT}:
        found |= {Party.PROVIDER_OR_COMPETENT, Party.COUNTERSIGNER}  # the service checks which one
    if org.id == item.request.requester_org_id:
        found -= DECIDING  # no one decides on their own organisation's request
    return found


def my_actions(principal: Principal, item: RequestItem) -> list[Action]:
    """The steps this person may take on the item now (the service checks again)."""
    mine = parties(principal, item)
    state = ItemState(item.state)
    return [a for a in actions_from(state) if TRANSITIONS[(state, a)].party in mine]
