"""Which rules of the regulation the test suite proves: the conformance report.

Each requirement (REQ-n) of the list the package ships (``data/requirements.md``) is a unit of
conformance; a test names the ones it proves with ``@pytest.mark.req("REQ-n")``. The report runs
those tests (or reads a JUnit XML file of an earlier run), and prints for every requirement the tests
that prove it and whether they passed. A requirement with no test is a gap, listed as such rather
than hidden: the report is evidence, and evidence says what it does not cover.

This module is also a pytest plugin (``-p pubdata.conformance``, and imported by the suite's
``conftest.py``): it copies each test's markers into JUnit ``<property name="req">`` elements, so the
XML of any run carries the mapping and no second collection pass is needed.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pytest

#: ``- **REQ-12** [R] Objections (异议): …`` — the id, the tag and the text up to the line's end.
_REQ_LINE = re.compile(r"^- \*\*(REQ-\d+)\*\* \[([CR])\] (.+)$")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "req(id): the regulation requirement (REQ-n) this test proves")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Carry each test's ``req`` markers into its JUnit XML properties (once, however often called)."""
    for item in items:
        for mark in item.iter_markers("req"):
            prop = ("req", str(mark.args[0]))
            if prop not in item.user_properties:
                item.user_properties.append(prop)


@dataclass(frozen=True)
class Requirement:
    id: str
    #: ``C`` confirmed from the text of the regulation, ``R`` reconstructed (a setting).
    tag: str
    summary: str


@dataclass(frozen=True)
class TestResult:
    name: str
    #: ``passed``, ``failed``, ``error`` or ``skipped``.
    outcome: str


@dataclass
class Conformance:
    requirement: Requirement
    tests: list[TestResult] = field(default_factory=list)

    @property
    def status(self) -> str:
        """``proved`` (tests ran and all passed), ``failing``, ``skipped`` (none ran) or ``gap``."""
        outcomes = {t.outcome for t in self.tests}
        if not outcomes:
            return "gap"
        if outcomes & {"failed", "error"}:
            return "failing"
        return "proved" if "passed" in outcomes else "skipped"


def requirements(text: str | None = None) -> list[Requirement]:
    """The requirements of the shipped list (or of `text`), in their order."""
    if text is None:
        text = resources.files("pubdata.data").joinpath("requirements.md").read_text("utf-8")
    items: list[str] = []
    for line in text.splitlines():
        if line.startswith("- **REQ-"):
            items.append(line)
        elif items and line.startswith("  ") and line.strip():
            items[-1] += " " + line.strip()  # a wrapped line continues the item above
        elif items and not line.strip():
            items.append("")
    found: list[Requirement] = []
    for item in items:
        match = _REQ_LINE.match(item)
        if match:
            req_id, tag, body = match.groups()
            found.append(Requirement(req_id, tag, first_sentence(body)))
    return found


#: Longest summary a report line shows; the full text stays in the list.
SUMMARY_LIMIT = 100


def first_sentence(text: str) -> str:
    """The text up to its first full stop outside parentheses, shortened to `SUMMARY_LIMIT`.

    >>> first_sentence("Objections (异议): a consumer flags a record (e.g. a name). More.")
    'Objections (异议): a consumer flags a record (e.g. a name)'
    """
    depth = 0
    end = len(text)
    for i, char in enumerate(text):
        depth += char in "(（"
        depth -= char in ")）" and depth > 0
        if char == "." and depth == 0 and (i + 1 == len(text) or text[i + 1] == " "):
            end = i
            break
    sentence = text[:end].strip()
    if len(sentence) > SUMMARY_LIMIT:
        sentence = sentence[: SUMMARY_LIMIT - 1].rstrip() + "…"
    return sentence


def _outcome(case: ET.Element) -> str:
    for child, outcome in (("failure", "failed"), ("error", "error"), ("skipped", "skipped")):
        if case.find(child) is not None:
            return outcome
    return "passed"


def results_from_junit(path: Path) -> dict[str, list[TestResult]]:
    """REQ id → the test results that carry it, read from a JUnit XML report."""
    tree = ET.parse(path)  # noqa: S314 - our own pytest's output
    by_req: dict[str, list[TestResult]] = {}
    for case in tree.iter("testcase"):
        reqs = {
            p.get("value", "")
            for p in case.iter("property")
            if p.get("name") == "req" and p.get("value", "").startswith("REQ-")
        }
        if not reqs:
            continue
        name = f"{case.get('classname', '')}::{case.get('name', '')}"
        result = TestResult(name, _outcome(case))
        for req in reqs:
            by_req.setdefault(req, []).append(result)
    return by_req


def conformance(
    reqs: Iterable[Requirement], results: dict[str, list[TestResult]]
) -> tuple[list[Conformance], dict[str, list[TestResult]]]:
    """Each requirement with its tests, and the tests naming a REQ the list does not have."""
    rows = [Conformance(r, sorted(results.get(r.id, []), key=lambda t: t.name)) for r in reqs]
    known = {r.requirement.id for r in rows}
    unknown = {req: tests for req, tests in results.items() if req not in known}
    return rows, unknown


def summary_counts(rows: Iterable[Conformance]) -> dict[str, int]:
    counts = {"proved": 0, "failing": 0, "skipped": 0, "gap": 0}
    for row in rows:
        counts[row.status] += 1
    return counts


def markdown(rows: list[Conformance]) -> str:
    """The report as a Markdown table, one line per requirement, gaps listed at the end."""
    lines = ["| REQ | Tag | Requirement | Tests | Passed | Status |", "|---|---|---|---|---|---|"]
    for row in rows:
        passed = sum(t.outcome == "passed" for t in row.tests)
        lines.append(
            f"| {row.requirement.id} | {row.requirement.tag} | {row.requirement.summary} "
            f"| {len(row.tests)} | {passed} | {row.status} |"
        )
    gaps = [r.requirement.id for r in rows if r.status == "gap"]
    counts = summary_counts(rows)
    lines += ["", ", ".join(f"{k}: {v}" for k, v in counts.items()), ""]
    lines.append("Gaps (no test yet): " + (", ".join(gaps) if gaps else "none"))
    return "\n".join(lines) + "\n"
