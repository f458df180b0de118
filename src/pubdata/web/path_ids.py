"""Row numbers in portal paths, bounded as the API bounds them.

``/requests/99999999999999999999`` must be a "not found" page like any other unknown number, not a
500 (SQLite cannot bind an integer past 64 bits) nor FastAPI's JSON 422. A path number is read
here, before any query: digits only, 1 to `MAX_ID` (the API's bound: ids are 32-bit on
PostgreSQL), else the portal's 404 page.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request

from pubdata.api.deps import MAX_ID
from pubdata.web.visitor import PageError

DIGITS = len(str(MAX_ID))


def path_id(name: str) -> Any:
    """A dependency that reads path parameter `name` as a row number, or answers 404."""

    def read(request: Request) -> int:
        raw = str(request.path_params.get(name, ""))
        # Length first: int() of thousands of digits is slow, and refused past Python's digit limit.
        number = int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= DIGITS else 0
        if not 1 <= number <= MAX_ID:
            raise PageError(404, "not_found")
        return number

    return Depends(read)


RequestId = Annotated[int, path_id("request_id")]
ItemId = Annotated[int, path_id("item_id")]
ObjectionId = Annotated[int, path_id("objection_id")]
IncidentId = Annotated[int, path_id("incident_id")]
