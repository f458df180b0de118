"""Catalogue routes: thin, typed, no rules of their own (the service and `reads` hold those).

These routes are public metadata, so a draft entry — the provider's work in progress — is neither
listed nor served; the CLI, run by the workspace's operator, shows drafts. No answer names a server
path, and a quality report's row examples go only to a caller whose bearer token shows them to be
staff of the entry (`quality_view`).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Path, Query
from sqlalchemy.orm import Session

from pubdata.api import reads
from pubdata.api.deps import MAX_ID, SessionDep, WorkspaceDep
from pubdata.api.schemas import EntryDetail, EntryPage, ErrorOut, OrganisationOut, QualityOut, VersionOut
from pubdata.catalog import service
from pubdata.catalog.classes import EntryState, OpenClass, ShareClass
from pubdata.catalog.service import EntryQuery
from pubdata.errors import NotFound
from pubdata.gateway.identity import authenticate_token
from pubdata.gateway.roles import Principal

router = APIRouter(prefix="/api", tags=["catalogue"])
_NOT_FOUND: dict[int | str, dict[str, object]] = {404: {"model": ErrorOut, "description": "Unknown entry."}}
CodePath = Annotated[str, Path(description="Catalogue entry code.", max_length=64)]


def optional_reader(
    workspace: WorkspaceDep,
    authorization: Annotated[
        str | None, Header(description="`Bearer <token>`: optional; staff of the entry see row examples.")
    ] = None,
) -> Principal | None:
    """The caller behind a bearer token, None without one; a bad token is the usual 401 (audited)."""
    if authorization is None:
        return None
    scheme, _, token = authorization.partition(" ")
    with workspace.sessions() as session, session.begin():
        return authenticate_token(session, token if scheme.lower() == "bearer" else "")


ReaderDep = Annotated[Principal | None, Depends(optional_reader)]


@router.get("/entries", response_model=EntryPage, summary="Search the catalogue")
def list_entries(
    workspace: WorkspaceDep,
    session: SessionDep,
    q: Annotated[str | None, Query(description="Text in name, code, abstract or field titles.")] = None,
    provider: Annotated[str | None, Query(description="Provider name, short name or USCC.")] = None,
    share_class: Annotated[ShareClass | None, Query(description="Sharing class (REQ-14).")] = None,
    open_class: Annotated[OpenClass | None, Query(description="Opening class (REQ-19).")] = None,
    level: Annotated[int | None, Query(ge=1, le=4, description="Entry level = highest field level.")] = None,
    region: Annotated[
        str | None, Query(pattern=r"^\d{2,12}$", description="Division code or prefix, e.g. `3304`.")
    ] = None,
    state: Annotated[EntryState | None, Query(description="draft, published or retired.")] = None,
    overdue: Annotated[
        bool | None, Query(description="Only entries past their update cycle (REQ-11).")
    ] = None,
    offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> EntryPage:
    query = EntryQuery(
        text=q,
        provider=provider,
        share_class=share_class,
        open_class=open_class,
        level=level,
        region=region,
        state=state,
        overdue=overdue,
        offset=offset,
        limit=limit,
        include_drafts=False,
    )
    return reads.search(workspace, session, query)


def _public(session: Session, code: str) -> str:
    """The code of a published or retired entry; a draft answers like an unknown code."""
    entry = service.get_entry(session, code)
    if entry.state is EntryState.DRAFT:
        raise NotFound(f"no catalogue entry {code!r}")
    return code


@router.get("/entries/{code}", response_model=EntryDetail, responses=_NOT_FOUND, summary="One entry")
def get_entry(code: CodePath, workspace: WorkspaceDep, session: SessionDep) -> EntryDetail:
    return reads.entry_detail(workspace, session, _public(session, code))


@router.get(
    "/entries/{code}/versions", response_model=list[VersionOut], responses=_NOT_FOUND, summary="Versions"
)
def get_versions(code: CodePath, workspace: WorkspaceDep, session: SessionDep) -> list[VersionOut]:
    return reads.entry_versions(workspace, session, _public(session, code))


@router.get(
    "/entries/{code}/versions/{version}/quality",
    response_model=QualityOut,
    responses={
        **_NOT_FOUND,
        401: {"model": ErrorOut, "description": "A bearer token was sent and is not a valid one."},
    },
    summary="Quality report of a version",
)
def get_quality(
    code: CodePath,
    version: Annotated[int, Path(ge=0, le=MAX_ID, description="Version number.")],
    workspace: WorkspaceDep,
    session: SessionDep,
    reader: ReaderDep,
) -> QualityOut:
    """Counts for everyone; masked row examples for staff of the entry (its provider, oversight)."""
    return reads.version_quality(workspace, session, _public(session, code), version, reader=reader)


@router.get("/organisations", response_model=list[OrganisationOut], summary="Data holders and consumers")
def list_organisations(session: SessionDep) -> list[OrganisationOut]:
    return reads.organisations(session)
