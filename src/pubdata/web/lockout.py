"""Sign-in throttling: too many failures for one login, or from one address, lock it for a while.

Counting per login stops guessing one person's password from many addresses; counting per address
stops trying one password against many logins. Failures and locks are rows of the workspace's
database, so the limit holds however many processes serve the portal, and survives a restart. Keys
are stored as SHA-256 hashes: the table keeps no address and no login in the clear.
"""

from __future__ import annotations

import datetime as dt
import hashlib

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session, sessionmaker

from pubdata.db.models import SignInFailure, SignInLock


def _key(name: str) -> str:
    return hashlib.sha256(name.encode("utf-8")).hexdigest()


class Lockout:
    def __init__(
        self, sessions: sessionmaker[Session], max_failures: int, window: dt.timedelta, lock_for: dt.timedelta
    ) -> None:
        self.sessions = sessions
        self.max_failures = max_failures
        self.window = window
        self.lock_for = lock_for

    def locked(self, keys: list[str], now: dt.datetime) -> bool:
        hashed = [_key(k) for k in keys]
        with self.sessions() as db:
            held = db.scalar(
                select(func.count())
                .select_from(SignInLock)
                .where(SignInLock.key_sha256.in_(hashed), SignInLock.until > now)
            )
        return bool(held)

    def fail(self, keys: list[str], now: dt.datetime) -> bool:
        """Count a failure for each key; True when one of them is now locked."""
        locked = False
        with self.sessions() as db, db.begin():
            for key in map(_key, keys):
                db.add(SignInFailure(key_sha256=key, at=now, expires_at=now + self.window))
                db.flush()
                recent = db.scalar(
                    select(func.count())
                    .select_from(SignInFailure)
                    .where(SignInFailure.key_sha256 == key, SignInFailure.at >= now - self.window)
                )
                if (recent or 0) >= self.max_failures:
                    db.execute(delete(SignInFailure).where(SignInFailure.key_sha256 == key))
                    db.merge(SignInLock(key_sha256=key, until=now + self.lock_for))
                    locked = True
        return locked

    def succeed(self, login_key: str) -> None:
        """A good password clears that login's count (an address's count stays: it may be shared)."""
        with self.sessions() as db, db.begin():
            db.execute(delete(SignInFailure).where(SignInFailure.key_sha256 == _key(login_key)))


def purge_expired(sessions: sessionmaker[Session], now: dt.datetime) -> int:
    """Delete failures that no longer count and locks that have ended; how many rows went."""
    with sessions() as db, db.begin():
        failures = db.execute(delete(SignInFailure).where(SignInFailure.expires_at <= now))
        locks = db.execute(delete(SignInLock).where(SignInLock.until <= now))
        return sum(int(getattr(r, "rowcount", 0) or 0) for r in (failures, locks))
