"""``pubdata requests`` and ``pubdata tick``: the sharing workflow from the command line.

Every command acts as a named user (``--as LOGIN``) with the same role and organisation checks as the
API; the audit log names that user. Dates are days (``YYYY-MM-DD``, end of that day in UTC for an
end, start for a beginning). ``--now`` (hidden) acts at another moment, for replays and tests.
"""

from __future__ import annotations

import datetime as dt
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Annotated, Any

import typer

from pubdata.cli.grants import parse_deid
from pubdata.cli.options import Home, Json, open_workspace
from pubdata.cli.render import fields_block, print_json, success, table
from pubdata.db.models import utcnow
from pubdata.errors import InputError
from pubdata.gateway.identity import local_principal
from pubdata.gateway.roles import Principal
from pubdata.workflow import request_views as views
from pubdata.workflow import requests
from pubdata.workflow.decisions import Decision, act
from pubdata.workflow.refusals import CLI, Asker, denials_audited, refusals_audited
from pubdata.workflow.request_states import Action
from pubdata.workflow.tick import run_tick
from pubdata.workflow.working_days import end_of_local_day, start_of_local_day
from pubdata.workspace import Workspace

app = typer.Typer(
    help="Sharing requests: cart, check, decision, grant (REQ-15, 16, 17).", no_args_is_help=True
)

As = Annotated[str, typer.Option("--as", help="Login of the user who acts.")]
ItemId = Annotated[int, typer.Argument(metavar="ITEM", help="Item number (see `requests show`).")]
RequestId = Annotated[int, typer.Argument(metavar="REQUEST", help="Request number (see `requests list`).")]
Reason = Annotated[
    str | None, typer.Option("--reason", help="Why (mandatory for refusals, returns, disputes).")
]
Until = Annotated[
    str | None,
    typer.Option("--until", help="Last day of the period, YYYY-MM-DD (Asia/Shanghai, end of day)."),
]
Now = Annotated[
    str | None, typer.Option("--now", hidden=True, help="Act at this ISO moment (replays, tests).")
]
Fields = Annotated[list[str] | None, typer.Option("--field", help="A field, repeatable.")]
Deid = Annotated[
    list[str] | None, typer.Option("--deid", help="FIELD=FUNCTION[:param=value,...], repeatable.")
]
RegionPrefix = Annotated[str | None, typer.Option("--region-prefix", help="Only rows of this division.")]
RegionField = Annotated[
    str | None, typer.Option("--region-field", help="The field holding the division code.")
]


def _day(text: str | None, end: bool) -> dt.datetime | None:
    if text is None:
        return None
    try:
        day = dt.date.fromisoformat(text)
    except ValueError:
        raise InputError(f"{text!r} is not a date (YYYY-MM-DD)") from None
    # A day is a day in Zhejiang, as in the portal: --until 2027-03-01 ends at 23:59:59 there.
    return end_of_local_day(day) if end else start_of_local_day(day)


def _now(text: str | None) -> dt.datetime:
    if text is None:
        return utcnow()
    moment = dt.datetime.fromisoformat(text)
    return (moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)).astimezone(dt.UTC)


def _as(workspace: Workspace, login: str) -> Principal:
    # A local user is signed in by the operating system: no token scope limits it (as `pubdata query`).
    with workspace.sessions() as session:
        return local_principal(session, login)


def _audited(workspace: Workspace, who: Principal, action: str, target: str) -> AbstractContextManager[None]:
    """Bad input refused inside is audited once the action rolled back (REQ-40)."""
    return refusals_audited(workspace.sessions, Asker.of(who, CLI), action, target)


def _print_request(
    workspace: Workspace, who: Principal, request_id: int, now: dt.datetime, as_json: bool
) -> None:
    asker = Asker.of(who, CLI)
    with denials_audited(workspace.sessions, asker, "request", request_id), workspace.sessions() as session:
        request = views.visible_request(session, who, request_id)
        facts = views.request_facts(request, now)
        facts["history"] = [views.event_facts(e) for e in views.history(session, request)]
    if as_json:
        print_json(facts)
        return
    fields_block(
        f"Request {facts['id']} ({facts['state']})",
        [(k, facts[k]) for k in ("requester", "requested_by", "application", "legal_basis", "purpose",
                                 "scenario", "delivery_mode", "valid_from", "valid_until", "submitted_at")],
    )  # fmt: skip
    _items_table("Items", facts["items"])
    table(
        "History",
        ["at", "actor", "action", "target", "outcome", "reason"],
        ([e["at"], e["actor"], e["action"], e["target"], e["outcome"], e["detail"].get("reason")]
         for e in facts["history"]),
    )  # fmt: skip


def _left(item: dict[str, Any]) -> str:
    left = item["working_days_left"]
    if left is None:
        return "—"
    return f"超期 {-left} 个工作日" if item["overdue"] else f"剩 {left} 个工作日"


def _due(item: dict[str, Any]) -> Any:
    """The deadline, marked when it was counted on estimated holidays."""
    return f"{item['due_at']}（暂定）" if item.get("due_provisional") else item["due_at"]


def _items_table(title: str, items: list[dict[str, Any]]) -> None:
    table(
        f"{title} ({len(items)})",
        ["item", "request", "entry", "provider", "fields", "region", "state", "due", "working days", "grant"],
        ([i["id"], i["request_id"], i["entry"], i["provider"], i["fields"], i["region_prefix"],
          i["state_label"], _due(i), _left(i), i["grant_id"]] for i in items),
    )  # fmt: skip


@app.command("new")
def new(
    login: As,
    application: Annotated[
        str | None, typer.Option("--app", help="Code of your consuming application.")
    ] = None,
    legal_basis: Annotated[str, typer.Option("--legal-basis", help="Law or duty the use rests on.")] = "",
    purpose: Annotated[str, typer.Option("--purpose", help="What the data is used for.")] = "",
    scenario: Annotated[str, typer.Option("--scenario", help="Scenario of use (应用场景).")] = "",
    delivery: Annotated[str, typer.Option("--delivery", help="api, bulk or subscription.")] = "api",
    start: Annotated[str | None, typer.Option("--from", help="First day of use, YYYY-MM-DD.")] = None,
    until: Until = None,
    home: Home = None,
    as_json: Json = False,
    now: Now = None,
) -> None:
    """Start a draft request of your organisation (add entries, then submit)."""
    workspace = open_workspace(home)
    who = _as(workspace, login)
    with (
        _audited(workspace, who, "request.create", "request:new"),
        workspace.sessions() as session,
        session.begin(),
    ):
        request = requests.create_request(
            session, who, application=application, legal_basis=legal_basis, purpose=purpose,
            scenario=scenario, delivery_mode=delivery, valid_from=_day(start, end=False),
            valid_until=_day(until, end=True),
        )  # fmt: skip
        request_id = request.id
    if not as_json:
        success(f"draft request {request_id} created")
    _print_request(workspace, who, request_id, _now(now), as_json)


@app.command("add")
def add(
    request_id: RequestId,
    login: As,
    entry: Annotated[str, typer.Option("--entry", help="Catalogue entry code.")],
    field: Annotated[list[str], typer.Option("--field", help="A field wanted, repeatable.")],
    region_prefix: RegionPrefix = None,
    region_field: RegionField = None,
    dispute_reason: Annotated[
        str | None, typer.Option("--dispute-reason", help="Why a not-shared entry is needed (coordination).")
    ] = None,
    home: Home = None,
    as_json: Json = False,
    now: Now = None,
) -> None:
    """Add an entry with the fields (and region) wanted to a draft."""
    workspace = open_workspace(home)
    who = _as(workspace, login)
    target = f"request:{request_id}"
    with _audited(workspace, who, "request.add", target), workspace.sessions() as session, session.begin():
        requests.add_item(
            session, who, request_id, entry, field, region_prefix=region_prefix, region_field=region_field,
            dispute_reason=dispute_reason,
        )  # fmt: skip
    _print_request(workspace, who, request_id, _now(now), as_json)


@app.command("submit")
def submit(
    request_id: RequestId, login: As, home: Home = None, as_json: Json = False, now: Now = None
) -> None:
    """Check the whole request and send every entry to the competent department, or change nothing."""
    workspace, moment = open_workspace(home), _now(now)
    who = _as(workspace, login)
    target = f"request:{request_id}"
    with _audited(workspace, who, "request.submit", target), workspace.sessions() as session, session.begin():
        requests.submit(session, who, request_id, workspace.settings, moment)
    if not as_json:
        success(f"request {request_id} submitted")
    _print_request(workspace, who, request_id, moment, as_json)


@app.command("list")
def list_requests(
    login: As,
    waiting: Annotated[
        str | None, typer.Option("--waiting", help="Items waiting for you: provider, competent or overdue.")
    ] = None,
    home: Home = None,
    as_json: Json = False,
    now: Now = None,
) -> None:
    """Your organisation's requests, or the items waiting for you, with working days left."""
    workspace, moment = open_workspace(home), _now(now)
    who = _as(workspace, login)
    with workspace.sessions() as session:
        if waiting is None:
            found = [views.request_facts(r, moment) for r in views.list_mine(session, who)]
        else:
            found = [views.item_facts(i, moment) for i in views.waiting(session, who, waiting, moment)]
    if as_json:
        print_json(found)
    elif waiting is None:
        _items_table("Items of my organisation's requests", [i for r in found for i in r["items"]])
    else:
        _items_table(f"Waiting for me ({waiting})", found)


@app.command("show")
def show(request_id: RequestId, login: As, home: Home = None, as_json: Json = False, now: Now = None) -> None:
    """One request: its terms, its items with state and deadline, and its history."""
    workspace = open_workspace(home)
    _print_request(workspace, _as(workspace, login), request_id, _now(now), as_json)


def _take(login: str, item_id: int, action: Action, decision: Decision, home: Path | None, now: str | None,
          as_json: bool) -> None:  # fmt: skip
    workspace, moment = open_workspace(home), _now(now)
    who = _as(workspace, login)
    with _audited(workspace, who, f"request.{action}", f"request-item:{item_id}"):
        facts = act(workspace.sessions, who, item_id, action, decision, workspace.settings, moment)
    if as_json:
        print_json(facts)
        return
    success(f"item {item_id}: {action.label}, now {facts['state_label']} ({facts['state']})")
    shown = {**facts, "due_at": _due(facts)}
    fields_block("", [(k, shown[k]) for k in ("entry", "state", "due_at", "reason", "grant_id") if shown[k]])


def _simple(action: Action, doc: str) -> None:
    def command(
        item_id: ItemId,
        login: As,
        reason: Reason = None,
        home: Home = None,
        as_json: Json = False,
        now: Now = None,
    ) -> None:
        _take(login, item_id, action, Decision(reason=reason), home, now, as_json)

    command.__doc__ = doc
    app.command(action.value)(command)


for _action, _doc in (
    (Action.CHECK, "Pass the competent department's check (unconditional entries are granted at once)."),
    (Action.RETURN, "Return an item at the check, with a reason."),
    (Action.REFUSE, "Refuse an item as its provider, with a reason."),
    (Action.DISPUTE, "Dispute a refusal (reason mandatory): the competent department coordinates."),
    (Action.WITHDRAW, "Withdraw an item not yet decided."),
    (Action.REVOKE, "Revoke an approved item and its grant, with a reason."),
    (Action.REFUSE_RENEWAL, "Refuse a renewal; the grant keeps its end."),
    (Action.CONSENT, "Countersign (会签) a coordinated approval of not-shared data: grants it."),
    (Action.WITHHOLD_CONSENT, "Withhold the countersignature of a coordinated approval, with a reason."),
):
    _simple(_action, _doc)


@app.command("approve")
def approve(
    item_id: ItemId,
    login: As,
    field: Fields = None,
    region_prefix: RegionPrefix = None,
    region_field: RegionField = None,
    until: Until = None,
    deid: Deid = None,
    reason: Reason = None,
    home: Home = None,
    as_json: Json = False,
    now: Now = None,
) -> None:
    """Approve as the provider, possibly narrower (fields, region, end, de-identification): grants it."""
    decision = Decision(
        reason, field, region_prefix, region_field, _day(until, end=True), parse_deid(deid or [])
    )
    _take(login, item_id, Action.APPROVE, decision, home, now, as_json)


@app.command("coordinate")
def coordinate(
    item_id: ItemId,
    login: As,
    uphold: Annotated[
        bool, typer.Option("--uphold", help="Uphold the refusal instead (closes the item).")
    ] = False,
    field: Fields = None,
    region_prefix: RegionPrefix = None,
    region_field: RegionField = None,
    until: Until = None,
    deid: Deid = None,
    reason: Reason = None,
    home: Home = None,
    as_json: Json = False,
    now: Now = None,
) -> None:
    """Settle a dispute as the competent department: approve (grants it, narrowing allowed) or --uphold.

    Approving not-shared data grants nothing yet: it waits for a countersignature (`consent`).
    """
    if uphold:
        _take(login, item_id, Action.COORDINATE_UPHOLD, Decision(reason=reason), home, now, as_json)
        return
    decision = Decision(
        reason, field, region_prefix, region_field, _day(until, end=True), parse_deid(deid or [])
    )
    _take(login, item_id, Action.COORDINATE_APPROVE, decision, home, now, as_json)


@app.command("renew")
def renew(
    item_id: ItemId, login: As, until: Until = None, home: Home = None, as_json: Json = False, now: Now = None
) -> None:
    """Ask the provider to extend an approved item's grant to a new end."""
    _take(login, item_id, Action.RENEW, Decision(valid_until=_day(until, end=True)), home, now, as_json)


@app.command("approve-renewal")
def approve_renewal(
    item_id: ItemId, login: As, until: Until = None, home: Home = None, as_json: Json = False, now: Now = None
) -> None:
    """Renew the grant to the end asked for (or an earlier one)."""
    _take(
        login,
        item_id,
        Action.APPROVE_RENEWAL,
        Decision(valid_until=_day(until, end=True)),
        home,
        now,
        as_json,
    )


def tick(home: Home = None, as_json: Json = False, now: Now = None) -> None:
    """Run the periodic tasks once (escalations, expiries, mail…); for cron, and safe beside the server."""
    done = run_tick(open_workspace(home), _now(now))
    if as_json:
        print_json(done)
        return
    table("Periodic tasks", ["task", "done"], list(done.items()))


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="requests")
    root.command("tick")(tick)
