"""The docs are a contract: each test fails when the code grew something the docs do not show."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from fastapi.routing import APIRoute

from pubdata.api.app import ROUTERS
from pubdata.cli.main import app
from pubdata.cli.reference import cli_reference, command_paths
from pubdata.settings import Deadlines, Settings

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


def _toml_value(value: Any) -> str:
    return tomli_w.dumps({"x": value}).split("=", 1)[1].strip()


def _doc_rows(text: str) -> dict[str, str]:
    """Table rows of a Markdown page keyed by the setting named in their first cell."""
    rows = {}
    for line in text.splitlines():
        match = re.match(r"^\| `([a-z_.]+)` \|", line)
        if match:
            rows[match.group(1)] = line
    return rows


def _settings_with_defaults() -> list[tuple[str, Any]]:
    found: list[tuple[str, Any]] = []
    for f in dataclasses.fields(Settings):
        if f.name == "deadlines":
            found += [
                (f"deadlines.{d.name}", getattr(Deadlines(), d.name)) for d in dataclasses.fields(Deadlines)
            ]
        else:
            found.append((f.name, getattr(Settings(), f.name)))
    return found


def test_cli_reference_is_up_to_date() -> None:
    committed = (DOCS / "cli.md").read_text("utf-8")
    assert committed == cli_reference(app), (
        "docs/cli.md is stale: run .venv/bin/python scripts/gen_cli_docs.py"
    )


def test_cli_reference_covers_every_command() -> None:
    text = (DOCS / "cli.md").read_text("utf-8")
    paths = command_paths(app)
    expected = {
        "pubdata init",
        "pubdata demo",
        "pubdata ingest",
        "pubdata versions",
        "pubdata quality",
        "pubdata serve",
        "pubdata catalog list",
        "pubdata catalog show",
        "pubdata catalog register",
        "pubdata catalog publish",
        "pubdata catalog retire",
        "pubdata catalog overlap",
        "pubdata catalog suggest",
        "pubdata orgs list",
        "pubdata orgs register",
        "pubdata orgs show",
    }
    assert expected <= set(paths)
    for path in paths:
        assert f"## `{path}`" in text


@pytest.mark.parametrize(("name", "default"), _settings_with_defaults(), ids=lambda v: str(v)[:30])
def test_every_setting_is_documented_with_its_default(name: str, default: Any) -> None:
    rows = _doc_rows((DOCS / "settings.md").read_text("utf-8"))
    assert name in rows, f"docs/settings.md does not document {name}"
    if name != "level_rules":
        assert f"`{_toml_value(default)}`" in rows[name], f"docs/settings.md shows a stale default for {name}"
    assert re.search(r"REQ-\d+|ingestion", rows[name]), f"{name}: say which requirement it implements"


def test_level_rule_defaults_are_documented() -> None:
    text = (DOCS / "settings.md").read_text("utf-8")
    for rule in Settings().level_rules:
        assert f"| `{rule.pii_kind}` | {rule.level} |" in text


def test_every_api_route_is_documented() -> None:
    text = (DOCS / "api.md").read_text("utf-8")
    routes = [
        (m, r.path) for router in ROUTERS for r in router.routes if isinstance(r, APIRoute) for m in r.methods
    ]
    assert routes
    for method, path in routes:
        assert f"`{method} {path}`" in text, f"docs/api.md does not document {method} {path}"


def test_api_docs_say_rows_are_not_served() -> None:
    assert "Data rows are not served here" in (DOCS / "api.md").read_text("utf-8")


def test_readme_quick_start_is_exactly_two_commands() -> None:
    readme = (ROOT / "README.md").read_text("utf-8")
    section = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", section, flags=re.S)
    assert blocks == [
        "python3 -m venv .venv && .venv/bin/pip install -e . && .venv/bin/pubdata demo\n./test.sh\n"
    ]
    assert (ROOT / "test.sh").exists()


def test_readme_links_resolve() -> None:
    readme = (ROOT / "README.md").read_text("utf-8")
    links = re.findall(r"\]\((docs/[^)]+)\)", readme)
    assert {"docs/cli.md", "docs/settings.md", "docs/api.md"} <= set(links)
    for link in links:
        assert (ROOT / link).exists(), link
