"""Which source column feeds which catalogue field.

Agencies title their columns as they like: ``身份证号``, ``ＩＤ　Number``, ``id_number``. A column
matches a field by the field's name, title or any alias, compared without case, blanks or
full-width forms. A column that matches nothing is reported, not refused, because extra columns are
normal in exported files; a header that matches no field at all means the wrong file was sent.
Notes in brackets are how people annotate a header (``慰问金额（元）``, ``手机号码(选填)``,
``【必填】姓名``): a header that matches nothing as written is tried again without them. A required
field without a column is refused with the file's headers and the nearest one, because the fix is
almost always a header typed a little differently.

Example:
    >>> header_key(" 身份证 号码 "), header_key("ＩＤ_Number")
    ('身份证号码', 'id_number')
    >>> bare_key("慰问金额（元）"), bare_key("【必填】手机号码 (选填)"), bare_key("[备注]")
    ('慰问金额', '手机号码', '[备注]')
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field

from pubdata.catalog.classes import WriteMode
from pubdata.db.models import CatalogField
from pubdata.errors import InputError, PubdataError
from pubdata.messages import text as sentence

#: A bracketed note in a header, after NFKC (which turns （） into ()): (元), [选填], 【必填】, 〔注〕.
_NOTE = re.compile(r"\([^()]*\)|\[[^\[\]]*\]|【[^【】]*】|〔[^〔〕]*〕")


def header_key(text: str) -> str:
    """The form in which two headers are compared: NFKC, lower case, no blanks."""
    return "".join(unicodedata.normalize("NFKC", text).lower().split())


def bare_key(text: str) -> str:
    """`header_key` without bracketed notes; the plain key when nothing else is left."""
    key = header_key(text)
    bare = _NOTE.sub("", key)
    return bare or key


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


class NoColumnMatches(InputError):
    """No header of the file is a field of the entry: the wrong file, or the wrong sheet."""


def matches_any(columns: Sequence[str], fields: Sequence[CatalogField]) -> bool:
    """Whether any of `columns` feeds one of `fields` (to find the sheet that holds the data)."""
    keys = {k for f in fields for name in _names(f) for k in (name, bare_key(name))}
    return any(header_key(c) in keys or bare_key(c) in keys for c in columns)


def map_columns(
    columns: Sequence[str], fields: Sequence[CatalogField], file: str, keys: Sequence[str] = ()
) -> ColumnMapping:
    """Match `columns` to `fields`; InputError when the file cannot be the entry's data.

    Key fields (`keys`) are required like required fields: rows cannot be told apart without them.
    """
    by_key: dict[str, CatalogField] = {}
    for catalog_field in fields:
        for key in _names(catalog_field):
            by_key.setdefault(key, catalog_field)
    for catalog_field in fields:  # bare forms second: a name as written wins over a stripped one
        for key in _names(catalog_field):
            by_key.setdefault(bare_key(key), catalog_field)
    chosen: dict[str, tuple[int, str]] = {}
    unmapped: list[str] = []
    duplicates: list[str] = []
    for index, column in enumerate(columns):
        target = by_key.get(header_key(column)) or by_key.get(bare_key(column))
        if target is None:
            unmapped.append(column)
        elif target.name in chosen:
            duplicates.append(column)
        else:
            chosen[target.name] = (index, column)
    if not chosen:
        expected = ", ".join(f"{f.name} ({f.title})" if f.title else f.name for f in fields)
        raise NoColumnMatches(
            sentence(
                "no column matches a field of the entry; expected columns: {expected}", expected=expected
            ),
            file=file,
        )
    mapped = [
        MappedField(f, *chosen[f.name]) if f.name in chosen else MappedField(f, None, None) for f in fields
    ]
    for item in mapped:
        if item.source_index is None and (item.field.required or item.field.name in keys):
            raise _no_column(item.field, unmapped, columns, file)
    return ColumnMapping(mapped, unmapped, duplicates)


def _no_column(
    catalog_field: CatalogField, unmapped: Sequence[str], columns: Sequence[str], file: str
) -> InputError:
    """The refusal of a required field without a column: the file's headers and the nearest one."""
    candidates = {bare_key(c): c for c in reversed(unmapped)}
    close: list[str] = []
    for name in (catalog_field.title, catalog_field.name, *(catalog_field.aliases or [])):
        if name and not close:
            close = difflib.get_close_matches(bare_key(str(name)), list(candidates), n=1, cutoff=0.4)
    wanted = f"{catalog_field.name} ({catalog_field.title})" if catalog_field.title else catalog_field.name
    headers = ", ".join(columns)
    if close:
        return InputError(
            sentence(
                "required field {field} has no column; the file's columns are {headers}; "
                "the nearest is {nearest!r}: rename it or add the name as an alias of the field",
                field=wanted,
                headers=headers,
                nearest=candidates[close[0]],
            ),
            file=file,
        )
    return InputError(
        sentence(
            "required field {field} has no column; the file's columns are {headers}",
            field=wanted,
            headers=headers,
        ),
        file=file,
    )


def fields_to_update(
    mapping: ColumnMapping, mode: WriteMode, missing_columns: str, file: str
) -> list[str] | None:
    """The fields an upsert may change in stored rows, or None for all of them.

    A field without a column in the file has no new value: an upsert keeps what is stored
    (``keep``) or is refused (``refuse``), never blanks it. Append and replace write new rows, in
    which such a field is empty (a required one has already been refused).
    """
    if missing_columns not in ("keep", "refuse"):
        raise PubdataError(
            sentence("upsert_missing_columns is keep or refuse, not {value!r}", value=missing_columns)
        )
    if mode is not WriteMode.UPSERT or not mapping.missing:
        return None
    if missing_columns == "refuse":
        raise InputError(
            sentence(
                "the file has no column for {fields}; an upsert needs every field "
                '(or keep the stored values with upsert_missing_columns = "keep")',
                fields=", ".join(mapping.missing),
            ),
            file=file,
        )
    return [m.field.name for m in mapping.fields if m.source_index is not None]
