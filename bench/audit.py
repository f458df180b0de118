"""Audit log: append throughput and verification time, each against the same work without the chain.

* **append, one event per transaction** — `audit.record` as the gateway calls it (hash chain, append
  lock, a signed checkpoint every 1 000 events) vs a plain ``INSERT`` of the same row with a
  constant hash, one transaction each: the price of tamper evidence per call.
* **append, 1 000 events per transaction** — the same in bulk (as an import would).
* **verify** — `audit.verify` with signature checks over the whole log vs a plain streamed
  ``SELECT`` of every column: the price of checking; reported per million events.

Scale 1 appends 200 000 events for the verification (about a minute); ``--scale 0.1`` 20 000.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select

from pubdata import audit
from pubdata.db.models import AuditEvent
from pubdata.workspace import Workspace

SINGLE = 2_000
BULK = 1_000


def _events_per_second(action: Any, count: int) -> float:
    started = time.perf_counter()
    action()
    return count / (time.perf_counter() - started)


def _chained_single(workspace: Workspace, count: int) -> None:
    for n in range(count):
        with workspace.sessions() as s, s.begin():
            audit.record(s, "bench", "bench.append", f"n:{n}", n=n)


def _plain_single(workspace: Workspace, count: int) -> None:
    for n in range(count):
        with workspace.sessions() as s, s.begin():
            s.execute(insert(AuditEvent).values(**_plain_row(n)))


def _plain_row(n: int) -> dict[str, Any]:
    return {
        "actor": "bench",
        "action": "bench.plain",
        "target": f"n:{n}",
        "outcome": "ok",
        "detail": {"n": n},
        "prev_hash": "0" * 64,
        "hash": f"{n:064x}",
    }


def _chained_bulk(workspace: Workspace, count: int) -> None:
    for start in range(0, count, BULK):
        with workspace.sessions() as s, s.begin():
            for n in range(start, min(count, start + BULK)):
                audit.record(s, "bench", "bench.bulk", f"n:{n}", n=n)


def _plain_bulk(workspace: Workspace, count: int, offset: int) -> None:
    for start in range(0, count, BULK):
        with workspace.sessions() as s, s.begin():
            s.execute(
                insert(AuditEvent), [_plain_row(offset + n) for n in range(start, min(count, start + BULK))]
            )


def run(workdir: Path, scale: float, repeat: int) -> dict[str, Any]:
    workdir.mkdir(parents=True, exist_ok=True)
    chained = Workspace.init(workdir / f"chained-{time.time_ns()}")
    plain = Workspace.init(workdir / f"plain-{time.time_ns()}")
    single = max(200, int(SINGLE * scale))
    results: dict[str, Any] = {
        "append_single_per_s": {
            "chained": _events_per_second(lambda: _chained_single(chained, single), single),
            "plain": _events_per_second(lambda: _plain_single(plain, single), single),
        }
    }
    total = max(10_000, int(200_000 * scale))
    results["append_bulk_per_s"] = {
        "chained": _events_per_second(lambda: _chained_bulk(chained, total), total),
        "plain": _events_per_second(lambda: _plain_bulk(plain, total, single), total),
    }
    key = audit.public_key_pem(chained.home)
    verify_s, read_s = [], []
    for _ in range(max(1, repeat)):
        with chained.sessions() as s:
            started = time.perf_counter()
            report = audit.verify(s, key)
            verify_s.append(time.perf_counter() - started)
            assert report.ok, report.summary()
            events = report.events_checked
        with plain.sessions() as s:
            started = time.perf_counter()
            for _row in s.execute(select(AuditEvent.__table__)).yield_per(10_000):
                pass
            read_s.append(time.perf_counter() - started)
    per_million = 1_000_000 / events
    results["verify"] = {
        "events": events,
        "verify_s_per_million": statistics.median(verify_s) * per_million,
        "plain_read_s_per_million": statistics.median(read_s) * 1_000_000 / (total + single),
    }
    _print(results)
    return results


def _print(results: dict[str, Any]) -> None:
    print("audit log (events per second; seconds per million events)")
    for case in ("append_single_per_s", "append_bulk_per_s"):
        chained, plain = results[case]["chained"], results[case]["plain"]
        print(
            f"{case:24} chained {chained:10.0f}/s  plain insert {plain:10.0f}/s  ratio {chained / plain:5.2f}"
        )
    v = results["verify"]
    print(
        f"verify {v['events']} events: {v['verify_s_per_million']:.1f} s per million "
        f"(plain read {v['plain_read_s_per_million']:.1f} s per million, "
        f"ratio {v['verify_s_per_million'] / v['plain_read_s_per_million']:.1f})"
    )
