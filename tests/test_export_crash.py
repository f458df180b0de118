"""kill -9 of the server during a streamed export: the client gets an error, never a short file.

Streamed answers go out with chunked transfer encoding; a complete answer ends with the terminating
chunk, and an Arrow stream also with its end-of-stream marker. When the server dies mid-stream, the
client's HTTP library sees the body end without that terminating chunk and raises, so a download
that stopped early cannot pass for a finished one. After a restart the audit chain verifies, and the
export's ``stream.open`` event, written before the first byte, is listed by ``pubdata audit
unfinished``: the access is on record although its closing event never came.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from gateway_support import bearer, demo_users, pubdata_cli, serving
from pubdata.clock import fixed_clock
from pubdata.demo.build import build_demo

#: The provider of the population entry reads it itself; a triple self-join makes an answer long
#: enough (millions of rows) that it is still streaming when the server is killed.
CALLER = "zj_gat"
BODY = {
    "sql": "SELECT a.*, b.name AS b_name, c.name AS c_name "
    "FROM gat_population a, gat_population b, gat_population c",
    "purpose": "人口信息核验",
    "application": "gat_population_service",
}
#: The Arrow IPC end-of-stream marker: continuation token then a zero length.
ARROW_EOS = b"\xff\xff\xff\xff\x00\x00\x00\x00"


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory, pinned_now: dt.datetime) -> Path:
    home = tmp_path_factory.mktemp("export-crash") / "home"
    build_demo(home, scale=0.02, clock=fixed_clock(pinned_now))
    return home


@pytest.fixture(scope="module")
def token(home: Path) -> str:
    return str(demo_users(home)[CALLER]["token"])


def _unfinished(home: Path) -> list[dict[str, object]]:
    listed = pubdata_cli("audit", "unfinished", "--json", home=home)
    assert listed.returncode == 0, listed.stderr
    found: list[dict[str, object]] = json.loads(listed.stdout)
    return found


def _stream_then_kill(home: Path, token: str, fmt: str, now: dt.datetime) -> tuple[bytes, Exception | None]:
    received = b""
    with (
        serving(home, now=now) as server,
        httpx.Client(timeout=60) as client,
        client.stream(
            "POST", f"{server.url}/api/v1/query", json={**BODY, "format": fmt}, headers=bearer(token)
        ) as answer,
    ):
        assert answer.status_code == 200, answer.read()
        chunks: Iterator[bytes] = answer.iter_raw()
        try:
            received += next(chunks)
            os.kill(server.process.pid, signal.SIGKILL)
            server.process.wait(timeout=30)
            for chunk in chunks:
                received += chunk
        except httpx.HTTPError as failure:
            return received, failure
    return received, None


@pytest.mark.req("REQ-40", "downloads")
@pytest.mark.parametrize("fmt", ["csv", "jsonl", "arrow", "parquet"])
def test_a_server_killed_mid_export_leaves_the_client_with_an_error(
    home: Path, token: str, fmt: str, pinned_now: dt.datetime
) -> None:
    before = _unfinished(home)
    received, failure = _stream_then_kill(home, token, fmt, pinned_now)
    assert received, "the first chunk arrived before the kill"
    assert isinstance(failure, httpx.RemoteProtocolError | httpx.ReadError), (
        f"the broken {fmt} export ended without an error after {len(received)} bytes"
    )
    if fmt == "arrow":
        assert not received.endswith(ARROW_EOS)
    verified = pubdata_cli("audit", "verify", home=home)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    after = _unfinished(home)
    assert len(after) == len(before) + 1
    detail = after[-1]["detail"]
    assert isinstance(detail, dict)
    assert detail["access_action"] == f"export.{fmt}" and detail["entries"] == ["gat_population"]


def test_a_finished_export_closes_its_stream_event(home: Path, token: str, pinned_now: dt.datetime) -> None:
    before = _unfinished(home)
    with serving(home, now=pinned_now) as server:
        small = {**BODY, "sql": "SELECT * FROM gat_population LIMIT 5", "format": "csv"}
        answer = httpx.post(f"{server.url}/api/v1/query", json=small, headers=bearer(token), timeout=60)
        assert answer.status_code == 200
    assert _unfinished(home) == before
