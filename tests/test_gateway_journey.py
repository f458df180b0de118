"""The sharing gateway's "done when", on a real ``pubdata serve`` process over loopback HTTP.

The demo province is built once; the 嘉兴 trade union's token from ``demo-accounts.json`` reads the
social-insurance entry in four formats and is refused the not-shared outpatient visits; then the
``pubdata audit`` commands, each in its own process, find every one of those calls in a chain that
verifies — until one byte of one event is changed in the SQLite file.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import re
import sqlite3
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from gateway_support import (
    JIAXING,
    OUTPATIENT,
    PARK_APP,
    PARK_PURPOSE,
    SOCIAL,
    Server,
    bearer,
    demo_users,
    pubdata_cli,
    raw_rows,
    serving,
)
from pubdata.clock import fixed_clock
from pubdata.demo.build import build_demo
from pubdata.workspace import Workspace

SQL = f"SELECT * FROM {SOCIAL} ORDER BY id_number, insurance_type"
FORMATS = ("json", "csv", "jsonl", "arrow")


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory, pinned_now: dt.datetime) -> Path:
    path = tmp_path_factory.mktemp("journey") / "home"
    build_demo(path, scale=0.02, clock=fixed_clock(pinned_now))
    return path


@pytest.fixture(scope="module")
def server(home: Path, pinned_now: dt.datetime) -> Iterator[Server]:
    with serving(home, now=pinned_now) as running:
        yield running


@pytest.fixture(scope="module")
def expected(home: Path) -> pa.Table:
    """The rows of the grant's region as the consumer must see them: identity numbers masked 6 + 4."""
    raw = raw_rows(Workspace.open(home), SOCIAL)
    region = raw.filter(pc.starts_with(pc.cast(raw["division_code"], pa.string()), JIAXING))
    ids = region["id_number"].to_pylist()
    masked = [i[:6] + "*" * 8 + i[14:] for i in ids]
    return region.set_column(region.schema.get_field_index("id_number"), "id_number", pa.array(masked))


@dataclass
class Journey:
    answers: dict[str, httpx.Response]
    refused: httpx.Response


@pytest.fixture(scope="module")
def journey(server: Server, home: Path) -> Journey:
    token = demo_users(home)["jx_zgh"]["token"]
    answers = {}
    with httpx.Client(base_url=server.url, headers=bearer(token), timeout=60) as client:
        for fmt in FORMATS:
            body: dict[str, Any] = {
                "sql": SQL,
                "purpose": PARK_PURPOSE,
                "application": PARK_APP,
                "format": fmt,
            }
            if fmt == "json":
                body["max_rows"] = 10_000
            if fmt == "csv":
                body["bom"] = True
            answers[fmt] = client.post("/api/v1/query", json=body)
        refused = client.post(
            "/api/v1/query",
            json={"sql": f"SELECT * FROM {OUTPATIENT}", "purpose": PARK_PURPOSE, "application": PARK_APP},
        )
    return Journey(answers, refused)


def _parsed(fmt: str, answer: httpx.Response) -> list[dict[str, Any]]:
    if fmt == "json":
        body = answer.json()
        names = [c["name"] for c in body["columns"]]
        assert body["truncated"] is False
        return [dict(zip(names, row, strict=True)) for row in body["rows"]]
    if fmt == "csv":
        assert answer.content.startswith(b"\xef\xbb\xbf")
        return list(csv.DictReader(io.StringIO(answer.content.decode("utf-8-sig"))))
    if fmt == "jsonl":
        return [json.loads(line) for line in answer.text.splitlines()]
    rows: list[dict[str, Any]] = pa.ipc.open_stream(answer.content).read_all().to_pylist()
    return rows


@pytest.mark.req("REQ-17", "grant-terms")
@pytest.mark.req("REQ-27", "on-sharing")
@pytest.mark.parametrize("fmt", FORMATS)
def test_the_consumer_gets_masked_numbers_and_only_its_region_in_each_format(
    journey: Journey, expected: pa.Table, fmt: str
) -> None:
    answer = journey.answers[fmt]
    assert answer.status_code == 200, answer.text
    rows = _parsed(fmt, answer)
    assert len(rows) == expected.num_rows > 0
    assert sorted(r["id_number"] for r in rows) == sorted(expected["id_number"].to_pylist())
    assert all(str(r["division_code"]).startswith(JIAXING) for r in rows)
    # Chinese text arrives intact in every format (employer names are not masked by the grant).
    assert sorted(r["employer_name"] for r in rows) == sorted(expected["employer_name"].to_pylist())
    assert any("公司" in r["employer_name"] for r in rows)
    assert all(r["name"][1:] and set(r["name"][1:]) == {"*"} for r in rows)
    assert answer.headers["X-Pubdata-Filtered"] == f"{SOCIAL}=region:{JIAXING}"
    assert f"{SOCIAL}.id_number=mask_id_number" in answer.headers["X-Pubdata-Masked"]


@pytest.mark.req("REQ-14", "sharing-classes")
def test_the_same_token_is_refused_the_not_shared_entry_with_a_reason(journey: Journey) -> None:
    answer = journey.refused
    assert answer.status_code == 403
    assert answer.json() == {
        "error": "denied",
        "detail": f"entry {OUTPATIENT} is not shared (不予共享): "
        "only its provider 浙江省卫生健康委员会 reads it, "
        "and others only through a grant coordinated by the competent department (REQ-14)",
    }


def test_the_real_server_stays_healthy_under_hostile_input(server: Server, home: Path) -> None:
    """The provider's token this time, so that the consumer's calls stay the ones audited below."""
    headers = bearer(demo_users(home)["zj_gat"]["token"])
    base = {"purpose": "人口信息核验", "application": "gat_population_service"}
    normal = {**base, "sql": "SELECT count(*) FROM gat_population"}
    hostile = [
        ({**base, "sql": "SELECT 1 " + " " * 10_000_000}, 422),
        ({**base, "sql": "SELECT " + "(" * 5000 + "1" + ")" * 5000}, 400),
        ({**base, "sql": "SELECT * FROM read_csv('/etc/passwd')"}, 400),
        ({**base, "sql": "SELECT 1; DROP TABLE gat_population"}, 400),
        ({**base, "sql": "SELECT * FROM wjw_outpatient_visits"}, 403),
    ]
    with httpx.Client(base_url=server.url, headers=headers, timeout=60) as client:
        expected = client.post("/api/v1/query", json=normal).json()["rows"]
        for body, status in hostile:
            answer = client.post("/api/v1/query", json=body)
            assert answer.status_code == status and len(answer.content) < 1_000, answer.text[:300]
            assert client.get("/healthz").status_code == 200
            assert client.post("/api/v1/query", json=normal).json()["rows"] == expected
    assert server.alive()


def _events(home: Path) -> list[dict[str, Any]]:
    listed = pubdata_cli("audit", "list", "--json", home=home)
    assert listed.returncode == 0, listed.stderr
    events: list[dict[str, Any]] = json.loads(listed.stdout)
    return events


def _verify(home: Path) -> subprocess.CompletedProcess[str]:
    return pubdata_cli("audit", "verify", home=home)


def _flip_one_byte(home: Path, event_id: int, column: str) -> tuple[str, str]:
    """Change one character of `column` of one event straight in the SQLite file; (old, new) text."""
    with sqlite3.connect(home / "metadata.db") as con:
        (old,) = con.execute(f"SELECT {column} FROM audit_events WHERE id = ?", [event_id]).fetchone()
        at = old.rindex("4") if column == "detail" else len(old) - 1
        new = old[:at] + ("5" if column == "detail" else chr(ord(old[at]) + 1)) + old[at + 1 :]
        assert len(new.encode()) == len(old.encode())
        con.execute(f"UPDATE audit_events SET {column} = ? WHERE id = ?", [new, event_id])
    return old, new


def _restore(home: Path, event_id: int, column: str, text: str) -> None:
    with sqlite3.connect(home / "metadata.db") as con:
        con.execute(f"UPDATE audit_events SET {column} = ? WHERE id = ?", [text, event_id])


@pytest.mark.req("REQ-5", "gateway-audit")
@pytest.mark.req("REQ-40", "tamper-evident", "api-calls")
def test_every_call_is_in_a_chain_that_verifies_until_one_byte_changes(
    journey: Journey, home: Path, server: Server
) -> None:
    verified = _verify(home)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "verified" in verified.stdout
    calls = [
        e for e in _events(home) if e["actor"] == "jx_zgh" and e["action"].startswith(("query", "export"))
    ]
    by_hash = {e["detail"].get("result_hash"): e for e in calls}
    for fmt, answer in journey.answers.items():
        event = by_hash[hashlib.sha256(answer.content).hexdigest()]
        assert event["action"] == ("query" if fmt == "json" else f"export.{fmt}")
        assert event["outcome"] == "ok" and event["target"] == SOCIAL
        assert event["detail"]["application"] == PARK_APP and event["detail"]["purpose"] == PARK_PURPOSE
        assert event["detail"]["rows"] == len(_parsed(fmt, answer))
    refusal = [e for e in calls if e["outcome"] == "refused"]
    assert [(e["target"], e["detail"]["reason_kind"]) for e in refusal] == [(OUTPATIENT, "not_shared")]
    assert refusal[0]["detail"]["reason"] == journey.refused.json()["detail"]

    # One changed byte is named, and only it: the first edit is undone before the second is made.
    csv_event = by_hash[hashlib.sha256(journey.answers["csv"].content).hexdigest()]["id"]
    refused_event = refusal[0]["id"]
    undo = None
    for event_id, column in ((csv_event, "detail"), (refused_event, "actor")):
        if undo is not None:
            _restore(home, *undo)
        undo = (event_id, column, _flip_one_byte(home, event_id, column)[0])
        broken = _verify(home)
        output = broken.stdout + broken.stderr
        assert broken.returncode == 1
        named = {int(n) for n in re.findall(r"event (\d+) was edited", output)}
        assert named == {event_id}, output
    assert server.alive() and httpx.get(f"{server.url}/healthz").status_code == 200
