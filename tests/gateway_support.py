"""What the gateway proofs share: the demo's accounts, raw rows to check answers against, and a real
``pubdata serve`` process on a free loopback port."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pyarrow as pa

from pubdata.db.models import CatalogEntry
from pubdata.demo.world import PARK_CHECK_PURPOSE
from pubdata.store.delta import DatasetStore
from pubdata.workspace import Workspace

SOCIAL = "hrss_social_insurance"
OUTPATIENT = "wjw_outpatient_visits"
PARK_APP = "jx_park_workers"
PARK_PURPOSE = PARK_CHECK_PURPOSE
#: The region of the 嘉兴 trade union's grant.
JIAXING = "3304"
PUBDATA = [sys.executable, "-m", "pubdata"]


def demo_users(home: Path) -> dict[str, dict[str, Any]]:
    """The demo's accounts by login, as ``demo-accounts.json`` lists them."""
    users = json.loads((home / "demo-accounts.json").read_text("utf-8"))["users"]
    return {u["login"]: u for u in users}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def raw_rows(workspace: Workspace, code: str) -> pa.Table:
    """The current version of an entry as stored, unmasked: the oracle the answers are checked against."""
    with workspace.sessions() as session:
        entry = session.query(CatalogEntry).filter_by(code=code).one()
        files = DatasetStore(workspace.data_dir, workspace.sessions).file_uris(entry)
    with duckdb.connect() as con:
        return con.sql("SELECT * FROM read_parquet($files)", params={"files": files}).to_arrow_table()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass(frozen=True)
class Server:
    url: str
    process: subprocess.Popen[bytes]

    def alive(self) -> bool:
        return self.process.poll() is None


@contextmanager
def serving(
    home: Path, timeout_s: float = 60.0, now: dt.datetime | None = None, options: tuple[str, ...] = ()
) -> Iterator[Server]:
    """``pubdata serve --home HOME`` as a child process, up once ``/healthz`` answers; always stopped.

    `now` pins the server's clock (``--now``): give the instant the demo was built at. `options` are
    more options of ``pubdata serve`` (``--forwarded-allow-ips``)."""
    port = free_port()
    extra = ["--now", now.isoformat()] if now is not None else []
    extra += options
    log = open(home.parent / f"serve-{port}.log", "wb")  # noqa: SIM115 - closed in the finally below
    process = subprocess.Popen(
        [*PUBDATA, "serve", "--home", str(home), "--host", "127.0.0.1", "--port", str(port), *extra],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    server = Server(f"http://127.0.0.1:{port}", process)
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            if not server.alive():
                raise RuntimeError(f"pubdata serve exited: {_tail(log.name)}")
            try:
                if httpx.get(f"{server.url}/healthz", timeout=1.0).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"pubdata serve did not answer in {timeout_s} s: {_tail(log.name)}")
            time.sleep(0.1)
        yield server
    finally:
        if server.alive():
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        log.close()


def _tail(path: str) -> str:
    return Path(path).read_text("utf-8", errors="replace")[-2000:]


def pubdata_cli(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    """The ``pubdata`` command as a person runs it, in its own process."""
    return subprocess.run(
        [*PUBDATA, *args, "--home", str(home)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "200"},
    )
