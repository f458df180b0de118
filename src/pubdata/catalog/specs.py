"""What a person writes to register an organisation or a catalogue entry.

Specs are plain data read from TOML/JSON (or built in code by the demo). Labels are accepted in
Chinese or English (`受限共享`, `有条件共享` and `restricted` are one value). The service turns a spec
into rows and enforces the regulation's rules there, so every path in (CLI, API, demo) gets them.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from pubdata.catalog.classes import (
    BadRowPolicy,
    FieldType,
    NationalLevel,
    OpenClass,
    OrgType,
    PiiKind,
    ShareClass,
    UpdateCycle,
)
from pubdata.errors import InputError
from pubdata.messages import text


@dataclass
class OrganisationSpec:
    name: str
    org_type: OrgType
    uscc: str
    division_code: str
    short_name: str | None = None
    is_competent_department: bool = False
    head_name: str | None = None
    head_contact: str | None = None
    security_officer_name: str | None = None
    security_officer_contact: str | None = None


@dataclass
class FieldSpec:
    name: str
    title: str = ""
    data_type: FieldType = FieldType.STRING
    element_code: str | None = None
    #: Zhejiang level 1–4; None lets the platform suggest one from sample values (REQ-30).
    level: int | None = None
    national_level: NationalLevel = NationalLevel.GENERAL
    #: None lets the platform suggest the kind from the name and sample values.
    pii_kind: PiiKind | None = None
    #: A validator name from `pubdata.ingest.validators` ("id_number", "uscc", "mobile", ...).
    validator: str | None = None
    aliases: list[str] = field(default_factory=list)
    required: bool = False
    #: This entry is the authoritative source of `element_code` (REQ-8).
    authoritative: bool = False


@dataclass
class EntrySpec:
    code: str
    name: str
    #: The provider organisation, by name, short name or USCC.
    provider: str
    fields: list[FieldSpec]
    abstract: str = ""
    category_class: str = ""
    category_item: str = ""
    category_subitem: str = ""
    category_detail: str = ""
    domain: str = ""
    format: str = "table"
    region_code: str = "330000000000"
    share_class: ShareClass | None = None
    share_conditions: str = ""
    share_method: str = "api"
    legal_basis: str = ""
    open_class: OpenClass | None = None
    open_conditions: str = ""
    national_level: NationalLevel = NationalLevel.GENERAL
    update_cycle: UpdateCycle = UpdateCycle.IRREGULAR
    related_resources: list[str] = field(default_factory=list)
    #: REQ-1: state-secret data; registering it is refused.
    classified: bool = False
    key_fields: list[str] = field(default_factory=list)
    bad_row_policy: BadRowPolicy | None = None


_ENUMS: dict[str, Any] = {
    "org_type": OrgType,
    "data_type": FieldType,
    "national_level": NationalLevel,
    "pii_kind": PiiKind,
    "share_class": ShareClass,
    "open_class": OpenClass,
    "update_cycle": UpdateCycle,
    "bad_row_policy": BadRowPolicy,
}


def _coerce(cls: type, data: dict[str, Any], where: str) -> Any:
    known = {f.name for f in fields(cls)}
    unknown = set(data) - known
    if unknown:
        raise InputError(text("unknown key(s) {keys}", keys=", ".join(sorted(unknown))), file=where)
    values = dict(data)
    for key, value in data.items():
        if key in _ENUMS and value is not None and not isinstance(value, _ENUMS[key]):
            try:
                values[key] = _ENUMS[key].parse(str(value))
            except ValueError as exc:
                raise InputError(str(exc), file=where, column=key) from exc
    try:
        return cls(**values)
    except TypeError as exc:
        raise InputError(str(exc), file=where) from exc


def organisation_from_dict(data: dict[str, Any], where: str = "<organisation>") -> OrganisationSpec:
    spec: OrganisationSpec = _coerce(OrganisationSpec, data, where)
    return spec


def entry_from_dict(data: dict[str, Any], where: str = "<entry>") -> EntrySpec:
    raw = dict(data)
    raw["fields"] = [_coerce(FieldSpec, f, where) for f in raw.get("fields", [])]
    spec: EntrySpec = _coerce(EntrySpec, raw, where)
    return spec


def load_entry_spec(path: Path) -> EntrySpec:
    """Read an entry spec from a ``.toml`` or ``.json`` file."""
    text = path.read_text("utf-8")
    try:
        data = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise InputError(str(exc), file=str(path)) from exc
    return entry_from_dict(data, str(path))
