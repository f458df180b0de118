"""What the portal tests share: a demo province, an app on a fixed clock, signed-in test clients and
the CSRF token of a page."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from gateway_support import demo_users
from pubdata.api.app import create_app
from pubdata.clock import fixed_clock
from pubdata.demo.build import build_demo
from pubdata.workspace import Workspace

_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')

DemoPortal = tuple[Workspace, dict[str, dict[str, Any]]]


def demo_portal(factory: pytest.TempPathFactory, name: str, now: dt.datetime) -> Iterator[DemoPortal]:
    """A small demo province built at `now` and its accounts, for a module-scoped fixture to `yield
    from`; the workspace keeps that clock, so an app made from it judges the demo at the same instant."""
    home = factory.mktemp(name) / "home"
    build_demo(home, scale=0.02, clock=fixed_clock(now))
    workspace = Workspace.open(home, clock=fixed_clock(now))
    yield workspace, demo_users(home)
    workspace.engine.dispose()


def clocked_app(workspace: Workspace, now: dt.datetime) -> Any:
    """The app with its pages' clock fixed at `now`, so that deadlines do not move with the day."""
    made = create_app(workspace)
    made.state.clock = fixed_clock(now)
    return made


def csrf_of(html: str) -> str:
    found = _TOKEN.search(html)
    assert found, "the page carries no CSRF token"
    return found.group(1)


def sign_in(client: TestClient, login: str, password: str, next_path: str = "/") -> object:
    """Open the sign-in page (starting an anonymous session), then post the form with its token."""
    token = csrf_of(client.get("/login").text)
    data = {"login": login, "password": password, "csrf_token": token, "next": next_path}
    return client.post("/login", data=data, follow_redirects=False)


def client_for(app: Any, users: dict[str, Any], login: str) -> TestClient:
    """A test client of `app` signed in as `login` (the sign-in must succeed)."""
    client = TestClient(app)
    answer = sign_in(client, login, users[login]["password"])
    assert answer.status_code == 303, login  # type: ignore[attr-defined]
    return client
