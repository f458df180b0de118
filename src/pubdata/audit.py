"""Append-only, hash-chained audit events (REQ-40).

Each event's hash covers its content and the previous event's hash, so an edit, a deletion, an
insertion, a reordering or a truncation of the chain breaks `verify_chain`. Events are appended in
the caller's transaction: a change and its audit record commit together or not at all.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from pubdata.db.models import AuditEvent, utcnow

GENESIS = "0" * 64


def _digest(
    prev_hash: str,
    at: dt.datetime,
    actor: str,
    action: str,
    target: str,
    outcome: str,
    detail: dict[str, Any],
) -> str:
    canonical = json.dumps(
        [prev_hash, at.isoformat(timespec="microseconds"), actor, action, target, outcome, detail],
        ensure_ascii=False,
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def record(
    session: Session, actor: str, action: str, target: str = "", outcome: str = "ok", **detail: Any
) -> AuditEvent:
    """Append one event to the chain inside the session's transaction."""
    last = session.scalars(
        select(AuditEvent).order_by(AuditEvent.id.desc()).limit(1).with_for_update()
    ).first()
    prev_hash = last.hash if last else GENESIS
    at = utcnow().replace(tzinfo=None)
    detail = json.loads(json.dumps(detail, ensure_ascii=False, default=str))
    event = AuditEvent(
        at=at,
        actor=actor,
        action=action,
        target=target,
        outcome=outcome,
        detail=detail,
        prev_hash=prev_hash,
        hash=_digest(prev_hash, at, actor, action, target, outcome, detail),
    )
    session.add(event)
    session.flush()
    return event


def verify_chain(session: Session) -> tuple[bool, str]:
    """Walk the chain in order; the first event that does not fit is named."""
    prev_hash = GENESIS
    count = 0
    for event in session.scalars(select(AuditEvent).order_by(AuditEvent.id)):
        at = event.at.replace(tzinfo=None)
        expected = _digest(
            prev_hash, at, event.actor, event.action, event.target, event.outcome, event.detail
        )
        if event.prev_hash != prev_hash or event.hash != expected:
            return False, f"event {event.id} does not match the chain"
        prev_hash = event.hash
        count += 1
    return True, f"{count} events verified"
