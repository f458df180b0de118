"""Signed checkpoints: "the chain had N events, ending in event I with hash H" (REQ-40).

A hash chain alone cannot show that its tail was cut off: the shorter chain is still a valid chain.
A checkpoint, signed with a key the database does not hold, pins the chain's length and last hash,
so truncation before it, or a chain rewritten beneath it, is caught by `verify`. Events after the
newest checkpoint are protected by the chain only; hence checkpoints are written every
``audit_checkpoint_every`` events (inside the append that reaches the count, under the append lock)
and on demand (``pubdata audit checkpoint``). Keep the printed statement of an on-demand checkpoint
outside the workspace too: someone who can delete rows can delete the newest checkpoints with the
tail they pin.

Appends need the workspace directory to find the signing key. `register_workspace` ties an engine to
its workspace; a SQLite database inside its workspace (the default layout) is found without it.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from pubdata.audit.chain import SIGNED, last_event, lock_chain, naive_utc, recalled, remember
from pubdata.audit.signing import checkpoint_statement, key_id_of, signing_key
from pubdata.db.models import AuditCheckpoint, AuditEvent, utcnow
from pubdata.errors import PubdataError
from pubdata.settings import load_settings

#: Settings file of a workspace, relative to its directory (as `pubdata.workspace` lays it out).
SETTINGS_FILE = "pubdata.toml"


@dataclass(frozen=True)
class WorkspaceLink:
    """What appends on one engine need: the workspace directory and the checkpoint interval."""

    home: Path
    checkpoint_every: int


_LINKS: weakref.WeakKeyDictionary[Engine, WorkspaceLink | None] = weakref.WeakKeyDictionary()


def register_workspace(engine: Engine, home: Path, checkpoint_every: int | None = None) -> None:
    """Tie `engine` to the workspace at `home`: needed when the database lives elsewhere (PostgreSQL)."""
    every = checkpoint_every or load_settings(home / SETTINGS_FILE).default.audit_checkpoint_every
    _LINKS[engine] = WorkspaceLink(home, every)


def workspace_link(session: Session) -> WorkspaceLink | None:
    """The workspace of the session's database, or None when it cannot be known."""
    engine = session.get_bind()
    if not isinstance(engine, Engine):
        engine = engine.engine
    if engine not in _LINKS:
        database = engine.url.database if engine.url.get_backend_name() == "sqlite" else None
        home = Path(database).resolve().parent if database and database != ":memory:" else None
        if home is not None and (home / SETTINGS_FILE).exists():
            register_workspace(engine, home)
        else:
            _LINKS[engine] = None
    return _LINKS[engine]


def write_checkpoint(session: Session, home: Path) -> AuditCheckpoint:
    """Sign the chain's current end; the caller's transaction commits it."""
    lock_chain(session)
    last = last_event(session)
    if last is None:
        raise PubdataError("the audit log is empty: there is nothing to sign yet")
    previous = session.scalars(select(AuditCheckpoint).order_by(AuditCheckpoint.id.desc()).limit(1)).first()
    if previous is not None and previous.last_event_id <= last.id:
        since = select(func.count()).where(AuditEvent.id > previous.last_event_id)
        count = previous.event_count + (session.scalar(since) or 0)
    else:
        count = session.scalar(select(func.count()).select_from(AuditEvent)) or 0
    key = signing_key(home)
    signer = key_id_of(key.public_key())
    signed_at = naive_utc(utcnow())
    statement = checkpoint_statement(
        last.id, last.hash, count, signed_at.isoformat(timespec="microseconds"), signer
    )
    checkpoint = AuditCheckpoint(
        last_event_id=last.id,
        last_event_hash=last.hash,
        event_count=count,
        signed_at=signed_at,
        key_id=signer,
        signature=key.sign(statement).hex(),
    )
    session.add(checkpoint)
    session.flush()
    remember(session, SIGNED, checkpoint.last_event_id)
    return checkpoint


def checkpoint_if_due(session: Session, event: AuditEvent) -> AuditCheckpoint | None:
    """Sign the chain when `event` is the interval's last since the previous checkpoint."""
    link = workspace_link(session)
    if link is None or link.checkpoint_every <= 0:
        return None
    known = recalled(session, SIGNED)
    if isinstance(known, int):
        signed_up_to = known
    else:
        newest = session.scalar(
            select(AuditCheckpoint.last_event_id).order_by(AuditCheckpoint.id.desc()).limit(1)
        )
        signed_up_to = newest or 0
        remember(session, SIGNED, signed_up_to)
    if event.id - signed_up_to < link.checkpoint_every:
        return None
    return write_checkpoint(session, link.home)
