"""``pubdata orgs responsible|history``, ``pubdata incidents …`` and ``pubdata usage`` as people run
them (REQ-23, REQ-25, REQ-28)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from pubdata.catalog.service import publish_entry
from pubdata.cli.main import app
from pubdata.workspace import Workspace
from workflow_world import SETTINGS, build_world


@pytest.fixture
def home(workspace: Workspace) -> str:
    with workspace.sessions() as s, s.begin():
        build_world(s)
        publish_entry(s, "population", "gat_clerk", SETTINGS)
    return str(workspace.home)


def run(*args: str) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.req("REQ-25", "named-officers")
def test_responsible_and_history(home: str) -> None:
    out = run("orgs", "responsible", "市公安局", "--duty", "第一责任人", "--name", "刘局长", "--as", "dsj",
              "--home", home, "--json")  # fmt: skip
    assert json.loads(out)["head"] == "刘局长"
    history = json.loads(run("orgs", "history", "市公安局", "--home", home, "--json"))["history"]
    assert [h["name"] for h in history if h["duty"] == "head"] == ["张局长", "刘局长"]
    by_clerk = ["orgs", "responsible", "市公安局", "--duty", "head", "--as", "gat_clerk", "--home", home]
    refused = CliRunner().invoke(app, by_clerk)
    assert refused.exit_code != 0 and "may not change" in refused.output


@pytest.mark.req("REQ-28", "record", "classify", "remediation")
def test_incident_commands(home: str) -> None:
    out = run("incidents", "report", "--title", "越权调用", "--category", "未授权访问", "--severity", "重大",
              "--as", "gat_officer", "--entry", "population", "--occurred-at", "2026-03-02T08:00",
              "--home", home, "--json")  # fmt: skip
    incident = json.loads(out)
    assert (
        incident["occurred_at"].startswith("2026-03-02T00:00")
        and incident["category"] == "unauthorised_access"
    )
    number = str(incident["id"])
    run("incidents", "update", number, "--as", "gat_clerk", "--note", "排查中", "--home", home)
    run("incidents", "resolve", number, "--as", "gat_officer", "--note", "已修复", "--home", home)
    wrong = CliRunner().invoke(app, ["incidents", "close", number, "--as", "gat_officer", "--note", "x",
                                     "--home", home])  # fmt: skip
    assert wrong.exit_code != 0
    run("incidents", "close", number, "--as", "dsj", "--note", "结案", "--home", home)
    listed = json.loads(run("incidents", "list", "--as", "auditor", "--home", home, "--json"))
    assert [(i["id"], i["state"]) for i in listed] == [(incident["id"], "closed")]
    assert "已关闭" in run("incidents", "show", number, "--as", "dsj", "--home", home)


@pytest.mark.req("REQ-23", "yearly-export")
def test_usage_csv_has_a_bom_and_a_total(home: str) -> None:
    result = CliRunner().invoke(app, ["usage", "population", "--csv", "--home", home])
    assert result.exit_code == 0, result.output
    assert result.stdout_bytes.startswith(
        b"\xef\xbb\xbfday,queries,exports,rows,organisations,public_calls\r\n"
    )
    assert result.stdout_bytes.endswith(b"total,0,0,0,0,0\r\n")
