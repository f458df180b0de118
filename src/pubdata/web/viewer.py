"""What one viewer would get from an entry, in the gateway's own terms.

The field treatments come from the access rule `visible_entries` found for the viewer and from the
same sources `compile_table_policy` uses (the grant's fields and de-identification choices, else
`default_deid` for the field's level and PII kind); the sample rows come from `run_query` itself,
run as the viewer, so the page shows exactly what the gateway would serve — and audits it, as a
`PREVIEW`: opening a page states no purpose, so none is put in the person's mouth (the audit event
has none), and a glance at ten rows is not use of the data (the usage counters do not move).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session
from sqlglot import exp

from pubdata.db.models import CatalogEntry, Grant
from pubdata.errors import PubdataError
from pubdata.gateway import visibility
from pubdata.gateway.access_rules import AccessRule
from pubdata.gateway.deid import default_deid
from pubdata.gateway.engine import SandboxedEngine
from pubdata.gateway.grants import RAW
from pubdata.gateway.identity import active_applications
from pubdata.gateway.query import PREVIEW, run_query
from pubdata.gateway.roles import Principal
from pubdata.gateway.visibility import VisibleEntry
from pubdata.web.error_text import say
from pubdata.workspace import Workspace

#: Rows the entry page shows; enough to see the masking, few enough to stay a glance.
SAMPLE_ROWS = 10


@dataclass
class Treatment:
    """How one field reaches this viewer: `served` False, or the de-identification `function`
    (None: as stored)."""

    served: bool
    function: str | None = None


@dataclass
class Sample:
    columns: list[str] = field(default_factory=list)
    rows: list[list[Any]] = field(default_factory=list)
    refusal: str | None = None
    application: str | None = None


def visible_entry(
    session: Session, principal: Principal, entry: CatalogEntry, now: dt.datetime
) -> VisibleEntry | None:
    return visibility.visible_entry(session, principal, now, entry.code)


def treatments(entry: CatalogEntry, visible: VisibleEntry | None) -> dict[str, Treatment]:
    if visible is None:
        return {f.name: Treatment(False) for f in entry.fields}
    if visible.rule is AccessRule.OWN_DATA:
        return {f.name: Treatment(True) for f in entry.fields}
    grant: Grant | None = visible.grants[0] if visible.grants else None
    out: dict[str, Treatment] = {}
    for f in entry.fields:
        if grant is not None and f.name not in grant.fields:
            out[f.name] = Treatment(False)
            continue
        chosen = (grant.deid or {}).get(f.name) if grant is not None else None
        name = chosen["function"] if chosen else default_deid(f.level, f.pii_kind)
        out[f.name] = Treatment(True, None if name in (None, RAW) else str(name))
    return out


def _application(session: Session, principal: Principal, visible: VisibleEntry | None) -> str | None:
    """The application a preview reads through: the grant's, else the organisation's first active one."""
    if visible is not None and visible.grants:
        return visible.grants[0].application.code
    applications = active_applications(session, principal.organisation)
    return applications[0].code if applications else None


def sample(
    workspace: Workspace,
    session: Session,
    principal: Principal,
    entry: CatalogEntry,
    visible: VisibleEntry | None,
    engine: SandboxedEngine,
    locale: str,
    now: dt.datetime | None = None,
) -> Sample:
    """Up to `SAMPLE_ROWS` rows as the gateway serves them to `principal`, read as a `PREVIEW` at `now`."""
    application = _application(session, principal, visible)
    if application is None:
        return Sample(refusal="no_application")
    sql = exp.select("*").from_(exp.Table(this=exp.to_identifier(entry.code, quoted=True))).sql("duckdb")
    try:
        answer = run_query(
            workspace,
            principal,
            sql,
            None,
            application,
            "json",
            engine=engine,
            max_rows=SAMPLE_ROWS,
            channel="web",
            action=PREVIEW,
            now=now,
        )
        data = json.loads(b"".join(answer.body))
    except PubdataError as refusal:
        return Sample(refusal=say(refusal, locale), application=application)
    columns = [c["name"] for c in data["columns"]]
    return Sample(columns, data["rows"], None, application)
