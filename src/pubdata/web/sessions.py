"""Server-side portal sessions: the cookie carries only a random id, the state stays in the process.

A random 32-byte id cannot be guessed, so it needs no signature, and signing out really ends the
session (a signed cookie would stay valid until it expires). Sessions live in the serving process:
a restart signs everyone out, which is acceptable for a single-process server (``pubdata serve``).

Each session carries its own CSRF token; `idle` and `absolute` expiry are checked on every lookup
with the caller's clock, so tests pass `now`.
"""

from __future__ import annotations

import datetime as dt
import secrets
import threading
from dataclasses import dataclass, field

COOKIE = "pubdata_session"
LANG_COOKIE = "pubdata_lang"


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class WebSession:
    id: str
    login: str
    created_at: dt.datetime
    last_seen: dt.datetime
    csrf_token: str = field(default_factory=lambda: secrets.token_urlsafe(32))


class SessionStore:
    """Thread-safe map of session id → `WebSession`, with idle and absolute expiry."""

    def __init__(self, idle: dt.timedelta, absolute: dt.timedelta) -> None:
        self.idle = idle
        self.absolute = absolute
        self._sessions: dict[str, WebSession] = {}
        self._lock = threading.Lock()

    def create(self, login: str, now: dt.datetime | None = None) -> WebSession:
        now = now or utcnow()
        session = WebSession(secrets.token_urlsafe(32), login, now, now)
        with self._lock:
            self._sessions[session.id] = session
        return session

    def get(self, session_id: str | None, now: dt.datetime | None = None) -> WebSession | None:
        """The live session and its idle clock restarted; an expired one is dropped."""
        if not session_id:
            return None
        now = now or utcnow()
        with self._lock:
            session = self._sessions.get(session_id)
            if session is None:
                return None
            if now - session.last_seen > self.idle or now - session.created_at > self.absolute:
                del self._sessions[session_id]
                return None
            session.last_seen = now
            return session

    def end(self, session_id: str | None) -> None:
        with self._lock:
            self._sessions.pop(session_id or "", None)

    def end_all_of(self, login: str) -> None:
        with self._lock:
            for key in [k for k, s in self._sessions.items() if s.login == login]:
                del self._sessions[key]
