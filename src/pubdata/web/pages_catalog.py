"""Home, catalogue search (facets, htmx paging) and the entry page."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import func, select

from pubdata.api import reads
from pubdata.api.query import get_engine
from pubdata.catalog import service
from pubdata.catalog.classes import EntryState, Level, OpenClass, ShareClass
from pubdata.db.models import CatalogEntry, DatasetVersion, Organisation
from pubdata.divisions import divisions
from pubdata.errors import InputError, NotFound
from pubdata.gateway.roles import Principal
from pubdata.web.sessions import utcnow
from pubdata.web.templating import render
from pubdata.web.viewer import sample, treatments, visible_entry
from pubdata.web.visitor import PageError, signed_in, workspace_of

router = APIRouter()
PrincipalDep = Annotated[Principal, Depends(signed_in)]
PAGE_SIZE = 20
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
    return render(request, "home.html", {"counts": counts, "newest": newest})


def _facets(request: Request) -> dict[str, object]:
    with workspace_of(request).sessions() as session:
        providers = session.scalars(
            select(Organisation)
            .where(
                Organisation.id.in_(select(CatalogEntry.provider_id).where(CatalogEntry.state.in_(_PUBLIC)))
            )
            .order_by(Organisation.division_code, Organisation.name)
        ).all()
        regions = sorted(
            set(session.scalars(select(CatalogEntry.region_code).where(CatalogEntry.state.in_(_PUBLIC))))
        )
    named = []
    for code in regions:
        found = divisions().find(code)
        named.append((code, found.name if found else code))
    return {
        "providers": [(p.uscc, p.short_name or p.name) for p in providers],
        "regions": named,
        "share_classes": [(c.value, c.label) for c in ShareClass],
        "open_classes": [(c.value, c.label) for c in OpenClass],
        "levels": [(int(level), level.label) for level in Level],
    }


@router.get("/catalog", response_class=HTMLResponse)
def catalog(
    request: Request,
    principal: PrincipalDep,
    q: Annotated[str | None, Query(max_length=200)] = None,
    provider: Annotated[str | None, Query(max_length=200)] = None,
    region: Annotated[str | None, Query(max_length=12)] = None,
    share_class: Annotated[str | None, Query(max_length=32)] = None,
    open_class: Annotated[str | None, Query(max_length=32)] = None,
    level: Annotated[str | None, Query(max_length=2)] = None,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> HTMLResponse:
    """The whole page, or only the results when htmx asks (``HX-Request``)."""
    chosen = {
        "q": q or "",
        "provider": provider or "",
        "region": region or "",
        "share_class": share_class or "",
        "open_class": open_class or "",
        "level": level or "",
    }
    try:
        query = service.EntryQuery(
            text=q or None,
            provider=provider or None,
            region=region or None,
            share_class=ShareClass(share_class) if share_class else None,
            open_class=OpenClass(open_class) if open_class else None,
            level=int(level) if level else None,
            offset=offset,
            limit=PAGE_SIZE,
            include_drafts=False,
        )
        with workspace_of(request).sessions() as session:
            page = reads.search(workspace_of(request), session, query)
        problem = None
    except (ValueError, InputError, NotFound) as error:
        page, problem = None, str(error)
    context = {"page": page, "chosen": chosen, "problem": problem, "page_size": PAGE_SIZE}
    # htmx restoring a page missing from its history cache asks for the whole page.
    if request.headers.get("hx-request") and not request.headers.get("hx-history-restore-request"):
        return render(request, "catalog_results.html", context)
    return render(request, "catalog.html", {**context, **_facets(request)})


@router.get("/entries/{code}", response_class=HTMLResponse)
def entry_page(request: Request, code: str, principal: PrincipalDep) -> HTMLResponse:
    workspace = workspace_of(request)
    now = utcnow()
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
        got = sample(workspace, session, principal, entry, visible, get_engine(request))
        quality = {
            v.version: sum(1 for c in (v.quality or {}).get("columns", {}).values() if c.get("problems"))
            for v in reads.versions(workspace, session, entry)
        }
    context = {
        "entry": detail,
        "rule": visible.rule.value if visible else None,
        "treatments": shown,
        "sample": got,
        "quality": quality,
    }
    return render(request, "entry.html", context)
