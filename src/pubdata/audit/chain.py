"""The hash chain: each event's hash covers its content and the previous event's hash (REQ-40).

An edit, a deletion, an insertion or a reordering of stored events therefore breaks the chain
somewhere `verify` can point at. Events are appended in the caller's transaction: a change and its
audit record commit together or not at all.

Appending reads the last hash and inserts the next event, so two writers must not interleave or the
chain forks. `lock_chain` serialises appenders per database: SQLite's Python driver runs a
``SELECT`` outside any transaction until the first write, so the read is moved under the write lock
with ``BEGIN IMMEDIATE``; on PostgreSQL a row lock on the last event neither locks an empty table nor
stops a phantom, so a transaction-scoped advisory lock is taken instead.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, select, text
from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session, SessionTransaction, SessionTransactionOrigin

from pubdata.audit.acting import acting_detail
from pubdata.db.models import AuditEvent, utcnow

GENESIS = "0" * 64
#: Key of PostgreSQL's advisory lock that serialises appends (b"pubdata1" as a signed 64-bit int).
CHAIN_LOCK_KEY = int.from_bytes(b"pubdata1", "big")


def event_digest(
    prev_hash: str,
    at: dt.datetime,
    actor: str,
    action: str,
    target: str,
    outcome: str,
    detail: dict[str, Any],
) -> str:
    """SHA-256 of the canonical JSON of an event; the row id is left out so that the chain, not the
    numbering, is the evidence (a swap of ids shows as a reordering)."""
    canonical = json.dumps(
        [prev_hash, at.isoformat(timespec="microseconds"), actor, action, target, outcome, detail],
        ensure_ascii=False,
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def naive_utc(at: dt.datetime) -> dt.datetime:
    """Timestamps enter the digest without a zone: SQLite gives them back naive, PostgreSQL aware."""
    return at.replace(tzinfo=None)


def _lock_sqlite(connection: Connection) -> None:
    if not connection.connection.driver_connection.in_transaction:  # type: ignore[union-attr]
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def _lock_postgresql(connection: Connection) -> None:
    connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": CHAIN_LOCK_KEY})


#: How each database serialises appenders until the transaction ends.
CHAIN_LOCKS: dict[str, Callable[[Connection], None]] = {
    "sqlite": _lock_sqlite,
    "postgresql": _lock_postgresql,
}


def lock_chain(session: Session) -> None:
    """Hold the chain's append lock until the session's transaction ends."""
    connection = session.connection()
    lock = CHAIN_LOCKS.get(connection.dialect.name)
    if lock is not None:
        lock(connection)


#: session.info keys of what this transaction already knows under the append lock.
TAIL = "pubdata.audit.tail"
SIGNED = "pubdata.audit.signed"


def _forget(session: Session, *_args: object) -> None:
    session.info.pop(TAIL, None)
    session.info.pop(SIGNED, None)


def _on_transaction_end(session: Session, transaction: SessionTransaction) -> None:
    # A flush runs in a subtransaction of its own; its end is not the end of the lock.
    if transaction.origin is not SessionTransactionOrigin.SUBTRANSACTION:
        _forget(session)


def remember(session: Session, key: str, value: object) -> None:
    """Keep `value` for the rest of the session's current transaction (the lock is held till then).

    The end of the transaction or of a savepoint, and any rollback, forget it, so a value never
    outlives the lock or an insert that was rolled back.
    """
    if not sa_event.contains(session, "after_transaction_end", _on_transaction_end):
        sa_event.listen(session, "after_transaction_end", _on_transaction_end)
        sa_event.listen(session, "after_soft_rollback", _forget)
    session.info[key] = (session.get_transaction(), value)


def recalled(session: Session, key: str) -> object | None:
    """What `remember` kept in this same transaction, else None."""
    kept = session.info.get(key)
    if kept is not None and kept[0] is session.get_transaction():
        value: object = kept[1]
        return value
    return None


def last_event(session: Session) -> AuditEvent | None:
    return session.scalars(select(AuditEvent).order_by(AuditEvent.id.desc()).limit(1)).first()


def append_event(
    session: Session, actor: str, action: str, target: str, outcome: str, detail: dict[str, Any]
) -> AuditEvent:
    """Link one event to the chain's end under the append lock (no checkpoint, no subject index)."""
    tail = recalled(session, TAIL)
    if isinstance(tail, str):
        prev_hash = tail  # appended earlier in this transaction, under the lock it still holds
    else:
        lock_chain(session)
        last = last_event(session)
        prev_hash = last.hash if last else GENESIS
    at = naive_utc(utcnow())
    detail = json.loads(json.dumps({**acting_detail(), **detail}, ensure_ascii=False, default=str))
    event = AuditEvent(
        at=at,
        actor=actor,
        action=action,
        target=target,
        outcome=outcome,
        detail=detail,
        prev_hash=prev_hash,
        hash=event_digest(prev_hash, at, actor, action, target, outcome, detail),
    )
    session.add(event)
    session.flush()
    remember(session, TAIL, event.hash)
    return event
