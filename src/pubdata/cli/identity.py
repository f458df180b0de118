"""``pubdata users``, ``pubdata tokens`` and ``pubdata apps``: who may call the gateway, and through what.

A password is never a command-line argument (it would sit in the shell history and in ``ps``): it
comes from a hidden prompt or, for scripts, from standard input. A token is printed once, when it is
issued; listings show its public id only.
"""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from pubdata.catalog.service import find_organisation
from pubdata.cli.errors import warn
from pubdata.cli.options import ACTOR, Actor, Home, Json, reading, writing, writing_audited
from pubdata.cli.render import fields_block, out, print_json, success, table
from pubdata.db.models import ApiToken, Application, User
from pubdata.errors import InputError
from pubdata.gateway import identity
from pubdata.gateway.roles import Role, Scope
from pubdata.workflow import duties

users_app = typer.Typer(help="People who sign in, with their roles (REQ-4).", no_args_is_help=True)
tokens_app = typer.Typer(help="API tokens: scoped, expiring, revocable.", no_args_is_help=True)
apps_app = typer.Typer(help="Consuming applications (REQ-15/17).", no_args_is_help=True)

_ROLES = ", ".join(r.value for r in Role)
_SCOPES = ", ".join(s.value for s in Scope)


def user_facts(user: User) -> dict[str, Any]:
    return {
        "login": user.login,
        "display_name": user.display_name,
        "organisation": user.organisation.name if user.organisation else None,
        "roles": sorted(user.roles),
        "role_labels": [r.label for r in sorted(user.roles)],
        "active": user.active,
        "created_at": user.created_at,
        "last_login_at": user.last_login_at,
    }


def token_facts(row: ApiToken) -> dict[str, Any]:
    """Everything about a token except its secret, which the database does not hold anyway."""
    return {
        "id": row.public_id,
        "user": row.user.login,
        "name": row.name,
        "scopes": list(row.scopes),
        "created_at": row.created_at,
        "expires_at": row.expires_at,
        "revoked_at": row.revoked_at,
        "last_used_at": row.last_used_at,
    }


def app_facts(app: Application) -> dict[str, Any]:
    return {
        "code": app.code,
        "name": app.name,
        "organisation": app.organisation.name,
        "purpose": app.purpose,
        "system_owner": app.system_owner,
        "active": app.active,
    }


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise InputError("--password-stdin: standard input held no password")
        return password
    return str(typer.prompt("Password", hide_input=True, confirmation_prompt=True))


@users_app.command("add")
def add_user(
    login: Annotated[str, typer.Argument(help="Login name (case-insensitive).")],
    org: Annotated[str | None, typer.Option("--org", help="Organisation: name, short name or USCC.")] = None,
    role: Annotated[
        list[str] | None, typer.Option("--role", help=f"A role, repeatable: {_ROLES} (or its Chinese label).")
    ] = None,
    name: Annotated[str, typer.Option("--name", help="Display name.")] = "",
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input, not a prompt.")
    ] = False,
    home: Home = None,
    actor: Actor = ACTOR,
    as_json: Json = False,
) -> None:
    """Create a user; the password is asked for (hidden) or read from standard input.

    Roles that would let one person both ask for data and decide on requests (consumer with
    competent department or provider) are warned about, or refused when the setting
    conflicting_roles is "refuse".
    """
    roles = [Role.parse(r) for r in role or []]
    password = _read_password(password_stdin)
    with writing(home) as (workspace, session):
        found = find_organisation(session, org) if org else None
        tenant = workspace.settings.for_tenant(found.division_code) if found else workspace.settings.default
        conflicts = duties.check_user_roles(session, identity.normalise_login(login), roles, tenant, actor)
        user = identity.create_user(
            session, login, roles=roles, organisation=org, password=password, actor=actor, display_name=name
        )
        facts = user_facts(user)
    for said in conflicts:
        warn("conflicting_roles", said, as_json)
    if as_json:
        print_json(facts)
        return
    success(f"created {facts['login']} ({', '.join(facts['role_labels'])})")


@users_app.command("list")
def list_users(home: Home = None, as_json: Json = False) -> None:
    """Every user with organisation, roles and state."""
    with reading(home) as (_workspace, session):
        found = [user_facts(u) for u in identity.list_users(session)]
    if as_json:
        print_json(found)
        return
    table(
        f"Users ({len(found)})",
        ["login", "name", "organisation", "roles", "active", "last login"],
        (
            [
                u["login"],
                u["display_name"],
                u["organisation"],
                u["role_labels"],
                u["active"],
                u["last_login_at"],
            ]
            for u in found
        ),
    )


@users_app.command("deactivate")
def deactivate_user(
    login: Annotated[str, typer.Argument(help="Login name.")],
    home: Home = None,
    actor: Actor = ACTOR,
) -> None:
    """Stop a user's sign-in and every token of theirs at once (the rows stay for the audit trail)."""
    with writing(home) as (_workspace, session):
        identity.deactivate_user(session, login, actor)
    success(f"deactivated {login}")


@tokens_app.command("issue")
def issue_token(
    user: Annotated[str, typer.Option("--user", help="Login name of the token's owner.")],
    scope: Annotated[list[str], typer.Option("--scope", help=f"A scope, repeatable: {_SCOPES}.")],
    days: Annotated[int, typer.Option("--days", help="Days until it expires (at most max_token_days).")],
    name: Annotated[str, typer.Option("--name", help="What the token is for.")] = "",
    home: Home = None,
    actor: Actor = ACTOR,
    as_json: Json = False,
) -> None:
    """Issue a token and print it — the only time it is ever shown."""
    scopes = [Scope.parse(s) for s in scope]
    with writing_audited(home, actor, "token.issue", user) as (workspace, session):
        owner = identity.find_user(session, user)
        division = owner.organisation.division_code if owner.organisation else ""
        settings = workspace.settings.for_tenant(division)
        issued = identity.issue_token(session, user, scopes, days, actor, settings, name=name)
        facts = token_facts(issued.row)
    if as_json:
        print_json({**facts, "token": issued.token})
        return
    success(f"issued token {facts['id']} for {facts['user']}, expires {facts['expires_at']:%Y-%m-%d}")
    out().print("Copy it now: it is not stored and will not be shown again.")
    typer.echo(issued.token)


@tokens_app.command("list")
def list_tokens(
    user: Annotated[str | None, typer.Option("--user", help="Only this user's tokens.")] = None,
    home: Home = None,
    as_json: Json = False,
) -> None:
    """Tokens by id, owner, scopes and dates; never their secrets."""
    with reading(home) as (_workspace, session):
        found = [token_facts(t) for t in identity.list_tokens(session, user)]
    if as_json:
        print_json(found)
        return
    table(
        f"Tokens ({len(found)})",
        ["id", "user", "name", "scopes", "expires", "revoked", "last used"],
        (
            [t["id"], t["user"], t["name"], t["scopes"], t["expires_at"], t["revoked_at"], t["last_used_at"]]
            for t in found
        ),
    )


@tokens_app.command("revoke")
def revoke_token(
    token_id: Annotated[str, typer.Argument(metavar="ID", help="The token's public id (see `tokens list`).")],
    home: Home = None,
    actor: Actor = ACTOR,
) -> None:
    """Revoke a token; it stops working at once."""
    with writing_audited(home, actor, "token.revoke", token_id) as (_workspace, session):
        identity.revoke_token(session, token_id, actor)
    success(f"revoked token {token_id}")


@apps_app.command("add")
def add_application(
    code: Annotated[str, typer.Argument(help="Short code (a-z, 0-9, _), named by grants and calls.")],
    org: Annotated[str, typer.Option("--org", help="Owning organisation: name, short name or USCC.")],
    purpose: Annotated[str, typer.Option("--purpose", help="What the application uses data for.")],
    owner: Annotated[str, typer.Option("--owner", help="The system owner (person and contact).")],
    name: Annotated[str, typer.Option("--name", help="Display name [default: the code].")] = "",
    home: Home = None,
    actor: Actor = ACTOR,
    as_json: Json = False,
) -> None:
    """Register a consuming application of an organisation."""
    with writing(home) as (_workspace, session):
        app = identity.create_application(
            session,
            code,
            name=name or code,
            organisation=org,
            purpose=purpose,
            system_owner=owner,
            actor=actor,
        )
        facts = app_facts(app)
    if as_json:
        print_json(facts)
        return
    success(f"registered application {facts['code']}")
    fields_block("", [(k, v) for k, v in facts.items() if k != "code"])


@apps_app.command("list")
def list_applications(home: Home = None, as_json: Json = False) -> None:
    """Every consuming application."""
    with reading(home) as (_workspace, session):
        found = [app_facts(a) for a in identity.list_applications(session)]
    if as_json:
        print_json(found)
        return
    table(
        f"Applications ({len(found)})",
        ["code", "name", "organisation", "purpose", "system owner", "active"],
        (
            [a["code"], a["name"], a["organisation"], a["purpose"], a["system_owner"], a["active"]]
            for a in found
        ),
    )


@apps_app.command("deactivate")
def deactivate_application(
    code: Annotated[str, typer.Argument(help="Application code.")],
    home: Home = None,
    actor: Actor = ACTOR,
) -> None:
    """Mark an application inactive; its record stays for the audit trail."""
    with writing(home) as (_workspace, session):
        identity.deactivate_application(session, code, actor)
    success(f"deactivated application {code}")
