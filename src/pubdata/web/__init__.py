"""The web portal: server-rendered pages (Jinja2 + htmx) over the same services as the API.

`install` adds it to an app: the session, body-limit and security-header middleware, the vendored
static files, the page routes (all behind the CSRF check) and the error pages. Pages reuse the
catalogue reads, the gateway's access decisions and `run_query`; no rule is re-implemented here.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send

from pubdata.web import (
    pages_audit,
    pages_auth,
    pages_cart,
    pages_catalog,
    pages_dashboard,
    pages_inbox,
    pages_incidents,
    pages_objections,
    pages_org,
    pages_query,
    pages_requests,
    pages_responsible,
    pages_work,
)
from pubdata.web.config import WebSettings
from pubdata.web.csrf import check_csrf
from pubdata.web.lockout import Lockout
from pubdata.web.middleware import BodyLimit, NoStore, SecurityHeaders, SessionCookie
from pubdata.web.sessions import SessionStore
from pubdata.web.signin import PasswordSignIn
from pubdata.web.templating import render
from pubdata.web.visitor import PageError, Portal, SignInRequired

STATIC = Path(__file__).resolve().parent / "static"

router = APIRouter(dependencies=[Depends(check_csrf)], include_in_schema=False)
for _pages in (
    pages_auth, pages_catalog, pages_query, pages_audit, pages_dashboard, pages_org,
    pages_cart, pages_requests, pages_work, pages_objections, pages_inbox,
    pages_responsible, pages_incidents,
):  # fmt: skip
    router.include_router(_pages.router)


async def _page_error(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, PageError):  # registered for PageError only: anything else stays unhandled
        raise exc
    return render(request, "error.html", {"error": exc}, status_code=exc.status)


async def _sign_in(request: Request, _exc: Exception) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    if request.headers.get("hx-request"):
        return Response(status_code=204, headers={"HX-Redirect": f"/login?next={target}"})
    return RedirectResponse(f"/login?next={target}", status_code=303)


def install(app: FastAPI, settings: WebSettings | None = None) -> None:
    settings = settings or WebSettings.from_environment()
    lockout = Lockout(
        app.state.workspace.sessions,
        settings.max_failures,
        dt.timedelta(minutes=settings.lockout_window_minutes),
        dt.timedelta(minutes=settings.lockout_minutes),
    )
    state = Portal(
        settings,
        SessionStore(
            app.state.workspace.sessions,
            dt.timedelta(minutes=settings.idle_minutes),
            dt.timedelta(minutes=settings.absolute_minutes),
        ),
        lockout,
        PasswordSignIn(app.state.workspace.sessions, lockout, settings.password_checks),
    )
    app.state.web = state

    async def too_large(scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        response = render(request, "error.html", {"error": PageError(413, "too_large")}, status_code=413)
        response.headers["Connection"] = "close"
        await response(scope, receive, send)

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.include_router(router)
    app.add_exception_handler(PageError, _page_error)
    app.add_exception_handler(SignInRequired, _sign_in)
    # Added last = runs first: headers wrap everything, then the cookie, then the body limit.
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes, too_large=too_large)
    app.add_middleware(SessionCookie, store=state.sessions, secure=settings.secure_cookies)
    app.add_middleware(SecurityHeaders)
    app.add_middleware(NoStore)  # the API's answers too: see `middleware`
