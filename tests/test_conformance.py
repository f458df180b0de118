"""The conformance report: every requirement listed, each with the tests that prove it, gaps named."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from importlib import resources
from pathlib import Path

from pubdata.conformance import first_sentence, requirements

PUBDATA = [sys.executable, "-m", "pubdata"]
PYTEST = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider"]
SAMPLE_TESTS = """
import pytest

@pytest.mark.req("REQ-1")
def test_proves_one() -> None:
    assert True

@pytest.mark.req("REQ-2")
@pytest.mark.req("REQ-1")
def test_breaks_two() -> None:
    assert False

@pytest.mark.req("REQ-3")
def test_skips_three() -> None:
    pytest.skip("not here")

@pytest.mark.req("REQ-99")
def test_names_an_unknown_requirement() -> None:
    assert True

def test_without_a_requirement() -> None:
    assert True
"""


def test_every_requirement_of_the_shipped_list_is_parsed_once() -> None:
    text = resources.files("pubdata.data").joinpath("requirements.md").read_text("utf-8")
    listed = re.findall(r"^- \*\*(REQ-\d+)\*\*", text, flags=re.MULTILINE)
    parsed = requirements()
    assert [r.id for r in parsed] == listed
    assert len(set(listed)) == len(listed) >= 30
    assert all(r.tag in {"C", "R"} and r.summary for r in parsed)
    # Wrapped lines are joined: REQ-12's summary goes on past its first line.
    objections = next(r for r in parsed if r.id == "REQ-12")
    assert "flags a record as wrong" in objections.summary


def test_first_sentence_ignores_full_stops_inside_parentheses_and_is_bounded() -> None:
    assert first_sentence("A rule (e.g. this one). Then more.") == "A rule (e.g. this one)"
    assert len(first_sentence("x" * 500)) == 100


def test_the_report_runs_the_marked_tests_and_names_passes_failures_skips_and_gaps(tmp_path: Path) -> None:
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "test_sample.py").write_text(SAMPLE_TESTS, "utf-8")
    markdown = tmp_path / "conformance.md"
    run = subprocess.run(
        [*PUBDATA, "conformance", "--tests", str(suite), "-n", "1", "--json", "--markdown", str(markdown)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
    )
    assert run.returncode == 1, run.stderr  # a failing test fails the report
    report = json.loads(run.stdout[run.stdout.index("{") :])
    status = {r["id"]: r["status"] for r in report["requirements"]}
    assert status["REQ-1"] == "failing"  # one of its two tests failed
    assert status["REQ-2"] == "failing"
    assert status["REQ-3"] == "skipped"
    assert status["REQ-4"] == "gap"
    tests_of_one = {t["name"].split("::")[-1]: t["outcome"] for t in _tests(report, "REQ-1")}
    assert tests_of_one == {"test_proves_one": "passed", "test_breaks_two": "failed"}
    assert list(report["unknown"]) == ["REQ-99"]
    assert report["counts"]["gap"] == len(requirements()) - 3
    table = markdown.read_text("utf-8")
    assert "| REQ-3 | C |" in table and "Gaps (no test yet): REQ-4," in table


def test_a_run_without_failures_passes_and_reads_an_existing_junit_report(tmp_path: Path) -> None:
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "test_ok.py").write_text(
        'import pytest\n\n@pytest.mark.req("REQ-5")\ndef test_ok() -> None:\n    assert True\n', "utf-8"
    )
    junit = tmp_path / "junit.xml"
    subprocess.run(
        [*PYTEST, str(suite), "-q", "-p", "pubdata.conformance", f"--junitxml={junit}"],
        check=True,
        capture_output=True,
        cwd=tmp_path,
    )
    run = subprocess.run(
        [*PUBDATA, "conformance", "--junit", str(junit), "--json"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert {r["id"]: r["status"] for r in report["requirements"]}["REQ-5"] == "proved"
    assert report["counts"]["proved"] == 1


def _tests(report: dict[str, list[dict[str, object]]], req: str) -> list[dict[str, str]]:
    row = next(r for r in report["requirements"] if r["id"] == req)
    return row["tests"]  # type: ignore[no-any-return, index]
