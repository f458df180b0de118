"""The query console: SQL, application and purpose; results as an htmx fragment; exports as files.

Both the preview and the exports go through `run_query` as the signed-in person (channel ``web``),
so the gateway decides, masks, filters and audits exactly as for the API. A refusal is shown in the
page with the gateway's own sentence.
"""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse

from pubdata.api.query import get_engine
from pubdata.errors import PubdataError
from pubdata.gateway.export import FORMATS
from pubdata.gateway.identity import active_applications
from pubdata.gateway.query import run_query
from pubdata.gateway.roles import Principal
from pubdata.web.error_text import say
from pubdata.web.templating import render
from pubdata.web.visitor import QUERY_ROLES, PageError, locale_of, require_roles, signed_in, workspace_of

router = APIRouter()
PrincipalDep = Annotated[Principal, Depends(signed_in)]
#: Rows the console shows; the exports carry the whole answer.
PREVIEW_ROWS = 200
Sql = Annotated[str, Form(max_length=100_000)]
Purpose = Annotated[str, Form(max_length=500)]
App = Annotated[str, Form(max_length=64)]


def _applications(request: Request, principal: Principal) -> list[tuple[str, str]]:
    with workspace_of(request).sessions() as session:
        return [(a.code, a.name) for a in active_applications(session, principal.organisation)]


@router.get("/query", response_class=HTMLResponse)
def console(request: Request, principal: PrincipalDep, sql: str = "", purpose: str = "") -> HTMLResponse:
    require_roles(principal, QUERY_ROLES)
    context = {
        "applications": _applications(request, principal),
        "formats": list(FORMATS),
        "sql": sql,
        "purpose": purpose,
    }
    return render(request, "query.html", context)


@router.post("/query/run", response_class=HTMLResponse)
def run(
    request: Request, principal: PrincipalDep, sql: Sql, purpose: Purpose, application: App
) -> HTMLResponse:
    require_roles(principal, QUERY_ROLES)
    try:
        answer = run_query(
            workspace_of(request),
            principal,
            sql,
            purpose,
            application,
            "json",
            engine=get_engine(request),
            max_rows=PREVIEW_ROWS,
            channel="web",
        )
        data = json.loads(b"".join(answer.body))
    except PubdataError as refusal:
        return render(
            request,
            "query_result.html",
            {"error": say(refusal, locale_of(request)), "kind": type(refusal).__name__},
        )
    context = {
        "error": None,
        "columns": [c["name"] for c in data["columns"]],
        "rows": data["rows"],
        "truncated": data.get("truncated", False),
        "policy": data.get("policy", {}),
    }
    return render(request, "query_result.html", context)


@router.post("/query/export")
def export(
    request: Request,
    principal: PrincipalDep,
    sql: Sql,
    purpose: Purpose,
    application: App,
    format: Annotated[str, Form(max_length=16)],
) -> Response:
    require_roles(principal, QUERY_ROLES)
    if format not in FORMATS:
        raise PageError(404, "not_found", format)
    try:
        answer = run_query(
            workspace_of(request),
            principal,
            sql,
            purpose,
            application,
            format,
            engine=get_engine(request),
            channel="web",
        )
    except PubdataError as refusal:
        context = {"error": say(refusal, locale_of(request)), "kind": type(refusal).__name__}
        return render(request, "query_refused.html", context, status_code=_status(refusal))
    headers = dict(answer.headers)
    headers["Content-Disposition"] = f'attachment; filename="{answer.filename}"'
    return StreamingResponse(answer.body, media_type=answer.media_type, headers=headers)


def _status(error: PubdataError) -> int:
    from pubdata.api.app import ERROR_STATUS  # the API's mapping, so both surfaces agree

    return next(s for cls, s, _ in ERROR_STATUS if isinstance(error, cls))
