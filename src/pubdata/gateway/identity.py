"""Who is calling: users and their roles (REQ-4), API tokens, consuming applications (REQ-15/17).

Passwords are hashed with argon2id, a deliberately slow, memory-hard hash: a person's password has
little entropy, so a stolen table must cost an attacker a lot per guess. API tokens are the opposite:
32 random bytes cannot be guessed, so a single fast SHA-256 is enough and keeps the per-request check
cheap. A token reads ``pd_<public id>_<secret>``; the public id finds the row, the secret is compared
by digest in constant time, and the clear token exists only in the answer to `issue_token`.

Every refusal answers with the same `NotAuthenticated` message — unknown user, wrong password,
unknown, expired or revoked token, deactivated account — so that an answer is no oracle. Every
creation, revocation, login and refusal is audited (REQ-40), never with a password or a secret.

Example:
    >>> import tempfile
    >>> from pubdata.workspace import Workspace
    >>> home = tempfile.TemporaryDirectory()
    >>> workspace = Workspace.init(home.name)
    >>> with workspace.sessions() as session, session.begin():
    ...     user = create_user(session, "li.na", roles=[Role.OPEN_DATA_USER], organisation=None,
    ...                        password=None, actor="doc")
    ...     issued = issue_token(session, "li.na", [Scope.CATALOG_READ], 30, "doc",
    ...                          workspace.settings.default)
    >>> issued.token.startswith(f"pd_{issued.row.public_id}_")
    True
    >>> with workspace.sessions() as session, session.begin():
    ...     caller = authenticate_token(session, issued.token)
    >>> caller.user.login, caller.has_role(Role.OPEN_DATA_USER), caller.allows(Scope.QUERY)
    ('li.na', True, False)
    >>> workspace.engine.dispose(); home.cleanup()
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from typing import NoReturn

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from pubdata import audit
from pubdata.catalog.service import find_organisation
from pubdata.db.models import ApiToken, Application, Organisation, User, UserRole, aware, utcnow
from pubdata.errors import InputError, NotFound, PubdataError, RuleViolation
from pubdata.gateway.roles import SCOPE_NEEDS_ROLE, NotAuthorised, Principal, Role, Scope
from pubdata.messages import text
from pubdata.settings import Settings

__all__ = ["NotAuthorised", "Principal"]  # re-exported: callers of this module need them too

#: argon2id with the library's defaults (RFC 9106 low-memory profile). Hashes carry their own
#: parameters, so raising these later upgrades each hash at its owner's next successful login.
HASHER = PasswordHasher()
MIN_PASSWORD_LENGTH = 10
_TOKEN = re.compile(r"pd_([0-9a-f]{8})_([A-Za-z0-9_-]{43})")
_LOGIN = re.compile(r"[a-z0-9][a-z0-9._@-]{0,63}")
#: `last_used_at` is written at most this often per token, not on every request.
LAST_USED_RESOLUTION = dt.timedelta(minutes=1)


class NotAuthenticated(PubdataError):
    """The credentials do not identify an active account; deliberately says no more than that."""

    def __init__(self) -> None:
        super().__init__(text("not authenticated: unknown, expired or revoked credentials"))


@dataclass(frozen=True)
class IssuedToken:
    """The clear `token` exists only here: the database keeps its digest."""

    token: str
    row: ApiToken


# --- audit of refusals -------------------------------------------------------------------------


#: Kept under its old name for the gateway modules that import it from here.
_record_refusal = audit.record_refusal


def _refuse(session: Session, actor: str, action: str, target: str, violation: RuleViolation) -> NoReturn:
    _record_refusal(session, actor, action, target, reason=str(violation), req=violation.req)
    raise violation


# --- users -------------------------------------------------------------------------------------


def normalise_login(login: str) -> str:
    """Logins compare case-insensitively: ``Zhang.Wei`` and ``zhang.wei`` are one person."""
    cleaned = login.strip().lower()
    if not _LOGIN.fullmatch(cleaned):
        raise InputError(
            text("{login!r} is not a login name (letters, digits, '.', '_', '-', '@'; ≤ 64)", login=login)
        )
    return cleaned


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InputError(text("a password needs at least {count} characters", count=MIN_PASSWORD_LENGTH))


def create_user(
    session: Session,
    login: str,
    *,
    roles: Iterable[Role],
    organisation: str | None,
    password: str | None,
    actor: str,
    display_name: str = "",
    hasher: PasswordHasher = HASHER,
) -> User:
    """A new active user; `organisation` is a name, short name or USCC (None for a private person)."""
    login = normalise_login(login)
    held = sorted(set(roles))
    if not held:
        raise InputError(text("a user needs at least one role"), column="role")
    org = find_organisation(session, organisation) if organisation else None
    if org is None and held != [Role.OPEN_DATA_USER]:
        why = RuleViolation(text("only an open-data user may belong to no organisation"), "REQ-4")
        _refuse(session, actor, "user.create", login, why)
    if Role.COMPETENT_DEPARTMENT in held and (org is None or not org.is_competent_department):
        why = RuleViolation(
            text(
                "{organisation} is not a competent department (公共数据主管部门)", organisation=organisation
            ),
            "REQ-4",
        )
        _refuse(session, actor, "user.create", login, why)
    if session.scalar(select(User.id).where(User.login == login)) is not None:
        raise PubdataError(text("the login {login!r} is taken", login=login))
    if password is not None:
        _check_password(password)
    user = User(
        login=login,
        display_name=display_name,
        organisation=org,
        password_hash=hasher.hash(password) if password is not None else None,
        role_rows=[UserRole(role=role) for role in held],
    )
    session.add(user)
    session.flush()
    audit.record(
        session, actor, "user.create", login, organisation=org.name if org else None, roles=list(held)
    )
    return user


def find_user(session: Session, login: str) -> User:
    user = session.scalar(
        select(User).where(User.login == login.strip().lower()).options(selectinload(User.role_rows))
    )
    if user is None:
        raise NotFound(text("no user with the login {login!r}", login=login))
    return user


def local_principal(session: Session, login: str) -> Principal:
    """A person acting on the server itself (the command line, the demo builder).

    The operating system signed them in, so no token scope limits them; their roles and their
    organisation still decide every step, exactly as for a caller over HTTP.
    """
    user = find_user(session, login)
    return Principal(user, user.organisation, user.roles, frozenset(Scope))


def list_users(session: Session) -> list[User]:
    query = select(User).options(selectinload(User.role_rows), selectinload(User.organisation))
    return list(session.scalars(query.order_by(User.login)))


def deactivate_user(session: Session, login: str, actor: str) -> User:
    """Sign-in and every token of the user stop working at once; the rows stay for the audit trail."""
    user = find_user(session, login)
    user.active = False
    audit.record(session, actor, "user.deactivate", user.login)
    return user


@cache
def _decoy_hash(hasher: PasswordHasher) -> str:
    return hasher.hash(secrets.token_urlsafe(16))


@dataclass(frozen=True)
class PasswordCheck:
    """The answer of `check_password`: whether it matched, and the hash to store instead, if any."""

    matched: bool
    rehashed: str | None = None


def check_password(stored: str | None, password: str, hasher: PasswordHasher = HASHER) -> PasswordCheck:
    """Check `password` against a stored hash without touching the database, so that the slow hash
    runs outside any transaction; `stored` None (no account, no password login) is checked against a
    decoy, so that it takes as long as a wrong password."""
    try:
        hasher.verify(stored or _decoy_hash(hasher), password)
    except (VerificationError, InvalidHashError):
        return PasswordCheck(False)
    if stored is None:  # the decoy matched by chance: still no password login
        return PasswordCheck(False)
    return PasswordCheck(True, hasher.hash(password) if hasher.check_needs_rehash(stored) else None)


def verify_password(user: User, password: str, hasher: PasswordHasher = HASHER) -> bool:
    """Check `password` (argon2 compares in constant time); re-hash it when the parameters changed."""
    check = check_password(user.password_hash, password, hasher)
    if check.rehashed is not None:
        user.password_hash = check.rehashed
    return check.matched


def login(
    session: Session,
    login: str,
    password: str,
    *,
    now: dt.datetime | None = None,
    hasher: PasswordHasher = HASHER,
) -> Principal:
    """Sign a person in by password (the caller commits `last_login_at` and the audit event).

    An unknown login costs as much time as a wrong password.
    """
    name = login.strip().lower()[:64]
    user = session.scalar(
        select(User)
        .where(User.login == name)
        .options(selectinload(User.role_rows), selectinload(User.organisation))
    )
    # An unknown login is checked against a decoy hash, so it takes as long as a wrong password.
    known = verify_password(user or User(password_hash=None), password, hasher)
    if user is None or not known or not user.active:
        _record_refusal(session, name, "user.login", name)
        raise NotAuthenticated()
    user.last_login_at = now or utcnow()
    audit.record(session, user.login, "user.login", user.login)
    return Principal(user, user.organisation, user.roles, frozenset(Scope))


# --- tokens ------------------------------------------------------------------------------------


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def issue_token(
    session: Session,
    login: str,
    scopes: Iterable[Scope],
    days: int,
    actor: str,
    settings: Settings,
    *,
    name: str = "",
    now: dt.datetime | None = None,
) -> IssuedToken:
    """A new token for an active user, valid `days` (at most ``max_token_days``)."""
    user = find_user(session, login)
    if not user.active:
        raise PubdataError(text("{login} is deactivated", login=user.login))
    wanted = sorted(set(scopes))
    if not wanted:
        raise InputError(text("a token needs at least one scope"), column="scope")
    for scope in wanted:
        needed = SCOPE_NEEDS_ROLE.get(scope)
        if needed and user.roles.isdisjoint(needed):
            roles = ", ".join(sorted(r.value for r in needed))
            why = RuleViolation(
                text("the scope {scope} needs the role {roles}", scope=scope.value, roles=roles), "REQ-4"
            )
            _refuse(session, actor, "token.issue", user.login, why)
    if not 1 <= days <= settings.max_token_days:
        raise InputError(
            text(
                "a token lives 1 to {most} days (max_token_days), not {days}",
                most=settings.max_token_days,
                days=days,
            )
        )
    public_id = secrets.token_hex(4)
    token = f"pd_{public_id}_{secrets.token_urlsafe(32)}"
    issued_at = now or utcnow()
    row = ApiToken(
        public_id=public_id,
        secret_sha256=_digest(token),
        user=user,
        name=name,
        scopes=[s.value for s in wanted],
        created_by=actor,
        created_at=issued_at,
        expires_at=issued_at + dt.timedelta(days=days),
    )
    session.add(row)
    session.flush()
    audit.record(
        session, actor, "token.issue", public_id, user=user.login, scopes=row.scopes, expires=row.expires_at
    )
    return IssuedToken(token, row)


def list_tokens(session: Session, login: str | None = None) -> list[ApiToken]:
    """Every token (or one user's), oldest first; the rows hold digests, never secrets."""
    query = select(ApiToken).options(selectinload(ApiToken.user)).order_by(ApiToken.id)
    if login is not None:
        query = query.where(ApiToken.user_id == find_user(session, login).id)
    return list(session.scalars(query))


def revoke_token(session: Session, public_id: str, actor: str, *, now: dt.datetime | None = None) -> ApiToken:
    """Stop a token at once; revoking twice keeps the first time."""
    row = session.scalar(select(ApiToken).where(ApiToken.public_id == public_id.strip()))
    if row is None:
        raise NotFound(text("no token with the id {id!r}", id=public_id))
    if row.revoked_at is None:
        row.revoked_at = now or utcnow()
        audit.record(session, actor, "token.revoke", row.public_id, user=row.user.login)
    return row


def authenticate_token(session: Session, token: str, now: dt.datetime | None = None) -> Principal:
    """The principal behind a bearer token, or `NotAuthenticated` (audited) for any failure.

    A success is not audited here: the call the token is used for writes its own event naming
    `Principal.token_id`, and one event per call keeps the chain from doubling. The caller commits
    the `last_used_at` stamp (written at most once a minute per token).
    """
    now = now or utcnow()
    match = _TOKEN.fullmatch(token.strip())
    public_id = match.group(1) if match else ""
    row = None
    if match:
        row = session.scalar(
            select(ApiToken)
            .where(ApiToken.public_id == public_id)
            .options(
                selectinload(ApiToken.user).selectinload(User.role_rows),
                selectinload(ApiToken.user).selectinload(User.organisation),
            )
        )
    expected = row.secret_sha256 if row is not None else _digest(secrets.token_urlsafe(32))
    same = hmac.compare_digest(_digest(token.strip()), expected)
    if (
        row is None
        or not same
        or row.revoked_at is not None
        or aware(row.expires_at) <= now
        or not row.user.active
    ):
        _record_refusal(session, "anonymous", "token.authenticate", public_id or "malformed")
        raise NotAuthenticated()
    if row.last_used_at is None or now - aware(row.last_used_at) >= LAST_USED_RESOLUTION:
        row.last_used_at = now
    user = row.user
    scopes = frozenset(Scope.parse(s) for s in row.scopes)
    return Principal(user, user.organisation, user.roles, scopes, row.public_id)


# --- consuming applications (REQ-15/17) --------------------------------------------------------


def create_application(
    session: Session,
    code: str,
    *,
    name: str,
    organisation: str,
    purpose: str,
    system_owner: str,
    actor: str,
) -> Application:
    """Register the system through which an organisation consumes data; grants and calls name it."""
    code = code.strip()
    if not re.fullmatch(r"[a-z][a-z0-9_]{1,63}", code):
        raise InputError(
            text("{code!r} is not an application code (a-z, 0-9, _; starts with a letter)", code=code)
        )
    if not purpose.strip() or not system_owner.strip():
        why = RuleViolation(text("an application states its purpose and its system owner"), "REQ-15")
        _refuse(session, actor, "application.create", code, why)
    if session.scalar(select(Application.id).where(Application.code == code)) is not None:
        raise PubdataError(text("the application code {code!r} is taken", code=code))
    org = find_organisation(session, organisation)
    app = Application(code=code, name=name, organisation=org, purpose=purpose.strip())
    app.system_owner = system_owner.strip()
    session.add(app)
    session.flush()
    audit.record(session, actor, "application.create", code, organisation=org.name, purpose=app.purpose)
    return app


def list_applications(session: Session) -> list[Application]:
    query = select(Application).options(selectinload(Application.organisation))
    return list(session.scalars(query.order_by(Application.code)))


def active_applications(session: Session, organisation: Organisation | None) -> list[Application]:
    """The organisation's active applications by code: what its people may read through (none without one)."""
    if organisation is None:
        return []
    query = select(Application).where(
        Application.organisation_id == organisation.id, Application.active.is_(True)
    )
    return list(session.scalars(query.order_by(Application.code)))


def deactivate_application(session: Session, code: str, actor: str) -> Application:
    app = session.scalar(select(Application).where(Application.code == code.strip()))
    if app is None:
        raise NotFound(text("no application with the code {code!r}", code=code))
    app.active = False
    audit.record(session, actor, "application.deactivate", app.code)
    return app
