"""``pubdata audit``: verify the log, sign checkpoints, export the public key, and the reports (REQ-40/41).

``verify`` exits with 1 when anything is wrong, so a cron job or CI step can alarm on it. Identity
numbers given to ``who-accessed`` are hashed with the workspace key before the database is asked;
the lookup itself is audited (who looked for whom, by keyed hash only).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, Any

import typer

from pubdata import audit
from pubdata.audit.checkpoints import register_workspace
from pubdata.cli.options import ACTOR, Actor, Home, Json, open_workspace, reading, writing
from pubdata.cli.render import err, fields_block, out, print_json, success, table
from pubdata.db.models import AuditCheckpoint, AuditEvent

app = typer.Typer(help="The tamper-evident audit log: verify, checkpoints, reports.", no_args_is_help=True)

Since = Annotated[
    dt.datetime | None,
    typer.Option(
        "--since", formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"], help="Only events from this moment (UTC)."
    ),
]


def event_facts(event: AuditEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "at": event.at,
        "actor": event.actor,
        "action": event.action,
        "target": event.target,
        "outcome": event.outcome,
        "detail": event.detail,
    }


def checkpoint_facts(cp: AuditCheckpoint) -> dict[str, Any]:
    return {
        "id": cp.id,
        "last_event_id": cp.last_event_id,
        "last_event_hash": cp.last_event_hash,
        "event_count": cp.event_count,
        "signed_at": cp.signed_at,
        "key_id": cp.key_id,
        "signature": cp.signature,
    }


def _events_table(title: str, events: list[dict[str, Any]]) -> None:
    table(
        f"{title} ({len(events)})",
        ["id", "at (UTC)", "actor", "action", "target", "outcome", "detail"],
        ([e["id"], e["at"], e["actor"], e["action"], e["target"], e["outcome"], e["detail"]] for e in events),
    )


@app.command("verify")
def verify_log(
    public_key: Annotated[
        Path | None,
        typer.Option("--public-key", help="PEM file of the signing key [default: the workspace's own key]."),
    ] = None,
    home: Home = None,
    as_json: Json = False,
) -> None:
    """Check every event and checkpoint; exit 1 and name each problem when anything was tampered with."""
    with reading(home) as (workspace, session):
        key = public_key.read_bytes() if public_key else audit.public_key_pem(workspace.home)
        report = audit.verify(session, key)
    if as_json:
        print_json(report)
    elif report.ok:
        success(report.summary())
        if report.unsigned_tail:
            out().print(f"{report.unsigned_tail} event(s) after the newest checkpoint are not signed yet.")
    else:
        for problem in report.problems:
            err().print(f"[red]{problem.kind}:[/red] {problem.message}", markup=True)
        if report.more_problems:
            err().print(f"… and {report.more_problems} more problem(s)")
    if not report.ok:
        raise typer.Exit(1)


@app.command("checkpoint")
def checkpoint(home: Home = None, as_json: Json = False) -> None:
    """Sign the log's current end now; keep the printed statement somewhere else too."""
    with writing(home) as (workspace, session):
        facts = checkpoint_facts(audit.write_checkpoint(session, workspace.home))
    if as_json:
        print_json(facts)
        return
    success(f"checkpoint {facts['id']}: {facts['event_count']} events up to event {facts['last_event_id']}")
    fields_block("", [(k, v) for k, v in facts.items() if k != "id"])


@app.command("public-key")
def public_key(home: Home = None, as_json: Json = False) -> None:
    """Print the public key that checks checkpoint signatures (PEM), for auditors to keep."""
    workspace = open_workspace(home)
    pem = audit.public_key_pem(workspace.home)
    if as_json:
        print_json({"key_id": audit.key_id(workspace.home), "pem": pem})
        return
    typer.echo(pem, nl=False)


@app.command("list")
def list_events(
    action: Annotated[
        str | None, typer.Option("--action", help="An action or family, e.g. `query` or `catalog.publish`.")
    ] = None,
    since: Since = None,
    limit: Annotated[int | None, typer.Option("--limit", help="Only the newest N events.")] = None,
    home: Home = None,
    as_json: Json = False,
) -> None:
    """Events oldest first."""
    with reading(home) as (_workspace, session):
        events = [event_facts(e) for e in audit.list_events(session, action, since, limit)]
    if as_json:
        print_json(events)
        return
    _events_table("Audit events", events)


@app.command("who-accessed")
def who_accessed(
    id_number: Annotated[str | None, typer.Option("--id-number", help="Resident identity number.")] = None,
    uscc: Annotated[str | None, typer.Option("--uscc", help="Unified social credit code.")] = None,
    home: Home = None,
    actor: Actor = ACTOR,
    as_json: Json = False,
) -> None:
    """Every access that served data about one person or organisation (REQ-41)."""
    with writing(home) as (workspace, session):
        register_workspace(workspace.engine, workspace.home)
        found = audit.who_accessed(session, workspace.home, id_number=id_number, uscc=uscc)
        events = [event_facts(e) for e in found]
        kind = "id_number" if id_number else "uscc"
        audit.record(session, actor, "audit.who_accessed", kind, events=len(events))
    if as_json:
        print_json(events)
        return
    _events_table("Accesses", events)


@app.command("outside-purpose")
def outside_purpose(since: Since = None, home: Home = None, as_json: Json = False) -> None:
    """Calls refused as beyond their grant, and calls served for a purpose other than their grant's."""
    with reading(home) as (_workspace, session):
        events = [event_facts(e) for e in audit.outside_purpose(session, since)]
    if as_json:
        print_json(events)
        return
    _events_table("Use outside purpose", events)


@app.command("unfinished")
def unfinished(since: Since = None, home: Home = None, as_json: Json = False) -> None:
    """Streamed answers that started but never recorded their end (the server died mid-stream)."""
    with reading(home) as (_workspace, session):
        events = [event_facts(e) for e in audit.unfinished_streams(session, since)]
    if as_json:
        print_json(events)
        return
    _events_table("Unfinished streams", events)
