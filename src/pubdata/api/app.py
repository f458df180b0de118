"""The FastAPI application for one workspace.

Errors the platform raises on purpose become JSON 4xx answers with a stable ``error`` code, so a
client can tell "no such entry" from "refused by a rule" without parsing messages.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

import pubdata
from pubdata.api.catalog import router as catalog_router
from pubdata.api.schemas import ErrorOut, Health
from pubdata.errors import InputError, NotFound, PubdataError, RuleViolation
from pubdata.workspace import Workspace

#: (error class, HTTP status, error code); the first class that matches wins.
ERROR_STATUS: tuple[tuple[type[PubdataError], int, str], ...] = (
    (NotFound, 404, "not_found"),
    (InputError, 400, "invalid"),
    (RuleViolation, 409, "refused"),
    (PubdataError, 400, "invalid"),
)


async def _pubdata_error(_request: Request, exc: Exception) -> JSONResponse:
    status, code = next((s, c) for cls, s, c in ERROR_STATUS if isinstance(exc, cls))
    return JSONResponse(ErrorOut(error=code, detail=str(exc)).model_dump(), status_code=status)


def create_app(workspace: Workspace) -> FastAPI:
    app = FastAPI(
        title="pubdata",
        version=pubdata.__version__,
        description=(
            "Public-data catalogue of the Zhejiang Public Data Regulation. Read-only: metadata, "
            "versions and quality reports. Data rows are served by the sharing gateway, not here."
        ),
    )
    app.state.workspace = workspace
    app.add_exception_handler(PubdataError, _pubdata_error)
    app.include_router(catalog_router)

    @app.get("/healthz", response_model=Health, tags=["service"], summary="Liveness")
    def healthz() -> Health:
        return Health(version=pubdata.__version__)

    return app
