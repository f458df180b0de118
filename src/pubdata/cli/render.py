"""How commands print: Rich tables for people, UTF-8 JSON for scripts (``--json``).

Consoles are made per call, not at import, so that output follows whatever ``sys.stdout`` is at
the time (a test runner swaps it).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Iterable, Sequence
from enum import Enum
from pathlib import Path
from typing import Any

import typer
from pydantic import BaseModel
from rich.console import Console
from rich.markup import escape
from rich.table import Table

#: Width when output goes to a file or a pipe: wide enough that tables of Chinese text do not fold.
PIPE_WIDTH = 200


def out() -> Console:
    console = Console(highlight=False, soft_wrap=True)
    if not console.is_terminal:
        console.width = PIPE_WIDTH
    return console


def err() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True)


def jsonable(value: Any) -> Any:
    """Plain JSON data from models, dataclasses, enums, dates and paths (recursively)."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    return value


def print_json(value: Any) -> None:
    """UTF-8 JSON with Chinese kept readable (``ensure_ascii=False``)."""
    typer.echo(json.dumps(jsonable(value), ensure_ascii=False, indent=2, default=str))


def cell(value: Any) -> str:
    """One table cell: labels rather than codes, '—' for nothing."""
    if isinstance(value, BaseModel):
        value = value.model_dump()
    if value is None or value == "" or value == []:
        return "—"
    if isinstance(value, dict) and "label" in value:
        return str(value["label"])
    if isinstance(value, Enum):
        return str(getattr(value, "label", value.value))
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, float):
        return f"{value:.1f}"
    if isinstance(value, list | tuple):
        return ", ".join(cell(v) for v in value)
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    return str(value)


def table(title: str, headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    grid = Table(title=title, title_justify="left", show_lines=False)
    for header in headers:
        grid.add_column(header, overflow="fold")
    for row in rows:
        grid.add_row(*(escape(cell(v)) for v in row))
    out().print(grid)


def records(title: str, items: Sequence[Any]) -> None:
    """A table of arbitrary records (dataclasses or dicts), one column per key."""
    data = [jsonable(i) for i in items]
    if not data:
        out().print(f"{escape(title)}: none")
        return
    headers = list(data[0])
    table(title, headers, ([d.get(h) for h in headers] for d in data))


def fields_block(title: str, pairs: Sequence[tuple[str, Any]]) -> None:
    """A two-column "label: value" block for one object."""
    grid = Table(title=title, title_justify="left", show_header=False, box=None, pad_edge=False)
    grid.add_column(style="bold")
    grid.add_column(overflow="fold")
    for label, value in pairs:
        grid.add_row(escape(label), escape(cell(value)))
    out().print(grid)


def success(message: str) -> None:
    out().print(f"[green]✓[/green] {escape(message)}")
