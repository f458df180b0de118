"""Liveness, for load balancers and the demo's "is it up yet" check."""

from __future__ import annotations

from fastapi import APIRouter

import pubdata
from pubdata.api.schemas import Health

router = APIRouter(tags=["service"])


@router.get("/healthz", response_model=Health, summary="Liveness")
def healthz() -> Health:
    return Health(version=pubdata.__version__)
