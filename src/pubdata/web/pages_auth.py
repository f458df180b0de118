"""Sign-in, sign-out and the language switch.

A sign-in checks the password with the gateway's argon2 hashes (`verify_password`), refuses while
the login or the client address is locked out, starts a fresh session (a new id: a session id known
before sign-in is worthless after it) and audits ``web.login``; a failure is a
``web.login_failed`` refusal, a sign-out ``web.logout``.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from pubdata import audit
from pubdata.clock import now_on
from pubdata.db.models import User
from pubdata.gateway.identity import verify_password
from pubdata.web.i18n import LOCALES
from pubdata.web.sessions import LANG_COOKIE
from pubdata.web.templating import render
from pubdata.web.visitor import portal, web_session, workspace_of

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
    web_session(request)
    return render(request, "login.html", {"next": safe_next(next), "error": None, "login": ""})


@router.post("/login", response_class=HTMLResponse, include_in_schema=False)
def login_submit(
    request: Request,
    login: Annotated[str, Form(max_length=200)],
    password: Annotated[str, Form(max_length=1000)],
    next: Annotated[str, Form(max_length=2000)] = "/",
) -> Response:
    state = portal(request)
    workspace = workspace_of(request)
    name = login.strip().lower()[:64]
    address = client_address(request)
    keys = [f"login:{name}", f"ip:{address}"]
    now = now_on(request.app.state)
    if state.lockout.locked(keys, now):
        return _refused(request, name, address, "locked", next)
    with workspace.sessions() as session, session.begin():
        user = session.scalar(select(User).where(User.login == name).options(selectinload(User.role_rows)))
        known = verify_password(user or User(password_hash=None), password)
        if user is not None and known and user.active:
            user.last_login_at = now
            audit.record(session, user.login, "web.login", user.login, address=address)
            signed = user.login
        else:
            signed = ""
    if not signed:
        locked = state.lockout.fail(keys, now)
        return _refused(request, name, address, "locked" if locked else "wrong", next)
    state.lockout.succeed(keys[0])
    old = getattr(request.state, "web_session", None)
    state.sessions.end(old.id if old else None)
    request.state.web_session = state.sessions.create(signed, now)
    return RedirectResponse(safe_next(next), status_code=303)


def _refused(request: Request, name: str, address: str, why: str, next: str) -> HTMLResponse:
    workspace = workspace_of(request)
    with workspace.sessions() as session, session.begin():
        audit.record_refusal(
            session,
            name or "anonymous",
            "web.login_failed",
            name or "anonymous",
            reason="locked out after repeated failures" if why == "locked" else "wrong login or password",
            address=address,
        )
    status = 429 if why == "locked" else 401
    context = {"next": safe_next(next), "error": why, "login": name}
    return render(request, "login.html", context, status_code=status)


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
