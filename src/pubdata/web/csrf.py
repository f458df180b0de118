"""CSRF: every state-changing portal request carries the session's token.

Forms send it as the hidden ``csrf_token`` field, htmx as the ``X-CSRF-Token`` header (set once with
``hx-headers`` on ``<body>``). The check is a dependency of the whole portal router, so a new POST
route cannot forget it. A forged request gets a 403 page and changes nothing.
"""

from __future__ import annotations

import hmac

from fastapi import Request

from pubdata.web.visitor import PageError

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
FIELD = "csrf_token"
HEADER = "x-csrf-token"


async def check_csrf(request: Request) -> None:
    if request.method in SAFE_METHODS:
        return
    current = getattr(request.state, "web_session", None)
    sent = request.headers.get(HEADER)
    if sent is None:
        form = await request.form()
        value = form.get(FIELD)
        sent = value if isinstance(value, str) else None
    if current is None or not sent or not hmac.compare_digest(sent.encode(), current.csrf_token.encode()):
        raise PageError(403, "csrf")
