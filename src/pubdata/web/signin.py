"""One password sign-in to the portal: throttled, checked outside any transaction, then recorded.

The order is what keeps the server standing under a burst of sign-ins. `Lockout.reserve` counts
the attempt first, in a short transaction, so parallel guesses cannot all slip past the limit; the
account's hash is read in another short session; argon2 then runs holding no database connection,
at most `checks` at a time per process (a burst waits `wait_seconds` for a turn, then is told to
come back, instead of queueing until the connection pool gives out); a last short transaction
records the outcome. An unknown login is checked against a decoy hash, so it costs as much time as
a wrong password.
"""

from __future__ import annotations

import datetime as dt
import enum
import threading
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from pubdata import audit
from pubdata.db.models import User
from pubdata.gateway.identity import check_password
from pubdata.web.lockout import Lockout

#: How long a sign-in waits for a free password check before it is answered "busy".
WAIT_SECONDS = 1.0


class Outcome(enum.Enum):
    SIGNED_IN = "signed_in"
    #: Wrong login or password (the password was checked).
    WRONG = "wrong"
    #: This failure reached the limit: the password was checked, and the login or address is locked.
    NOW_LOCKED = "now_locked"
    #: Locked, or the limit is already counted: refused without checking the password.
    LOCKED = "locked"
    #: Every password check of this process is taken: refused without checking, and not counted.
    BUSY = "busy"


@dataclass(frozen=True)
class _Account:
    login: str
    password_hash: str | None
    active: bool


class PasswordSignIn:
    """Sign-ins of one serving process: the lock-out shared through the database, the checks local."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        lockout: Lockout,
        checks: int,
        wait_seconds: float = WAIT_SECONDS,
    ) -> None:
        self.sessions = sessions
        self.lockout = lockout
        self.wait_seconds = wait_seconds
        #: The password checks this process may run at once (a test may hold them to see "busy").
        self.checks = threading.BoundedSemaphore(checks)

    def attempt(self, name: str, password: str, address: str, now: dt.datetime) -> Outcome:
        """Try `password` for login `name` from `address`; on success the login is recorded and audited."""
        keys = [f"login:{name}", f"ip:{address}"]
        reservation = self.lockout.reserve(keys, now)
        if reservation is None:
            return Outcome.LOCKED
        account = self._account(name)
        if not self.checks.acquire(timeout=self.wait_seconds):
            self.lockout.withdraw(reservation)
            return Outcome.BUSY
        try:
            check = check_password(account.password_hash if account else None, password)
        finally:
            self.checks.release()
        usable = account is not None and account.active and check.matched
        if usable and self._record(name, check.rehashed, address, now):
            self.lockout.succeeded(reservation, keys[0])
            return Outcome.SIGNED_IN
        return Outcome.NOW_LOCKED if self.lockout.failed(reservation, now) else Outcome.WRONG

    def _account(self, name: str) -> _Account | None:
        with self.sessions() as db:
            user = db.scalar(select(User).where(User.login == name))
            return None if user is None else _Account(user.login, user.password_hash, user.active)

    def _record(self, login: str, rehashed: str | None, address: str, now: dt.datetime) -> bool:
        """Record the sign-in; False when the account went or was deactivated during the check."""
        with self.sessions() as db, db.begin():
            user = db.scalar(select(User).where(User.login == login))
            if user is None or not user.active:
                return False
            user.last_login_at = now
            if rehashed is not None:
                user.password_hash = rehashed
            audit.record(db, user.login, "web.login", user.login, address=address)
            return True
