"""CSRF: every state-changing portal request carries the visitor's token.

Forms send it as the hidden ``csrf_token`` field, htmx as the ``X-CSRF-Token`` header (set once with
``hx-headers`` on ``<body>``). The check is a dependency of the whole portal router, so a new POST
route cannot forget it. A forged request gets a 403 page and changes nothing.

A signed-in visitor's token is the session's, kept server-side. A visitor who is not signed in has
no session (opening the sign-in page writes no row), so the sign-in and language forms are checked
by double submit: the token must equal the one in the visitor's ``pubdata_csrf`` cookie, which
another site can neither read nor, being ``SameSite=Strict``, have the browser send with its form.
"""

from __future__ import annotations

import hmac

from fastapi import Request

from pubdata.web.sessions import CSRF_COOKIE, is_token
from pubdata.web.visitor import PageError

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
FIELD = "csrf_token"
HEADER = "x-csrf-token"


def expected_token(request: Request) -> str | None:
    """The token a state-changing request must carry; None: none would do."""
    current = getattr(request.state, "web_session", None)
    if current is not None:
        token: str = current.csrf_token
        return token
    cookie = request.cookies.get(CSRF_COOKIE)
    return cookie if cookie is not None and is_token(cookie) else None


async def check_csrf(request: Request) -> None:
    if request.method in SAFE_METHODS:
        return
    expected = expected_token(request)
    sent = request.headers.get(HEADER)
    if sent is None:
        form = await request.form()
        value = form.get(FIELD)
        sent = value if isinstance(value, str) else None
    if expected is None or not sent or not hmac.compare_digest(sent.encode(), expected.encode()):
        raise PageError(403, "csrf")
