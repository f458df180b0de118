"""P2: bulk export over HTTP on loopback — the gateway's Arrow, JSON lines and CSV streams vs Datasette.

The bench starts both servers itself, each a subprocess on its own free port of 127.0.0.1, and
always stops them (terminate, then kill after 10 s), also when a download fails:

- ``pubdata serve`` (uvicorn) on the bench workspace; the consumer's token posts
  ``SELECT * FROM <entry>`` to ``/api/v1/query`` with ``format=arrow|jsonl|csv``: decide, rewrite
  (region filter + three masks), the sandboxed engine, the export writer and one audit event;
- ``datasette serve -i`` (immutable) on a SQLite copy of the same rows, read from the same Parquet
  files. Datasette is installed into its own virtual environment beside the work directory: it is
  a baseline, never a dependency of the project. Its JSON API is paged the documented way
  (``_shape=array&_size=max``, 1 000 rows a page, following the ``Link: rel="next"`` header), with
  ``_nocount``, ``_nofacet`` and ``_nosuggest`` so that it does no work beyond the rows; its CSV is
  the ``_stream=on`` export.

The client is httpx, streaming; every download is checked for the full row count (Arrow batches
decoded by pyarrow, lines counted for JSON lines and CSV, ``len`` of each JSON page) and for the
gateway's failure trailers. Requests are bounded: a read timeout, a page count and a wall-clock
deadline per download. Each ratio is the median over rounds of the two downloads' ratio
within a round. Goals: Datasette JSON / gateway Arrow ≥ 50, Datasette JSON / JSON lines ≥ 15.
"""

from __future__ import annotations

import contextlib
import io
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pyarrow as pa

from bench.serving import HOST, free_port, served
from bench.support import APPLICATION, ENTRY, PURPOSE, BenchWorld, bench_world

TABLE = "persons"
DATASETTE_PAGE = 1_000
DEADLINE_S = 900.0
TIMEOUT = httpx.Timeout(30.0, read=300.0)
_COLUMNS = "id_number, name, mobile, division_code, amount"


@dataclass(frozen=True)
class Download:
    seconds: float
    rows: int
    megabytes: float


# --- servers -------------------------------------------------------------------------------------


def ensure_datasette(venv: Path) -> Path:
    """Datasette in a virtual environment of its own, installed by pip on first use."""
    program = venv / "bin" / "datasette"
    if not program.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", "datasette"], check=True)
    return program


def sqlite_copy(world: BenchWorld, path: Path) -> Path:
    """The entry's current rows (unmasked: Datasette has no masks) in a SQLite table, built once."""
    if path.exists():
        with contextlib.closing(sqlite3.connect(path)) as con:
            if con.execute(f"SELECT count(*) FROM {TABLE}").fetchone() == (world.rows,):
                return path
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    partial.unlink(missing_ok=True)
    source = duckdb.connect()
    relation = source.read_parquet(world.file_uris()).select(
        "id_number, name, mobile, division_code, amount::DOUBLE AS amount"
    )
    with contextlib.closing(sqlite3.connect(partial)) as con:
        con.execute(
            f"CREATE TABLE {TABLE} (id_number TEXT, name TEXT, mobile TEXT, division_code TEXT, amount REAL)"
        )
        for batch in relation.to_arrow_reader(100_000):
            columns = [column.to_pylist() for column in batch.columns]
            con.executemany(f"INSERT INTO {TABLE} VALUES (?, ?, ?, ?, ?)", zip(*columns, strict=True))
        con.commit()
    source.close()
    partial.replace(path)
    return path


# --- downloads -----------------------------------------------------------------------------------


class _Body(io.RawIOBase):
    """A response body as a file, so that pyarrow decodes the IPC stream as it arrives."""

    def __init__(self, chunks: Iterator[bytes], deadline: float) -> None:
        self._chunks = chunks
        self._pending = memoryview(b"")
        self._deadline = deadline
        self.size = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            _check_deadline(self._deadline)
            self._pending, self.size = memoryview(chunk), self.size + len(chunk)
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n


def _check_deadline(deadline: float) -> None:
    if time.monotonic() > deadline:
        raise RuntimeError(f"download took longer than {DEADLINE_S:.0f} s")


def _count_arrow(chunks: Iterator[bytes], deadline: float) -> tuple[int, int]:
    body = _Body(chunks, deadline)
    rows = 0
    with pa.ipc.open_stream(io.BufferedReader(body, 1 << 20)) as reader:
        for batch in reader:
            if rows == 0 and batch.num_rows and "*" not in batch.column("id_number")[0].as_py():
                raise RuntimeError("the gateway served identity numbers unmasked")
            rows += batch.num_rows
    return rows, body.size


def _count_lines(chunks: Iterator[bytes], deadline: float, failure: bytes) -> tuple[int, int]:
    """Lines in the body; the gateway's failure trailer (a last line starting `failure`) raises."""
    lines = size = 0
    tail = b""
    for chunk in chunks:
        _check_deadline(deadline)
        lines += chunk.count(b"\n")
        size += len(chunk)
        tail = (tail + chunk)[-4096:]
    last = tail.rstrip(b"\n").rsplit(b"\n", 1)[-1]
    if failure and last.startswith(failure):
        raise RuntimeError(f"the stream ended with a failure: {last.decode('utf-8', 'replace')}")
    return lines, size


def gateway_download(client: httpx.Client, base: str, token: str, fmt: str) -> Download:
    body = {"sql": f"SELECT * FROM {ENTRY}", "purpose": PURPOSE, "application": APPLICATION, "format": fmt}
    start = time.perf_counter()
    deadline = time.monotonic() + DEADLINE_S
    headers = {"Authorization": f"Bearer {token}"}
    with client.stream("POST", f"{base}/api/v1/query", json=body, headers=headers) as answer:
        if answer.status_code != 200:
            raise RuntimeError(f"gateway {fmt}: {answer.status_code} {answer.read()[:500]!r}")
        chunks = answer.iter_bytes(1 << 20)
        if fmt == "arrow":
            rows, size = _count_arrow(chunks, deadline)
        else:
            rows, size = _count_lines(chunks, deadline, b'{"error"' if fmt == "jsonl" else b"# error")
            rows -= fmt == "csv"  # the header line
    return Download(time.perf_counter() - start, rows, size / 2**20)


def datasette_json(client: httpx.Client, base: str, expected: int) -> Download:
    url: str | None = f"{base}/bench/{TABLE}.json?_shape=array&_size=max&_nocount=1&_nofacet=1&_nosuggest=1"
    start = time.perf_counter()
    deadline = time.monotonic() + DEADLINE_S
    rows = size = pages = 0
    while url is not None:
        pages += 1
        if pages > expected // DATASETTE_PAGE + 10:
            raise RuntimeError(f"Datasette JSON: more than {pages - 1} pages for {expected:,} rows")
        _check_deadline(deadline)
        answer = client.get(url)
        answer.raise_for_status()
        rows += len(answer.json())
        size += len(answer.content)
        url = answer.links.get("next", {}).get("url")
    return Download(time.perf_counter() - start, rows, size / 2**20)


def datasette_csv(client: httpx.Client, base: str) -> Download:
    start = time.perf_counter()
    deadline = time.monotonic() + DEADLINE_S
    with client.stream("GET", f"{base}/bench/{TABLE}.csv?_stream=on&_size=max") as answer:
        answer.raise_for_status()
        lines, size = _count_lines(answer.iter_bytes(1 << 20), deadline, b"")
    return Download(time.perf_counter() - start, lines - 1, size / 2**20)


def warm_up(client: httpx.Client, ours: str, token: str, theirs: str) -> None:
    """One small answer from each server before timing: imports, the engine, SQLite's first pages."""
    body = {"sql": f"SELECT * FROM {ENTRY} LIMIT 100", "purpose": PURPOSE, "application": APPLICATION}
    client.post(
        f"{ours}/api/v1/query", json=body, headers={"Authorization": f"Bearer {token}"}
    ).raise_for_status()
    client.get(f"{theirs}/bench/{TABLE}.json?_shape=array&_size=max").raise_for_status()


# --- the run -------------------------------------------------------------------------------------


def run(workdir: Path, scale: float, repeat: int) -> dict[str, Any]:
    rows = max(1_000, int(1_000_000 * scale))
    workdir.mkdir(parents=True, exist_ok=True)
    print(f"P2: preparing {rows:,} rows, the SQLite copy and Datasette …", flush=True)
    world = bench_world(workdir / f"home-{rows}", rows)
    database = sqlite_copy(world, workdir / f"datasette-{rows}" / "bench.db")
    datasette = ensure_datasette(workdir.parent / "datasette-venv")
    ours_port, theirs_port = free_port(), free_port()
    ours, theirs = f"http://{HOST}:{ours_port}", f"http://{HOST}:{theirs_port}"
    pubdata_cmd = [sys.executable, "-m", "pubdata", "serve", "--home", str(world.home)]
    pubdata_cmd += ["--host", HOST, "--port", str(ours_port)]
    datasette_cmd = [str(datasette), "serve", "-i", str(database), "--host", HOST, "--port", str(theirs_port)]
    cases: dict[str, Callable[[httpx.Client], Download]] = {
        "gateway arrow": lambda c: gateway_download(c, ours, world.token, "arrow"),
        "gateway jsonl": lambda c: gateway_download(c, ours, world.token, "jsonl"),
        "gateway csv": lambda c: gateway_download(c, ours, world.token, "csv"),
        "datasette json": lambda c: datasette_json(c, theirs, rows),
        "datasette csv": lambda c: datasette_csv(c, theirs),
    }
    samples: dict[str, list[Download]] = {name: [] for name in cases}
    with (
        served(pubdata_cmd, f"{ours}/healthz", workdir / "pubdata-serve.log"),
        served(datasette_cmd, f"{theirs}/-/versions.json", workdir / "datasette-serve.log"),
        httpx.Client(timeout=TIMEOUT) as client,
    ):
        warm_up(client, ours, world.token, theirs)
        order = list(cases)
        for attempt in range(repeat):
            print(f"P2: round {attempt + 1} of {repeat} …", flush=True)
            for name in order:
                done = cases[name](client)
                if done.rows != rows:
                    raise RuntimeError(f"{name}: {done.rows:,} rows received, {rows:,} expected")
                samples[name].append(done)
            order = order[1:] + order[:1]
    result = _summary(rows, samples)
    _print(result)
    return result


def _summary(rows: int, samples: dict[str, list[Download]]) -> dict[str, Any]:
    medians = {name: statistics.median(d.seconds for d in done) for name, done in samples.items()}

    def paired(slow: str, fast: str) -> float:
        """The median over rounds of the two downloads' ratio within a round (load comes in phases)."""
        pairs = zip(samples[slow], samples[fast], strict=True)
        return statistics.median(s.seconds / f.seconds for s, f in pairs)

    ratios = {
        "datasette_json_vs_arrow": paired("datasette json", "gateway arrow"),
        "datasette_json_vs_jsonl": paired("datasette json", "gateway jsonl"),
        "datasette_csv_vs_arrow": paired("datasette csv", "gateway arrow"),
        "datasette_csv_vs_jsonl": paired("datasette csv", "gateway jsonl"),
        "datasette_csv_vs_csv": paired("datasette csv", "gateway csv"),
    }
    return {
        "benchmark": "P2 export over HTTP",
        "rows": rows,
        "cases": [
            {
                "case": name,
                "median_s": medians[name],
                "rows_per_s": rows / medians[name],
                "megabytes": done[0].megabytes,
                "samples_s": [d.seconds for d in done],
            }
            for name, done in samples.items()
        ],
        "ratios": {name: round(value, 2) for name, value in ratios.items()},
        "goals": {"datasette_json_vs_arrow": ">= 50", "datasette_json_vs_jsonl": ">= 15"},
    }


def _print(result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"P2 export of {result['rows']:,} rows over loopback HTTP, medians")
    for column in ("case", "seconds", "rows/s", "MB"):
        table.add_column(column, justify="left" if column == "case" else "right")
    for case in result["cases"]:
        table.add_row(
            case["case"], f"{case['median_s']:.2f}", f"{case['rows_per_s']:,.0f}", f"{case['megabytes']:.1f}"
        )
    console = Console(width=120)
    console.print(table)
    ratios = result["ratios"]
    console.print(
        f"Datasette JSON / gateway Arrow: {ratios['datasette_json_vs_arrow']:.1f}x (goal ≥ 50); "
        f"Datasette JSON / gateway JSON lines: {ratios['datasette_json_vs_jsonl']:.1f}x (goal ≥ 15)"
    )
    console.print(
        f"Datasette CSV / gateway Arrow: {ratios['datasette_csv_vs_arrow']:.1f}x; "
        f"/ gateway JSON lines: {ratios['datasette_csv_vs_jsonl']:.1f}x; "
        f"/ gateway CSV: {ratios['datasette_csv_vs_csv']:.1f}x"
    )
