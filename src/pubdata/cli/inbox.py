"""``pubdata inbox``: a person's notifications, read or marked read, and where they are mailed."""

from __future__ import annotations

from typing import Annotated

import typer

from pubdata.cli.options import Home, Json, reading, writing
from pubdata.cli.render import print_json, success, table
from pubdata.gateway.identity import find_user
from pubdata.workflow.mail_recipients import set_mail_address
from pubdata.workflow.notify import inbox, mark_read

app = typer.Typer(help="Notifications: the in-app inbox and e-mail (REQ-16, REQ-28).", no_args_is_help=True)
Login = Annotated[str, typer.Option("--as", help="Login of the person whose inbox it is.")]


@app.command("list")
def list_inbox(
    login: Login,
    unread: Annotated[bool, typer.Option("--unread", help="Only the unread ones.")] = False,
    home: Home = None,
    as_json: Json = False,
) -> None:
    """Notifications, newest first."""
    with reading(home) as (_workspace, session):
        rows = inbox(session, find_user(session, login), unread_only=unread)
        facts = [
            {"id": n.id, "kind": n.kind, "subject": n.subject, "body": n.body, "link": n.link,
             "created_at": n.created_at, "read_at": n.read_at}
            for n in rows
        ]  # fmt: skip
    if as_json:
        print_json(facts)
        return
    table(
        f"Inbox of {login} ({len(facts)})",
        ["id", "when", "kind", "subject", "read"],
        [[f["id"], f["created_at"], f["kind"], f["subject"], "✓" if f["read_at"] else ""] for f in facts],
    )


@app.command("read")
def read(
    login: Login,
    ids: Annotated[
        list[int] | None, typer.Option("--id", help="A notification to mark read (repeat).")
    ] = None,
    home: Home = None,
    as_json: Json = False,
) -> None:
    """Mark notifications read: the given ones, or all of them."""
    with writing(home) as (_workspace, session):
        marked = mark_read(session, find_user(session, login), ids or None)
    if as_json:
        print_json({"marked": marked})
    else:
        success(f"{marked} notification(s) marked read")


@app.command("mail")
def mail(
    login: Login,
    address: Annotated[str | None, typer.Option("--address", help="Mail notifications here.")] = None,
    off: Annotated[bool, typer.Option("--off", help="Stop mailing and forget the address.")] = False,
    home: Home = None,
    as_json: Json = False,
) -> None:
    """Mail the person's notifications to an address (opt-in), or stop."""
    if (address is None) == (not off):
        raise typer.BadParameter("give exactly one of --address and --off")
    with writing(home) as (_workspace, session):
        row = set_mail_address(session, login, None if off else address, login)
    if as_json:
        print_json({"login": login, "address": row.address if row else None})
    else:
        success(f"notifications of {login} are mailed to {row.address}" if row else f"{login}: no mail")
