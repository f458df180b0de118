"""What the portal tests share: a signed-in test client and the CSRF token of a page."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    found = _TOKEN.search(html)
    assert found, "the page carries no CSRF token"
    return found.group(1)


def sign_in(client: TestClient, login: str, password: str, next_path: str = "/") -> object:
    """Open the sign-in page (starting an anonymous session), then post the form with its token."""
    token = csrf_of(client.get("/login").text)
    data = {"login": login, "password": password, "csrf_token": token, "next": next_path}
    return client.post("/login", data=data, follow_redirects=False)
