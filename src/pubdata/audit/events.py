"""Recording events: the one way into the audit log (there is no update or delete path).

`record` appends a plain event; `record_refusal` one that must outlive its caller's rollback;
`record_access` appends an access and indexes the data subjects it
served by keyed hash (REQ-41). Both sign a checkpoint when the append completes an interval.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import Engine, insert, text
from sqlalchemy.orm import Session

from pubdata.audit.chain import append_event
from pubdata.audit.checkpoints import checkpoint_if_due, workspace_link
from pubdata.audit.subjects import subject_hash
from pubdata.db.models import AuditEvent, AuditSubject
from pubdata.errors import InputError, PubdataError

#: A keyed subject hash; anything else could be a clear identity number passed by mistake.
_HEX64 = re.compile(r"^[0-9a-f]{64}$")

#: One statement per event for its subject index, the hashes arriving as one JSON array: a
#: million-row answer indexes a million subjects, and an ORM insert of that many dicts cost ~15 s
#: (measured) where this costs SQLite's own B-tree work. Other dialects take a Core executemany.
_INSERT_SUBJECTS = {
    "sqlite": "INSERT INTO audit_subjects (subject_hash, event_id)"
    " SELECT value, :event FROM json_each(:hashes)",
    "postgresql": "INSERT INTO audit_subjects (subject_hash, event_id)"
    " SELECT value, :event FROM json_array_elements_text(CAST(:hashes AS json)) AS value",
}
#: Hashes per statement: bounds the JSON text (~66 MB) whatever the size of the answer.
_PER_STATEMENT = 1_000_000


def record(
    session: Session, actor: str, action: str, target: str = "", outcome: str = "ok", **detail: Any
) -> AuditEvent:
    """Append one event to the chain inside the session's transaction."""
    event = append_event(session, actor, action, target, outcome, detail)
    checkpoint_if_due(session, event)
    return event


def record_refusal(session: Session, actor: str, action: str, target: str, **detail: Any) -> AuditEvent:
    """Record a refusal so that it survives the rollback the refusal itself causes.

    When the caller's transaction has written nothing, the event goes through a transaction of its
    own; otherwise it joins the caller's (a second writer would wait on the first's locks, and
    SQLite has a single writer).
    """
    connection = session.connection()
    bind = session.get_bind()
    if connection.dialect.name == "sqlite":
        written = bool(connection.connection.driver_connection.in_transaction)  # type: ignore[union-attr]
    else:
        written = connection.scalar(text("SELECT txid_current_if_assigned()")) is not None
    if written or not isinstance(bind, Engine):
        return record(session, actor, action, target, "refused", **detail)
    with Session(bind=bind, expire_on_commit=False) as own, own.begin():
        return record(own, actor, action, target, "refused", **detail)


def record_access(
    session: Session,
    actor: str,
    action: str,
    target: str,
    outcome: str,
    subjects: Iterable[str],
    *,
    subject_hashes: Iterable[str] | pa.Array = (),
    home: Path | None = None,
    **detail: Any,
) -> AuditEvent:
    """Append an access event and index its data subjects by keyed hash only.

    `subjects` are clear identity numbers or credit codes (hashed here, never stored); the query
    path may instead pass `subject_hashes` it computed in the engine with `subject_hash_sql` (an
    Arrow string array as the engine gave them, or any iterable of str).
    `home` is the workspace whose subject key hashes them (found from the session when omitted).
    """
    hashes = _checked(subject_hashes)
    clear = set(subjects)
    if clear:
        if home is None:
            link = workspace_link(session)
            if link is None:
                raise PubdataError("record_access needs the workspace (home) to hash data subjects")
            home = link.home
        keyed = pa.array([subject_hash(home, value) for value in clear], pa.string())
        hashes = pc.unique(pa.chunked_array([hashes, keyed], pa.string()))
    event = append_event(session, actor, action, target, outcome, detail)
    if len(hashes):
        _index(session, event.id, hashes.take(pc.array_sort_indices(hashes)))
    checkpoint_if_due(session, event)
    return event


def _checked(given: Iterable[str] | pa.Array) -> pa.Array:
    """The distinct hashes of `given` (a Python iterable, or an Arrow string array from the engine),
    each checked to be a keyed hash, without a Python object per hash."""
    if isinstance(given, pa.Array | pa.ChunkedArray):
        array = given.cast(pa.string())
    else:
        array = pa.array(list(given), pa.string())
    array = pc.unique(array)
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if array.null_count or not pc.all(pc.match_substring_regex(array, _HEX64.pattern), min_count=0).as_py():
        raise InputError("subject_hashes must be 64 lower-case hex characters (HMAC-SHA256)")
    return array


def _index(session: Session, event_id: int, hashes: pa.Array) -> None:
    """One `audit_subjects` row per hash (all checked hex, so joining them makes valid JSON)."""
    statement = _INSERT_SUBJECTS.get(session.get_bind().dialect.name)
    if statement is None:
        rows = [{"subject_hash": h, "event_id": event_id} for h in hashes.to_pylist()]
        session.execute(insert(AuditSubject), rows)
        return
    for start in range(0, len(hashes), _PER_STATEMENT):
        part = hashes.slice(start, _PER_STATEMENT)
        whole = pa.ListArray.from_arrays(pa.array([0, len(part)], pa.int32()), part)
        joined = pc.binary_join(whole, '","')[0].as_py()
        session.execute(text(statement), {"event": event_id, "hashes": f'["{joined}"]'})
