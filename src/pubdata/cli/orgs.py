"""``pubdata orgs``: the data holders and consumers (REQ-2) and their responsible persons (REQ-25)."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Annotated, Any

import typer

from pubdata.api import reads
from pubdata.api.responsible import ResponsibleOut, responsible_out
from pubdata.api.schemas import OrganisationOut
from pubdata.catalog import service
from pubdata.catalog.specs import organisation_from_dict
from pubdata.cli.options import ACTOR, Actor, Home, Json, reading, writing
from pubdata.cli.render import fields_block, print_json, success, table
from pubdata.errors import InputError
from pubdata.gateway.identity import local_principal
from pubdata.workflow.responsibility import Duty, change_as

app = typer.Typer(
    help="Organisations: data holders, consumers and competent departments.", no_args_is_help=True
)


def load_spec_file(path: Path) -> dict[str, Any]:
    """A TOML or JSON object; a parse error names the file."""
    text = path.read_text("utf-8")
    try:
        data = tomllib.loads(text) if path.suffix.lower() == ".toml" else json.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise InputError(str(exc), file=str(path)) from exc
    if not isinstance(data, dict):
        raise InputError("expected a table/object at the top level", file=str(path))
    return data


def print_organisation(org: OrganisationOut) -> None:
    fields_block(
        org.name,
        [
            ("short name", org.short_name),
            ("type", org.org_type),
            ("USCC", org.uscc),
            ("division", f"{org.division_code} {org.division_name or ''}".strip()),
            ("competent department", org.is_competent_department),
            ("head", org.head_name),
            ("security officer", org.security_officer_name),
        ],
    )


@app.command("list")
def list_organisations(home: Home = None, as_json: Json = False) -> None:
    """Every organisation, by division."""
    with reading(home) as (_workspace, session):
        found = reads.organisations(session)
    if as_json:
        print_json(found)
        return
    table(
        f"Organisations ({len(found)})",
        ["名称 name", "类型 type", "USCC", "division", "head", "security officer"],
        (
            [
                o.name,
                o.org_type,
                o.uscc,
                o.division_name or o.division_code,
                o.head_name,
                o.security_officer_name,
            ]
            for o in found
        ),
    )


@app.command()
def register(
    spec: Annotated[
        Path,
        typer.Argument(exists=True, dir_okay=False, readable=True, help="Organisation spec, .toml or .json."),
    ],
    home: Home = None,
    actor: Actor = ACTOR,
    as_json: Json = False,
) -> None:
    """Register an organisation from a TOML or JSON spec (USCC and division code are checked)."""
    org_spec = organisation_from_dict(load_spec_file(spec), str(spec))
    with writing(home) as (_workspace, session):
        created = OrganisationOut.from_row(service.register_organisation(session, org_spec, actor))
    if as_json:
        print_json(created)
        return
    success(f"registered {created.name}")
    print_organisation(created)


@app.command()
def show(
    ref: Annotated[str, typer.Argument(help="Name, short name or USCC.")],
    home: Home = None,
    as_json: Json = False,
) -> None:
    """One organisation."""
    with reading(home) as (_workspace, session):
        found = reads.organisation(session, ref)
    print_json(found) if as_json else print_organisation(found)


def _print_history(found: ResponsibleOut) -> None:
    table(
        f"{found.organisation} 责任人 (head {found.head or '空缺'}, security officer "
        f"{found.security_officer or '空缺'})",
        ["duty", "name", "contact", "from", "until", "recorded by"],
        (
            [h.duty.label, h.name, h.contact, h.started_at, h.ended_at or "current", h.changed_by]
            for h in found.history
        ),
    )


@app.command()
def responsible(
    ref: Annotated[str, typer.Argument(help="Name, short name or USCC.")],
    duty: Annotated[
        str, typer.Option("--duty", help="head (第一责任人) or security_officer (数据安全负责人).")
    ],
    login: Annotated[str, typer.Option("--as", help="Login of the person making the change.")],
    name: Annotated[
        str | None, typer.Option("--name", help="The new holder; omit to leave it vacant.")
    ] = None,
    contact: Annotated[str | None, typer.Option("--contact", help="Telephone or e-mail.")] = None,
    home: Home = None,
    as_json: Json = False,
) -> None:
    """Name a new head or security officer (REQ-25); the previous one's record is kept."""
    with writing(home) as (workspace, session):
        principal = local_principal(session, login)
        org = service.find_organisation(session, ref)
        settings = workspace.settings.for_tenant(org.division_code)
        changed = change_as(session, principal, org, Duty.parse(duty), name, contact, settings=settings)
        found = responsible_out(session, org)
    if as_json:
        print_json(found)
        return
    success(f"{found.organisation}: {'changed' if changed else 'unchanged'}")
    _print_history(found)


@app.command("history")
def responsible_history(
    ref: Annotated[str, typer.Argument(help="Name, short name or USCC.")],
    home: Home = None,
    as_json: Json = False,
) -> None:
    """Who has been the head and the security officer, and when (REQ-25)."""
    with reading(home) as (_workspace, session):
        found = responsible_out(session, service.find_organisation(session, ref))
    print_json(found) if as_json else _print_history(found)
