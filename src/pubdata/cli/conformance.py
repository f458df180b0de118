"""``pubdata conformance``: which rules of the regulation the test suite proves, and which it does not."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from pubdata import conformance as report
from pubdata.cli.render import jsonable, print_json, table
from pubdata.errors import InputError


def _run_suite(tests: Path, workers: int, junit: Path) -> int:
    if not tests.exists():
        raise InputError(
            f"{tests} holds no tests: run from a source checkout or give --tests / --junit",
            file=str(tests),
        )
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
    """Run the tests that name a requirement and print, for every REQ, its tests and their outcome.

    Exits non-zero when a test failed; requirements without a test are listed as gaps.
    """
    with tempfile.TemporaryDirectory() as scratch:
        source = junit or Path(scratch) / "conformance.xml"
        suite_status = 0 if junit else _run_suite(tests, workers, source)
        if not source.exists():
            raise InputError("the test run wrote no JUnit report", file=str(source))
        rows, unknown = report.conformance(report.requirements(), report.results_from_junit(source))
    if markdown is not None:
        markdown.write_text(report.markdown(rows), "utf-8")
    if as_json:
        print_json(
            {
                "requirements": [
                    {**jsonable(r.requirement), "status": r.status, "tests": jsonable(r.tests)} for r in rows
                ],
                "unknown": {req: jsonable(tests) for req, tests in unknown.items()},
                "counts": report.summary_counts(rows),
            }
        )
    else:
        table(
            "Conformance with the regulation",
            ["REQ", "Tag", "Requirement", "Tests", "Passed", "Status"],
            [
                (
                    r.requirement.id,
                    r.requirement.tag,
                    r.requirement.summary,
                    len(r.tests),
                    sum(t.outcome == "passed" for t in r.tests),
                    r.status,
                )
                for r in rows
            ],
        )
        counts = report.summary_counts(rows)
        gaps = [r.requirement.id for r in rows if r.status == "gap"]
        typer.echo(", ".join(f"{k}: {v}" for k, v in counts.items()))
        typer.echo("gaps (no test yet): " + (", ".join(gaps) if gaps else "none"))
        for req in sorted(unknown):
            typer.echo(f"tests name {req}, which the requirements list does not have", err=True)
    failing = any(r.status == "failing" for r in rows)
    if failing or suite_status not in (0, 5):
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("conformance")(conformance)
