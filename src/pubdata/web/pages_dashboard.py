"""The dashboard: data held by department and level, sharing calls per day, requests by state and
their service levels, quality issues by entry — each drawn by ECharts from a JSON endpoint.

The page carries no data and no script of its own: ``static/js/dashboard.js`` fetches
``/dashboard/data.json`` and ``static/js/charts.js`` the others, so the Content-Security-Policy
needs no inline code.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from pubdata.catalog.classes import EntryState, Level
from pubdata.clock import now_on
from pubdata.db.models import CatalogEntry
from pubdata.gateway.roles import Principal
from pubdata.web.i18n import translations
from pubdata.web.templating import render
from pubdata.web.visitor import DASHBOARD_ROLES, N_, locale_of, require_roles, signed_in, workspace_of
from pubdata.workflow import figures, sla
from pubdata.workflow.request_states import ItemState

router = APIRouter()
PrincipalDep = Annotated[Principal, Depends(signed_in)]
STEP_NAMES = {"check": N_("Check"), "decide": N_("Provider's decision"), "coordinate": N_("Coordination")}


@router.get("/dashboard", response_class=HTMLResponse)
def dashboard(request: Request, principal: PrincipalDep) -> HTMLResponse:
    require_roles(principal, DASHBOARD_ROLES)
    return render(request, "dashboard.html", {})


@router.get("/dashboard/data.json")
def dashboard_data(request: Request, principal: PrincipalDep) -> dict[str, Any]:
    """Published entries per provider and level: ``{"departments", "levels", "series"}``."""
    require_roles(principal, DASHBOARD_ROLES)
    counts: dict[str, dict[int, int]] = {}
    with workspace_of(request).sessions() as session:
        entries = session.scalars(
            select(CatalogEntry)
            .where(CatalogEntry.state == EntryState.PUBLISHED)
            .options(selectinload(CatalogEntry.provider), selectinload(CatalogEntry.fields))
        )
        for entry in entries:
            name = entry.provider.short_name or entry.provider.name
            level = entry.security_level or 1
            counts.setdefault(name, {})[level] = counts.setdefault(name, {}).get(level, 0) + 1
    departments = sorted(counts)
    series = [
        {
            "level": int(level),
            "name": level.label,
            "data": [counts[d].get(int(level), 0) for d in departments],
        }
        for level in Level
    ]
    return {"departments": departments, "levels": [lv.label for lv in Level], "series": series}


def _tr(request: Request) -> Callable[[str], str]:
    return translations(locale_of(request)).gettext


@router.get("/dashboard/calls.json")
def calls_data(request: Request, principal: PrincipalDep) -> dict[str, Any]:
    """Sharing calls over every entry per day of the last 90 days."""
    require_roles(principal, DASHBOARD_ROLES)
    until = now_on(request.app.state).date()
    with workspace_of(request).sessions() as session:
        days = figures.calls_per_day(session, until - dt.timedelta(days=90), until)
    tr = _tr(request)
    return {
        "categories": [d.isoformat() for d, _, _, _ in days],
        "series": [
            {"name": tr(N_("Queries")), "type": "bar", "stack": "calls", "data": [q for _, q, _, _ in days]},
            {"name": tr(N_("Exports")), "type": "bar", "stack": "calls", "data": [e for _, _, e, _ in days]},
        ],
    }


@router.get("/dashboard/states.json")
def states_data(request: Request, principal: PrincipalDep) -> dict[str, Any]:
    """Requested entries per state."""
    require_roles(principal, DASHBOARD_ROLES)
    with workspace_of(request).sessions() as session:
        counts = sla.by_state(session)
    return {
        "categories": [ItemState(s).label for s in counts],
        "series": [{"name": _tr(request)(N_("Items")), "type": "bar", "data": list(counts.values())}],
    }


@router.get("/dashboard/sla.json")
def sla_data(request: Request, principal: PrincipalDep) -> dict[str, Any]:
    """Steps ended within and after their deadline, per week."""
    require_roles(principal, DASHBOARD_ROLES)
    with workspace_of(request).sessions() as session:
        weeks = sla.by_week(sla.steps_taken(session))
    tr = _tr(request)
    return {
        "categories": list(weeks),
        "series": [
            {"name": tr(N_("Within the deadline")), "type": "bar", "stack": "sla",
             "data": [w["within"] for w in weeks.values()]},
            {"name": tr(N_("After the deadline")), "type": "bar", "stack": "sla",
             "data": [w["late"] for w in weeks.values()]},
        ],
    }  # fmt: skip


@router.get("/dashboard/steps.json")
def steps_data(request: Request, principal: PrincipalDep) -> dict[str, Any]:
    """Median working days per step."""
    require_roles(principal, DASHBOARD_ROLES)
    with workspace_of(request).sessions() as session:
        medians = sla.median_days(sla.steps_taken(session))
    tr = _tr(request)
    return {
        "categories": [tr(STEP_NAMES[s]) for s in medians],
        "series": [{"name": tr(N_("Median working days")), "type": "bar", "data": list(medians.values())}],
    }


@router.get("/dashboard/quality.json")
def quality_data(request: Request, principal: PrincipalDep) -> dict[str, Any]:
    """Columns with problems in each entry's newest version."""
    require_roles(principal, DASHBOARD_ROLES)
    with workspace_of(request).sessions() as session:
        issues = figures.quality_issues(session)
    return {
        "categories": list(issues),
        "series": [
            {"name": _tr(request)(N_("Columns with problems")), "type": "bar", "data": list(issues.values())}
        ],
    }
