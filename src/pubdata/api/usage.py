"""Usage figures of an entry (REQ-23): public, like the rest of a published entry's metadata."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, Field

from pubdata.api.deps import SessionDep
from pubdata.api.schemas import ErrorOut
from pubdata.catalog import service
from pubdata.catalog.classes import EntryState
from pubdata.errors import NotFound
from pubdata.workflow.usage import DayUsage, usage, usage_total

router = APIRouter(prefix="/api/v1", tags=["usage"])


class DayUsageOut(BaseModel):
    day: dt.date | None = Field(description="Local day (Asia/Shanghai); null in the total.")
    queries: int = Field(description="Calls that served an answer whole (queries and row lookups).")
    exports: int = Field(description="Bulk exports served whole (csv, jsonl, arrow, parquet, xlsx).")
    rows: int = Field(description="Rows served; a query of several entries counts for each.")
    organisations: int = Field(description="Distinct consumer organisations.")
    public_calls: int = Field(description="Calls by users without an organisation.")

    @classmethod
    def of(cls, figures: DayUsage) -> DayUsageOut:
        return cls(**vars(figures))


class UsageOut(BaseModel):
    entry: str
    since: dt.date | None
    until: dt.date | None
    days: list[DayUsageOut] = Field(description="Days with any use, oldest first.")
    total: DayUsageOut = Field(description="The period; each organisation counted once.")


@router.get(
    "/entries/{code}/usage",
    response_model=UsageOut,
    responses={404: {"model": ErrorOut, "description": "Unknown entry."}},
    summary="Use of an entry per day",
)
def get_usage(
    code: Annotated[str, Path(description="Catalogue entry code.", max_length=64)],
    session: SessionDep,
    since: Annotated[dt.date | None, Query(description="First local day, included.")] = None,
    until: Annotated[dt.date | None, Query(description="Last local day, included.")] = None,
) -> UsageOut:
    if service.get_entry(session, code).state is EntryState.DRAFT:
        raise NotFound(f"no catalogue entry {code!r}")
    return UsageOut(
        entry=code,
        since=since,
        until=until,
        days=[DayUsageOut.of(d) for d in usage(session, code, since, until)],
        total=DayUsageOut.of(usage_total(session, code, since, until)),
    )
