"""Sign-in throttling: too many failures for one login, or from one address, lock it for a while.

Counting per login stops guessing one person's password from many addresses; counting per address
stops trying one password against many logins. Counters live in the serving process: behind
several processes each counts on its own, so the limit is per process.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import deque


class Lockout:
    def __init__(self, max_failures: int, window: dt.timedelta, lock_for: dt.timedelta) -> None:
        self.max_failures = max_failures
        self.window = window
        self.lock_for = lock_for
        self._failures: dict[str, deque[dt.datetime]] = {}
        self._locked_until: dict[str, dt.datetime] = {}
        self._lock = threading.Lock()

    def locked(self, keys: list[str], now: dt.datetime) -> bool:
        with self._lock:
            return any(self._locked_until.get(k, now) > now for k in keys)

    def fail(self, keys: list[str], now: dt.datetime) -> bool:
        """Count a failure for each key; True when one of them is now locked."""
        locked = False
        with self._lock:
            for key in keys:
                seen = self._failures.setdefault(key, deque())
                seen.append(now)
                while seen and now - seen[0] > self.window:
                    seen.popleft()
                if len(seen) >= self.max_failures:
                    self._locked_until[key] = now + self.lock_for
                    seen.clear()
                    locked = True
        return locked

    def succeed(self, login_key: str) -> None:
        """A good password clears that login's count (an address's count stays: it may be shared)."""
        with self._lock:
            self._failures.pop(login_key, None)
