"""Which source column feeds which catalogue field.

Agencies title their columns as they like: ``身份证号``, ``ＩＤ　Number``, ``id_number``. A column
matches a field by the field's name, title or any alias, compared without case, blanks or
full-width forms. A column that matches nothing is reported, not refused, because extra columns are
normal in exported files; a header that matches no field at all means the wrong file was sent.

Example:
    >>> header_key(" 身份证 号码 "), header_key("ＩＤ_Number")
    ('身份证号码', 'id_number')
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field

from pubdata.db.models import CatalogField
from pubdata.errors import InputError
from pubdata.messages import text as sentence


def header_key(text: str) -> str:
    """The form in which two headers are compared: NFKC, lower case, no blanks."""
    return "".join(unicodedata.normalize("NFKC", text).lower().split())


@dataclass(frozen=True)
class MappedField:
    field: CatalogField
    #: Position of the feeding column in the source, None when the file lacks it.
    source_index: int | None
    source_column: str | None


@dataclass
class ColumnMapping:
    fields: list[MappedField]
    #: Source columns that feed no field (reported in the quality notes).
    unmapped: list[str] = field(default_factory=list)
    #: Extra columns matching a field that an earlier column already feeds.
    duplicates: list[str] = field(default_factory=list)

    @property
    def missing(self) -> list[str]:
        return [m.field.name for m in self.fields if m.source_index is None]


def _names(catalog_field: CatalogField) -> list[str]:
    names = [catalog_field.name, catalog_field.title, *(catalog_field.aliases or [])]
    return [key for key in (header_key(str(n)) for n in names) if key]


def map_columns(columns: Sequence[str], fields: Sequence[CatalogField], file: str) -> ColumnMapping:
    """Match `columns` to `fields`; InputError when the file cannot be the entry's data."""
    by_key: dict[str, CatalogField] = {}
    for catalog_field in fields:
        for key in _names(catalog_field):
            by_key.setdefault(key, catalog_field)
    chosen: dict[str, tuple[int, str]] = {}
    unmapped: list[str] = []
    duplicates: list[str] = []
    for index, column in enumerate(columns):
        target = by_key.get(header_key(column))
        if target is None:
            unmapped.append(column)
        elif target.name in chosen:
            duplicates.append(column)
        else:
            chosen[target.name] = (index, column)
    if not chosen:
        expected = ", ".join(f"{f.name} ({f.title})" if f.title else f.name for f in fields)
        raise InputError(
            sentence(
                "no column matches a field of the entry; expected columns: {expected}", expected=expected
            ),
            file=file,
        )
    mapped = [
        MappedField(f, *chosen[f.name]) if f.name in chosen else MappedField(f, None, None) for f in fields
    ]
    for item in mapped:
        if item.source_index is None and item.field.required:
            name, title = item.field.name, item.field.title
            raise InputError(
                sentence("required field {name!r} ({title}) has no column", name=name, title=title)
                if title
                else sentence("required field {name!r} has no column", name=name),
                file=file,
            )
    return ColumnMapping(mapped, unmapped, duplicates)
