"""``pubdata conformance``: which clauses of the regulation the test suite proves, and which it does not."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from pubdata import conformance_report as report
from pubdata.cli.render import jsonable, print_json, table
from pubdata.conformance import marker_problems, requirements
from pubdata.errors import InputError, PubdataError


def _run_suite(tests: Path, workers: int, junit: Path) -> int:
    if not tests.exists():
        raise InputError(
            f"{tests} holds no tests: run from a source checkout or give --tests / --junit",
            file=str(tests),
        )
    if problems := marker_problems(tests):
        raise InputError("requirement markers must name clauses:\n" + "\n".join(problems))
    command = [sys.executable, "-m", "pytest", str(tests), "-m", "req", "-q", "-p", "no:cacheprovider"]
    command += ["-p", "pubdata.conformance"]
    command += [f"--junitxml={junit}", *(["-n", str(workers)] if workers > 1 else [])]
    return subprocess.run(command, check=False).returncode  # noqa: S603 - our own interpreter


def conformance(
    junit: Annotated[
        Path | None,
        typer.Option("--junit", help="Read the results of an earlier run (JUnit XML) instead of running."),
    ] = None,
    tests: Annotated[Path, typer.Option("--tests", help="The test folder to run.")] = Path("tests"),
    workers: Annotated[int, typer.Option("--workers", "-n", help="Parallel pytest workers.")] = 2,
    markdown: Annotated[
        Path | None, typer.Option("--markdown", help="Also write the report as a Markdown table.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON (UTF-8).")] = False,
) -> None:
    """Which clauses of each REQ the tests prove, which fail and which are not built.

    Runs the tests that name a clause (or reads the JUnit XML of an earlier run). A clause is
    proved when all its tests passed, failing when one failed, not built when no test names it; a
    REQ is proved only when every clause is. Exits non-zero when a test failed.
    """
    with tempfile.TemporaryDirectory() as scratch:
        source = junit or Path(scratch) / "conformance.xml"
        suite_status = 0 if junit else _run_suite(tests, workers, source)
        if suite_status in (2, 3, 4):  # interrupted, internal error, usage error: no evidence
            raise PubdataError(f"the test run stopped before its end (pytest exit code {suite_status})")
        if not source.exists():
            raise InputError("the test run wrote no JUnit report", file=str(source))
        rows, unknown = report.conformance(requirements(), report.results_from_junit(source))
    if markdown is not None:
        markdown.write_text(report.markdown(rows), "utf-8")
    if as_json:
        print_json(
            {
                "requirements": [_json_row(r) for r in rows],
                "unknown": {key: jsonable(tests) for key, tests in unknown.items()},
                "counts": report.summary_counts(rows),
            }
        )
    else:
        _print(rows, unknown)
    failing = any(r.status == "failing" for r in rows)
    if failing or suite_status not in (0, 5):
        raise typer.Exit(1)


def _json_row(row: report.Conformance) -> dict[str, object]:
    req = row.requirement
    return {
        "id": req.id,
        "tag": req.tag,
        "summary": req.summary,
        "status": row.status,
        "clauses": [
            {**jsonable(c.clause), "status": c.status, "tests": jsonable(c.tests)} for c in row.clauses
        ],
    }


#: Longest clause text a table line shows.
CLAUSE_LIMIT = 70


def _print(rows: list[report.Conformance], unknown: dict[str, list[report.TestResult]]) -> None:
    lines: list[tuple[str, str, int | str, int | str, str]] = []
    for row in rows:
        req = row.requirement
        lines.append((f"{req.id} [{req.tag}]", req.summary, " ", " ", report.STATUS_LABELS[row.status]))
        for c in row.clauses:
            text = c.clause.text if len(c.clause.text) <= CLAUSE_LIMIT else c.clause.text[:CLAUSE_LIMIT] + "…"
            passed = sum(t.outcome == "passed" for t in c.tests)
            lines.append(
                (" ", f"  {c.clause.slug}: {text}", len(c.tests), passed, report.STATUS_LABELS[c.status])
            )
    table(
        "Conformance with the regulation, clause by clause",
        ["REQ", "Clause", "Tests", "Passed", "Status"],
        lines,
    )
    for what, by_status in report.summary_counts(rows).items():
        typer.echo(f"{what}: " + ", ".join(f"{report.STATUS_LABELS[k]} {v}" for k, v in by_status.items()))
    typer.echo("not proved:")
    for row in rows:
        if row.status != "proved":
            typer.echo(f"  {row.requirement.id}: {', '.join(report.unproved(row))}")
    for key in sorted(unknown):
        typer.echo(f"tests name {key}, which is no clause of the requirements list", err=True)


def register(app: typer.Typer) -> None:
    app.command("conformance")(conformance)
