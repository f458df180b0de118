"""Reports over the audit log: listings, "who accessed data about X", "use outside purpose" (REQ-41).

The reports read event details, so the gateway must write these keys on access events (actions of
the `ACCESS_ACTIONS` families, e.g. ``query``, ``query.export``, ``export.csv``, ``download``,
``rows``):

``purpose``
    The purpose the caller declared for this call (REQ-15/17).
``grant_id``, ``grant_purpose``
    The grant that allowed (or was checked against) the call, and the purpose it was given for;
    absent when no grant applied (e.g. an unconditional entry).
``reason_kind``
    On refusals, what kind of rule refused: one of `BEYOND_GRANT` when the call fell outside its
    grant, else a kind of its own (``no_grant``, ``not_shared``, ``assessment``, ``sql``, …).
``reason``
    On refusals, the sentence shown to the caller.
``application``, ``entries``, ``fields``, ``rows``, ``sql_fingerprint``, ``result_hash``
    Who called through what, what was read, how many rows left, and fingerprints of the query and
    result (never the SQL values or the rows themselves). ``fields`` is traced by lineage through
    the SQL, so a renamed column still names the field it reads.
``served_fields``, ``subjects_indexed``, ``subjects_aggregated``
    Per answer column, the ``entry.field`` values it derives from (``=function`` where
    de-identified); how many data subjects the answer indexed; the entries whose subjects an
    aggregated answer could not attribute row by row.

Data subjects go into the keyed index with `pubdata.audit.record_access`, never into ``detail``.
The gateway indexes every record it serves, masked or not, so `who_accessed` also finds the
consumer who saw a person's record with the identity number masked.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from sqlalchemy import ColumnElement, Select, and_, or_, select
from sqlalchemy.orm import Session

from pubdata.audit.subjects import subject_hash
from pubdata.db.models import AuditEvent, AuditSubject
from pubdata.errors import InputError

#: Action families of data access: an action is in a family when it is its name or starts with "name.".
ACCESS_ACTIONS = ("query", "export", "download", "rows")
#: ``reason_kind`` values of refusals for calls outside their grant (REQ-17).
BEYOND_GRANT = ("outside_purpose", "outside_application", "outside_fields", "outside_period")


def in_family(families: tuple[str, ...] | str) -> ColumnElement[bool]:
    """SQL condition: the event's action is one of `families` or a sub-action of one."""
    names = (families,) if isinstance(families, str) else families
    return or_(
        *(or_(AuditEvent.action == f, AuditEvent.action.startswith(f + ".", autoescape=True)) for f in names)
    )


def _since(query: Select[AuditEvent], since: dt.datetime | None) -> Select[AuditEvent]:
    # The column converts an aware `since` to UTC (and takes a naive one as UTC, as `--since` says).
    return query if since is None else query.where(AuditEvent.at >= since)


def list_events(
    session: Session, action: str | None = None, since: dt.datetime | None = None, limit: int | None = None
) -> list[AuditEvent]:
    """Events oldest first, optionally of one action family and from a moment on."""
    query = _since(select(AuditEvent), since)
    if action:
        query = query.where(in_family(action))
    if limit is not None:
        return list(reversed(session.scalars(query.order_by(AuditEvent.id.desc()).limit(limit)).all()))
    return list(session.scalars(query.order_by(AuditEvent.id)))


def who_accessed(
    session: Session, home: Path, id_number: str | None = None, uscc: str | None = None
) -> list[AuditEvent]:
    """Events that served data about the person or organisation, found by keyed hash."""
    if (id_number is None) == (uscc is None):
        raise InputError("give exactly one of an identity number or a USCC")
    digest = subject_hash(home, id_number or uscc or "")
    query = (
        select(AuditEvent)
        .join(AuditSubject, AuditSubject.event_id == AuditEvent.id)
        .where(AuditSubject.subject_hash == digest)
        .order_by(AuditEvent.id)
    )
    return list(session.scalars(query))


def outside_purpose(session: Session, since: dt.datetime | None = None) -> list[AuditEvent]:
    """Access refused as beyond its grant, and access served under a grant given for another purpose."""
    reason_kind = AuditEvent.detail["reason_kind"].as_string()
    purpose = AuditEvent.detail["purpose"].as_string()
    grant_purpose = AuditEvent.detail["grant_purpose"].as_string()
    refused = and_(AuditEvent.outcome == "refused", reason_kind.in_(BEYOND_GRANT))
    served = and_(
        AuditEvent.outcome == "ok",
        purpose.is_not(None),
        grant_purpose.is_not(None),
        purpose != grant_purpose,
    )
    query = select(AuditEvent).where(in_family(ACCESS_ACTIONS), or_(refused, served))
    return list(session.scalars(_since(query, since).order_by(AuditEvent.id)))


#: Written by the gateway before a streamed answer's first byte; its closing event names it.
STREAM_OPEN = "stream.open"


def unfinished_streams(session: Session, since: dt.datetime | None = None) -> list[AuditEvent]:
    """Streamed answers that started but never recorded their end: the serving process died mid-stream.

    Their data may have partly left the platform, so they stay visible to auditors rather than
    vanishing with the process.
    """
    opened = list(
        session.scalars(
            _since(select(AuditEvent).where(AuditEvent.action == STREAM_OPEN), since).order_by(AuditEvent.id)
        )
    )
    if not opened:
        return []
    closing = AuditEvent.detail["opened_event"].as_integer()
    closed = set(session.scalars(select(closing).where(closing.in_([e.id for e in opened]))))
    return [e for e in opened if e.id not in closed]
