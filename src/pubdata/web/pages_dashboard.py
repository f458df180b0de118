"""The dashboard: data held by department and level, drawn by ECharts from a JSON endpoint.

The page carries no data and no script of its own: ``static/js/dashboard.js`` fetches
``/dashboard/data.json`` and draws the chart, so the Content-Security-Policy needs no inline code.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from pubdata.catalog.classes import EntryState, Level
from pubdata.db.models import CatalogEntry
from pubdata.gateway.roles import Principal
from pubdata.web.templating import render
from pubdata.web.visitor import DASHBOARD_ROLES, require_roles, signed_in, workspace_of

router = APIRouter()
PrincipalDep = Annotated[Principal, Depends(signed_in)]


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
