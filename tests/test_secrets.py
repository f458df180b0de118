"""The metadata database's password: never printed, never in a file others can read, and the command
line that would show it in the process list is warned about."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from pubdata.cli.main import app
from pubdata.db.urls import masked, scrub
from pubdata.workspace import Workspace

runner = CliRunner()
PLAIN = {"LANG": "C.UTF-8", "LC_ALL": None, "LC_MESSAGES": None, "LANGUAGE": None, "PUBDATA_DB_URL": None}
SECRET = "s3cret-Pw-4711"


def with_password(url: str) -> str:
    """The test server trusts local connections, so any password connects: only the handling is tested."""
    return make_url(url).set(password=SECRET).render_as_string(hide_password=False)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def readable_by_others(home: Path) -> list[Path]:
    return [p for p in home.rglob("*") if p.is_file() and mode(p) & (stat.S_IRGRP | stat.S_IROTH)]


def assert_kept_secret(home: Path, *outputs: str) -> None:
    for output in outputs:
        assert SECRET not in output
    for path in readable_by_others(home):
        assert SECRET.encode() not in path.read_bytes(), path
    assert mode(home / "workspace.json") == 0o600
    assert SECRET in json.loads((home / "workspace.json").read_text("utf-8"))["db_url"]


def test_a_url_from_the_environment_is_masked_and_kept_owner_only(pg_database: str, tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = PLAIN | {"PUBDATA_DB_URL": with_password(pg_database)}
    shown = runner.invoke(app, ["init", "--home", str(home)], env=env)
    as_json = runner.invoke(app, ["init", "--home", str(home), "--json"], env=env)
    assert shown.exit_code == 0 and as_json.exit_code == 0, shown.output + as_json.output
    assert json.loads(as_json.stdout)["db_url"] == masked(with_password(pg_database))
    assert "***" in shown.stdout and "warning" not in shown.output
    listed = runner.invoke(app, ["catalog", "list", "--home", str(home)], env=PLAIN)
    assert listed.exit_code == 0, listed.output
    assert_kept_secret(home, shown.output, as_json.output, listed.output, repr(Workspace.open(home)))


def test_a_url_file_must_be_owner_only(pg_database: str, tmp_path: Path) -> None:
    home, secret_file = tmp_path / "home", tmp_path / "db-url"
    secret_file.write_text(with_password(pg_database) + "\n", "utf-8")
    secret_file.chmod(0o644)
    refused = runner.invoke(app, ["init", "--home", str(home), "--db-url-file", str(secret_file)], env=PLAIN)
    assert refused.exit_code == 2 and "chmod 600" in refused.stderr and SECRET not in refused.output
    secret_file.chmod(0o600)
    done = runner.invoke(app, ["init", "--home", str(home), "--db-url-file", str(secret_file)], env=PLAIN)
    assert done.exit_code == 0, done.output
    assert_kept_secret(home, done.output)


def test_a_password_on_the_command_line_is_warned_about_and_masked(pg_database: str, tmp_path: Path) -> None:
    home = tmp_path / "home"
    result = runner.invoke(
        app, ["init", "--home", str(home), "--db-url", with_password(pg_database)], env=PLAIN
    )
    assert result.exit_code == 0, result.output
    assert "process list" in result.stderr and "--db-url-file" in result.stderr
    assert_kept_secret(home, result.output)
    args = ["init", "--home", str(home), "--db-url", with_password(pg_database), "--json"]
    as_json = runner.invoke(app, args, env=PLAIN)
    assert json.loads(as_json.stderr)["warning"]["code"] == "password_on_command_line"
    assert SECRET not in as_json.output


def test_a_url_without_password_keeps_working_from_the_command_line(pg_database: str, tmp_path: Path) -> None:
    home = tmp_path / "home"
    result = runner.invoke(app, ["init", "--home", str(home), "--db-url", pg_database], env=PLAIN)
    assert result.exit_code == 0 and result.stderr == "", result.output
    assert pg_database in result.stdout
    assert json.loads((home / "workspace.json").read_text("utf-8"))["db_url"] == pg_database
    assert mode(home / "workspace.json") == 0o666 & ~_umask()


def test_both_sources_at_once_are_refused(tmp_path: Path) -> None:
    url_file = tmp_path / "u"
    url_file.write_text("sqlite://", "utf-8")
    result = runner.invoke(
        app, ["init", "--home", str(tmp_path / "h"), "--db-url", "sqlite://", "--db-url-file", str(url_file)]
    )
    assert result.exit_code == 2 and "not both" in result.stderr


def test_an_existing_world_readable_workspace_file_is_tightened_on_init(
    pg_database: str, tmp_path: Path
) -> None:
    """A workspace made before passwords were kept owner-only is fixed by running init again."""
    home = tmp_path / "home"
    Workspace.init(home, with_password(pg_database)).engine.dispose()
    (home / "workspace.json").chmod(0o644)
    result = runner.invoke(app, ["init", "--home", str(home)], env=PLAIN)
    assert result.exit_code == 0, result.output
    assert_kept_secret(home, result.output)


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("nonsense:/u:hunter2@x", "SQLAlchemy cannot use the database URL"),
        ("foo://u:hunter2@h/x", "SQLAlchemy cannot use the database URL foo://u:***@h/x"),
        ("mysql+pymysql://u:hunter2@127.0.0.1/x", "the database driver pymysql is not installed"),
    ],
)
def test_a_url_that_cannot_be_used_is_bad_input_without_its_password(
    url: str, said: str, tmp_path: Path
) -> None:
    result = runner.invoke(app, ["init", "--home", str(tmp_path / "h")], env=PLAIN | {"PUBDATA_DB_URL": url})
    assert result.exit_code == 2 and said in result.stderr, result.output
    assert "hunter2" not in result.output and "Traceback" not in result.output


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("postgresql://u:pw@h/db", "postgresql://u:***@h/db"),
        (
            "cannot parse 'mysql+pymysql://root:p:w@h/x' here",
            "cannot parse 'mysql+pymysql://root:***@h/x' here",
        ),
        ("no url at all", "no url at all"),
    ],
)
def test_scrub_hides_passwords_of_quoted_urls(message: str, expected: str) -> None:
    assert scrub(message) == expected


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current
