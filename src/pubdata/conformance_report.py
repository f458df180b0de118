"""The conformance report: test results gathered per clause, a state per clause and per requirement.

Results come from a JUnit XML file whose test cases carry ``<property name="req"
value="REQ-n:clause">`` (written by the plugin in `pubdata.conformance`), so a report can be made
from any run, in CI or later. A clause is proved only by tests that ran and passed; a requirement
only when every clause is; what is not proved is listed, so that the report shows its own gaps.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from pubdata.conformance import Clause, Requirement


@dataclass(frozen=True)
class TestResult:
    __test__ = False  # not a pytest class, whatever its name
    name: str
    #: ``passed``, ``failed``, ``error`` or ``skipped``.
    outcome: str


#: What people read for each status code (the JSON keeps the codes).
STATUS_LABELS = {
    "proved": "已证明 proved",
    "partly": "部分证明 partly proved",
    "failing": "失败 failing",
    "skipped": "跳过 skipped",
    "not-built": "未建 not built",
}


@dataclass
class ClauseConformance:
    clause: Clause
    tests: list[TestResult] = field(default_factory=list)

    @property
    def status(self) -> str:
        """``proved`` (tests ran, all passed), ``failing``, ``skipped`` (none ran) or ``not-built``."""
        outcomes = {t.outcome for t in self.tests}
        if not outcomes:
            return "not-built"
        if outcomes & {"failed", "error"}:
            return "failing"
        return "proved" if "passed" in outcomes else "skipped"


@dataclass
class Conformance:
    requirement: Requirement
    clauses: list[ClauseConformance]

    @property
    def status(self) -> str:
        """``proved`` only when every clause is; ``partly`` when some are; else the clauses' state."""
        states = {c.status for c in self.clauses}
        if "failing" in states:
            return "failing"
        if states == {"proved"}:
            return "proved"
        if "proved" in states:
            return "partly"
        return "skipped" if "skipped" in states else "not-built"


def _outcome(case: ET.Element) -> str:
    for child, outcome in (("failure", "failed"), ("error", "error"), ("skipped", "skipped")):
        if case.find(child) is not None:
            return outcome
    return "passed"


def results_from_junit(path: Path) -> dict[str, list[TestResult]]:
    """``REQ-n:clause`` → the test results that carry it, read from a JUnit XML report."""
    tree = ET.parse(path)  # noqa: S314 - our own pytest's output
    by_clause: dict[str, list[TestResult]] = {}
    for case in tree.iter("testcase"):
        keys = {
            p.get("value", "")
            for p in case.iter("property")
            if p.get("name") == "req" and p.get("value", "").startswith("REQ-")
        }
        result = TestResult(f"{case.get('classname', '')}::{case.get('name', '')}", _outcome(case))
        for key in keys:
            by_clause.setdefault(key, []).append(result)
    return by_clause


def conformance(
    reqs: Iterable[Requirement], results: dict[str, list[TestResult]]
) -> tuple[list[Conformance], dict[str, list[TestResult]]]:
    """Each requirement with its clauses' tests, and the results naming no clause of the list."""
    rows: list[Conformance] = []
    used: set[str] = set()
    for req in reqs:
        keys = [f"{req.id}:{c.slug}" for c in req.clauses]
        used.update(keys)
        clauses = [
            ClauseConformance(c, sorted(results.get(k, []), key=lambda t: t.name))
            for c, k in zip(req.clauses, keys, strict=True)
        ]
        rows.append(Conformance(req, clauses))
    return rows, {key: tests for key, tests in results.items() if key not in used}


def summary_counts(rows: Iterable[Conformance]) -> dict[str, dict[str, int]]:
    """How many requirements, and how many clauses, are in each state."""
    counts = {
        "requirements": dict.fromkeys(STATUS_LABELS, 0),
        "clauses": {k: 0 for k in STATUS_LABELS if k != "partly"},
    }
    for row in rows:
        counts["requirements"][row.status] += 1
        for clause in row.clauses:
            counts["clauses"][clause.status] += 1
    return counts


def unproved(row: Conformance) -> list[str]:
    """The clauses of `row` that are not proved, each with its state when it is not simply unbuilt."""
    return [
        c.clause.slug + ("" if c.status == "not-built" else f" ({STATUS_LABELS[c.status]})")
        for c in row.clauses
        if c.status != "proved"
    ]


def markdown(rows: list[Conformance]) -> str:
    """The report as a Markdown table, a line per requirement and per clause, gaps listed at the end."""
    lines = ["| REQ | Clause | Tests | Passed | Status |", "|---|---|---|---|---|"]
    for row in rows:
        req = row.requirement
        lines.append(f"| **{req.id}** [{req.tag}] | {req.summary} | | | **{STATUS_LABELS[row.status]}** |")
        for c in row.clauses:
            passed = sum(t.outcome == "passed" for t in c.tests)
            lines.append(
                f"| | `{c.clause.slug}` — {c.clause.text} | {len(c.tests)} | {passed} "
                f"| {STATUS_LABELS[c.status]} |"
            )
    counts = summary_counts(rows)
    lines.append("")
    for what, by_status in counts.items():
        lines.append(f"{what}: " + ", ".join(f"{STATUS_LABELS[k]} {v}" for k, v in by_status.items()))
        lines.append("")
    lines.append("Not proved:")
    lines += [f"- {r.requirement.id}: {', '.join(unproved(r))}" for r in rows if r.status != "proved"]
    return "\n".join(lines) + "\n"
