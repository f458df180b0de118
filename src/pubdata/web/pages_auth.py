"""Sign-in, sign-out and the language switch.

A sign-in goes through `signin.PasswordSignIn` (the lock-out counted before the argon2 check, the
check outside any transaction and bounded per process), starts a fresh session (a new id: a session
id known before sign-in is worthless after it) and audits ``web.login``; a failure is a
``web.login_failed`` refusal whose reason says whether the password was checked, a sign-out
``web.logout``. The client address is the peer's unless ``pubdata serve --forwarded-allow-ips``
names the proxy it came through: a forwarded header from anyone else is ignored.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from pubdata import audit
from pubdata.clock import now_on
from pubdata.web.i18n import LOCALES
from pubdata.web.sessions import LANG_COOKIE
from pubdata.web.signin import Outcome
from pubdata.web.templating import render
from pubdata.web.visitor import portal, workspace_of

router = APIRouter()


def safe_next(target: str | None) -> str:
    """Only a local path: a sign-in link must not forward to another site."""
    if not target or not target.startswith("/") or target.startswith("//") or urlsplit(target).netloc:
        return "/"
    return target


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


@router.get("/login", response_class=HTMLResponse, include_in_schema=False)
def login_page(request: Request, next: str = "/") -> HTMLResponse:
    return render(request, "login.html", {"next": safe_next(next), "error": None, "login": ""})


#: The page's status and the audit's reason for each way a sign-in is refused.
REFUSALS: dict[Outcome, tuple[int, str]] = {
    Outcome.WRONG: (401, "wrong login or password"),
    Outcome.NOW_LOCKED: (429, "wrong login or password; now locked out after repeated failures"),
    Outcome.LOCKED: (429, "locked out after repeated failures; password not checked"),
    Outcome.BUSY: (503, "too many sign-ins at once; password not checked"),
}


@router.post("/login", response_class=HTMLResponse, include_in_schema=False)
def login_submit(
    request: Request,
    login: Annotated[str, Form(max_length=200)],
    password: Annotated[str, Form(max_length=1000)],
    next: Annotated[str, Form(max_length=2000)] = "/",
) -> Response:
    state = portal(request)
    name = login.strip().lower()[:64]
    address = client_address(request)
    now = now_on(request.app.state)
    outcome = state.signin.attempt(name, password, address, now)
    if outcome is not Outcome.SIGNED_IN:
        return _refused(request, name, address, outcome, next)
    old = getattr(request.state, "web_session", None)
    state.sessions.end(old.id if old else None)
    request.state.web_session = state.sessions.create(name, now)
    return RedirectResponse(safe_next(next), status_code=303)


def _refused(request: Request, name: str, address: str, outcome: Outcome, next: str) -> HTMLResponse:
    status, reason = REFUSALS[outcome]
    actor = name or "anonymous"
    # A transaction of its own that writes only this event: `audit.record_refusal` would open a second
    # connection beside this one, and a burst of refusals would then hold the pool two by two.
    with workspace_of(request).sessions() as session, session.begin():
        audit.record(session, actor, "web.login_failed", actor, "refused", reason=reason, address=address)
    error = {Outcome.WRONG: "wrong", Outcome.BUSY: "busy"}.get(outcome, "locked")
    context = {"next": safe_next(next), "error": error, "login": name}
    page = render(request, "login.html", context, status_code=status)
    if outcome is Outcome.BUSY:
        page.headers["Retry-After"] = "1"
    return page


@router.post("/logout", include_in_schema=False)
def logout(request: Request) -> Response:
    current = getattr(request.state, "web_session", None)
    if current is not None and current.login:
        with workspace_of(request).sessions() as session, session.begin():
            audit.record(session, current.login, "web.logout", current.login)
    portal(request).sessions.end(current.id if current else None)
    request.state.web_session = None
    return RedirectResponse("/login", status_code=303)


@router.post("/lang", include_in_schema=False)
def switch_language(
    request: Request,
    lang: Annotated[str, Form(max_length=10)],
    next: Annotated[str, Form(max_length=2000)] = "/",
) -> Response:
    answer = RedirectResponse(safe_next(next), status_code=303)
    if lang in LOCALES:
        answer.set_cookie(
            LANG_COOKIE,
            lang,
            max_age=int(dt.timedelta(days=365).total_seconds()),
            httponly=True,
            samesite="lax",
            secure=portal(request).settings.secure_cookies,
        )
    return answer
