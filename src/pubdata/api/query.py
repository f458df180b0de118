"""Gateway routes: SQL queries and row lookups over shared data, streamed (REQ-5, 17, 27, 40).

The routes are thin: a bearer token becomes a `Principal`, and `run_query` does the rest (decide,
rewrite, run, write, audit). The app holds one `SandboxedEngine` for its life (`lifespan`); a request
gets it through `EngineDep`. Errors map to statuses in `pubdata.api.app.ERROR_STATUS`: 401 for any
credential problem (always the same sentence), 403 for a missing scope or an access refusal with its
reason, 400 for a policy violation or a failed query (with its `kind`) or a column whose type the
format cannot carry (``unsupported_column``, refused before the first byte: the engine gives the
schema first), 504 when the time budget ran out, 500 (``internal``, audited) when the platform itself
failed. Values are written as docs/values.md says (JSON: no NaN, decimals as exact strings).
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Header, Path, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field
from sqlglot import exp

from pubdata.api.deps import NowDep, WorkspaceDep
from pubdata.api.schemas import ErrorOut
from pubdata.gateway.engine import SandboxedEngine
from pubdata.gateway.export import FORMATS
from pubdata.gateway.identity import authenticate_token
from pubdata.gateway.query import QueryResponse, run_query
from pubdata.gateway.roles import Principal

router = APIRouter(prefix="/api/v1", tags=["gateway"])
_ENGINE_LOCK = threading.Lock()
#: Query parameters of the rows route that are not field filters.
ROWS_PARAMETERS = frozenset({"purpose", "application", "limit", "offset", "format", "bom", "csv_raw"})
_ERRORS: dict[int | str, dict[str, object]] = {
    400: {
        "model": ErrorOut,
        "description": "The SQL breaks a policy rule, the query failed, or a column's type does not fit "
        "the format (`unsupported_column`).",
    },
    401: {"model": ErrorOut, "description": "Missing, unknown, expired or revoked token."},
    403: {"model": ErrorOut, "description": "The token's scope or an access rule refuses the call."},
    504: {"model": ErrorOut, "description": "The query ran out of its time budget."},
    500: {"model": ErrorOut, "description": "The platform failed while answering; the call is audited."},
}
FormatName = Annotated[str, Field(description=f"One of {', '.join(FORMATS)}.")]


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """One locked engine per app, opened at start-up and closed at shutdown."""
    app.state.query_engine = SandboxedEngine.for_workspace(app.state.workspace)
    try:
        yield
    finally:
        app.state.query_engine.close()
        del app.state.query_engine


def get_engine(request: Request) -> SandboxedEngine:
    """The app's engine; opened on first use when the app runs without its lifespan (tests)."""
    state = request.app.state
    with _ENGINE_LOCK:
        if getattr(state, "query_engine", None) is None:
            state.query_engine = SandboxedEngine.for_workspace(state.workspace)
    engine: SandboxedEngine = state.query_engine
    return engine


def get_principal(
    workspace: WorkspaceDep,
    now: NowDep,
    authorization: Annotated[str | None, Header(description="`Bearer <token>`.")] = None,
) -> Principal:
    """The caller behind the bearer token; any failure is the same 401 (audited)."""
    scheme, _, token = (authorization or "").partition(" ")
    with workspace.sessions() as session, session.begin():
        return authenticate_token(session, token if scheme.lower() == "bearer" else "", now)


EngineDep = Annotated[SandboxedEngine, Depends(get_engine)]
PrincipalDep = Annotated[Principal, Depends(get_principal)]


class QueryIn(BaseModel):
    """A query over the entries the caller may read."""

    sql: str = Field(max_length=100_000, description="One SELECT over catalogue entry codes (DuckDB SQL).")
    purpose: str = Field(
        max_length=500, description="What the data is used for; must match the grant (REQ-17)."
    )
    application: str = Field(max_length=64, description="Code of the caller's consuming application.")
    format: FormatName = "json"
    max_rows: int | None = Field(
        default=None, ge=1, description="Row cap (json: default 1000, at most 10000; xlsx: 100000)."
    )
    offset: int = Field(default=0, ge=0, description="Rows of the answer to skip (paging).")
    bom: bool | None = Field(
        default=None, description="Start CSV with a UTF-8 BOM, for Excel (default: yes, unless `csv_raw`)."
    )
    csv_raw: bool = Field(
        default=False,
        description="CSV as stored, for programs: no `'` before text cells that start with = + - @, "
        "tab or CR, LF line ends, no BOM unless `bom`. The default CSV is for Excel.",
    )


def _streamed(answer: QueryResponse) -> StreamingResponse:
    return StreamingResponse(answer.body, media_type=answer.media_type, headers=answer.headers)


@router.post("/query", responses=_ERRORS, summary="Run a query over shared data")
def post_query(
    body: QueryIn, workspace: WorkspaceDep, principal: PrincipalDep, engine: EngineDep
) -> StreamingResponse:
    """Stream the answer in `format`; the ``X-Pubdata-*`` headers say what the policy did."""
    answer = run_query(
        workspace,
        principal,
        body.sql,
        body.purpose,
        body.application,
        body.format,
        engine=engine,
        max_rows=body.max_rows,
        offset=body.offset,
        bom=body.bom,
        csv_raw=body.csv_raw,
    )
    return _streamed(answer)


def rows_sql(code: str, filters: dict[str, str]) -> str:
    """``SELECT * FROM <code> WHERE <field> = '<value>' AND …``, built as a tree (values are literals)."""
    query = exp.select("*").from_(exp.Table(this=exp.to_identifier(code, quoted=True)))
    for name, value in filters.items():
        query = query.where(exp.column(exp.to_identifier(name, quoted=True)).eq(exp.Literal.string(value)))
    return query.sql("duckdb")


@router.get("/entries/{code}/rows", responses=_ERRORS, summary="Rows of one entry, by field values")
def get_rows(
    request: Request,
    code: Annotated[str, Path(description="Catalogue entry code.", max_length=64)],
    workspace: WorkspaceDep,
    principal: PrincipalDep,
    engine: EngineDep,
    purpose: Annotated[str, Query(max_length=500, description="Purpose of use (REQ-17).")],
    application: Annotated[str, Query(max_length=64, description="Consuming application code.")],
    limit: Annotated[int, Query(ge=1, le=10_000, description="Rows per page.")] = 100,
    offset: Annotated[int, Query(ge=0, le=2**63 - 1, description="Rows to skip.")] = 0,
    format: Annotated[str, Query(description="Answer format, as for POST /query.")] = "json",
    bom: Annotated[bool | None, Query(description="UTF-8 BOM before CSV (default: unless csv_raw).")] = None,
    csv_raw: Annotated[bool, Query(description="CSV as stored, for programs (see POST /query).")] = False,
) -> StreamingResponse:
    """Every other query parameter ``<field>=<value>`` keeps rows whose (visible) field equals it."""
    filters = {k: v for k, v in request.query_params.items() if k not in ROWS_PARAMETERS}
    answer = run_query(
        workspace,
        principal,
        rows_sql(code, filters),
        purpose,
        application,
        format,
        engine=engine,
        max_rows=limit,
        offset=offset,
        bom=bom,
        csv_raw=csv_raw,
        action="rows",
    )
    return _streamed(answer)
