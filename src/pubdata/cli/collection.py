"""``pubdata catalog overlap`` and ``suggest``: advice before a new collection is registered.

REQ-9 wants the platform to say which elements a new form or dataset would collect again, and
where they already are; REQ-30 wants levels proposed from content. Both read a spec or a data file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from pubdata.catalog.classes import Level
from pubdata.catalog.specs import load_entry_spec
from pubdata.cli.options import Home, Json, reading
from pubdata.cli.render import out, print_json, table

SPEC_SUFFIXES = (".toml", ".json")
DataFile = Annotated[
    Path,
    typer.Argument(exists=True, dir_okay=False, readable=True, help="CSV, TSV, XLSX, XLS, Parquet or JSONL."),
]
SpecOrDataFile = Annotated[
    Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="An entry spec or a data file.")
]


def print_overlap(hits: list[Any]) -> None:
    if not hits:
        out().print("None of these elements is held yet: nothing would be collected twice.")
        return
    table(
        f"Elements already held ({len(hits)} matches) — collect them from the source instead (REQ-9)",
        ["column", "matched by", "entry", "field", "element", "provider", "authoritative source"],
        (
            [
                h.column,
                h.matched_by,
                f"{h.entry_code} {h.entry_name}",
                f"{h.field_name} {h.field_title}",
                h.element_code,
                h.provider,
                "this field"
                if h.authoritative
                else " ".join(filter(None, (h.authoritative_entry, h.authoritative_provider))),
            ]
            for h in hits
        ),
    )


def overlap(file_or_spec: SpecOrDataFile, home: Home = None, as_json: Json = False) -> None:
    """REQ-9: which elements of a new collection the platform already holds, and their source."""
    from pubdata.catalog.overlap import overlap_for_columns, overlap_for_file

    with reading(home) as (workspace, session):
        settings = workspace.settings.default
        if file_or_spec.suffix.lower() in SPEC_SUFFIXES:
            hits = overlap_for_columns(session, list(load_entry_spec(file_or_spec).fields), settings)
        else:
            hits = overlap_for_file(session, file_or_spec, settings)
    print_json(hits) if as_json else print_overlap(hits)


def suggest(
    file: DataFile,
    home: Home = None,
    sheet: Annotated[str | None, typer.Option(help="Sheet of a workbook.")] = None,
    sample: Annotated[int, typer.Option(min=1, max=100_000, help="Rows sampled.")] = 1000,
    as_json: Json = False,
) -> None:
    """Suggested PII kinds and levels (REQ-30) for a file's columns, from sampled values."""
    from pubdata.catalog.suggest import suggest_fields
    from pubdata.ingest.readers import open_source

    source = open_source(file, sheet=sheet)
    samples: dict[str, list[str | None]] = {name: [] for name in source.info.columns}
    for _row, batch in source.batches(sample):
        for name, column in zip(source.info.columns, batch.columns, strict=True):
            samples[name] = column.to_pylist()[:sample]
        break
    with reading(home) as (workspace, _session):
        suggestions = suggest_fields(samples, workspace.settings.default)
    if as_json:
        print_json(suggestions)
        return
    table(
        f"Suggestions for {file.name} from {sample} sampled rows (REQ-30)",
        ["column", "PII kind", "level", "why"],
        ([s.name, s.pii_kind, Level(s.level).label, s.reason] for s in suggestions),
    )


def register(app: typer.Typer) -> None:
    app.command()(overlap)
    app.command()(suggest)
