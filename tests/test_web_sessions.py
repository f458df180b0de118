"""Portal sessions kept in the database: shared by every server process, kept over a restart,
stored only as a hash, ended everywhere at sign-out, and purged once expired."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from pubdata.api.app import create_app
from pubdata.db.models import PortalSession, SignInFailure, SignInLock
from pubdata.web.sessions import SessionStore
from pubdata.workflow.tick import run_tick
from pubdata.workspace import Workspace
from web_support import DemoPortal, csrf_of, demo_portal, sign_in

NOW = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoPortal]:
    yield from demo_portal(tmp_path_factory, "sessions", NOW)


@pytest.fixture
def store(workspace: Workspace) -> SessionStore:
    return SessionStore(workspace.sessions, dt.timedelta(minutes=30), dt.timedelta(hours=12))


def test_another_process_knows_the_session_and_a_restart_keeps_it(demo: Any) -> None:
    workspace, users = demo
    with TestClient(create_app(workspace)) as first:
        sign_in(first, "jx_zgh", users["jx_zgh"]["password"])
        cookie = first.cookies.get("pubdata_session")
        assert first.get("/", follow_redirects=False).status_code == 200
    # A second app over the same workspace stands for another worker, or the server restarted.
    with TestClient(create_app(Workspace.open(workspace.home, clock=workspace.clock))) as second:
        second.cookies.set("pubdata_session", cookie)
        page = second.get("/", follow_redirects=False)
        assert page.status_code == 200 and 'action="/logout"' in page.text
        # Signing out in one process ends the session for all of them.
        second.post("/logout", data={"csrf_token": csrf_of(page.text)}, follow_redirects=False)
    with TestClient(create_app(workspace)) as third:
        third.cookies.set("pubdata_session", cookie)
        assert third.get("/", follow_redirects=False).status_code == 303


def test_the_table_holds_only_a_hash_of_the_cookie(store: SessionStore, workspace: Workspace) -> None:
    live = store.create("someone", NOW)
    with workspace.sessions() as session:
        keys = list(session.scalars(select(PortalSession.id_sha256)))
    assert keys == [hashlib.sha256(live.id.encode()).hexdigest()]
    assert live.id not in keys
    found = store.get(live.id, NOW + dt.timedelta(minutes=1))
    assert found is not None and found.login == "someone" and found.csrf_token == live.csrf_token


def test_idle_and_absolute_ends(store: SessionStore) -> None:
    idle = store.create("a", NOW)
    assert store.get(idle.id, NOW + dt.timedelta(minutes=29)) is not None
    assert store.get(idle.id, NOW + dt.timedelta(minutes=58)) is not None  # touched at 29
    assert store.get(idle.id, NOW + dt.timedelta(minutes=89)) is None
    assert store.get(idle.id, NOW + dt.timedelta(minutes=90)) is None  # deleted, not just refused
    old = store.create("b", NOW)
    moment = NOW
    while moment < NOW + dt.timedelta(hours=11, minutes=50):
        moment += dt.timedelta(minutes=20)
        assert store.get(old.id, moment) is not None
    assert store.get(old.id, NOW + dt.timedelta(hours=12, minutes=1)) is None


def test_a_lookup_writes_only_when_stale(store: SessionStore, workspace: Workspace) -> None:
    live = store.create("c", NOW)

    def stored() -> dt.datetime:
        with workspace.sessions() as session:
            seen = session.scalar(select(PortalSession.last_seen))
            assert seen is not None
            return seen.replace(tzinfo=dt.UTC) if seen.tzinfo is None else seen

    store.get(live.id, NOW + dt.timedelta(seconds=30))
    assert stored() == NOW
    store.get(live.id, NOW + dt.timedelta(seconds=61))
    assert stored() == NOW + dt.timedelta(seconds=61)


def test_end_all_of_a_login(store: SessionStore) -> None:
    mine = [store.create("d", NOW) for _ in range(3)]
    other = store.create("e", NOW)
    store.end_all_of("d")
    assert all(store.get(s.id, NOW) is None for s in mine)
    assert store.get(other.id, NOW) is not None


def test_tick_purges_expired_sessions_only(store: SessionStore, workspace: Workspace) -> None:
    for _ in range(4):
        store.create("", NOW)  # visitors who opened the sign-in page and left
    kept = store.create("f", NOW + dt.timedelta(minutes=20))
    done = run_tick(workspace, NOW + dt.timedelta(minutes=31))
    assert done["portal.sessions.purge"] == 4
    with workspace.sessions() as session:
        assert session.scalar(select(func.count()).select_from(PortalSession)) == 1
    assert store.get(kept.id, NOW + dt.timedelta(minutes=31)) is not None
    assert run_tick(workspace, NOW + dt.timedelta(minutes=31))["portal.sessions.purge"] == 0


def test_a_lock_out_holds_in_every_process_and_keeps_no_address(demo: Any) -> None:
    workspace, users = demo
    with TestClient(create_app(workspace)) as first:
        statuses = [sign_in(first, "zj_gat", "wrong-password").status_code for _ in range(5)]  # type: ignore[attr-defined]
    assert statuses[-1] == 429
    # Another worker (or the restarted server) refuses the right password as well.
    with TestClient(create_app(Workspace.open(workspace.home, clock=workspace.clock))) as second:
        assert sign_in(second, "zj_gat", users["zj_gat"]["password"]).status_code == 429  # type: ignore[attr-defined]
    with workspace.sessions() as session:
        stored = [
            *session.scalars(select(SignInLock.key_sha256)),
            *session.scalars(select(SignInFailure.key_sha256)),
        ]
    assert stored and all(len(k) == 64 and "zj_gat" not in k and "testclient" not in k for k in stored)
    later = NOW + dt.timedelta(minutes=16)  # the apps run on the workspace's clock, pinned at NOW
    assert run_tick(workspace, later)["portal.lockout.purge"] >= 2  # both locks (login and address) ended
    with TestClient(create_app(workspace)) as third:
        assert sign_in(third, "zj_gat", users["zj_gat"]["password"]).status_code == 303  # type: ignore[attr-defined]
