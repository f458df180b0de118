"""The conformance report: every requirement listed clause by clause, proved only when all clauses are."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from importlib import resources
from pathlib import Path
from typing import Any

from pubdata.conformance import first_sentence, marker_problem, marker_problems, requirements
from pubdata.conformance_report import STATUS_LABELS, TestResult, conformance, results_from_junit

PUBDATA = [sys.executable, "-m", "pubdata"]
PYTEST = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider"]
TESTS = Path(__file__).resolve().parent
SAMPLE_TESTS = """
import pytest

@pytest.mark.req("REQ-32", "masking", "generalisation")
def test_masks_and_generalises() -> None:
    assert True

@pytest.mark.req("REQ-32", "k-anonymity")
def test_k_anonymity() -> None:
    assert True

@pytest.mark.req("REQ-6", "filing")
def test_files() -> None:
    assert True

@pytest.mark.req("REQ-2", "credit-code")
@pytest.mark.req("REQ-1", "refuse-register")
def test_breaks_two() -> None:
    assert False

@pytest.mark.req("REQ-1", "refuse-ingest", "audited")
def test_refuses_ingest() -> None:
    assert True

@pytest.mark.req("REQ-3", "graded-before-publish")
def test_skips_three() -> None:
    pytest.skip("not here")

def test_without_a_requirement() -> None:
    assert True
"""


def test_every_requirement_of_the_shipped_list_is_parsed_once_with_its_clauses() -> None:
    text = resources.files("pubdata.data").joinpath("requirements.md").read_text("utf-8")
    listed = re.findall(r"^- \*\*(REQ-\d+)\*\*", text, flags=re.MULTILINE)
    parsed = requirements()
    assert [r.id for r in parsed] == listed
    assert len(set(listed)) == len(listed) >= 38
    assert all(r.tag in {"C", "R"} and r.summary for r in parsed)
    for req in parsed:
        slugs = [c.slug for c in req.clauses]
        assert slugs and len(set(slugs)) == len(slugs), req.id
        assert all(c.text for c in req.clauses), req.id
    assert len(re.findall(r"^  - `", text, flags=re.MULTILINE)) == sum(len(r.clauses) for r in parsed)
    by_id = {r.id: r for r in parsed}
    assert [c.slug for c in by_id["REQ-32"].clauses] == [
        "masking", "generalisation", "keyed-pseudonyms", "suppression", "k-anonymity", "laplace-noise"
    ]  # fmt: skip
    # Wrapped lines are joined: REQ-12's summary goes on past its first line, and stops at its clauses.
    assert "flags a record as wrong" in by_id["REQ-12"].summary
    # The "Formats" list after the last REQ is not read as part of it.
    assert "Resident identity" not in by_id["REQ-37"].summary


def test_a_clause_line_may_wrap() -> None:
    text = "- **REQ-1** [C] One rule.\n  - `a` — the first\n    half goes on\n  - `b` — the second\n"
    (req,) = requirements(text)
    assert [(c.slug, c.text) for c in req.clauses] == [("a", "the first half goes on"), ("b", "the second")]


def test_first_sentence_ignores_full_stops_inside_parentheses_and_is_bounded() -> None:
    assert first_sentence("A rule (e.g. this one). Then more.") == "A rule (e.g. this one)"
    assert len(first_sentence("x" * 500)) == 100


def test_a_marker_must_name_known_clauses() -> None:
    assert marker_problem(("REQ-32", "k-anonymity", "masking")) is None
    whole = marker_problem(("REQ-18",))
    assert whole is not None and 'req("REQ-18", "<clause>")' in whole and "own-region" in whole
    unknown = marker_problem(("REQ-32", "k-anonymity", "encryption"))
    assert unknown is not None and "encryption" in unknown and "laplace-noise" in unknown
    assert "REQ-99" in (marker_problem(("REQ-99", "x")) or "")


def test_every_marker_in_the_suite_names_known_clauses() -> None:
    """Read without collecting: each ``pytest.mark.req(...)`` of tests/ names a REQ and its clauses."""
    assert marker_problems(TESTS) == []
    source = "\n".join(p.read_text("utf-8") for p in TESTS.rglob("*.py"))
    assert source.count("@pytest.mark.req(") > 100


def test_a_whole_requirement_marker_fails_collection_with_what_to_write(tmp_path: Path) -> None:
    (tmp_path / "test_flat.py").write_text(
        'import pytest\n\n@pytest.mark.req("REQ-18")\ndef test_feed() -> None:\n    assert True\n', "utf-8"
    )
    run = subprocess.run(
        [*PYTEST, str(tmp_path), "-q", "-p", "pubdata.conformance"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
    )
    assert run.returncode == 4, run.stdout + run.stderr  # a usage error: nothing ran
    said = run.stdout + run.stderr
    assert "test_flat.py::test_feed" in said and 'req("REQ-18", "<clause>")' in said
    # The report refuses before it runs anything, whatever the number of workers.
    report = subprocess.run(
        [*PUBDATA, "conformance", "--tests", str(tmp_path), "-n", "2"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
    )
    assert report.returncode == 2, report.stdout + report.stderr
    said = report.stdout + report.stderr
    assert "test_flat.py:3" in said and 'req("REQ-18", "<clause>")' in said and "REQ-1 [C]" not in said


def test_a_requirement_is_proved_only_when_every_clause_is() -> None:
    reqs = requirements()
    passed = [TestResult("t::ok", "passed")]
    rows, unknown = conformance(
        reqs,
        {
            "REQ-6:filing": passed,
            **{f"REQ-19:{c.slug}": passed for c in next(r for r in reqs if r.id == "REQ-19").clauses},
            "REQ-32:k-anonymity": passed,
            "REQ-32:masking": [*passed, TestResult("t::bad", "failed")],
            "REQ-12": passed,  # a result of the old whole-REQ marker covers no clause
        },
    )
    status = {r.requirement.id: r for r in rows}
    assert status["REQ-6"].status == status["REQ-19"].status == "proved"
    assert status["REQ-32"].status == "failing"
    clauses = {c.clause.slug: c.status for c in status["REQ-32"].clauses}
    assert clauses["k-anonymity"] == "proved" and clauses["masking"] == "failing"
    assert clauses["laplace-noise"] == "not-built"
    assert status["REQ-12"].status == "not-built" and list(unknown) == ["REQ-12"]
    rows, _ = conformance(reqs, {"REQ-32:k-anonymity": passed})
    assert next(r for r in rows if r.requirement.id == "REQ-32").status == "partly"


def test_the_report_runs_the_marked_tests_and_names_each_clause_state(tmp_path: Path) -> None:
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
    assert status["REQ-1"] == "failing"  # refuse-ingest and audited passed, refuse-register failed
    assert status["REQ-2"] == "failing"
    assert status["REQ-3"] == "skipped"
    assert status["REQ-4"] == "not-built"
    assert status["REQ-6"] == "proved"
    assert status["REQ-32"] == "partly"  # three of six techniques
    clauses = {c["slug"]: c for c in _row(report, "REQ-32")["clauses"]}
    assert {s: c["status"] for s, c in clauses.items()} == {
        "masking": "proved", "generalisation": "proved", "keyed-pseudonyms": "not-built",
        "suppression": "not-built", "k-anonymity": "proved", "laplace-noise": "not-built",
    }  # fmt: skip
    assert [t["name"].split("::")[-1] for t in clauses["masking"]["tests"]] == ["test_masks_and_generalises"]
    assert report["counts"]["requirements"]["proved"] == 1
    assert report["counts"]["clauses"]["proved"] == 6
    table = markdown.read_text("utf-8")
    assert "| | `laplace-noise` — optional Laplace noise on counts | 0 | 0 | 未建 not built |" in table
    assert "- REQ-32: keyed-pseudonyms, suppression, laplace-noise" in table


def test_the_text_report_and_an_existing_junit_report(tmp_path: Path) -> None:
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "test_sample.py").write_text(SAMPLE_TESTS.replace("assert False", "assert True"), "utf-8")
    junit = tmp_path / "junit.xml"
    subprocess.run(
        [*PYTEST, str(suite), "-q", "-p", "pubdata.conformance", f"--junitxml={junit}"],
        check=True,
        capture_output=True,
        cwd=tmp_path,
    )
    properties = set(re.findall(r'<property name="req" value="([^"]+)"', junit.read_text("utf-8")))
    assert {"REQ-32:masking", "REQ-32:generalisation", "REQ-1:audited"} <= properties
    assert {key: len(tests) for key, tests in results_from_junit(junit).items()}["REQ-6:filing"] == 1
    run = subprocess.run(
        [*PUBDATA, "conformance", "--junit", str(junit)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert any("REQ-6 [R]" in line and "已证明 proved" in line for line in lines)
    assert any("REQ-32 [C]" in line and "部分证明 partly proved" in line for line in lines)
    assert any("laplace-noise" in line and "未建 not built" in line for line in lines)
    assert any("graded-before-publish" in line and "跳过 skipped" in line for line in lines)
    assert "  REQ-32: keyed-pseudonyms, suppression, laplace-noise" in lines
    assert "  REQ-3: graded-before-publish (跳过 skipped)" in lines
    assert not any(line.startswith("  REQ-6:") for line in lines)  # proved: not in the gaps


def _row(report: dict[str, Any], req: str) -> dict[str, Any]:
    return next(r for r in report["requirements"] if r["id"] == req)


def test_the_docs_name_every_state_and_the_marker() -> None:
    text = (TESTS.parent / "docs" / "conformance.md").read_text("utf-8")
    for code, label in STATUS_LABELS.items():
        assert label in text and f"`{code}`" in text, code
    assert '@pytest.mark.req("REQ-32", "k-anonymity")' in text
