"""What the command line says: help that shows every word it declares, errors in the person's language
and, for scripts, as JSON."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from pubdata.api.app import ERROR_STATUS
from pubdata.cli.errors import ERROR_CODES
from pubdata.cli.main import app
from pubdata.cli.reference import commands

runner = CliRunner()
#: A locale that asks for nothing in particular: the tests do not depend on the machine's.
PLAIN = {"LANG": "C.UTF-8", "LC_ALL": None, "LC_MESSAGES": None, "LANGUAGE": None}


def declared_help(command: Any) -> str:
    """The help texts the code declares for a command and its parameters (before click's ``\\f``)."""
    texts = [command.help or "", *(getattr(p, "help", None) or "" for p in command.params)]
    return " ".join(t.split("\f")[0] for t in texts)


def squeezed(value: str) -> str:
    """Without whitespace: help is wrapped at any width, even inside ``./pubdata-home``."""
    return re.sub(r"\s+", "", value)


def test_help_shows_every_bracketed_text_it_declares() -> None:
    """Rich markup took every `[…]` for a style tag: 77 of 78 commands said "Workspace directory ."."""
    checked = set()
    for path, command, ctx in commands(app):
        shown = squeezed(ctx.get_help())
        for bracketed in re.findall(r"\[[^\]\n]*\]", declared_help(command)):
            assert squeezed(bracketed) in shown, f"{path} --help lost {bracketed!r}"
            checked.add(path)
    assert {"pubdata init", "pubdata catalog list", "pubdata query"} <= checked


@pytest.mark.parametrize("args", [["--help"], ["init", "--help"], ["catalog", "list", "--help"]])
def test_help_as_printed_keeps_the_workspace_default(args: list[str]) -> None:
    result = runner.invoke(app, args, env=PLAIN)
    assert result.exit_code == 0, result.output
    if len(args) > 1:
        assert "[default:$PUBDATA_HOME,else./pubdata-home]" in squeezed(result.output)


def missing_entry(home: Path, env: dict[str, str | None], *extra: str) -> Any:
    return runner.invoke(app, ["catalog", "show", "NOPE", "--home", str(home), *extra], env=env)


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cli-text") / "home"
    assert runner.invoke(app, ["init", "--home", str(path)], env=PLAIN).exit_code == 0
    return path


@pytest.mark.parametrize(
    "variables",
    [{"LANG": "zh_CN.UTF-8"}, {"LC_ALL": "zh_CN.UTF-8"}, {"LC_MESSAGES": "zh_CN"}, {"LANGUAGE": "zh_CN:en"}],
    ids=lambda v: next(iter(v)),
)
def test_errors_follow_the_locale_into_chinese(home: Path, variables: dict[str, str]) -> None:
    result = missing_entry(home, PLAIN | {"LANG": None} | variables)
    assert result.exit_code == 2
    assert result.stderr.startswith("错误：") and "NOPE" in result.stderr, result.stderr
    assert "entry" not in result.stderr
    english = missing_entry(home, PLAIN)
    assert english.stderr.startswith("error: ") and "NOPE" in english.stderr


def test_a_c_locale_keeps_english_whatever_language_says(home: Path) -> None:
    result = missing_entry(home, PLAIN | {"LC_ALL": "C", "LANGUAGE": "zh_CN"})
    assert result.stderr.startswith("error: ")


def test_errors_are_json_on_stderr_with_json(home: Path) -> None:
    result = missing_entry(home, PLAIN | {"LANG": "zh_CN.UTF-8"}, "--json")
    assert result.exit_code == 2 and result.stdout == ""
    error = json.loads(result.stderr)["error"]
    assert error["code"] == "not_found" and "NOPE" in error["message"] and "错误" not in error["message"]
    usage = runner.invoke(app, ["catalog", "list", "--home", str(home), "--json", "--level", "L9"], env=PLAIN)
    assert usage.exit_code == 2
    assert json.loads(usage.stderr)["error"]["code"] == "usage"


def test_json_error_codes_are_the_apis() -> None:
    api = {cls: code for cls, _status, code in ERROR_STATUS}
    for cls, code in ERROR_CODES:
        assert api.get(cls, code) == code, cls


def test_an_unreachable_database_is_exit_1_with_a_masked_url(tmp_path: Path) -> None:
    """A closed port: one line naming the database without its password, no traceback."""
    url = "postgresql+psycopg://pubdata:hunter2secret@127.0.0.1:9/none"
    for env, prefix in ((PLAIN, "error: "), (PLAIN | {"LANG": "zh_CN.UTF-8"}, "错误：")):
        result = runner.invoke(
            app, ["init", "--home", str(tmp_path / "h")], env=env | {"PUBDATA_DB_URL": url}
        )
        assert result.exit_code == 1, result.output
        assert result.stderr.startswith(prefix) and "127.0.0.1:9" in result.stderr
        assert "hunter2secret" not in result.output and "Traceback" not in result.output
    result = runner.invoke(
        app, ["init", "--home", str(tmp_path / "h"), "--json"], env=PLAIN | {"PUBDATA_DB_URL": url}
    )
    assert json.loads(result.stderr)["error"]["code"] == "database_unreachable"
    assert "hunter2secret" not in result.output
