"""``pubdata ingest``, ``versions`` and ``quality``: loading files and looking at what was loaded."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from pubdata.api import reads
from pubdata.api.schemas import QualityOut, VersionOut
from pubdata.catalog.classes import BadRowPolicy, WriteMode
from pubdata.cli.catalog import parse_choice
from pubdata.cli.options import ACTOR, Actor, Home, Json, open_workspace, reading
from pubdata.cli.render import err, fields_block, out, print_json, success, table


def print_versions(code: str, versions: list[VersionOut]) -> None:
    table(
        f"Versions of {code}",
        ["version", "mode", "read", "written", "rejected", "flagged", "operator", "source", "at"],
        (
            [
                v.version,
                v.mode,
                v.rows_read,
                v.rows_written,
                v.rows_rejected,
                v.rows_flagged,
                v.operator,
                Path(v.source_file).name if v.source_file else None,
                v.created_at,
            ]
            for v in versions
        ),
    )


def _problem_rows(report: dict[str, Any]) -> list[list[Any]]:
    """(column, reason, rows, masked examples) from the report's per-column problems."""
    rows: list[list[Any]] = []
    columns = report.get("columns")
    for name, facts in (columns if isinstance(columns, dict) else {}).items():
        examples = facts.get("examples") or []
        for reason, count in (facts.get("problems") or {}).items():
            shown = [f"row {e.get('row')}: {e.get('value')}" for e in examples if e.get("reason") == reason][
                :3
            ]
            rows.append([facts.get("source_column") or name, reason, count, "; ".join(shown)])
    return rows


def print_quality(quality: QualityOut) -> None:
    v, report = quality.version, quality.report
    source = report.get("source") or {}
    fields_block(
        f"Quality of {quality.entry} version {v.version}",
        [
            (
                "rows",
                f"read {v.rows_read}, written {v.rows_written}, rejected {v.rows_rejected}, "
                f"flagged {v.rows_flagged}",
            ),
            ("file", v.source_file),
            ("sha256", v.source_sha256),
            ("policy / mode", f"{report.get('policy', '—')} / {v.mode.value}"),
            (
                "source",
                ", ".join(
                    f"{k} {source[k]}"
                    for k in ("format", "encoding", "delimiter", "header_row")
                    if source.get(k) is not None
                ),
            ),
            ("title rows", source.get("title_rows")),
            ("total rows dropped", source.get("total_rows_dropped")),
            ("unmapped columns", report.get("unmapped_columns")),
            ("quarantine", report.get("quarantine_file")),
        ],
    )
    problems = _problem_rows(report)
    if problems:
        table("Problems by column (values masked)", ["column", "reason", "rows", "examples"], problems)
    for note in [*(source.get("notes") or []), *(report.get("notes") or [])]:
        out().print(f"• {note}", markup=False)


def ingest(
    entry: Annotated[str, typer.Argument(help="Catalogue entry code.")],
    file: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="The file to load.")
    ],
    home: Home = None,
    mode: Annotated[
        str | None,
        typer.Option(help="append, upsert or replace [default: upsert with key fields, else replace]."),
    ] = None,
    policy: Annotated[
        str | None,
        typer.Option(help="Bad rows: reject, quarantine or flag [default: the entry's, else settings]."),
    ] = None,
    sheet: Annotated[str | None, typer.Option(help="Sheet of a workbook [default: the first].")] = None,
    max_reject_ratio: Annotated[
        float | None,
        typer.Option(
            min=0.0,
            max=1.0,
            help="Share of rejected rows (0-1) above which nothing is written "
            "[default: the ingest_max_reject_ratio setting].",
        ),
    ] = None,
    allow_empty: Annotated[
        bool, typer.Option("--allow-empty", help="Let a replace leave a table that holds rows empty.")
    ] = False,
    operator: Actor = ACTOR,
    as_json: Json = False,
) -> None:
    """Load a file (CSV/TSV, XLSX/XLS, Parquet, JSON Lines) into an entry as one new version."""
    from pubdata.ingest.pipeline import ingest_file

    workspace = open_workspace(home)
    columns = [
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    ]
    with Progress(*columns, console=err(), transient=True, disable=as_json) as progress:
        task = progress.add_task(f"ingesting {file.name}", total=file.stat().st_size)
        result = ingest_file(
            workspace,
            entry,
            file,
            operator=operator,
            mode=parse_choice(WriteMode.parse, mode, "--mode"),
            policy=parse_choice(BadRowPolicy.parse, policy, "--policy"),
            sheet=sheet,
            on_progress=lambda done, total: progress.update(task, completed=done, total=total),
            max_reject_ratio=max_reject_ratio,
            allow_empty=allow_empty,
        )
    quality = QualityOut(
        entry=entry, version=VersionOut.from_row(result.version), report=dict(result.quality)
    )
    if as_json:
        print_json(quality)
        return
    success(f"{entry}: version {result.version.version} written ({result.version.rows_written} rows)")
    print_quality(quality)


def versions(
    entry: Annotated[str, typer.Argument(help="Catalogue entry code.")],
    home: Home = None,
    as_json: Json = False,
) -> None:
    """The versions of an entry's data: who loaded what, when, and how many rows."""
    with reading(home) as (workspace, session):
        found = reads.entry_versions(workspace, session, entry)
    print_json(found) if as_json else print_versions(entry, found)


def quality(
    entry: Annotated[str, typer.Argument(help="Catalogue entry code.")],
    home: Home = None,
    version: Annotated[int | None, typer.Option(help="Version number [default: the latest].")] = None,
    as_json: Json = False,
) -> None:
    """The quality report of a version: counts, problems by column, masked examples, reader notes."""
    with reading(home) as (workspace, session):
        found = reads.version_quality(workspace, session, entry, version, operator=True)
    print_json(found) if as_json else print_quality(found)


def register(app: typer.Typer) -> None:
    for command in (ingest, versions, quality):
        app.command()(command)
