"""``pubdata incidents``: security incidents (REQ-28), reported and worked as a named user (``--as``).

The same checks as ``/api/v1/incidents``: the organisation's staff report and work an incident, the
competent department closes it; every step needs a note and is audited.
"""

from __future__ import annotations

import datetime as dt
from contextlib import AbstractContextManager
from typing import Annotated

import typer
from sqlalchemy.orm import Session

from pubdata.api.incidents import IncidentOut
from pubdata.cli.options import Home, Json, open_workspace, reading, writing
from pubdata.cli.render import fields_block, print_json, success, table
from pubdata.db.models import utcnow
from pubdata.errors import InputError
from pubdata.gateway.identity import local_principal
from pubdata.gateway.roles import Principal
from pubdata.workflow import incidents
from pubdata.workflow.incidents import IncidentCategory, IncidentState, Severity
from pubdata.workflow.refusals import CLI, Asker, denials_audited
from pubdata.workflow.working_days import LOCAL_TZ
from pubdata.workspace import Workspace

app = typer.Typer(help="Security incidents: report, remediate, close (REQ-28).", no_args_is_help=True)
As = Annotated[str, typer.Option("--as", help="Login of the user acting.")]
IdArg = Annotated[int, typer.Argument(help="Incident number.")]
Note = Annotated[str, typer.Option("--note", help="What was done or found (required).")]


def _principal(session: Session, login: str) -> Principal:
    return local_principal(session, login)


def _denials(workspace: Workspace, login: str, incident_id: int) -> AbstractContextManager[None]:
    """An incident `login` may not read answers not found; the ask is audited (REQ-40), outside
    the command's own transaction so that its rollback keeps the event."""
    with workspace.sessions() as session:
        asker = Asker.of(_principal(session, login), CLI)
    return denials_audited(workspace.sessions, asker, "incident", incident_id)


def _moment(text: str | None) -> dt.datetime:
    """ISO 8601; without a zone it is local (Asia/Shanghai) time."""
    if text is None:
        return utcnow()
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError as exc:
        raise InputError(
            f"{text!r} is not a date and time like 2026-03-02T08:30", column="occurred_at"
        ) from exc
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=LOCAL_TZ)


def _local(moment: dt.datetime | None) -> dt.datetime | None:
    return moment.astimezone(LOCAL_TZ) if moment is not None else None


def _print(found: IncidentOut) -> None:
    fields_block(
        f"#{found.id} {found.title}",
        [
            ("organisation", found.organisation),
            ("category", found.category.label),
            ("severity", found.severity.label),
            ("state", found.state.label),
            ("entries", found.entry_codes),
            ("occurred", _local(found.occurred_at)),
            ("reported", f"{_local(found.reported_at):%Y-%m-%d %H:%M} by {found.reported_by}"),
            ("department told", _local(found.notified_at)),
            ("description", found.description),
        ],
    )
    table(
        "steps",
        ["at", "by", "state", "note"],
        ([_local(u.at), u.actor, u.state.label, u.note] for u in found.updates),
    )


@app.command()
def report(
    title: Annotated[str, typer.Option("--title", help="What happened, in a few words.")],
    category: Annotated[str, typer.Option("--category", help="data_leak, tampering, … or 数据泄露, ….")],
    severity: Annotated[str, typer.Option("--severity", help="especially_major, major, larger, general.")],
    login: As,
    occurred_at: Annotated[
        str | None, typer.Option("--occurred-at", help="ISO date and time (local if no zone) [default: now].")
    ] = None,
    description: Annotated[str, typer.Option("--description", help="Details.")] = "",
    entries: Annotated[
        list[str] | None, typer.Option("--entry", help="Affected entry code (repeat).")
    ] = None,
    home: Home = None,
    as_json: Json = False,
) -> None:
    """Report an incident of your organisation; its competent department is told at once."""
    with writing(home) as (workspace, session):
        principal = _principal(session, login)
        org = principal.organisation
        settings = workspace.settings.for_tenant(org.division_code) if org else workspace.settings.default
        incident = incidents.report(
            session,
            principal,
            title=title,
            category=IncidentCategory.parse(category),
            severity=Severity.parse(severity),
            occurred_at=_moment(occurred_at),
            description=description,
            entry_codes=entries or [],
            settings=settings,
        )
        found = IncidentOut.from_row(incidents.get(session, incident.id))
    if as_json:
        print_json(found)
        return
    success(f"reported incident #{found.id}")
    _print(found)


@app.command("list")
def list_incidents(
    login: As,
    state: Annotated[
        str | None, typer.Option("--state", help="reported, remediating, resolved, closed.")
    ] = None,
    home: Home = None,
    as_json: Json = False,
) -> None:
    """The incidents you may read, newest first."""
    with reading(home) as (_workspace, session):
        wanted = IncidentState.parse(state) if state else None
        found = [
            IncidentOut.from_row(i) for i in incidents.visible(session, _principal(session, login), wanted)
        ]
    if as_json:
        print_json(found)
        return
    table(
        f"Incidents ({len(found)})",
        ["#", "organisation", "title", "category", "severity", "state", "reported"],
        ([i.id, i.organisation, i.title, i.category.label, i.severity.label, i.state.label, i.reported_at]
         for i in found),
    )  # fmt: skip


@app.command()
def show(incident_id: IdArg, login: As, home: Home = None, as_json: Json = False) -> None:
    """One incident with every step."""
    workspace = open_workspace(home)
    with _denials(workspace, login, incident_id), workspace.sessions() as session:
        found = IncidentOut.from_row(incidents.show(session, _principal(session, login), incident_id))
    print_json(found) if as_json else _print(found)


def _step(action: str, incident_id: int, login: str, note: str, home: Home, as_json: bool) -> None:
    workspace = open_workspace(home)
    with _denials(workspace, login, incident_id), workspace.sessions() as session, session.begin():
        principal = _principal(session, login)
        incident = incidents.show(session, principal, incident_id)
        settings = workspace.settings.for_tenant(incident.organisation.division_code)
        moved = incidents.move(session, principal, incident_id, action, note, settings=settings)
        found = IncidentOut.from_row(moved)
    if as_json:
        print_json(found)
        return
    success(f"incident #{found.id}: {found.state.value} ({found.state.label})")


@app.command()
def update(incident_id: IdArg, login: As, note: Note, home: Home = None, as_json: Json = False) -> None:
    """Record remediation under way (the organisation's staff)."""
    _step("update", incident_id, login, note, home, as_json)


@app.command()
def resolve(incident_id: IdArg, login: As, note: Note, home: Home = None, as_json: Json = False) -> None:
    """Mark remediation done (the organisation's staff); the competent department then closes it."""
    _step("resolve", incident_id, login, note, home, as_json)


@app.command()
def reopen(incident_id: IdArg, login: As, note: Note, home: Home = None, as_json: Json = False) -> None:
    """Take a resolved incident back into remediation (the organisation's staff)."""
    _step("reopen", incident_id, login, note, home, as_json)


@app.command()
def close(incident_id: IdArg, login: As, note: Note, home: Home = None, as_json: Json = False) -> None:
    """Close a resolved incident (the competent department covering the organisation)."""
    _step("close", incident_id, login, note, home, as_json)
