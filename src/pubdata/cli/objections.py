"""``pubdata objections``: raise, read and move objections to records of an entry (REQ-12, REQ-13).

Each command acts ``--as LOGIN``, a user of the workspace signed in by the operating system as for
``pubdata query``: the workflow's role checks apply as over HTTP, and every move is audited as
that user. Records are named by the entry's key fields, ``--record id_number=…,insurance_type=…``.
"""

from __future__ import annotations

import datetime as dt
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Annotated, Any

import typer
from sqlalchemy.orm import Session

from pubdata.cli.options import Home, Json, open_workspace, reading, writing
from pubdata.cli.render import fields_block, print_json, success, table
from pubdata.db.models import utcnow
from pubdata.errors import InputError
from pubdata.gateway.identity import local_principal
from pubdata.gateway.roles import Principal
from pubdata.workflow import objection_views as views
from pubdata.workflow import objections
from pubdata.workflow.refusals import CLI, Asker, denials_audited
from pubdata.workflow.working_days import LOCAL_TZ
from pubdata.workspace import Workspace

app = typer.Typer(help="Objections to records of an entry (异议, REQ-12).", no_args_is_help=True)


def _local(moment: str | None) -> str | None:
    """A deadline as people in the province read it: local time, to the minute."""
    if moment is None:
        return None
    return dt.datetime.fromisoformat(moment).astimezone(LOCAL_TZ).strftime("%Y-%m-%d %H:%M")


As = Annotated[str, typer.Option("--as", help="Login of the user who acts.")]
Id = Annotated[int, typer.Argument(metavar="ID", help="Objection number (see `objections list`).")]
Reason = Annotated[str, typer.Option("--reason", help="Why; the raiser reads it.")]


def _principal(session: Session, login: str) -> Principal:
    return local_principal(session, login)


def _denials(workspace: Workspace, login: str, objection_id: int) -> AbstractContextManager[None]:
    """An objection `login` is no party to answers not found, before any move is tried; the ask is
    audited (REQ-40), outside the command's own transaction so that its rollback keeps the event."""
    with workspace.sessions() as session:
        asker = Asker.of(_principal(session, login), CLI)
    return denials_audited(workspace.sessions, asker, "objection", objection_id)


def parse_record(text: str) -> dict[str, str]:
    """``field=value,field=value`` as a record."""
    record: dict[str, str] = {}
    for pair in filter(None, (p.strip() for p in text.split(","))):
        name, eq, value = pair.partition("=")
        if not eq or not name.strip():
            raise InputError(f"--record {text!r}: write FIELD=VALUE[,FIELD=VALUE...]", column="record")
        record[name.strip()] = value.strip()
    return record


def _show(workspace: Workspace, objection_id: int, as_json: bool, message: str) -> None:
    now = utcnow()
    with workspace.sessions() as session:
        facts = views.objection_facts(objections.get_objection(session, objection_id), now)
        facts["history"] = [views.event_facts(e) for e in views.history(session, objection_id)]
    if as_json:
        print_json(facts)
        return
    if message:
        success(message)
    fields_block("", [(k, v) for k, v in facts.items() if k not in {"id", "history"}])
    table(
        "History",
        ["at", "actor", "action", "outcome"],
        ([e["at"], e["actor"], e["action"], e["outcome"]] for e in facts["history"]),
    )


@app.command("raise")
def raise_objection(
    login: As,
    entry: Annotated[str, typer.Option("--entry", help="Catalogue entry code.")],
    record: Annotated[
        list[str], typer.Option("--record", help="A record as FIELD=VALUE,… over the key fields; repeatable.")
    ],
    description: Annotated[str, typer.Option("--description", help="What is wrong with the records.")],
    kind: Annotated[str, typer.Option("--kind", help="consumer or data_subject.")] = "consumer",
    home: Home = None,
    as_json: Json = False,
) -> None:
    """Say that records of an entry are wrong; the competent department accepts or rejects it."""
    with writing(home) as (workspace, session):
        principal = _principal(session, login)
        found = objections.raise_objection(
            session,
            principal,
            entry,
            [parse_record(r) for r in record],
            description,
            kind=kind,
            now=utcnow(),
            settings=workspace.settings,
        )
        objection_id = found.id
    _show(workspace, objection_id, as_json, f"raised objection {objection_id}")


@app.command("list")
def list_objections(
    login: As,
    view: Annotated[str, typer.Option("--view", help="all, mine, waiting (for you) or overdue.")] = "all",
    entry: Annotated[str | None, typer.Option("--entry", help="Only this entry's.")] = None,
    home: Home = None,
    as_json: Json = False,
) -> None:
    """The objections you may see: raised by you, or about your organisation's or division's data."""
    now = utcnow()
    with reading(home) as (_workspace, session):
        principal = _principal(session, login)
        found = [
            views.objection_facts(o, now)
            for o in views.list_objections(session, principal, view=view, entry=entry, now=now)
        ]
    if as_json:
        print_json(found)
        return
    table(
        f"Objections ({len(found)})",
        ["id", "entry", "state", "raised by", "records", "due", "overdue"],
        (
            [
                o["id"],
                o["entry"],
                o["state"],
                o["raised_by"],
                len(o["records"]),
                f"{_local(o['due_at'])}（暂定）" if o.get("due_provisional") else _local(o["due_at"]),
                o["overdue"],
            ]
            for o in found
        ),
    )


@app.command("show")
def show(login: As, objection_id: Id, home: Home = None, as_json: Json = False) -> None:
    """One objection with its history from the audit log."""
    workspace = open_workspace(home)
    with _denials(workspace, login, objection_id), workspace.sessions() as session:
        views.show_objection(session, _principal(session, login), objection_id)
    _show(workspace, objection_id, as_json, "")


def _act(home: Path | None, login: str, objection_id: int, action: str, as_json: bool, **extra: Any) -> None:
    workspace = open_workspace(home)
    with _denials(workspace, login, objection_id), workspace.sessions() as session, session.begin():
        principal = _principal(session, login)
        views.show_objection(session, principal, objection_id)
        move = getattr(objections, action)
        move(session, principal, objection_id, now=utcnow(), settings=workspace.settings, **extra)
    _show(workspace, objection_id, as_json, f"objection {objection_id}: {action}")


@app.command("accept")
def accept(login: As, objection_id: Id, home: Home = None, as_json: Json = False) -> None:
    """Accept an objection; its records are flagged as disputed at once."""
    _act(home, login, objection_id, "accept", as_json)


@app.command("reject")
def reject(login: As, objection_id: Id, reason: Reason, home: Home = None, as_json: Json = False) -> None:
    """Reject an objection, with the reason the raiser reads."""
    _act(home, login, objection_id, "reject", as_json, reason=reason)


@app.command("correct")
def correct(
    login: As,
    objection_id: Id,
    file: Annotated[
        Path | None, typer.Option("--file", help="A corrected file to ingest now (upsert by key fields).")
    ] = None,
    version: Annotated[
        int | None,
        typer.Option("--version", help="A version ingested after the flagging that corrects them."),
    ] = None,
    home: Home = None,
    as_json: Json = False,
) -> None:
    """The provider corrected the records (a new dataset version); they are unflagged."""
    workspace = open_workspace(home)
    with _denials(workspace, login, objection_id), workspace.sessions() as session:
        principal = _principal(session, login)
        views.show_objection(session, principal, objection_id)
    objections.correct(workspace, principal, objection_id, file=file, version=version, now=utcnow())
    _show(workspace, objection_id, as_json, f"objection {objection_id}: corrected")


@app.command("uphold")
def uphold(login: As, objection_id: Id, reason: Reason, home: Home = None, as_json: Json = False) -> None:
    """The provider found the records right; they are unflagged."""
    _act(home, login, objection_id, "uphold", as_json, reason=reason)


@app.command("archive")
def archive(login: As, objection_id: Id, home: Home = None, as_json: Json = False) -> None:
    """Close a verified or rejected objection."""
    _act(home, login, objection_id, "archive", as_json)
