"""``pubdata catalog``: search, show, register, publish and retire entries; overlap and suggestions.

Writes go through `pubdata.catalog.service`, where the regulation's rules are enforced, so the CLI
cannot publish anything the API or the demo could not.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from pubdata.api import reads
from pubdata.api.schemas import EntryDetail, EntryPage
from pubdata.catalog import service
from pubdata.catalog.classes import EntryState, Level, OpenClass, ShareClass
from pubdata.catalog.specs import load_entry_spec
from pubdata.cli.options import ACTOR, Actor, Home, Json, reading, writing
from pubdata.cli.render import cell, fields_block, print_json, success, table
from pubdata.settings import Settings
from pubdata.workspace import Workspace

app = typer.Typer(help="The catalogue: entries, their classes, levels and fields.", no_args_is_help=True)

SpecFile = Annotated[
    Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="Entry spec, .toml or .json.")
]


def parse_choice(parser: Any, text: str | None, option: str) -> Any:
    """A vocabulary value from its stored value or Chinese label; a usage error otherwise."""
    if text is None:
        return None
    try:
        return parser(text)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint=option) from None


def print_page(page: EntryPage) -> None:
    headers = [
        "代码 code",
        "名称 name",
        "提供方 provider",
        "共享",
        "开放",
        "级别",
        "状态",
        "更新周期",
        "逾期",
    ]
    rows = (
        [i.code, i.name, i.provider, i.share_class, i.open_class, i.level, i.state, i.update_cycle, i.overdue]
        for i in page.items
    )
    shown = f"{page.offset + 1}–{page.offset + len(page.items)}" if page.items else "0"
    table(f"Catalogue entries {shown} of {page.total}", headers, rows)


def print_detail(detail: EntryDetail) -> None:
    fields_block(
        f"{detail.code} {detail.name}",
        [
            ("provider", f"{detail.provider} ({detail.provider_uscc})"),
            ("state", detail.state),
            ("category", " / ".join(c for c in detail.category if c)),
            ("abstract", detail.abstract),
            ("region", detail.region_code),
            ("share class", detail.share_class),
            ("share conditions", detail.share_conditions),
            ("legal basis", detail.legal_basis),
            ("open class", detail.open_class),
            ("security level", detail.level),
            ("national level", detail.national_level),
            ("update cycle", detail.update_cycle),
            ("data updated", detail.data_updated_at),
            ("overdue", detail.overdue),
            ("key fields", detail.key_fields),
        ],
    )
    table(
        "Fields",
        ["name", "title", "type", "level", "PII", "element", "authoritative"],
        (
            [f.name, f.title, f.data_type, f.level, f.pii_kind, f.element_code, f.authoritative]
            for f in detail.fields
        ),
    )
    if detail.versions:
        table(
            "Versions",
            ["version", "mode", "rows", "rejected", "flagged", "operator", "at"],
            (
                [v.version, v.mode, v.rows_written, v.rows_rejected, v.rows_flagged, v.operator, v.created_at]
                for v in detail.versions
            ),
        )


@app.command("list")
def list_entries(
    home: Home = None,
    text: Annotated[str | None, typer.Option(help="Text in name, code, abstract or field titles.")] = None,
    provider: Annotated[str | None, typer.Option(help="Provider name, short name or USCC.")] = None,
    share: Annotated[str | None, typer.Option(help="Sharing class, e.g. restricted or 受限共享.")] = None,
    open_: Annotated[
        str | None, typer.Option("--open", help="Opening class, e.g. prohibited or 禁止开放.")
    ] = None,
    level: Annotated[
        str | None, typer.Option(help="Entry level (highest field level): 1–4 or L1–L4.")
    ] = None,
    region: Annotated[str | None, typer.Option(help="Division code or prefix, e.g. 3304.")] = None,
    overdue: Annotated[
        bool | None, typer.Option("--overdue/--not-overdue", help="Past the update cycle (REQ-11).")
    ] = None,
    state: Annotated[str | None, typer.Option(help="draft, published or retired.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
    offset: Annotated[int, typer.Option(min=0)] = 0,
    as_json: Json = False,
) -> None:
    """Search the catalogue."""
    query = service.EntryQuery(
        text=text,
        provider=provider,
        share_class=parse_choice(ShareClass.parse, share, "--share"),
        open_class=parse_choice(OpenClass.parse, open_, "--open"),
        level=int(parse_choice(Level.parse, level, "--level")) if level else None,
        region=region,
        state=parse_choice(EntryState.parse, state, "--state"),
        overdue=overdue,
        offset=offset,
        limit=limit,
    )
    with reading(home) as (workspace, session):
        page = reads.search(workspace, session, query)
    print_json(page) if as_json else print_page(page)


@app.command()
def show(code: str, home: Home = None, as_json: Json = False) -> None:
    """An entry's metadata, classes, fields with levels, and versions."""
    with reading(home) as (workspace, session):
        detail = reads.entry_detail(workspace, session, code)
    print_json(detail) if as_json else print_detail(detail)


def _settings_for(workspace: Workspace, division_code: str) -> Settings:
    """The rules of the provider's tenant: a county may override its city and province."""
    return workspace.settings.for_tenant(division_code)


@app.command()
def register(spec: SpecFile, home: Home = None, actor: Actor = ACTOR, as_json: Json = False) -> None:
    """Register a draft entry from a TOML or JSON spec; empty levels and PII kinds are suggested."""
    entry_spec = load_entry_spec(spec)
    with writing(home) as (workspace, session):
        provider = service.find_organisation(session, entry_spec.provider)
        entry = service.create_entry(
            session, entry_spec, actor, _settings_for(workspace, provider.division_code)
        )
        detail = EntryDetail.from_entry(entry, False, [])
    if as_json:
        print_json(detail)
        return
    success(f"registered {detail.code} {detail.name} as a draft")
    print_detail(detail)


def _transition(code: str, home: Path | None, actor: str, as_json: bool, publish: bool) -> None:
    with writing(home) as (workspace, session):
        if publish:
            current = service.get_entry(session, code)
            settings = _settings_for(workspace, current.provider.division_code)
            entry = service.publish_entry(session, code, actor, settings)
        else:
            entry = service.retire_entry(session, code, actor)
        state = entry.state
    if as_json:
        print_json({"code": code, "state": state})
    else:
        success(f"{code} is now {cell(state)} ({state.value})")


@app.command()
def publish(code: str, home: Home = None, actor: Actor = ACTOR, as_json: Json = False) -> None:
    """Publish a draft entry (classes, levels, core metadata and responsible persons required)."""
    _transition(code, home, actor, as_json, publish=True)


@app.command()
def retire(code: str, home: Home = None, actor: Actor = ACTOR, as_json: Json = False) -> None:
    """Retire a published entry; it can no longer be loaded or changed."""
    _transition(code, home, actor, as_json, publish=False)
