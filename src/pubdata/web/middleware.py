"""ASGI middleware of the portal: security headers, the form-body limit, the session cookie, and
``Cache-Control: no-store``.

They are plain ASGI callables (no `BaseHTTPMiddleware`) so that streamed answers — exports — pass
through untouched. The first three act on portal paths only; the JSON API keeps its own behaviour.
`NoStore` covers both: every page but the sign-in form needs a session, and the API answers to
tokens, so nearly every answer may carry personal data (an entry's sample, a query's rows, who
accessed whose record, a request's reasons) and must stay out of browser and proxy caches. Only
the static assets and the API's own description (`CACHEABLE_PREFIXES`) may be kept.
"""

from __future__ import annotations

import contextlib
from http.cookies import SimpleCookie
from typing import Any

import anyio
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pubdata.clock import now_on
from pubdata.web.sessions import COOKIE, CSRF_COOKIE

#: Paths served by the JSON API and its docs, which the portal's middleware leaves alone.
API_PREFIXES = ("/api/", "/docs", "/redoc", "/openapi.json", "/healthz")

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = (
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
)


#: Paths whose answers carry no personal data and may be cached: vendored assets, the API's docs.
CACHEABLE_PREFIXES = ("/static/", "/docs", "/redoc", "/openapi.json", "/healthz")
NO_STORE = (b"cache-control", b"no-store")


class NoStore:
    """Sends ``Cache-Control: no-store`` with every answer but `CACHEABLE_PREFIXES`, replacing any
    other cache directive a route set: a page is never stored by a browser or a shared proxy."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or str(scope["path"]).startswith(CACHEABLE_PREFIXES):
            await self.app(scope, receive, send)
            return

        async def without_store(message: Message) -> None:
            if message["type"] == "http.response.start":
                kept = [(n, v) for n, v in message.get("headers", []) if n.lower() != b"cache-control"]
                message["headers"] = [*kept, NO_STORE]
            await send(message)

        await self.app(scope, receive, without_store)


def is_portal(scope: Scope) -> bool:
    return scope["type"] == "http" and not str(scope["path"]).startswith(API_PREFIXES)


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not is_portal(scope):
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(n, v) for n, v in SECURITY_HEADERS if n not in names]
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, with_headers)


class BodyLimit:
    """Reads a portal request's body up to `limit` bytes before the app sees it; a larger one is
    answered by `too_large` (a 413 page) without being parsed, whether or not it declared its size."""

    def __init__(self, app: ASGIApp, limit: int, too_large: ASGIApp) -> None:
        self.app = app
        self.limit = limit
        self.too_large = too_large

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not is_portal(scope) or scope["method"] in {"GET", "HEAD", "OPTIONS"}:
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self.too_large(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                await self.too_large(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


class SessionCookie:
    """Finds the portal session named by the cookie and, when the app started, replaced or ended a
    session during the request, sends the new cookie (HttpOnly, SameSite=Lax, Secure on HTTPS)."""

    def __init__(self, app: ASGIApp, store: Any, secure: bool) -> None:
        self.app = app
        self.store = store
        self.secure = secure

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not is_portal(scope) or str(scope["path"]).startswith("/static/"):
            await self.app(scope, receive, send)
            return
        cookies = SimpleCookie()
        for name, value in scope.get("headers", []):
            if name == b"cookie":
                # A malformed cookie header is simply no session.
                with contextlib.suppress(Exception):
                    cookies.load(value.decode("latin-1"))
        sent = cookies[COOKIE].value if COOKIE in cookies else None
        # A database lookup: run beside the event loop, never on it.
        # On the app's clock, the one sessions are started on (`web_session`, sign-in).
        now = now_on(scope["app"].state) if "app" in scope else None
        found = await anyio.to_thread.run_sync(self.store.get, sent, now)
        state = scope.setdefault("state", {})
        state["web_session"] = found

        async def with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                now = state.get("web_session")
                cookies: list[bytes] = []
                if now is None and sent is not None:
                    cookies.append(self._cookie(COOKIE, "", 0))
                elif now is not None and now.id != sent:
                    cookies.append(self._cookie(COOKIE, now.id))
                if now is None and state.get("send_visitor_csrf"):
                    cookies.append(self._cookie(CSRF_COOKIE, state["visitor_csrf"], same_site="Strict"))
                message["headers"] = [*message.get("headers", []), *((b"set-cookie", c) for c in cookies)]
            await send(message)

        await self.app(scope, receive, with_cookie)

    def _cookie(self, name: str, value: str, max_age: int | None = None, same_site: str = "Lax") -> bytes:
        parts = [f"{name}={value}", "Path=/", "HttpOnly", f"SameSite={same_site}"]
        if max_age is not None:
            parts.append(f"Max-Age={max_age}")
        if self.secure:
            parts.append("Secure")
        return "; ".join(parts).encode()
