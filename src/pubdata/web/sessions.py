"""Server-side portal sessions: the cookie carries only a random id, the state stays in the database.

A random 32-byte id cannot be guessed, so it needs no signature, and signing out really ends the
session (a signed cookie would stay valid until it expires). Sessions are rows of the workspace's
database (`PortalSession`), so every process serving the portal knows them and a restart signs
no one out; only the SHA-256 of the id is stored, so reading the table signs no one in either.

Only a sign-in starts a session: a visitor who is not signed in gets a CSRF token in a cookie
(`visitor_token`) instead of a row, so that anonymous page views write nothing. Each session
carries its own CSRF token; `idle` and `absolute` expiry are checked on every lookup
with the caller's clock, so tests pass `now`. A lookup writes only when the stored last-seen time
is older than `touch_every` (a tenth of the idle time, at most a minute): a page view is then a
read, and a session may end up to that much before its exact idle time.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
from dataclasses import dataclass, field

from sqlalchemy import delete, update
from sqlalchemy.orm import Session, sessionmaker

from pubdata.db.models import PortalSession, aware, utcnow

COOKIE = "pubdata_session"
LANG_COOKIE = "pubdata_lang"
#: The CSRF token of a visitor who is not signed in (double-submit: the form must repeat it).
CSRF_COOKIE = "pubdata_csrf"
_TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_-]{43}")
#: The most a lookup lets the stored last-seen time lag behind before writing it.
TOUCH_AT_MOST = dt.timedelta(minutes=1)


def _key(session_id: str) -> str:
    return hashlib.sha256(session_id.encode("utf-8")).hexdigest()


def visitor_token(sent: str | None) -> tuple[str, bool]:
    """A visitor's CSRF token: the cookie's when it has the shape of one, else a new one (True: the
    cookie must be sent). A visitor who is not signed in thus costs no database row; the token
    guards only the forms such a visitor has — sign-in and language — and a session brings its own."""
    if sent is not None and is_token(sent):
        return sent, False
    return secrets.token_urlsafe(32), True


def is_token(value: str) -> bool:
    return _TOKEN_SHAPE.fullmatch(value) is not None


@dataclass
class WebSession:
    id: str
    login: str
    created_at: dt.datetime
    last_seen: dt.datetime
    csrf_token: str = field(default_factory=lambda: secrets.token_urlsafe(32))


class SessionStore:
    """Portal sessions with idle and absolute expiry, kept in the workspace's database."""

    def __init__(self, sessions: sessionmaker[Session], idle: dt.timedelta, absolute: dt.timedelta) -> None:
        self.sessions = sessions
        self.idle = idle
        self.absolute = absolute
        self.touch_every = min(TOUCH_AT_MOST, idle / 10)

    def _expires(self, created_at: dt.datetime, last_seen: dt.datetime) -> dt.datetime:
        return min(created_at + self.absolute, last_seen + self.idle)

    def create(self, login: str, now: dt.datetime | None = None) -> WebSession:
        now = now or utcnow()
        session = WebSession(secrets.token_urlsafe(32), login, now, now)
        row = PortalSession(
            id_sha256=_key(session.id),
            login=login,
            csrf_token=session.csrf_token,
            created_at=now,
            last_seen=now,
            expires_at=self._expires(now, now),
        )
        with self.sessions() as db, db.begin():
            db.add(row)
        return session

    def get(self, session_id: str | None, now: dt.datetime | None = None) -> WebSession | None:
        """The live session and its idle clock restarted; an expired one is deleted."""
        if not session_id:
            return None
        now = now or utcnow()
        key = _key(session_id)
        with self.sessions() as db, db.begin():
            row = db.get(PortalSession, key)
            if row is None:
                return None
            created, seen = aware(row.created_at), aware(row.last_seen)
            if now - seen > self.idle or now - created > self.absolute:
                db.delete(row)
                return None
            if now - seen >= self.touch_every:
                # Conditional, so that two processes touching at once both succeed harmlessly.
                db.execute(
                    update(PortalSession)
                    .where(PortalSession.id_sha256 == key, PortalSession.last_seen < now)
                    .values(last_seen=now, expires_at=self._expires(created, now))
                    .execution_options(synchronize_session=False)
                )
                seen = now
            return WebSession(session_id, row.login, created, seen, row.csrf_token)

    def end(self, session_id: str | None) -> None:
        if not session_id:
            return
        with self.sessions() as db, db.begin():
            db.execute(delete(PortalSession).where(PortalSession.id_sha256 == _key(session_id)))

    def end_all_of(self, login: str) -> None:
        with self.sessions() as db, db.begin():
            db.execute(delete(PortalSession).where(PortalSession.login == login))


def purge_expired(sessions: sessionmaker[Session], now: dt.datetime) -> int:
    """Delete sessions past their end (visitors who never came back); how many went."""
    with sessions() as db, db.begin():
        gone = db.execute(delete(PortalSession).where(PortalSession.expires_at <= now))
        return int(getattr(gone, "rowcount", 0) or 0)
