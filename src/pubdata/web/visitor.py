"""Who is looking at a page: the portal session, the signed-in principal, the language, the nav.

Every page gets its principal from `signed_in` and checks roles with `require_roles` on the server;
the navigation is computed from the same `NAV` table, so a link is shown exactly when its page
would answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import Request
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from pubdata.db.models import Notification, User
from pubdata.gateway import visibility
from pubdata.gateway.roles import Principal, Role, Scope
from pubdata.web.config import WebSettings
from pubdata.web.i18n import pick_locale
from pubdata.web.lockout import Lockout
from pubdata.web.sessions import CSRF_COOKIE, LANG_COOKIE, SessionStore, WebSession, visitor_token
from pubdata.web.signin import PasswordSignIn
from pubdata.workflow import incidents as incident_rules
from pubdata.workspace import Workspace


def N_(message: str) -> str:  # noqa: N802 - the gettext convention extractors look for
    """Marks a message id for extraction; the template translates it when it is shown."""
    return message


#: Who may use the query console: the roles `access.decide` lets query.
QUERY_ROLES = visibility.QUERY_ROLES
AUDIT_ROLES = (Role.SECURITY_OFFICER, Role.AUDITOR)
#: Who may register an application: those who query name one in every call; admins for anyone.
APPLICATION_ROLES = (*QUERY_ROLES, Role.PLATFORM_ADMIN)
#: Who has requests, objections or incidents to decide, check or verify.
WORK_ROLES = (Role.PROVIDER, Role.COMPETENT_DEPARTMENT)
DASHBOARD_ROLES = (Role.COMPETENT_DEPARTMENT, Role.PLATFORM_ADMIN, Role.SECURITY_OFFICER, Role.AUDITOR)
#: Who has incidents to report, work, oversee or read (`incidents.visible` filters the list).
INCIDENT_ROLES = (*incident_rules.STAFF_ROLES, Role.COMPETENT_DEPARTMENT, Role.AUDITOR)
#: (path, message id of the label, roles that may open it; None: every signed-in person).
NAV: tuple[tuple[str, str, tuple[Role, ...] | None], ...] = (
    ("/", N_("Home"), None),
    ("/catalog", N_("Catalogue"), None),
    ("/query", N_("Query console"), QUERY_ROLES),
    ("/dashboard", N_("Dashboard"), DASHBOARD_ROLES),
    ("/audit", N_("Audit log"), AUDIT_ROLES),
    ("/requests", N_("My requests"), (Role.CONSUMER,)),
    ("/work", N_("Work"), WORK_ROLES),
    ("/incidents", N_("Incidents"), INCIDENT_ROLES),
    ("/inbox", N_("Inbox"), None),
    ("/org", N_("Organisation settings"), None),
)


class PageError(Exception):
    """A page refused: rendered as an error page with `status` (403, 404, 413, …)."""

    def __init__(self, status: int, kind: str, detail: str = "") -> None:
        super().__init__(f"{status} {kind}: {detail}")
        self.status = status
        #: Chooses the sentence the error page shows: forbidden, not_found, too_large, csrf.
        self.kind = kind
        self.detail = detail


class SignInRequired(Exception):
    """No live session: the visitor is sent to the sign-in page."""


@dataclass
class Portal:
    """The portal's state for one app: settings, sessions, sign-in counters and password checks."""

    settings: WebSettings
    sessions: SessionStore
    lockout: Lockout
    signin: PasswordSignIn


def portal(request: Request) -> Portal:
    found: Portal = request.app.state.web
    return found


def workspace_of(request: Request) -> Workspace:
    found: Workspace = request.app.state.workspace
    return found


def csrf_token(request: Request) -> str:
    """The token this visitor's forms carry: the session's, or for a visitor not signed in one held
    in a cookie of its own (the session middleware sends it), so that opening the sign-in page
    writes no session row."""
    current: WebSession | None = getattr(request.state, "web_session", None)
    if current is not None:
        return current.csrf_token
    token: str | None = getattr(request.state, "visitor_csrf", None)
    if token is None:
        token, fresh = visitor_token(request.cookies.get(CSRF_COOKIE))
        request.state.visitor_csrf = token
        request.state.send_visitor_csrf = fresh
    return token


def signed_in(request: Request) -> Principal:
    """The principal of the session, re-read from the database on every request, so a deactivated
    account or a changed role takes effect at once."""
    cached: Principal | None = getattr(request.state, "principal", None)
    if cached is not None:
        return cached
    current: WebSession | None = getattr(request.state, "web_session", None)
    if current is None or not current.login:
        raise SignInRequired()
    with workspace_of(request).sessions() as session:
        user = session.scalar(
            select(User)
            .where(User.login == current.login)
            .options(selectinload(User.role_rows), selectinload(User.organisation))
        )
        if user is None or not user.active:
            portal(request).sessions.end(current.id)
            request.state.web_session = None
            raise SignInRequired()
        session.expunge_all()
    principal = Principal(user, user.organisation, user.roles, frozenset(Scope))
    request.state.principal = principal
    return principal


def may_open(principal: Principal, roles: tuple[Role, ...] | None) -> bool:
    return roles is None or principal.has_role(*roles)


def require_roles(principal: Principal, roles: tuple[Role, ...]) -> None:
    if not principal.has_role(*roles):
        raise PageError(403, "forbidden", "、".join(r.label for r in roles))


def unread_count(request: Request, principal: Principal) -> int:
    """The person's unread notifications, for the header of every page."""
    with workspace_of(request).sessions() as session:
        found = session.scalar(
            select(func.count())
            .select_from(Notification)
            .join(User, Notification.user_id == User.id)
            .where(User.login == principal.user.login, Notification.read_at.is_(None))
        )
    return int(found or 0)


def locale_of(request: Request) -> str:
    return pick_locale(request.cookies.get(LANG_COOKIE))


def layout_context(request: Request) -> tuple[str, dict[str, Any]]:
    """The locale, and what the layout shows: nav items this visitor may open, user, CSRF token."""
    locale = locale_of(request)
    current: WebSession | None = getattr(request.state, "web_session", None)
    principal: Principal | None = None
    if current is not None and current.login:
        try:
            principal = signed_in(request)
        except SignInRequired:
            principal = None
    nav = [
        (path, label) for path, label, roles in NAV if principal is not None and may_open(principal, roles)
    ]
    return locale, {
        "csrf_token": csrf_token(request),
        "principal": principal,
        "nav": nav,
        "current_path": request.url.path,
        "unread": unread_count(request, principal) if principal is not None else 0,
    }
