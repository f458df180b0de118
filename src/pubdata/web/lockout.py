"""Sign-in throttling: too many failures for one login, or from one address, lock it for a while.

Counting per login stops guessing one person's password from many addresses; counting per address
stops trying one password against many logins. Failures and locks are rows of the workspace's
database, so the limit holds however many processes serve the portal, and survives a restart. Keys
are stored as SHA-256 hashes: the table keeps no address and no login in the clear.

A failure is *reserved before* the password is checked: `reserve` counts the recent failures and
writes one more for each key in a short transaction that holds the keys' lock (``BEGIN IMMEDIATE``
on SQLite, a transaction-scoped advisory lock per key on PostgreSQL), and refuses once a key has
`max_failures` counted or is locked. Twenty parallel sign-ins therefore run at most `max_failures`
password checks past a limit, not twenty: the check itself runs after that transaction, holding no
connection. `failed` then locks a key whose count reached the limit; `succeeded` withdraws the
reservation and clears the login's earlier failures.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Connection, delete, func, select, text
from sqlalchemy.orm import Session, sessionmaker

from pubdata.db.models import SignInFailure, SignInLock

#: First half of PostgreSQL's two-number advisory lock keys for sign-in keys (b"sign" as an int4),
#: a key space apart from the audit chain's one-number lock.
LOCK_SPACE = int.from_bytes(b"sign", "big", signed=True)


def _key(name: str) -> str:
    return hashlib.sha256(name.encode("utf-8")).hexdigest()


def _lock_sqlite(connection: Connection, _keys: list[str]) -> None:
    # SQLite has one writer: taking the write lock before the count serialises every reservation.
    if not connection.connection.driver_connection.in_transaction:  # type: ignore[union-attr]
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def _lock_postgresql(connection: Connection, keys: list[str]) -> None:
    # One lock per key, taken in a fixed order so that two sign-ins never wait on each other in a cycle;
    # an advisory lock also covers a key that has no row yet, which a row lock could not.
    for key in sorted(keys):
        number = int.from_bytes(bytes.fromhex(key[:8]), "big", signed=True)
        connection.execute(
            text("SELECT pg_advisory_xact_lock(:space, :key)"), {"space": LOCK_SPACE, "key": number}
        )


#: How each database serialises the count-and-write of one key until the transaction ends.
KEY_LOCKS: dict[str, Callable[[Connection, list[str]], None]] = {
    "sqlite": _lock_sqlite,
    "postgresql": _lock_postgresql,
}


def _lock_keys(db: Session, keys: list[str]) -> None:
    connection = db.connection()
    lock = KEY_LOCKS.get(connection.dialect.name)
    if lock is not None:
        lock(connection, keys)


@dataclass(frozen=True)
class Reservation:
    """The failure rows written for one sign-in before its password is checked, by hashed key."""

    rows: dict[str, int]


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
            return self._held(db, hashed, now)

    def _held(self, db: Session, hashed: list[str], now: dt.datetime) -> bool:
        held = db.scalar(
            select(func.count())
            .select_from(SignInLock)
            .where(SignInLock.key_sha256.in_(hashed), SignInLock.until > now)
        )
        return bool(held)

    def _recent(self, db: Session, key: str, now: dt.datetime) -> int:
        found = db.scalar(
            select(func.count())
            .select_from(SignInFailure)
            .where(SignInFailure.key_sha256 == key, SignInFailure.at >= now - self.window)
        )
        return int(found or 0)

    def reserve(self, keys: list[str], now: dt.datetime) -> Reservation | None:
        """Count one failure for each key ahead of the check; None (nothing written) when a key is
        locked or already has its limit counted, finished or still being checked."""
        hashed = [_key(k) for k in keys]
        with self.sessions() as db, db.begin():
            _lock_keys(db, hashed)
            if self._held(db, hashed, now):
                return None
            if any(self._recent(db, key, now) >= self.max_failures for key in hashed):
                return None
            rows = [SignInFailure(key_sha256=key, at=now, expires_at=now + self.window) for key in hashed]
            db.add_all(rows)
            db.flush()
            return Reservation({row.key_sha256: row.id for row in rows})

    def failed(self, reservation: Reservation, now: dt.datetime) -> bool:
        """The reserved failures stand; True when one of the keys is now locked."""
        locked = False
        hashed = list(reservation.rows)
        with self.sessions() as db, db.begin():
            _lock_keys(db, hashed)
            for key in hashed:
                if self._recent(db, key, now) >= self.max_failures:
                    db.execute(delete(SignInFailure).where(SignInFailure.key_sha256 == key))
                    db.merge(SignInLock(key_sha256=key, until=now + self.lock_for))
                    locked = True
        return locked

    def withdraw(self, reservation: Reservation) -> None:
        """The password was never checked (the server was too busy): the attempt does not count."""
        with self.sessions() as db, db.begin():
            db.execute(delete(SignInFailure).where(SignInFailure.id.in_(list(reservation.rows.values()))))

    def succeeded(self, reservation: Reservation, login_key: str) -> None:
        """A good password withdraws its reservation and clears the login's failures counted before
        it (an address's count stays: it may be shared; later attempts still being checked stay too)."""
        login = _key(login_key)
        with self.sessions() as db, db.begin():
            db.execute(delete(SignInFailure).where(SignInFailure.id.in_(list(reservation.rows.values()))))
            if login in reservation.rows:
                db.execute(
                    delete(SignInFailure).where(
                        SignInFailure.key_sha256 == login, SignInFailure.id < reservation.rows[login]
                    )
                )

    def fail(self, keys: list[str], now: dt.datetime) -> bool:
        """Count a failure for each key at once (reserve and settle); True when one is now locked."""
        reservation = self.reserve(keys, now)
        return True if reservation is None else self.failed(reservation, now)


def purge_expired(sessions: sessionmaker[Session], now: dt.datetime) -> int:
    """Delete failures that no longer count and locks that have ended; how many rows went."""
    with sessions() as db, db.begin():
        failures = db.execute(delete(SignInFailure).where(SignInFailure.expires_at <= now))
        locks = db.execute(delete(SignInLock).where(SignInLock.until <= now))
        return sum(int(getattr(r, "rowcount", 0) or 0) for r in (failures, locks))
