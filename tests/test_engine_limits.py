"""Limits that hold: a query cannot take the server's memory or time, nor leave the call unaudited.

Found by trying the platform: ``SELECT count(*) FROM unnest(repeat([1], 300000000))`` drove the
server to 14 GB and answered after 57 s against a 30 s budget; a 1,300-way self-join ended in a
`RecursionError`, a 500 and no audit event. Here the engine is attacked directly (so the runtime
defences are proved without the rewrite in front: the memory watchdog, the stop that a giant
uninterruptible call cannot outrun, release of every resource), and a real ``pubdata serve`` on
loopback takes two bombs at once while another organisation's ordinary query is served.
"""

from __future__ import annotations

import threading
import time
import tomllib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
import tomli_w
from fastapi.testclient import TestClient

from gateway_support import PARK_APP, PARK_PURPOSE, SOCIAL, Server, bearer, demo_users, serving
from pubdata import audit
from pubdata.api.app import create_app
from pubdata.demo.build import build_demo
from pubdata.gateway.engine import QueryRefused, QueryTimeout, SandboxedEngine
from pubdata.gateway.engine_failures import FailureKind, QueryFailed
from pubdata.gateway.engine_watchdog import resident_bytes
from pubdata.workspace import Workspace

#: The server's limits in these tests: short, so that a runaway is seen quickly.
BUDGET_S = 5
#: Resident memory of the whole server above which its queries are stopped, MB.
CEILING_MB = 600
#: What the watchdog may overshoot by between two readings and the interrupt taking hold, MB.
OVERSHOOT_MB = 200

BOMBS = {
    "unnest of a giant list": "SELECT count(*) FROM unnest(repeat([1], 300000000))",
    "giant string": "SELECT length(repeat('x', 2000000000))",
    "giant padding per row": f"SELECT max(length(lpad(name, 50000000))) FROM {SOCIAL}",
    "list aggregated over a cross join": (
        f"SELECT len(list(a.name)) FROM {SOCIAL} a, {SOCIAL} b, {SOCIAL} c, {SOCIAL} d"
    ),
}


def _threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if isinstance(t, threading.Timer) and t.is_alive()}


def _settled(before: set[threading.Thread]) -> bool:
    """Timers cancelled by a finished query exit within a moment; none may be left running."""
    for _ in range(50):
        if not (_threads() - before):
            return True
        time.sleep(0.02)
    return False


# --- the engine on its own ----------------------------------------------------------------------


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[SandboxedEngine]:
    with SandboxedEngine([tmp_path], tmp_path / "tmp", time_budget_s=20.0) as made:
        yield made


def test_the_watchdog_stops_a_query_that_takes_the_process_past_its_ceiling(tmp_path: Path) -> None:
    rss = resident_bytes()
    assert rss is not None
    ceiling_mb = rss // 2**20 + 300
    peak = rss
    with SandboxedEngine(
        [tmp_path], tmp_path / "tmp", time_budget_s=60.0, process_memory_mb=ceiling_mb
    ) as engine:
        started = time.monotonic()
        with pytest.raises(QueryFailed) as caught:
            engine.run("SELECT len(list(i)) FROM range(100000000) t(i)").read_all()
        elapsed = time.monotonic() - started
        peak = max(peak, psutil.Process().memory_info().rss)
        assert caught.value.kind == FailureKind.OUT_OF_MEMORY and engine.watchdog.stops == 1
        assert elapsed < 10, elapsed
        assert engine.run("SELECT 42 AS n").read_all().to_pylist() == [{"n": 42}]
        assert engine.watchdog.running == 0


def test_a_giant_call_that_ignores_the_interrupt_still_ends_as_a_timeout(engine: SandboxedEngine) -> None:
    """DuckDB does not look for an interrupt inside one function call; the answer that call
    produces after its budget ran out is not served."""
    with pytest.raises(QueryTimeout):
        engine.run("SELECT len(repeat([1], 2000000)) AS n", time_budget_s=0.05).read_all()
    assert engine.run("SELECT 1 AS n").read_all().to_pylist() == [{"n": 1}]


def test_a_1300_way_join_is_refused_by_the_engine_check_and_frees_everything(engine: SandboxedEngine) -> None:
    before = _threads()
    sql = "SELECT count(*) FROM " + ", ".join(f"range(2) t{i}" for i in range(1300))
    with pytest.raises(QueryRefused, match="nested too deeply"):
        engine.run(sql)
    assert _settled(before) and engine.watchdog.running == 0
    assert engine.run("SELECT 7 AS n").read_all().to_pylist() == [{"n": 7}]


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM read_csv('/etc/passwd')",  # refused by the engine check
        "SELECT 1/0 = 'x'",  # a DuckDB error before the first batch
        "SELECT CASE WHEN i < 5000 THEN i ELSE error('late') END FROM range(10000) t(i)",  # while streaming
    ],
)
def test_every_failure_releases_the_cursor_the_timer_and_the_watch(engine: SandboxedEngine, sql: str) -> None:
    before = _threads()
    with pytest.raises((QueryRefused, QueryFailed)):
        for _ in engine.run(sql, batch_rows=1024):
            pass
    assert _settled(before) and engine.watchdog.running == 0


# --- a real server on loopback ------------------------------------------------------------------


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("limits") / "home"
    build_demo(path, scale=0.02)
    settings_file = path / "pubdata.toml"
    settings = tomllib.loads(settings_file.read_text("utf-8"))
    settings |= {"query_time_budget_seconds": BUDGET_S, "query_process_memory_mb": CEILING_MB}
    settings_file.write_text(tomli_w.dumps(settings), "utf-8")
    return path


@pytest.fixture(scope="module")
def server(home: Path) -> Iterator[Server]:
    with serving(home) as running:
        yield running


def _ask(
    server: Server, token: str, sql: str, purpose: str, application: str
) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    answer = httpx.post(
        f"{server.url}/api/v1/query",
        json={"sql": sql, "purpose": purpose, "application": application},
        headers=bearer(token),
        timeout=60.0,
    )
    return answer, time.monotonic() - started


@pytest.mark.req("REQ-5", "one-gateway")
@pytest.mark.parametrize(
    "pair",
    [
        ("unnest of a giant list", "giant string"),
        ("giant padding per row", "list aggregated over a cross join"),
    ],
)
def test_two_bombs_at_once_are_refused_in_time_while_another_query_is_served(
    pair: tuple[str, str], server: Server, home: Path
) -> None:
    users = demo_users(home)
    process = psutil.Process(server.process.pid)
    peak = [process.memory_info().rss]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], process.memory_info().rss)
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    union = users["jx_zgh"]["token"]
    with ThreadPoolExecutor(max_workers=3) as pool:
        bombs = [pool.submit(_ask, server, union, BOMBS[name], PARK_PURPOSE, PARK_APP) for name in pair]
        ordinary = []
        while not all(b.done() for b in bombs):
            ordinary.append(
                _ask(
                    server,
                    users["zj_gat"]["token"],
                    "SELECT count(*) FROM gat_population",
                    "人口核验",
                    "gat_population_service",
                )
            )
        answers = [b.result() for b in bombs]
    done.set()
    sampler.join()
    for (answer, elapsed), name in zip(answers, pair, strict=True):
        said = answer.json().get("kind") or answer.json()["error"]
        print(f"{name}: {answer.status_code} {said} after {elapsed:.2f} s")
        assert answer.status_code in (400, 504), answer.text
        assert elapsed < BUDGET_S + 2, (name, elapsed)
    print(f"server peak RSS {peak[0] / 2**20:.0f} MB (ceiling {CEILING_MB} MB)")
    assert server.alive() and httpx.get(f"{server.url}/healthz").status_code == 200
    assert peak[0] < (CEILING_MB + OVERSHOOT_MB) * 2**20, peak[0] / 2**20
    assert ordinary and all(a.status_code == 200 for a, _ in ordinary), ordinary[-1][0].text
    assert all(a.json()["rows"] == [[600]] for a, _ in ordinary)


# --- whatever breaks, the call is audited once ---------------------------------------------------


@pytest.fixture(scope="module")
def workspace(home: Path) -> Workspace:
    return Workspace.open(home)


def _query_events(workspace: Workspace) -> list[Any]:
    with workspace.sessions() as session:
        return list(audit.list_events(session, "query", limit=10_000))


@pytest.mark.req("REQ-5", "gateway-audit")
def test_an_unforeseen_failure_is_one_audited_error_and_a_clean_500(
    workspace: Workspace, tmp_path: Path
) -> None:
    """An engine closed under the app (as at shutdown) fails inside the query path with a DuckDB
    connection error nobody catches on purpose: the answer is a typed 500 that says nothing of it."""
    app = create_app(workspace)
    closed = SandboxedEngine([tmp_path], tmp_path / "tmp")
    closed.close()
    app.state.query_engine = closed
    client = TestClient(app, raise_server_exceptions=False)
    token = demo_users(workspace.home)["jx_zgh"]["token"]
    before = _query_events(workspace)
    answer = client.post(
        "/api/v1/query",
        json={"sql": f"SELECT count(*) FROM {SOCIAL}", "purpose": PARK_PURPOSE, "application": PARK_APP},
        headers=bearer(token),
    )
    assert answer.status_code == 500 and answer.json()["error"] == "internal", answer.text
    assert "closed" not in answer.text.lower() and "connection" not in answer.text.lower()
    new = _query_events(workspace)[len(before) :]
    assert [(e.outcome, e.detail["reason_kind"]) for e in new] == [("error", "internal")]
    assert new[0].detail["error_type"] == "ConnectionException"


@pytest.mark.req("REQ-5", "gateway-audit")
def test_a_1300_way_join_over_http_is_one_audited_refusal(workspace: Workspace) -> None:
    client = TestClient(create_app(workspace), raise_server_exceptions=False)
    token = demo_users(workspace.home)["jx_zgh"]["token"]
    before = _query_events(workspace)
    sql = "SELECT count(*) FROM " + ", ".join(f"{SOCIAL} t{i}" for i in range(1300))
    answer = client.post(
        "/api/v1/query",
        json={"sql": sql, "purpose": PARK_PURPOSE, "application": PARK_APP},
        headers=bearer(token),
    )
    assert (answer.status_code, answer.json()["error"]) == (400, "policy"), answer.text
    assert "1299 joins" in answer.json()["detail"]
    new = _query_events(workspace)[len(before) :]
    assert [(e.outcome, e.detail["reason"]) for e in new] == [("refused", answer.json()["detail"])]


@pytest.mark.req("REQ-5", "gateway-audit")
def test_an_unknown_format_is_one_audited_refusal(workspace: Workspace) -> None:
    client = TestClient(create_app(workspace), raise_server_exceptions=False)
    token = demo_users(workspace.home)["jx_zgh"]["token"]
    before = _query_events(workspace)
    body = {"sql": f"SELECT count(*) FROM {SOCIAL}", "purpose": PARK_PURPOSE, "application": PARK_APP}
    answer = client.post("/api/v1/query", json={**body, "format": "dbase"}, headers=bearer(token))
    assert (answer.status_code, answer.json()["error"]) == (400, "invalid"), answer.text
    new = _query_events(workspace)[len(before) :]
    assert [(e.outcome, e.detail["reason"]) for e in new] == [("refused", answer.json()["detail"])]
