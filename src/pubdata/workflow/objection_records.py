"""The records an objection names (REQ-12): by the entry's key fields, checked as ingestion would.

A record is ``{key field: value}`` with every key field given and nothing else. Each value is
cleaned, typed and normalised the way ingestion stores it (an identity number in upper case, a
mobile number without ``+86``), so that the gateway's disputed mark matches the stored record; a
field with a validator must pass it. An entry without key fields has no way to name a record.

Example:
    >>> from pubdata.db.models import CatalogEntry, CatalogField
    >>> entry = CatalogEntry(code="staff", key_fields=["staff_no"], fields=[CatalogField(name="staff_no")])
    >>> check_records(entry, [{"staff_no": " A7 "}, {"staff_no": "A7"}])
    [{'staff_no': 'A7'}]
    >>> check_records(entry, [{"staff": "A7"}])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    pubdata.errors.InputError: row 1, column staff: record 1 names 'staff', which is not a key field ...
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import duckdb

from pubdata.catalog.classes import FieldType
from pubdata.db.models import CatalogEntry, CatalogField
from pubdata.errors import InputError
from pubdata.ingest.normalise import (
    clean,
    parse_boolean,
    parse_date,
    parse_decimal,
    parse_integer,
    parse_timestamp,
)
from pubdata.ingest.validators import get_validator
from pubdata.messages import text as said


def check_records(entry: CatalogEntry, records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The records as stored values, duplicates dropped; an `InputError` names the first problem."""
    keys = [str(k) for k in entry.key_fields]
    if not keys:
        raise InputError(
            said(
                "entry {code} declares no key fields, so its records cannot be named in an objection; "
                "ask its provider to declare key fields",
                code=entry.code,
            ),
            column="records",
        )
    if not records:
        raise InputError(
            said("name at least one record, by its key fields: {keys}", keys=", ".join(keys)),
            column="records",
        )
    fields = {f.name: f for f in entry.fields}
    checked: list[dict[str, Any]] = []
    for row, record in enumerate(records, start=1):
        if not isinstance(record, Mapping):
            raise InputError(said("record {row} is not a mapping of key field to value", row=row), row=row)
        for name in record:
            if name not in keys:
                raise InputError(
                    said(
                        "record {row} names {name!r}, which is not a key field of {code}; "
                        "its key fields are {keys}",
                        row=row,
                        name=name,
                        code=entry.code,
                        keys=", ".join(keys),
                    ),
                    row=row,
                    column=str(name),
                )
        values = {k: _stored_value(fields.get(k), record.get(k), row, k) for k in keys}
        if values not in checked:
            checked.append(values)
    return checked


def _stored_value(field: CatalogField | None, value: Any, row: int, name: str) -> Any:
    text = clean(str(value)) if value is not None else None
    if not text:
        raise InputError(
            said("record {row} does not give key field {name!r}; give every key field", row=row, name=name),
            row=row,
            column=name,
        )
    kind = field.data_type if field is not None else FieldType.STRING
    parsed: Any = text
    if kind is FieldType.INTEGER:
        parsed = parse_integer(text)
    elif kind is FieldType.DECIMAL:
        number = parse_decimal(text)
        parsed = str(number) if number is not None else None
    elif kind is FieldType.DATE:
        day = parse_date(text)
        parsed = day.isoformat() if day is not None else None
    elif kind is FieldType.TIMESTAMP:
        moment = parse_timestamp(text)
        parsed = moment.isoformat(sep=" ") if moment is not None else None
    elif kind is FieldType.BOOLEAN:
        parsed = parse_boolean(text)
    if parsed is None:
        raise InputError(
            said("record {row}: {value!r} is not a {kind} value", row=row, value=value, kind=kind.label),
            row=row,
            column=name,
        )
    if field is not None and field.validator and isinstance(parsed, str):
        parsed = _validated(field.validator, parsed, row, name)
    return parsed


def _validated(validator_name: str, text: str, row: int, name: str) -> str:
    validator = get_validator(validator_name)
    with duckdb.connect() as con:
        found = con.execute(f"SELECT {validator.normalise_sql('$1::VARCHAR')}", [text]).fetchone()
    normalised = str(found[0]) if found and found[0] is not None else text
    problem = validator.check(normalised, None)
    if problem is not None:
        raise InputError(
            said(
                "record {row}: {value!r} is not a valid {validator} ({problem})",
                row=row,
                value=text,
                validator=validator.label,
                problem=problem,
            ),
            row=row,
            column=name,
        )
    return normalised
