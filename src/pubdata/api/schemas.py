"""Typed read models of the catalogue, shared by the API answers and the CLI's ``--json`` output.

One model per thing a reader sees, built from ORM rows by a ``from_*`` constructor, so that the
JSON a script gets from ``pubdata catalog show --json`` is the JSON the API serves. Vocabulary
values travel with their Chinese label (`Labelled`) because people read these answers too.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, Field

from pubdata.api.quality_view import file_name
from pubdata.catalog.classes import Level
from pubdata.db.models import CatalogEntry, CatalogField, DatasetVersion, Organisation, aware
from pubdata.divisions import divisions

#: A moment in an answer: always with its time zone (RFC 3339 ``date-time``).
Moment = Annotated[dt.datetime, AfterValidator(aware)]


class Labelled(BaseModel):
    """A stored vocabulary value and its Chinese label."""

    value: str = Field(description="Stored value, e.g. `restricted`.")
    label: str = Field(description="Chinese label, e.g. `受限共享`.")

    @classmethod
    def of(cls, member: Any) -> Labelled:
        return cls(value=str(member.value), label=str(getattr(member, "label", member.value)))

    @classmethod
    def maybe(cls, member: Any) -> Labelled | None:
        return None if member is None else cls.of(member)


class LevelOut(BaseModel):
    """A Zhejiang security level (DB33/T 2351-2021, REQ-31)."""

    value: int = Field(ge=1, le=4, description="1 (不敏感) to 4 (敏感).")
    label: str = Field(description="e.g. `L3 较敏感`.")

    @classmethod
    def of(cls, level: int) -> LevelOut:
        return cls(value=level, label=Level(level).label)

    @classmethod
    def maybe(cls, level: int | None) -> LevelOut | None:
        return None if level is None else cls.of(level)


class OrganisationOut(BaseModel):
    """A data holder or consumer (REQ-2) with its responsible persons (REQ-25)."""

    name: str
    short_name: str | None = None
    org_type: Labelled
    uscc: str = Field(description="Unified social credit code.")
    division_code: str
    division_name: str | None = None
    is_competent_department: bool
    head_name: str | None = Field(None, description="First responsible person (REQ-25).")
    security_officer_name: str | None = Field(None, description="Security officer (REQ-25).")

    @classmethod
    def from_row(cls, org: Organisation) -> OrganisationOut:
        found = divisions().find(org.division_code)
        return cls(
            name=org.name,
            short_name=org.short_name,
            org_type=Labelled.of(org.org_type),
            uscc=org.uscc,
            division_code=org.division_code,
            division_name=found.name if found else None,
            is_competent_department=org.is_competent_department,
            head_name=org.head_name,
            security_officer_name=org.security_officer_name,
        )


class FieldOut(BaseModel):
    """A data item (数据项) of an entry with its level and kind of personal information."""

    name: str
    title: str
    data_type: Labelled
    element_code: str | None = Field(None, description="Data element code (REQ-8).")
    level: LevelOut
    national_level: Labelled
    pii_kind: Labelled
    required: bool
    authoritative: bool = Field(description="This entry is the element's authoritative source (REQ-8).")

    @classmethod
    def from_row(cls, f: CatalogField) -> FieldOut:
        return cls(
            name=f.name,
            title=f.title,
            data_type=Labelled.of(f.data_type),
            element_code=f.element_code,
            level=LevelOut.of(f.level),
            national_level=Labelled.of(f.national_level),
            pii_kind=Labelled.of(f.pii_kind),
            required=f.required,
            authoritative=f.is_authoritative_source,
        )


class VersionOut(BaseModel):
    """One committed write of an entry's data."""

    version: int
    mode: Labelled
    operator: str
    source_file: str = Field(description="Name of the loaded file, without the server's folders.")
    source_sha256: str
    rows_read: int
    rows_written: int
    rows_rejected: int
    rows_flagged: int
    created_at: Moment

    @classmethod
    def from_row(cls, v: DatasetVersion) -> VersionOut:
        return cls(
            version=v.version,
            mode=Labelled.of(v.mode),
            operator=v.operator,
            source_file=file_name(v.source_file),
            source_sha256=v.source_sha256,
            rows_read=v.rows_read,
            rows_written=v.rows_written,
            rows_rejected=v.rows_rejected,
            rows_flagged=v.rows_flagged,
            created_at=v.created_at,
        )


class QualityOut(BaseModel):
    """The quality report stored with a version (values in it are masked by ingestion)."""

    entry: str
    version: VersionOut
    report: dict[str, Any] = Field(
        description="Per-column counts of problems and notes; masked row examples only in `details`."
    )
    details: bool = Field(
        default=False,
        description="Row examples included: the caller is staff of the entry (provider, oversight).",
    )


class EntrySummary(BaseModel):
    """An entry as a catalogue listing shows it."""

    code: str
    name: str
    provider: str
    region_code: str
    share_class: Labelled | None = Field(None, description="REQ-14.")
    open_class: Labelled | None = Field(None, description="REQ-19.")
    level: LevelOut | None = Field(None, description="Highest level of its fields (REQ-31).")
    update_cycle: Labelled
    state: Labelled
    overdue: bool = Field(description="Data older than the update cycle (REQ-11).")
    data_updated_at: Moment | None = None

    @classmethod
    def from_row(cls, e: CatalogEntry, overdue: bool) -> EntrySummary:
        return cls(
            code=e.code,
            name=e.name,
            provider=e.provider.name,
            region_code=e.region_code,
            share_class=Labelled.maybe(e.share_class),
            open_class=Labelled.maybe(e.open_class),
            level=LevelOut.maybe(e.security_level),
            update_cycle=Labelled.of(e.update_cycle),
            state=Labelled.of(e.state),
            overdue=overdue,
            data_updated_at=e.data_updated_at,
        )


class EntryPage(BaseModel):
    """One page of a catalogue search."""

    items: list[EntrySummary]
    total: int = Field(description="Number of entries matching the filters, all pages together.")
    offset: int
    limit: int


class EntryDetail(EntrySummary):
    """An entry's national core metadata (REQ-10), classes, fields and versions."""

    provider_uscc: str
    abstract: str
    category: list[str] = Field(description="Resource classification: class / item / subitem / detail.")
    domain: str
    format: str
    share_conditions: str
    share_method: str
    legal_basis: str
    open_conditions: str
    national_level: Labelled
    key_fields: list[str]
    related_resources: list[str]
    published_at: Moment | None = None
    fields: list[FieldOut]
    versions: list[VersionOut]

    @classmethod
    def from_entry(cls, e: CatalogEntry, overdue: bool, versions: list[DatasetVersion]) -> EntryDetail:
        summary = EntrySummary.from_row(e, overdue).model_dump()
        return cls(
            **summary,
            provider_uscc=e.provider.uscc,
            abstract=e.abstract,
            category=[e.category_class, e.category_item, e.category_subitem, e.category_detail],
            domain=e.domain,
            format=e.format,
            share_conditions=e.share_conditions,
            share_method=e.share_method,
            legal_basis=e.legal_basis,
            open_conditions=e.open_conditions,
            national_level=Labelled.of(e.national_level),
            key_fields=[str(k) for k in e.key_fields],
            related_resources=[str(r) for r in e.related_resources],
            published_at=e.published_at,
            fields=[FieldOut.from_row(f) for f in e.fields],
            versions=[VersionOut.from_row(v) for v in versions],
        )


class Health(BaseModel):
    status: str = "ok"
    version: str


class ErrorOut(BaseModel):
    """What every 4xx answer carries."""

    error: str = Field(description="`not_found`, `invalid` or `refused`.")
    detail: str
    kind: str | None = Field(
        default=None,
        description="For `query_failed`: what failed, a stable code (`conversion`, `binder`, `catalog`, "
        "`out_of_range`, `overflow`, `division_by_zero`, `regex`, `subquery_rows`, `invalid_input`, "
        "`syntax`, `out_of_memory`, `not_supported`, `engine`).",
    )
