"""Home, catalogue search (facets with counts, keyset paging over htmx) and the entry page."""

from __future__ import annotations

import datetime as dt
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import func, select

from pubdata.api import reads
from pubdata.api.query import get_engine
from pubdata.catalog import search, service
from pubdata.catalog.classes import EntryState, OpenClass, ShareClass
from pubdata.clock import now_on
from pubdata.db.models import CatalogEntry, DatasetVersion
from pubdata.errors import InputError, NotFound
from pubdata.gateway.roles import Principal, Role
from pubdata.web.error_text import say
from pubdata.web.i18n import translations
from pubdata.web.templating import render
from pubdata.web.viewer import sample, treatments, visible_entry
from pubdata.web.visitor import N_, PageError, locale_of, signed_in, workspace_of
from pubdata.workflow import figures, usage

router = APIRouter()
PrincipalDep = Annotated[Principal, Depends(signed_in)]
PAGE_SIZE = 20
#: The window of the home page's "most used entries".
MOST_USED_DAYS = 30
_PUBLIC = (EntryState.PUBLISHED, EntryState.RETIRED)


@router.get("/", response_class=HTMLResponse)
def home(request: Request, principal: PrincipalDep) -> HTMLResponse:
    with workspace_of(request).sessions() as session:
        public = CatalogEntry.state.in_(_PUBLIC)
        counts = {
            "entries": session.scalar(select(func.count()).select_from(CatalogEntry).where(public)) or 0,
            "providers": session.scalar(
                select(func.count(func.distinct(CatalogEntry.provider_id))).where(public)
            )
            or 0,
            "versions": session.scalar(select(func.count()).select_from(DatasetVersion)) or 0,
            "rows": session.scalar(select(func.coalesce(func.sum(DatasetVersion.rows_written), 0))) or 0,
        }
        rows = session.scalars(
            select(CatalogEntry).where(public).order_by(CatalogEntry.published_at.desc()).limit(8)
        ).all()
        newest = [(e.code, e.name, e.provider.name, e.published_at) for e in rows]
        used = figures.most_used(
            session, now_on(request.app.state).date() - dt.timedelta(days=MOST_USED_DAYS)
        )
    return render(request, "home.html", {"counts": counts, "newest": newest, "most_used": used})


def _options(facets: service.Facets, chosen: dict[str, str]) -> dict[str, list[tuple[str, str, int | None]]]:
    """(value, label, count) per facet; a chosen value counted zero stays selectable."""
    out: dict[str, list[tuple[str, str, int | None]]] = {}
    for name in search.FACETS:
        values: list[tuple[str, str, int | None]] = [
            (v.value, v.label, v.count) for v in facets.values.get(name, [])
        ]
        if chosen.get(name) and chosen[name] not in {v for v, _, _ in values}:
            values.append((chosen[name], chosen[name], None))
        out[name] = values
    return out


@router.get("/catalog", response_class=HTMLResponse)
def catalog(
    request: Request,
    principal: PrincipalDep,
    q: Annotated[str | None, Query(max_length=200)] = None,
    provider: Annotated[str | None, Query(max_length=200)] = None,
    domain: Annotated[str | None, Query(max_length=50)] = None,
    region: Annotated[str | None, Query(max_length=12)] = None,
    share_class: Annotated[str | None, Query(max_length=32)] = None,
    open_class: Annotated[str | None, Query(max_length=32)] = None,
    level: Annotated[str | None, Query(max_length=2)] = None,
    overdue: Annotated[str | None, Query(max_length=5)] = None,
    after: Annotated[str | None, Query(max_length=64)] = None,
) -> HTMLResponse:
    """The whole page, or the search block (facets and results) when htmx asks (``HX-Request``).

    Pages are keyset pages: "next" asks for the entries after the last code shown, so a page deep
    in a large catalogue costs what the first one does."""
    chosen = {
        "q": q or "",
        "provider": provider or "",
        "domain": domain or "",
        "region": region or "",
        "share_class": share_class or "",
        "open_class": open_class or "",
        "level": level or "",
        "overdue": overdue or "",
    }
    workspace = workspace_of(request)
    now = now_on(request.app.state)
    try:
        query = service.EntryQuery(
            text=q or None,
            provider=provider or None,
            domain=domain or None,
            region=region or None,
            share_class=ShareClass(share_class) if share_class else None,
            open_class=OpenClass(open_class) if open_class else None,
            level=int(level) if level else None,
            overdue={"true": True, "false": False}[overdue] if overdue else None,
            after=after or None,
            limit=PAGE_SIZE + 1,
            include_drafts=False,
        )
        with workspace.sessions() as session:
            page = reads.search(workspace, session, query, now)
            facets = service.facet_counts(session, query, now)
        more = len(page.items) > PAGE_SIZE
        page.items = page.items[:PAGE_SIZE]
        problem = None
    except (KeyError, ValueError, InputError, NotFound) as error:
        page, facets, more, problem = None, service.Facets(), False, say(error, locale_of(request))
    filters = urlencode({k: v for k, v in chosen.items() if v})
    context = {
        "page": page,
        "chosen": chosen,
        "problem": problem,
        "more": more,
        "after": after or "",
        "filters": filters,
        "facets": _options(facets, chosen),
    }
    # htmx restoring a page missing from its history cache asks for the whole page.
    if request.headers.get("hx-request") and not request.headers.get("hx-history-restore-request"):
        return render(request, "catalog_body.html", context)
    return render(request, "catalog.html", context)


@router.get("/entries/{code}", response_class=HTMLResponse)
def entry_page(request: Request, code: str, principal: PrincipalDep) -> HTMLResponse:
    workspace = workspace_of(request)
    now = now_on(request.app.state)
    with workspace.sessions() as session:
        try:
            entry = service.get_entry(session, code)
        except NotFound:
            raise PageError(404, "not_found", code) from None
        if entry.state is EntryState.DRAFT:
            raise PageError(404, "not_found", code)
        detail = reads.entry_detail(workspace, session, entry.code)
        visible = visible_entry(session, principal, entry, now)
        shown = treatments(entry, visible)
        got = sample(
            workspace, session, principal, entry, visible, get_engine(request), locale_of(request), now
        )
        quality = {
            v.version: sum(1 for c in (v.quality or {}).get("columns", {}).values() if c.get("problems"))
            for v in reads.versions(workspace, session, entry)
        }
        disputed = figures.flagged_objections(session, entry.code)
        org = principal.organisation
        may_ask = principal.has_role(Role.CONSUMER) and org is not None and org.id != entry.provider_id
    context = {
        "entry": detail,
        "rule": visible.rule.value if visible else None,
        "treatments": shown,
        "sample": got,
        "quality": quality,
        "disputed": disputed,
        "may_ask": may_ask and entry.state is EntryState.PUBLISHED,
    }
    return render(request, "entry.html", context)


@router.get("/entries/{code}/usage.json")
def entry_usage(request: Request, code: str, principal: PrincipalDep) -> dict[str, object]:
    """Queries, exports and rows per day of the last 90 days, for the entry page's chart."""
    since = now_on(request.app.state).date() - dt.timedelta(days=90)
    with workspace_of(request).sessions() as session:
        try:
            entry = service.get_entry(session, code)
        except NotFound:
            raise PageError(404, "not_found", code) from None
        if entry.state is EntryState.DRAFT:
            raise PageError(404, "not_found", code)
        days = usage.usage(session, entry.code, since=since)
    tr = translations(locale_of(request)).gettext
    return {
        "categories": [d.day.isoformat() for d in days if d.day is not None],
        "series": [
            {"name": tr(N_("Queries")), "type": "bar", "data": [d.queries for d in days]},
            {"name": tr(N_("Exports")), "type": "bar", "data": [d.exports for d in days]},
            {"name": tr(N_("Rows served")), "type": "line", "axis": 1, "data": [d.rows for d in days]},
        ],
    }
