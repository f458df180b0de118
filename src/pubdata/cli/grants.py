"""``pubdata grants`` and ``pubdata assessments``: who may use which entry, and which combinations
of entries a security assessment has cleared (REQ-17, REQ-26).

De-identification is given per field as ``--deid FIELD=FUNCTION`` with optional parameters after a
colon, ``--deid birth=generalise_date:granularity=year``; ``raw`` shares the field as stored.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

import typer

from pubdata.catalog.service import get_entry
from pubdata.cli.options import ACTOR, Actor, Home, Json, current_clock, reading, writing, writing_audited
from pubdata.cli.render import fields_block, print_json, success, table
from pubdata.db.models import SecurityAssessment
from pubdata.errors import InputError
from pubdata.gateway import assessments, grants, raw_assessments
from pubdata.workflow.working_days import end_of_local_day

grants_app = typer.Typer(help="Grants: an application's use of an entry (REQ-17).", no_args_is_help=True)
assessments_app = typer.Typer(help="Security assessments of combined entries (REQ-26).", no_args_is_help=True)

Until = Annotated[
    str | None,
    typer.Option("--until", help="Last day of validity, YYYY-MM-DD (Asia/Shanghai, end of that day)."),
]
Days = Annotated[int | None, typer.Option("--days", help="Valid for this many days from now.")]


def _until(until: str | None, days: int | None, now: dt.datetime) -> dt.datetime:
    if (until is None) == (days is None):
        raise InputError("give exactly one of --until and --days")
    if days is not None:
        return now + dt.timedelta(days=days)
    try:
        day = dt.date.fromisoformat(str(until))
    except ValueError:
        raise InputError(f"--until {until!r} is not a date (YYYY-MM-DD)") from None
    return end_of_local_day(day)  # a day in Zhejiang, as in the portal and `requests --until`


def _value(text: str) -> Any:
    return int(text) if text.lstrip("-").isdigit() else text


def parse_deid(options: list[str]) -> dict[str, dict[str, Any]]:
    """``FIELD=FUNCTION[:k=v,k=v]`` options as a grant's de-identification mapping."""
    found: dict[str, dict[str, Any]] = {}
    for option in options:
        field, sep, rest = option.partition("=")
        function, _, raw_params = rest.partition(":")
        if not sep or not field.strip() or not function.strip():
            raise InputError(f"--deid {option!r}: write FIELD=FUNCTION[:param=value,...]")
        params: dict[str, Any] = {}
        for pair in filter(None, raw_params.split(",")):
            key, eq, value = pair.partition("=")
            if not eq:
                raise InputError(f"--deid {option!r}: parameter {pair!r} needs a value")
            params[key.strip()] = _value(value.strip())
        found[field.strip()] = {"function": function.strip(), "params": params}
    return found


def _show(facts: dict[str, Any], as_json: bool, message: str) -> None:
    if as_json:
        print_json(facts)
        return
    success(message)
    fields_block("", [(k, v) for k, v in facts.items() if k != "id"])


@grants_app.command("add")
def add_grant(
    org: Annotated[str, typer.Option("--org", help="Receiving organisation: name, short name or USCC.")],
    app: Annotated[str, typer.Option("--app", help="Code of the organisation's consuming application.")],
    entry: Annotated[str, typer.Option("--entry", help="Catalogue entry code.")],
    field: Annotated[list[str], typer.Option("--field", help="A field to share, repeatable.")],
    purpose: Annotated[str, typer.Option("--purpose", help="What the data is used for (REQ-17).")],
    legal_basis: Annotated[str, typer.Option("--legal-basis", help="Law or duty the use rests on.")],
    until: Until = None,
    days: Days = None,
    region_prefix: Annotated[
        str | None, typer.Option("--region-prefix", help="Only rows in this division (e.g. 3304).")
    ] = None,
    region_field: Annotated[
        str | None, typer.Option("--region-field", help="The field holding the rows' division code.")
    ] = None,
    where: Annotated[
        str | None, typer.Option("--where", help="Extra row predicate over the entry's fields (SQL).")
    ] = None,
    deid: Annotated[
        list[str] | None, typer.Option("--deid", help="FIELD=FUNCTION[:param=value,...], repeatable.")
    ] = None,
    home: Home = None,
    actor: Actor = ACTOR,
    as_json: Json = False,
) -> None:
    """Grant an organisation's application the use of an entry, from now on."""
    now = current_clock()()
    with writing_audited(home, actor, "grant.create", f"{entry}→{org}") as (workspace, session):
        settings = workspace.settings.for_tenant(get_entry(session, entry).provider.division_code)
        grant = grants.grant_access(
            session,
            organisation=org,
            application=app,
            entry_code=entry,
            fields=field,
            region_prefix=region_prefix,
            region_field=region_field,
            row_predicate=where,
            deid=parse_deid(deid or []),
            purpose=purpose,
            legal_basis=legal_basis,
            valid_from=now,
            valid_until=_until(until, days, now),
            actor=actor,
            settings=settings,
            now=now,
        )
        facts = grants.grant_facts(grant)
    _show(facts, as_json, f"granted {facts['entry']} to {facts['application']} as grant {facts['id']}")


@grants_app.command("list")
def list_grants(
    org: Annotated[str | None, typer.Option("--org", help="Only this organisation's grants.")] = None,
    entry: Annotated[str | None, typer.Option("--entry", help="Only grants of this entry.")] = None,
    app: Annotated[str | None, typer.Option("--app", help="Only grants to this application.")] = None,
    active: Annotated[bool, typer.Option("--active", help="Only grants in force now.")] = False,
    home: Home = None,
    as_json: Json = False,
) -> None:
    """Grants with their fields, rows, purpose, period and state."""
    now = current_clock()()
    with reading(home) as (_workspace, session):
        found = [
            {**grants.grant_facts(g), "state": grants.grant_state(g, now)}
            for g in grants.list_grants(
                session,
                organisation=org,
                entry_code=entry,
                application=app,
                active_at=now if active else None,
            )
        ]
    if as_json:
        print_json(found)
        return
    table(
        f"Grants ({len(found)})",
        ["id", "entry", "organisation", "app", "fields", "region", "purpose", "until", "state", "v"],
        (
            [g["id"], g["entry"], g["organisation"], g["application"], g["fields"], g["region_prefix"],
             g["purpose"], g["valid_until"], g["state"], g["policy_version"]]
            for g in found
        ),
    )  # fmt: skip


@grants_app.command("revoke")
def revoke_grant(
    grant_id: Annotated[int, typer.Argument(metavar="ID", help="Grant number (see `grants list`).")],
    reason: Annotated[str, typer.Option("--reason", help="Why the grant ends (audited).")],
    home: Home = None,
    actor: Actor = ACTOR,
) -> None:
    """Revoke a grant; queries under it are refused at once."""
    with writing_audited(home, actor, "grant.revoke", f"grant:{grant_id}") as (_workspace, session):
        grants.revoke_grant(session, grant_id, actor=actor, reason=reason, now=current_clock()())
    success(f"revoked grant {grant_id}")


@grants_app.command("renew")
def renew_grant(
    grant_id: Annotated[int, typer.Argument(metavar="ID", help="Grant number (see `grants list`).")],
    until: Until = None,
    days: Days = None,
    home: Home = None,
    actor: Actor = ACTOR,
    as_json: Json = False,
) -> None:
    """Give a grant a new end; its policy version goes up by one."""
    now = current_clock()()
    with writing_audited(home, actor, "grant.renew", f"grant:{grant_id}") as (workspace, session):
        grant = grants.get_grant(session, grant_id)
        settings = workspace.settings.for_tenant(grant.entry.provider.division_code)
        grant = grants.renew_grant(
            session, grant_id, valid_until=_until(until, days, now), actor=actor, settings=settings, now=now
        )
        facts = grants.grant_facts(grant)
    _show(facts, as_json, f"renewed grant {grant_id} until {facts['valid_until']:%Y-%m-%d}")


def assessment_facts(row: SecurityAssessment) -> dict[str, Any]:
    return {
        "id": row.id,
        "entry_codes": list(row.entry_codes),
        "organisation_id": row.organisation_id,
        "result_level": row.result_level,
        "status": row.status,
        "conclusion": row.conclusion,
        "approved_by": row.approved_by,
        "approved_at": row.approved_at,
        "valid_until": row.valid_until,
        "raw_fields": list(row.raw_fields or ()),
    }


@assessments_app.command("add")
def add_assessment(
    entry: Annotated[list[str], typer.Option("--entry", help="An entry of the combination, repeatable.")],
    conclusion: Annotated[str, typer.Option("--conclusion", help="What the assessment found.")],
    approved_by: Annotated[str, typer.Option("--approved-by", help="Who approved it.")],
    until: Until = None,
    days: Days = None,
    level: Annotated[
        int | None, typer.Option("--level", help="Result level 1-4 [default: computed from the entries].")
    ] = None,
    org: Annotated[
        str | None, typer.Option("--org", help="Only for this organisation [default: any].")
    ] = None,
    home: Home = None,
    actor: Actor = ACTOR,
    as_json: Json = False,
) -> None:
    """Record an approved security assessment covering a combination of entries."""
    now = current_clock()()
    with writing(home) as (_workspace, session):
        row = assessments.record_assessment(
            session,
            entry,
            level,
            conclusion,
            approved_by,
            _until(until, days, now),
            org,
            actor=actor,
            now=now,
        )
        facts = assessment_facts(row)
    _show(facts, as_json, f"recorded assessment {facts['id']} (L{facts['result_level']})")


@assessments_app.command("list")
def list_assessments(home: Home = None, as_json: Json = False) -> None:
    """Every security assessment, oldest first."""
    with reading(home) as (_workspace, session):
        found = [assessment_facts(a) for a in assessments.list_assessments(session)]
    if as_json:
        print_json(found)
        return
    table(
        f"Security assessments ({len(found)})",
        ["id", "entries", "level", "status", "approved by", "until", "conclusion"],
        (
            [a["id"], a["entry_codes"], a["result_level"], a["status"], a["approved_by"], a["valid_until"],
             a["conclusion"]]
            for a in found
        ),
    )  # fmt: skip


@assessments_app.command("allow-raw")
def allow_raw(
    entry: Annotated[str, typer.Option("--entry", help="Catalogue entry code.")],
    field: Annotated[
        list[str], typer.Option("--field", help="A field grants may share as stored, repeatable.")
    ],
    reason: Annotated[str, typer.Option("--reason", help="Why the assessment found it may (audited).")],
    approved_by: Annotated[str, typer.Option("--approved-by", help="Who approved it.")],
    until: Until = None,
    days: Days = None,
    org: Annotated[
        str | None, typer.Option("--org", help="Only for this organisation [default: any].")
    ] = None,
    home: Home = None,
    actor: Actor = ACTOR,
    as_json: Json = False,
) -> None:
    """Record an approved assessment that lets grants of an entry share the named fields as stored,
    below the de-identification floor of their level and kind (REQ-27)."""
    now = current_clock()()
    with writing(home) as (_workspace, session):
        row = raw_assessments.record_raw_assessment(
            session, entry, field, reason, approved_by, _until(until, days, now), org, actor=actor, now=now
        )
        facts = assessment_facts(row)
    _show(facts, as_json, f"recorded assessment {facts['id']}: {', '.join(facts['raw_fields'])} may be raw")


def register(app: typer.Typer) -> None:
    app.add_typer(grants_app, name="grants")
    app.add_typer(assessments_app, name="assessments")
