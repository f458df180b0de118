"""How the portal guards its sessions: read once from the environment when the app is built.

These are deployment facts (is the portal behind HTTPS, how long may a desk stay signed in), not rules
of the regulation, so they live in the environment of the serving process rather than in the
tenant settings of ``pubdata.toml``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from pubdata.errors import PubdataError


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        value = int(raw)
    except ValueError:
        raise PubdataError(f"{name} must be a whole number, not {raw!r}") from None
    if value < 1:
        raise PubdataError(f"{name} must be at least 1, not {value}")
    return value


def _env_minutes(name: str, default: float) -> float:
    """A lifetime in minutes; decimals allowed (``0.5`` is thirty seconds)."""
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        value = float(raw)
    except ValueError:
        raise PubdataError(f"{name} must be a number of minutes, not {raw!r}") from None
    if not value > 0:
        raise PubdataError(f"{name} must be more than 0 minutes, not {raw}")
    return value


@dataclass(frozen=True)
class WebSettings:
    """Session lifetimes, cookie flags, body limit and sign-in lock-out of the portal."""

    #: Sign out after this many minutes without a request.
    idle_minutes: float = 30
    #: Sign out this many minutes after signing in, however busy the session.
    absolute_minutes: float = 12 * 60
    #: Send the session cookie with ``Secure`` (set when the portal is served over HTTPS).
    secure_cookies: bool = False
    #: Largest form body accepted, in bytes; larger ones get a 413 page.
    max_body_bytes: int = 1024 * 1024
    #: Failed sign-ins per login (and per client address) within `lockout_window_minutes`…
    max_failures: int = 5
    lockout_window_minutes: int = 15
    #: …lock that login (or address) for this long.
    lockout_minutes: int = 15
    #: Passwords checked at once by one serving process: each argon2 check takes ~64 MiB and a core
    #: for a quarter of a second, so sign-ins beyond this wait briefly, then get a 503 page.
    password_checks: int = 2

    @classmethod
    def from_environment(cls) -> WebSettings:
        """``PUBDATA_WEB_IDLE_MINUTES``, ``…_ABSOLUTE_MINUTES``, ``…_SECURE_COOKIES`` (1/true),
        ``…_MAX_BODY_BYTES``, ``…_MAX_FAILURES``, ``…_LOCKOUT_MINUTES``, ``…_PASSWORD_CHECKS``."""
        secure = os.environ.get("PUBDATA_WEB_SECURE_COOKIES", "").strip().lower() in {"1", "true", "yes"}
        return cls(
            idle_minutes=_env_minutes("PUBDATA_WEB_IDLE_MINUTES", cls.idle_minutes),
            absolute_minutes=_env_minutes("PUBDATA_WEB_ABSOLUTE_MINUTES", cls.absolute_minutes),
            secure_cookies=secure,
            max_body_bytes=_env_int("PUBDATA_WEB_MAX_BODY_BYTES", cls.max_body_bytes),
            max_failures=_env_int("PUBDATA_WEB_MAX_FAILURES", cls.max_failures),
            lockout_window_minutes=_env_int("PUBDATA_WEB_LOCKOUT_WINDOW_MINUTES", cls.lockout_window_minutes),
            lockout_minutes=_env_int("PUBDATA_WEB_LOCKOUT_MINUTES", cls.lockout_minutes),
            password_checks=_env_int("PUBDATA_WEB_PASSWORD_CHECKS", cls.password_checks),
        )
