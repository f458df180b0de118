"""The cart: the draft a consumer is filling, its terms changed and items taken out before
submission (REQ-15).

`requests.create_request` takes the terms once; a person filling a form in steps changes them on
the draft. `set_terms` does that through `requests.own_draft`, so only the requesting
organisation's consumer staff may, and only while the request is a draft; every change is audited.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from pubdata import audit
from pubdata.db.models import SharingRequest, aware
from pubdata.errors import InputError, NotFound
from pubdata.gateway.roles import Principal
from pubdata.messages import text
from pubdata.workflow import requests


def current_draft(session: Session, principal: Principal) -> SharingRequest | None:
    """The newest draft this person started for their organisation, if any."""
    org = principal.organisation
    if org is None:
        return None
    return session.scalar(
        select(SharingRequest)
        .where(
            SharingRequest.requester_org_id == org.id,
            SharingRequest.requested_by == principal.user.login,
            SharingRequest.state == "draft",
        )
        .order_by(SharingRequest.id.desc())
        .limit(1)
    )


def set_terms(
    session: Session,
    principal: Principal,
    request_id: int,
    *,
    application: str | None,
    legal_basis: str,
    purpose: str,
    scenario: str,
    delivery_mode: str,
    valid_from: dt.datetime | None,
    valid_until: dt.datetime | None,
) -> SharingRequest:
    """Replace the draft's terms; what is missing is reported by `requests.submit`, not here."""
    request = requests.own_draft(session, principal, request_id, "change a sharing request")
    if delivery_mode not in requests.DELIVERY_MODES:
        raise InputError(
            text(
                "delivery mode {mode!r} is not one of {modes}",
                mode=delivery_mode,
                modes=", ".join(requests.DELIVERY_MODES),
            ),
            column="delivery_mode",
        )
    request.application = requests._application(session, application)
    request.legal_basis = legal_basis.strip()
    request.purpose = purpose.strip()
    request.scenario = scenario.strip()
    request.delivery_mode = delivery_mode
    request.valid_from = aware(valid_from) if valid_from else None
    request.valid_until = aware(valid_until) if valid_until else None
    session.flush()
    audit.record(
        session, principal.user.login, "request.terms", f"request:{request.id}",
        application=application, delivery_mode=delivery_mode,
    )  # fmt: skip
    return request


def remove_item(session: Session, principal: Principal, request_id: int, item_id: int) -> str:
    """Take an entry out of the caller's own draft; returns its code. A colleague's draft, another
    organisation's, or an item of another request is not found, so a number reveals nothing."""
    request = requests.own_draft(session, principal, request_id, "change a sharing request")
    item = next((i for i in request.items if i.id == item_id), None)
    if request.requested_by != principal.user.login or item is None:
        raise NotFound(
            text(
                "no item {item_id} in your draft request {request_id}", item_id=item_id, request_id=request_id
            )
        )
    code = item.entry.code
    request.items.remove(item)
    session.flush()
    audit.record(
        session, principal.user.login, "request.remove_item", f"request-item:{item_id}",
        request=request.id, entry=code,
    )  # fmt: skip
    return code
