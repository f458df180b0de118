"""``pubdata query``: the gateway's path run locally as a user — same decision, masks and audit."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pubdata import audit
from pubdata.cli.main import app
from pubdata.demo.build import build_demo
from pubdata.demo.world import PARK_CHECK_PURPOSE
from pubdata.workspace import Workspace

runner = CliRunner()
SOCIAL = "hrss_social_insurance"


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cli-gateway") / "home"
    build_demo(path, scale=0.02)
    return path


def query(home: Path, sql: str, *options: str, login: str = "jx_zgh") -> tuple[int, str]:
    args = ["query", "--home", str(home), "--as", login, sql, *options]
    if "--purpose" not in options:
        args += ["--purpose", PARK_CHECK_PURPOSE, "--application", "jx_park_workers"]
    result = runner.invoke(app, args)
    return result.exit_code, result.output


@pytest.mark.req("REQ-17", "grant-terms")
@pytest.mark.req("REQ-27", "on-sharing")
@pytest.mark.req("REQ-40", "downloads")
def test_query_writes_a_masked_regional_csv_and_audits_it_as_the_user(home: Path, tmp_path: Path) -> None:
    out = tmp_path / "参保.csv"
    code, output = query(home, f"SELECT id_number, division_code FROM {SOCIAL}", "--format", "csv", "--bom",
                         "--out", str(out))  # fmt: skip
    assert code == 0, output
    assert "rows" in output and "sha256" in output
    rows = list(csv.reader(io.StringIO(out.read_bytes().decode("utf-8-sig"))))
    # `_disputed`: the demo holds a flagged objection on this entry (REQ-12).
    assert rows[0] == ["id_number", "division_code", "_disputed"] and len(rows) > 1
    assert all(r[0][6:14] == "********" and r[1].startswith("3304") for r in rows[1:])
    workspace = Workspace.open(home)
    with workspace.sessions() as session:
        event = audit.list_events(session, "export", limit=1)[-1]
        assert audit.verify_chain(session)[0]
    assert event.actor == "jx_zgh" and event.detail["channel"] == "cli" and event.detail["token_id"] is None
    assert event.detail["rows"] == len(rows) - 1


def test_query_prints_json_to_stdout(home: Path) -> None:
    code, output = query(home, f"SELECT count(*) AS n FROM {SOCIAL}")
    assert code == 0, output
    assert '"rows":[[' in output and '"truncated": false' in output


@pytest.mark.req("REQ-14", "sharing-classes")
def test_query_refusal_exits_1_with_the_reason_and_is_audited(home: Path) -> None:
    code, output = query(home, "SELECT * FROM wjw_outpatient_visits")
    assert code == 1
    assert "not shared" in output and "REQ-14" in output
    workspace = Workspace.open(home)
    with workspace.sessions() as session:
        event = audit.list_events(session, "query", limit=1)[-1]
    assert event.outcome == "refused" and event.detail["reason_kind"] == "not_shared"


def test_query_policy_violation_and_unknown_user(home: Path) -> None:
    code, output = query(home, "SELECT * FROM read_csv('/etc/passwd')")
    assert code == 1 and "table functions are not allowed" in output
    code, output = query(home, "SELECT 1", login="nobody")
    assert code == 2 and "no user with the login" in output
