"""Each person's inbox is theirs alone, over HTTP and on the command line; mail is opt-in (REQ-16)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from pubdata.api.app import create_app
from pubdata.cli.main import app as cli
from pubdata.db.models import AuditEvent, MailRecipient, Notification, User
from pubdata.demo.build import build_demo
from pubdata.workspace import Workspace


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("inbox") / "home"
    build_demo(home, scale=0.02)
    return home


@pytest.fixture(scope="module")
def client(home: Path) -> Iterator[TestClient]:
    with TestClient(create_app(Workspace.open(home))) as client:
        yield client


def _auth(home: Path, login: str) -> dict[str, str]:
    users = json.loads((home / "demo-accounts.json").read_text("utf-8"))["users"]
    return {"Authorization": f"Bearer {next(u['token'] for u in users if u['login'] == login)}"}


def _stored(home: Path, login: str) -> list[Notification]:
    with Workspace.open(home).sessions() as s:
        user = s.scalars(select(User).where(User.login == login)).one()
        return list(s.scalars(select(Notification).where(Notification.user_id == user.id)))


def test_the_api_lists_only_the_callers_own_notifications_and_marks_only_them(
    home: Path, client: TestClient
) -> None:
    bureau, union = _stored(home, "zj_dsj"), _stored(home, "jx_zgh")
    assert bureau and union  # the demo's cases told both
    mine = client.get("/api/v1/notifications", headers=_auth(home, "zj_dsj"))
    assert mine.status_code == 200
    assert {n["id"] for n in mine.json()} == {n.id for n in bureau}
    assert any(n["kind"] == "request.escalate" for n in mine.json())
    # Naming another person's notification marks nothing of theirs.
    other = union[0].id
    marked = client.post("/api/v1/notifications/read", json={"ids": [other]}, headers=_auth(home, "zj_dsj"))
    assert marked.json() == {"marked": 0}
    assert all(n.read_at is None for n in _stored(home, "jx_zgh") if n.id == other)
    first = bureau[0].id
    marked = client.post("/api/v1/notifications/read", json={"ids": [first]}, headers=_auth(home, "zj_dsj"))
    assert marked.json() == {"marked": 1}
    unread = client.get("/api/v1/notifications", params={"unread": True}, headers=_auth(home, "zj_dsj"))
    assert first not in {n["id"] for n in unread.json()} and len(unread.json()) == len(bureau) - 1
    assert client.get("/api/v1/notifications").status_code == 401


def test_the_command_line_lists_marks_and_sets_the_mail_address(home: Path) -> None:
    runner = CliRunner()

    def run(*args: str) -> Any:
        result = runner.invoke(cli, [*args, "--home", str(home), "--json"])
        assert result.exit_code == 0, result.output
        return json.loads(result.output)

    listed = run("inbox", "list", "--as", "jx_zgh")
    assert {n["id"] for n in listed} == {n.id for n in _stored(home, "jx_zgh")}
    assert run("inbox", "read", "--as", "jx_zgh")["marked"] == len([n for n in listed if not n["read_at"]])
    assert run("inbox", "list", "--as", "jx_zgh", "--unread") == []
    assert run("inbox", "mail", "--as", "jx_zgh", "--address", "yang.deming@jxzgh.example.cn")["address"]
    bad = runner.invoke(
        cli, ["inbox", "mail", "--as", "jx_zgh", "--address", "x@y\nBcc: z@w", "--home", str(home)]
    )
    assert bad.exit_code != 0 and "not an e-mail address" in bad.output
    with Workspace.open(home).sessions() as s:
        row = s.scalars(select(MailRecipient)).one()
        assert row.address == "yang.deming@jxzgh.example.cn"
        logged = s.scalars(select(AuditEvent).where(AuditEvent.action == "user.mail")).all()
    assert logged and "yang.deming" not in json.dumps([e.detail for e in logged], ensure_ascii=False)
    assert run("inbox", "mail", "--as", "jx_zgh", "--off")["address"] is None
