"""Load: 50 concurrent clients against ``pubdata serve`` for minutes — errors, latency, memory over time.

`python -m bench.load [--minutes 10] [--max-requests N] [--clients 50] [--home DEMO]`, or
`python -m bench load` (2 minutes). The bench builds a demo province under the work directory (or
uses ``--home``, a workspace made by ``pubdata demo``), starts ``pubdata serve`` on a free port of
127.0.0.1 and runs the clients, each its own HTTP connection, in a loop of weighted requests:

- ``list`` — ``GET /api/entries`` (a page of the catalogue, some pages with a text query);
- ``entry`` — ``GET /api/entries/{code}`` for a random published entry;
- ``query`` — ``POST /api/v1/query`` a small answer (a count by class, or 20 rows) as JSON;
- ``export_csv`` / ``export_arrow`` — every row the union's grant lets it see (a few thousand at
  the bench's demo scale), read to the end and counted, the failure trailer checked;
- ``refused`` — the same query with the open-data user's token: the gateway must say 403, and
  that answer counts as success (it exercises the audited refusal path under load).

Any other status, a transport error, a short export or a failure trailer is an error. The server's
resident memory (with any children) is sampled every ``--sample-seconds``; the ratio compares the
last sample with the first one after ``--warmup-seconds``. Goal: 0 errors, ratio ≤ 1.2.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import io
import json
import random
import statistics
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
import pyarrow as pa

from bench.serving import HOST, free_port, served

#: The demo's scale for the bench's own workspace: the union's grant then covers about 4 000 rows.
DEMO_SCALE = 0.5
#: Seconds before the RSS ratio starts counting: under 50 clients the server's caches (SQLAlchemy's
#: statement cache, DuckDB's buffers, the allocator's arenas) fill for about 50 s, then stay flat.
WARMUP_SECONDS = 60.0
ENTRY = "hrss_social_insurance"
CONSUMER, OUTSIDER = "jx_zgh", "citizen"
#: Request kinds and their weights in the mix.
MIX = {"list": 30, "entry": 25, "query": 25, "export_csv": 7, "export_arrow": 7, "refused": 6}
SMALL_QUERIES = (
    f"SELECT insurance_type, count(*) AS n FROM {ENTRY} GROUP BY insurance_type ORDER BY insurance_type",
    f"SELECT id_number, name, status, division_code FROM {ENTRY} ORDER BY id_number LIMIT 20",
    f"SELECT status, count(*) AS n FROM {ENTRY} WHERE division_code LIKE '3304%' GROUP BY status",
)
SEARCH_WORDS = (None, None, "参保", "人口", "企业", "学校")


@dataclass
class Tally:
    """What the clients saw, by kind."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: {kind: [] for kind in MIX})
    errors: dict[str, int] = field(default_factory=lambda: {kind: 0 for kind in MIX})
    samples: list[str] = field(default_factory=list)
    started: int = 0

    def error(self, kind: str, what: str) -> None:
        self.errors[kind] += 1
        if len(self.samples) < 20:
            self.samples.append(f"{kind}: {what}"[:300])


@dataclass(frozen=True)
class World:
    """The served demo: its tokens, the union's grant terms, published entry codes, export size."""

    base: str
    tokens: dict[str, str]
    purpose: str
    application: str
    codes: list[str]
    export_rows: int


# --- the server and its memory -----------------------------------------------------------------


@contextlib.contextmanager
def serving(home: Path, log: Path) -> Iterator[tuple[str, psutil.Process]]:
    """``pubdata serve`` on a free port until the block ends: its base URL and its process."""
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "pubdata",
        "serve",
        "--home",
        str(home),
        "--host",
        HOST,
        "--port",
        str(port),
    ]
    base = f"http://{HOST}:{port}"
    with served(command, f"{base}/healthz", log) as process:
        yield base, psutil.Process(process.pid)


def rss_mb(process: psutil.Process) -> float:
    """Resident memory of the server and any children it started, in MB."""
    total = int(process.memory_info().rss)
    for child in process.children(recursive=True):
        with contextlib.suppress(psutil.Error):
            total += int(child.memory_info().rss)
    return total / 2**20


class MemorySampler(threading.Thread):
    """Samples the server's RSS every `every` seconds with the number of requests done so far."""

    def __init__(self, process: psutil.Process, tally: Tally, every: float) -> None:
        super().__init__(daemon=True)
        self.process, self.tally, self.every = process, tally, every
        self.rows: list[dict[str, float]] = []
        self.stop = threading.Event()
        self.t0 = time.monotonic()

    def sample(self) -> None:
        done = sum(len(v) for v in self.tally.latencies.values()) + sum(self.tally.errors.values())
        self.rows.append(
            {
                "seconds": round(time.monotonic() - self.t0, 1),
                "rss_mb": round(rss_mb(self.process), 1),
                "requests": done,
            }
        )

    def run(self) -> None:
        self.sample()
        while not self.stop.wait(self.every):
            self.sample()


# --- the clients -------------------------------------------------------------------------------


async def one_request(client: httpx.AsyncClient, world: World, kind: str, rng: random.Random) -> str | None:
    """Send one request of `kind`; None when it went as the mix intends, else what was wrong."""
    union = {"Authorization": f"Bearer {world.tokens[CONSUMER]}"}
    if kind == "list":
        params: dict[str, Any] = {"limit": rng.choice((20, 50)), "offset": rng.choice((0, 0, 20))}
        word = rng.choice(SEARCH_WORDS)
        if word:
            params["q"] = word
        answer = await client.get("/api/entries", params=params)
        return None if answer.status_code == 200 else f"{answer.status_code} {answer.text[:200]}"
    if kind == "entry":
        answer = await client.get(f"/api/entries/{rng.choice(world.codes)}")
        return None if answer.status_code == 200 else f"{answer.status_code} {answer.text[:200]}"
    body = {"purpose": world.purpose, "application": world.application}
    if kind in ("query", "refused"):
        body |= {"sql": rng.choice(SMALL_QUERIES), "format": "json"}
        headers = union if kind == "query" else {"Authorization": f"Bearer {world.tokens[OUTSIDER]}"}
        answer = await client.post("/api/v1/query", json=body, headers=headers)
        wanted = 200 if kind == "query" else 403
        return None if answer.status_code == wanted else f"{answer.status_code} {answer.text[:200]}"
    fmt = "csv" if kind == "export_csv" else "arrow"
    body |= {"sql": f"SELECT * FROM {ENTRY}", "format": fmt}
    async with client.stream("POST", "/api/v1/query", json=body, headers=union) as answer:
        data = await answer.aread()
    if answer.status_code != 200:
        return f"{answer.status_code} {data[:200]!r}"
    rows = _rows(fmt, data)
    return None if rows == world.export_rows else f"{rows} rows instead of {world.export_rows}"


def _rows(fmt: str, data: bytes) -> int:
    """Rows in an export body; -1 when it ends in a failure trailer or does not decode."""
    if fmt == "arrow":
        try:
            return int(pa.ipc.open_stream(io.BytesIO(data)).read_all().num_rows)
        except pa.ArrowInvalid:
            return -1
    lines = [line for line in data.splitlines() if line.strip()]
    if lines and lines[-1].startswith(b"# error"):
        return -1
    return len(lines) - 1  # the header


async def client_loop(world: World, tally: Tally, seed: int, deadline: float, max_requests: int) -> None:
    rng = random.Random(seed)
    kinds, weights = list(MIX), list(MIX.values())
    async with httpx.AsyncClient(base_url=world.base, timeout=120) as client:
        while time.monotonic() < deadline and tally.started < max_requests:
            tally.started += 1
            kind = rng.choices(kinds, weights)[0]
            start = time.perf_counter()
            try:
                wrong = await one_request(client, world, kind, rng)
            except httpx.HTTPError as why:
                wrong = f"transport: {type(why).__name__}: {why}"
            if wrong is None:
                tally.latencies[kind].append(time.perf_counter() - start)
            else:
                tally.error(kind, wrong)


# --- set-up --------------------------------------------------------------------------------------


def demo_home(workdir: Path, scale: float) -> Path:
    """A demo province at `scale` under `workdir`, built unless one is there already."""
    home = workdir / f"demo-{scale:g}"
    if not (home / "demo-accounts.json").exists():
        from pubdata.demo.build import build_demo

        print(f"building a demo province at scale {scale:g} in {home} …", flush=True)
        home.parent.mkdir(parents=True, exist_ok=True)
        build_demo(home, scale=scale)
    else:
        from pubdata.workspace import Workspace

        Workspace.init(home).engine.dispose()  # a province built under an older schema is upgraded
    return home


def discover(base: str, home: Path) -> World:
    """Tokens and grant terms from the demo's accounts; entry codes and export size from the server."""
    accounts = json.loads((home / "demo-accounts.json").read_text("utf-8"))
    tokens = {user["login"]: user["token"] for user in accounts["users"]}
    grant = next(g for g in accounts["grants"] if g["entry"] == ENTRY)
    with httpx.Client(base_url=base, timeout=120) as client:
        page = client.get("/api/entries", params={"limit": 200}).raise_for_status().json()
        body = {
            "sql": f"SELECT count(*) AS n FROM {ENTRY}",
            "purpose": grant["purpose"],
            "application": grant["application"],
            "format": "json",
        }
        counted = client.post(
            "/api/v1/query", json=body, headers={"Authorization": f"Bearer {tokens[CONSUMER]}"}
        )
        counted.raise_for_status()
    rows = int(counted.json()["rows"][0][0])
    codes = [item["code"] for item in page["items"]]
    return World(base, tokens, grant["purpose"], grant["application"], codes, rows)


# --- running and reporting ----------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[round(q * 100) - 1]


def load(
    home: Path,
    *,
    minutes: float,
    max_requests: int,
    clients: int,
    sample_seconds: float,
    warmup_seconds: float,
    log: Path,
) -> dict[str, Any]:
    """Run the clients against a fresh server on `home`; the result as the JSON file holds it."""
    tally = Tally()
    with serving(home, log) as (base, process):
        world = discover(base, home)
        sampler = MemorySampler(process, tally, sample_seconds)
        sampler.start()
        began = time.monotonic()
        deadline = began + minutes * 60

        async def everyone() -> None:
            await asyncio.gather(
                *(client_loop(world, tally, n, deadline, max_requests) for n in range(clients))
            )

        asyncio.run(everyone())
        elapsed = time.monotonic() - began
        sampler.stop.set()
        sampler.join()
        sampler.sample()
    return summary(tally, sampler.rows, world, clients, elapsed, warmup_seconds)


def summary(
    tally: Tally, memory: list[dict[str, float]], world: World, clients: int, elapsed: float, warmup: float
) -> dict[str, Any]:
    kinds: dict[str, Any] = {}
    for kind, seconds in tally.latencies.items():
        ms = [s * 1000 for s in seconds]
        kinds[kind] = {
            "ok": len(ms),
            "errors": tally.errors[kind],
            **{f"p{q}_ms": _round(percentile(ms, q / 100)) for q in (50, 95, 99)},
        }
    warm = [m for m in memory if m["seconds"] >= warmup] or memory
    ratio = warm[-1]["rss_mb"] / warm[0]["rss_mb"] if warm else None
    errors = sum(tally.errors.values())
    done = sum(k["ok"] for k in kinds.values()) + errors
    return {
        "benchmark": "load: concurrent clients against pubdata serve",
        "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "clients": clients,
        "seconds": round(elapsed, 1),
        "requests": done,
        "requests_per_second": round(done / elapsed, 1) if elapsed else None,
        "export_rows": world.export_rows,
        "errors": errors,
        "error_samples": tally.samples,
        "kinds": kinds,
        "memory": memory,
        "warmup_seconds": warmup,
        "rss_ratio_after_warmup": round(ratio, 3) if ratio else None,
        "goal": {"errors": 0, "rss_ratio_max": 1.2},
        "goal_met": errors == 0 and ratio is not None and ratio <= 1.2,
    }


def _round(value: float | None) -> float | None:
    return round(value, 1) if value is not None else None


def report(result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    kinds = Table(
        title=f"{result['requests']} requests by {result['clients']} clients in {result['seconds']} s"
    )
    for column in ("kind", "ok", "errors", "p50 ms", "p95 ms", "p99 ms"):
        kinds.add_column(column, justify="left" if column == "kind" else "right")
    for kind, facts in result["kinds"].items():
        kinds.add_row(
            kind, str(facts["ok"]), str(facts["errors"]),
            *(str(facts[f"p{q}_ms"]) for q in (50, 95, 99)),
        )  # fmt: skip
    console.print(kinds)
    memory = Table(title="server RSS")
    for column in ("s", "MB", "requests"):
        memory.add_column(column, justify="right")
    rows = result["memory"]
    step = max(1, len(rows) // 30)  # at most ~30 lines, always the last one
    for row in rows[::step] + ([rows[-1]] if (len(rows) - 1) % step else []):
        memory.add_row(str(row["seconds"]), str(row["rss_mb"]), str(row["requests"]))
    console.print(memory)
    for sample in result["error_samples"]:
        console.print(f"[red]error[/red] {sample}", markup=True, highlight=False)
    console.print(
        f"errors: {result['errors']}; RSS last/first after {result['warmup_seconds']:g} s warm-up: "
        f"{result['rss_ratio_after_warmup']} (goal: 0 errors, ≤ 1.2) — "
        + ("goal met" if result["goal_met"] else "goal NOT met")
    )


def run(workdir: Path, scale: float, repeat: int, minutes: float = 2.0) -> dict[str, Any]:
    """`python -m bench load`: two minutes on the bench's demo (`scale` multiplies its size)."""
    del repeat  # one long run: its memory curve is the result, not a median
    workdir.mkdir(parents=True, exist_ok=True)
    home = demo_home(workdir, DEMO_SCALE * scale)
    result = load(
        home, minutes=minutes, max_requests=10**9, clients=50, sample_seconds=5,
        warmup_seconds=WARMUP_SECONDS, log=workdir / "pubdata-serve.log",
    )  # fmt: skip
    report(result)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="how long the clients run")
    parser.add_argument("--max-requests", type=int, default=10**9, help="stop after this many requests")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument(
        "--home", type=Path, help="a demo workspace to serve [default: one built by the bench]"
    )
    parser.add_argument("--scale", type=float, default=DEMO_SCALE, help="scale of the demo the bench builds")
    parser.add_argument("--sample-seconds", type=float, default=5.0, help="RSS sampling interval")
    parser.add_argument(
        "--warmup-seconds", type=float, default=WARMUP_SECONDS, help="RSS ratio counts from here"
    )
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/pubdata-bench/load"))
    args = parser.parse_args(argv)
    args.workdir.mkdir(parents=True, exist_ok=True)
    home = args.home or demo_home(args.workdir, args.scale)
    result = load(
        home, minutes=args.minutes, max_requests=args.max_requests, clients=args.clients,
        sample_seconds=args.sample_seconds, warmup_seconds=args.warmup_seconds,
        log=args.workdir / "pubdata-serve.log",
    )  # fmt: skip
    report(result)
    results = Path(__file__).parent / "results"
    results.mkdir(exist_ok=True)
    out = results / f"load-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%SZ}.json"
    out.write_text(json.dumps(result, indent=2, ensure_ascii=False), "utf-8")
    print(f"results: {out}")
    return 0 if result["errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
