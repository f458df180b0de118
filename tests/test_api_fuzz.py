"""The whole HTTP API under generated input, as every demo role and as nobody (schemathesis).

The OpenAPI document drives the generator: every operation gets a bounded number of generated
requests, each sent to a real ``pubdata serve`` on loopback with the token of every demo account and
with none. No answer may be a 5xx, and every answer must be one the document promises: a documented
status code, content type and headers, a body that matches its schema, a 405 that names the path's
methods. Schema-valid input may still be refused by a rule of the regulation (a 409 or a 403 is an
answer), so "valid data is accepted" is not one of the checks.
"""

from __future__ import annotations

import datetime as dt
import json
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from gateway_support import Server, serving
from pubdata.api.app import create_app
from pubdata.clock import fixed_clock
from pubdata.demo.build import build_demo
from pubdata.workspace import Workspace

#: Generated requests per operation (each sent once per account and once without a token).
EXAMPLES = 6
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


def _document() -> dict[str, Any]:
    """The served document; it does not depend on the data, so an empty workspace gives it."""
    with tempfile.TemporaryDirectory() as scratch:
        workspace = Workspace.init(Path(scratch) / "home")
        try:
            return create_app(workspace).openapi()
        finally:
            workspace.engine.dispose()


schema = schemathesis.openapi.from_dict(_document())


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory, pinned_now: dt.datetime) -> Path:
    home = tmp_path_factory.mktemp("fuzz") / "home"
    build_demo(home, scale=0.02, clock=fixed_clock(pinned_now))
    return home


@pytest.fixture(scope="module")
def server(home: Path, pinned_now: dt.datetime) -> Iterator[Server]:
    with serving(home, now=pinned_now) as running:
        yield running


@pytest.fixture(scope="module")
def callers(home: Path) -> list[dict[str, str]]:
    users = json.loads((home / "demo-accounts.json").read_text("utf-8"))["users"]
    return [{"Authorization": f"Bearer {u['token']}"} for u in users] + [{}]


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_operation_answers_as_documented_for_every_caller(
    case: schemathesis.Case, server: Server, callers: list[dict[str, str]]
) -> None:
    for headers in callers:
        case.call_and_validate(base_url=server.url, headers=headers, checks=CHECKS, timeout=60)
    assert server.alive()
