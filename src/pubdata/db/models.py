"""Metadata tables. Dataset rows live in Delta tables; these tables say what they mean.

Enums are stored as their string values (`native_enum=False`) so that SQLite and PostgreSQL hold
the same text and migrations never need `ALTER TYPE`.
"""

from __future__ import annotations

import datetime as dt
from enum import Enum as PyEnum
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    Enum,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from pubdata.catalog.classes import (
    BadRowPolicy,
    EntryState,
    FieldType,
    NationalLevel,
    OpenClass,
    OrgType,
    PiiKind,
    ShareClass,
    UpdateCycle,
    WriteMode,
)
from pubdata.db.types import UtcDateTime
from pubdata.gateway.roles import Role


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def aware(moment: dt.datetime) -> dt.datetime:
    """A time with its zone, naive taken as UTC: columns already answer aware UTC (`UtcDateTime`);
    this is for times read from elsewhere — audit details, the chain's naive digest times."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)


def iso_or_none(moment: dt.datetime | None) -> str | None:
    """A stored time as ISO 8601 with its zone, for answers and audit details."""
    return aware(moment).isoformat() if moment is not None else None


def _enum(cls: type[PyEnum]) -> Enum:
    return Enum(
        cls,
        native_enum=False,
        values_callable=lambda e: [m.value for m in e],
        validate_strings=True,
        length=32,
    )


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        dict[str, Any]: JSON,
        list[Any]: JSON,
        dt.datetime: UtcDateTime,
    }


class Tenant(Base):
    """A node of the province → city → county hierarchy (REQ-5), keyed by its division code."""

    __tablename__ = "tenants"
    id: Mapped[int] = mapped_column(primary_key=True)
    division_code: Mapped[str] = mapped_column(String(12), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    level: Mapped[str] = mapped_column(String(16))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("tenants.id"))
    parent: Mapped[Tenant | None] = relationship(remote_side=[id])


class Organisation(Base):
    """A data holder or consumer (REQ-2), with its responsible persons (REQ-25)."""

    __tablename__ = "organisations"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    short_name: Mapped[str | None] = mapped_column(String(50))
    org_type: Mapped[OrgType] = mapped_column(_enum(OrgType))
    uscc: Mapped[str] = mapped_column(String(18), unique=True)
    division_code: Mapped[str] = mapped_column(String(12))
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"))
    is_competent_department: Mapped[bool] = mapped_column(Boolean, default=False)
    head_name: Mapped[str | None] = mapped_column(String(50))
    head_contact: Mapped[str | None] = mapped_column(String(100))
    security_officer_name: Mapped[str | None] = mapped_column(String(50))
    security_officer_contact: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    tenant: Mapped[Tenant] = relationship()


class CatalogEntry(Base):
    """A data resource: national core metadata (REQ-10) plus Zhejiang's classes and levels."""

    __tablename__ = "catalog_entries"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    provider_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"))
    # Resource classification: class / item / subitem / detail.
    category_class: Mapped[str] = mapped_column(String(100), default="")
    category_item: Mapped[str] = mapped_column(String(100), default="")
    category_subitem: Mapped[str] = mapped_column(String(100), default="")
    category_detail: Mapped[str] = mapped_column(String(100), default="")
    domain: Mapped[str] = mapped_column(String(50), default="")
    abstract: Mapped[str] = mapped_column(Text, default="")
    format: Mapped[str] = mapped_column(String(50), default="table")
    region_code: Mapped[str] = mapped_column(String(12), default="330000000000")
    share_class: Mapped[ShareClass | None] = mapped_column(_enum(ShareClass))
    share_conditions: Mapped[str] = mapped_column(Text, default="")
    share_method: Mapped[str] = mapped_column(String(50), default="api")
    legal_basis: Mapped[str] = mapped_column(Text, default="")
    open_class: Mapped[OpenClass | None] = mapped_column(_enum(OpenClass))
    open_conditions: Mapped[str] = mapped_column(Text, default="")
    national_level: Mapped[NationalLevel] = mapped_column(_enum(NationalLevel), default=NationalLevel.GENERAL)
    update_cycle: Mapped[UpdateCycle] = mapped_column(_enum(UpdateCycle), default=UpdateCycle.IRREGULAR)
    related_resources: Mapped[list[Any]] = mapped_column(default=list)
    classified: Mapped[bool] = mapped_column(Boolean, default=False)
    key_fields: Mapped[list[Any]] = mapped_column(default=list)
    bad_row_policy: Mapped[BadRowPolicy | None] = mapped_column(_enum(BadRowPolicy))
    state: Mapped[EntryState] = mapped_column(_enum(EntryState), default=EntryState.DRAFT)
    published_at: Mapped[dt.datetime | None] = mapped_column()
    retired_at: Mapped[dt.datetime | None] = mapped_column()
    data_updated_at: Mapped[dt.datetime | None] = mapped_column()
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    provider: Mapped[Organisation] = relationship()
    fields: Mapped[list[CatalogField]] = relationship(
        back_populates="entry", order_by="CatalogField.position", cascade="all, delete-orphan"
    )

    @property
    def security_level(self) -> int | None:
        """The entry's Zhejiang level: the highest of its fields ("就高从严", REQ-31)."""
        return max((f.level for f in self.fields), default=None)


class CatalogField(Base):
    """A data item of an entry (数据项)."""

    __tablename__ = "catalog_fields"
    __table_args__ = (UniqueConstraint("entry_id", "name"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    entry_id: Mapped[int] = mapped_column(ForeignKey("catalog_entries.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer, default=0)
    name: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(String(100), default="")
    aliases: Mapped[list[Any]] = mapped_column(default=list)
    data_type: Mapped[FieldType] = mapped_column(_enum(FieldType), default=FieldType.STRING)
    element_code: Mapped[str | None] = mapped_column(String(64))
    level: Mapped[int] = mapped_column(Integer, default=1)
    national_level: Mapped[NationalLevel] = mapped_column(_enum(NationalLevel), default=NationalLevel.GENERAL)
    pii_kind: Mapped[PiiKind] = mapped_column(_enum(PiiKind), default=PiiKind.NONE)
    validator: Mapped[str | None] = mapped_column(String(32))
    required: Mapped[bool] = mapped_column(Boolean, default=False)
    is_authoritative_source: Mapped[bool] = mapped_column(Boolean, default=False)
    entry: Mapped[CatalogEntry] = relationship(back_populates="fields")


class DatasetVersion(Base):
    """One committed write of an entry's Delta table: who, when, from what, and its quality."""

    __tablename__ = "dataset_versions"
    __table_args__ = (UniqueConstraint("entry_id", "version"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    entry_id: Mapped[int] = mapped_column(ForeignKey("catalog_entries.id"))
    version: Mapped[int] = mapped_column(Integer)
    mode: Mapped[WriteMode] = mapped_column(_enum(WriteMode))
    operator: Mapped[str] = mapped_column(String(100))
    source_file: Mapped[str] = mapped_column(Text, default="")
    source_sha256: Mapped[str] = mapped_column(String(64), default="")
    rows_read: Mapped[int] = mapped_column(Integer, default=0)
    rows_written: Mapped[int] = mapped_column(Integer, default=0)
    rows_rejected: Mapped[int] = mapped_column(Integer, default=0)
    rows_flagged: Mapped[int] = mapped_column(Integer, default=0)
    quality: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class AuditEvent(Base):
    """An append-only, hash-chained record of a change or an access (REQ-40)."""

    __tablename__ = "audit_events"
    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(200), default="")
    outcome: Mapped[str] = mapped_column(String(16), default="ok")
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)


# --- identities (the sharing gateway) -----------------------------------------------------------


class User(Base):
    """A person who signs in (REQ-4). An open-data user may be a private person: no organisation."""

    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    login: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(100), default="")
    organisation_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id"))
    #: argon2id, in the PHC string format that carries its own parameters; None: no password login.
    password_hash: Mapped[str | None] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_login_at: Mapped[dt.datetime | None] = mapped_column()
    organisation: Mapped[Organisation | None] = relationship()
    role_rows: Mapped[list[UserRole]] = relationship(
        back_populates="user", cascade="all, delete-orphan", order_by="UserRole.role"
    )

    @property
    def roles(self) -> frozenset[Role]:
        return frozenset(r.role for r in self.role_rows)


class UserRole(Base):
    """One role a user holds; a table rather than a list so "every auditor" is one indexed query."""

    __tablename__ = "user_roles"
    __table_args__ = (UniqueConstraint("user_id", "role"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    role: Mapped[Role] = mapped_column(_enum(Role))
    user: Mapped[User] = relationship(back_populates="role_rows")


class ApiToken(Base):
    """A bearer token: only the SHA-256 of the secret is kept, the clear token is shown once."""

    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(primary_key=True)
    #: The public part of ``pd_<public_id>_<secret>``: finds the row without touching the secret.
    public_id: Mapped[str] = mapped_column(String(16), unique=True)
    secret_sha256: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    name: Mapped[str] = mapped_column(String(100), default="")
    scopes: Mapped[list[Any]] = mapped_column(default=list)
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column()
    revoked_at: Mapped[dt.datetime | None] = mapped_column()
    last_used_at: Mapped[dt.datetime | None] = mapped_column()
    user: Mapped[User] = relationship()


class Application(Base):
    """A consuming application (REQ-15/17): every grant and every call names one."""

    __tablename__ = "applications"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    purpose: Mapped[str] = mapped_column(Text, default="")
    system_owner: Mapped[str] = mapped_column(String(100), default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    organisation: Mapped[Organisation] = relationship()


# --- grants, security assessments and audit evidence (the sharing gateway) ----------------------


class Grant(Base):
    """Permission for one organisation's application to use one entry (REQ-17).

    Which fields, which rows (a division prefix and/or a predicate over the entry's fields, checked
    by the same SQL parser as queries), which de-identification per field, for what purpose, from
    when until when. A grant compiles to a `TablePolicy`; `policy_version` grows with every change
    so that responses and audit events name the exact policy that applied.
    """

    __tablename__ = "grants"
    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    application_id: Mapped[int] = mapped_column(ForeignKey("applications.id"))
    entry_id: Mapped[int] = mapped_column(ForeignKey("catalog_entries.id"), index=True)
    fields: Mapped[list[Any]] = mapped_column(default=list)
    #: Division-code prefix the rows must lie in (e.g. "3304"); None: no region filter.
    region_prefix: Mapped[str | None] = mapped_column(String(12))
    #: Which entry field holds the division code the region filter applies to.
    region_field: Mapped[str | None] = mapped_column(String(64))
    #: An extra predicate over the entry's fields, in SQL, checked by the policy parser.
    row_predicate: Mapped[str | None] = mapped_column(Text)
    #: field name -> {"function": deid name, "params": {...}}; fields not listed follow the defaults.
    deid: Mapped[dict[str, Any]] = mapped_column(default=dict)
    purpose: Mapped[str] = mapped_column(Text)
    legal_basis: Mapped[str] = mapped_column(Text, default="")
    valid_from: Mapped[dt.datetime] = mapped_column()
    valid_until: Mapped[dt.datetime] = mapped_column()
    revoked_at: Mapped[dt.datetime | None] = mapped_column()
    revoked_by: Mapped[str | None] = mapped_column(String(100))
    revoke_reason: Mapped[str | None] = mapped_column(Text)
    policy_version: Mapped[int] = mapped_column(Integer, default=1)
    #: The competent department's coordination decision this grant comes from (REQ-16), e.g.
    #: ``request-item:12``: the only way a not-shared entry is ever granted.
    coordination: Mapped[str | None] = mapped_column(String(64))
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    organisation: Mapped[Organisation] = relationship()
    application: Mapped[Application] = relationship()
    entry: Mapped[CatalogEntry] = relationship()


class SecurityAssessment(Base):
    """An approved assessment covering a combination of entries that may be joined (REQ-26)."""

    __tablename__ = "security_assessments"
    id: Mapped[int] = mapped_column(primary_key=True)
    #: Sorted entry codes the assessment covers; a query may join any subset of them.
    entry_codes: Mapped[list[Any]] = mapped_column(default=list)
    organisation_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id"))
    result_level: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default="approved")
    conclusion: Mapped[str] = mapped_column(Text, default="")
    approved_by: Mapped[str] = mapped_column(String(100))
    approved_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    valid_until: Mapped[dt.datetime] = mapped_column()
    #: Fields of its one entry the assessment clears to be shared as stored (REQ-27), with its
    #: conclusion as the reason; empty for an assessment of a combination.
    raw_fields: Mapped[list[Any]] = mapped_column(default=list, server_default="[]")


class AuditCheckpoint(Base):
    """A signed statement "the chain had N events ending in hash H", so truncation is detectable."""

    __tablename__ = "audit_checkpoints"
    id: Mapped[int] = mapped_column(primary_key=True)
    last_event_id: Mapped[int] = mapped_column(Integer)
    last_event_hash: Mapped[str] = mapped_column(String(64))
    event_count: Mapped[int] = mapped_column(Integer)
    signed_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    key_id: Mapped[str] = mapped_column(String(64))
    signature: Mapped[str] = mapped_column(String(128))


class AuditSubject(Base):
    """Index from a data subject (keyed hash of an ID number or USCC) to the events that served it.

    Answers "who accessed data about X" (REQ-41) without storing X.
    """

    __tablename__ = "audit_subjects"
    __table_args__ = (UniqueConstraint("subject_hash", "event_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    #: Looked up through the unique pair (its first column): a second index on it only doubled the
    #: writes of an answer that serves a million subjects.
    subject_hash: Mapped[str] = mapped_column(String(64))
    event_id: Mapped[int] = mapped_column(ForeignKey("audit_events.id"), index=True)


class Notification(Base):
    """One message in a user's in-app inbox; written in the transaction of the change it reports."""

    __tablename__ = "notifications"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    #: What happened, as a dotted name (e.g. ``request.decided``), so inboxes can be filtered.
    kind: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(255))
    body: Mapped[str] = mapped_column(Text, default="")
    #: Where in the portal the user acts on it (a relative URL), if anywhere.
    link: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    read_at: Mapped[dt.datetime | None] = mapped_column()


class MailRecipient(Base):
    """Where a user wants notifications by e-mail; kept apart from `User` so that mail stays opt-in."""

    __tablename__ = "mail_recipients"
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    address: Mapped[str] = mapped_column(String(255))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)


class OutboundMail(Base):
    """An e-mail waiting to be sent, queued with the change so that a failed send never undoes it.

    Sending happens after the commit and again on each ``pubdata tick`` until it succeeds or runs out
    of attempts; ``last_error`` shows why it has not gone out. No credential is ever stored here.
    """

    __tablename__ = "outbound_mail"
    id: Mapped[int] = mapped_column(primary_key=True)
    notification_id: Mapped[int | None] = mapped_column(
        ForeignKey("notifications.id", ondelete="SET NULL"), index=True
    )
    recipient: Mapped[str] = mapped_column(String(255))
    subject: Mapped[str] = mapped_column(String(255))
    body: Mapped[str] = mapped_column(Text, default="")
    #: ``pending`` (to send), ``sent`` or ``failed`` (attempts exhausted).
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[dt.datetime | None] = mapped_column()


# --- the sharing workflow, objections, responsibility, incidents, usage ---------------------------
#
# States are kept as plain strings; each workflow module owns its vocabulary and transitions.
# ``lock_version`` rows move by ``UPDATE … WHERE state = :seen AND lock_version = :seen``, so two
# people deciding the same step at once cannot both win.


class SharingRequest(Base):
    """A consumer's cart of entries, asked for under one duty, purpose and application (REQ-15)."""

    __tablename__ = "sharing_requests"
    id: Mapped[int] = mapped_column(primary_key=True)
    requester_org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    application_id: Mapped[int | None] = mapped_column(ForeignKey("applications.id"))
    requested_by: Mapped[str] = mapped_column(String(100))
    legal_basis: Mapped[str] = mapped_column(Text, default="")
    purpose: Mapped[str] = mapped_column(Text, default="")
    scenario: Mapped[str] = mapped_column(Text, default="")
    #: ``api``, ``bulk`` or ``subscription``.
    delivery_mode: Mapped[str] = mapped_column(String(16), default="api")
    valid_from: Mapped[dt.datetime | None] = mapped_column()
    valid_until: Mapped[dt.datetime | None] = mapped_column()
    #: ``draft`` (the cart), ``submitted`` or ``withdrawn``; each item then has its own state.
    state: Mapped[str] = mapped_column(String(24), default="draft", index=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    submitted_at: Mapped[dt.datetime | None] = mapped_column()
    requester: Mapped[Organisation] = relationship()
    application: Mapped[Application | None] = relationship()
    items: Mapped[list[RequestItem]] = relationship(
        back_populates="request", order_by="RequestItem.id", cascade="all, delete-orphan"
    )


class RequestItem(Base):
    """One entry of a request: the fields and rows wanted, and where its decision stands (REQ-16)."""

    __tablename__ = "request_items"
    __table_args__ = (UniqueConstraint("request_id", "entry_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("sharing_requests.id", ondelete="CASCADE"), index=True)
    entry_id: Mapped[int] = mapped_column(ForeignKey("catalog_entries.id"), index=True)
    fields: Mapped[list[Any]] = mapped_column(default=list)
    region_prefix: Mapped[str | None] = mapped_column(String(12))
    region_field: Mapped[str | None] = mapped_column(String(64))
    #: Why the requester asks for a not-shared entry, or disputes a refusal (coordination).
    dispute_reason: Mapped[str | None] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(24), default="draft", index=True)
    #: When the current step began and its deadline in working days; None when no step is open.
    step_started_at: Mapped[dt.datetime | None] = mapped_column()
    due_at: Mapped[dt.datetime | None] = mapped_column(index=True)
    escalated_at: Mapped[dt.datetime | None] = mapped_column()
    decided_by: Mapped[str | None] = mapped_column(String(100))
    decided_at: Mapped[dt.datetime | None] = mapped_column()
    #: The reason of the last decision (mandatory for a refusal).
    reason: Mapped[str | None] = mapped_column(Text)
    grant_id: Mapped[int | None] = mapped_column(ForeignKey("grants.id"))
    lock_version: Mapped[int] = mapped_column(Integer, default=0)
    request: Mapped[SharingRequest] = relationship(back_populates="items")
    entry: Mapped[CatalogEntry] = relationship()
    grant: Mapped[Grant | None] = relationship()


class Objection(Base):
    """A claim that records of an entry are wrong (REQ-12), tracked against deadlines (REQ-13)."""

    __tablename__ = "objections"
    id: Mapped[int] = mapped_column(primary_key=True)
    entry_id: Mapped[int] = mapped_column(ForeignKey("catalog_entries.id"), index=True)
    raised_by: Mapped[str] = mapped_column(String(100))
    raiser_org_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id"))
    #: ``consumer`` or ``data_subject``.
    raiser_kind: Mapped[str] = mapped_column(String(16))
    #: The records objected to, each as ``{key field: value}`` over the entry's key fields.
    record_keys: Mapped[list[Any]] = mapped_column(default=list)
    description: Mapped[str] = mapped_column(Text, default="")
    state: Mapped[str] = mapped_column(String(16), default="submitted", index=True)
    step_started_at: Mapped[dt.datetime | None] = mapped_column()
    due_at: Mapped[dt.datetime | None] = mapped_column(index=True)
    escalated_at: Mapped[dt.datetime | None] = mapped_column()
    handled_by: Mapped[str | None] = mapped_column(String(100))
    reason: Mapped[str | None] = mapped_column(Text)
    #: The dataset version that corrected the records, when they were corrected.
    corrected_version: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    lock_version: Mapped[int] = mapped_column(Integer, default=0)
    entry: Mapped[CatalogEntry] = relationship()
    raiser_org: Mapped[Organisation | None] = relationship()


class ResponsiblePerson(Base):
    """Who held an organisation's duty (``head`` or ``security_officer``) and when (REQ-25).

    The current holder is the row with no ``ended_at``; `Organisation` carries a copy for reading.
    """

    __tablename__ = "responsible_persons"
    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    duty: Mapped[str] = mapped_column(String(24))
    name: Mapped[str] = mapped_column(String(50))
    contact: Mapped[str | None] = mapped_column(String(100))
    started_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[dt.datetime | None] = mapped_column()
    changed_by: Mapped[str] = mapped_column(String(100))


class Incident(Base):
    """A security incident: recorded, classified, notified and tracked to remediation (REQ-28)."""

    __tablename__ = "incidents"
    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    category: Mapped[str] = mapped_column(String(32))
    severity: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16), default="reported", index=True)
    entry_codes: Mapped[list[Any]] = mapped_column(default=list)
    occurred_at: Mapped[dt.datetime] = mapped_column()
    reported_by: Mapped[str] = mapped_column(String(100))
    reported_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    notified_at: Mapped[dt.datetime | None] = mapped_column()
    resolved_at: Mapped[dt.datetime | None] = mapped_column()
    closed_at: Mapped[dt.datetime | None] = mapped_column()
    lock_version: Mapped[int] = mapped_column(Integer, default=0)
    organisation: Mapped[Organisation] = relationship()
    updates: Mapped[list[IncidentUpdate]] = relationship(
        back_populates="incident", order_by="IncidentUpdate.id", cascade="all, delete-orphan"
    )


class IncidentUpdate(Base):
    """One step of an incident's remediation: who, when, the state it moved to and what was done."""

    __tablename__ = "incident_updates"
    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"), index=True)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(100))
    state: Mapped[str] = mapped_column(String(16))
    note: Mapped[str] = mapped_column(Text, default="")
    incident: Mapped[Incident] = relationship(back_populates="updates")


class UsageDaily(Base):
    """Use of an entry per local day and consumer (REQ-23): kept as counters, not scanned from the log.

    ``consumer`` is ``org:<id>`` for an organisation and ``public`` for callers without one, so the
    unique key never holds a NULL (which both databases treat as distinct).
    """

    __tablename__ = "usage_daily"
    __table_args__ = (UniqueConstraint("entry_id", "day", "consumer"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    entry_id: Mapped[int] = mapped_column(ForeignKey("catalog_entries.id"), index=True)
    day: Mapped[dt.date] = mapped_column(Date)
    consumer: Mapped[str] = mapped_column(String(32))
    organisation_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id"))
    queries: Mapped[int] = mapped_column(Integer, default=0)
    exports: Mapped[int] = mapped_column(Integer, default=0)
    rows: Mapped[int] = mapped_column(Integer, default=0)


class PortalSession(Base):
    """A signed-in (or about to sign in) portal visitor, shared by every server process.

    Only the SHA-256 of the cookie's random id is kept, so a copy of this table signs no one in.
    ``expires_at`` is the earlier of the idle and the absolute end as of the last touch, so expired
    rows are deleted by one indexed query without knowing the portal's settings.
    """

    __tablename__ = "portal_sessions"
    id_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    login: Mapped[str] = mapped_column(String(64), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column()
    last_seen: Mapped[dt.datetime] = mapped_column()
    expires_at: Mapped[dt.datetime] = mapped_column(index=True)


class SignInFailure(Base):
    """One failed portal sign-in, counted against a login and an address (both kept as hashes)."""

    __tablename__ = "sign_in_failures"
    id: Mapped[int] = mapped_column(primary_key=True)
    key_sha256: Mapped[str] = mapped_column(String(64), index=True)
    at: Mapped[dt.datetime] = mapped_column()
    #: When the failure stops counting (`at` + the window): expired rows are purged by `pubdata tick`.
    expires_at: Mapped[dt.datetime] = mapped_column(index=True)


class SignInLock(Base):
    """A login or address that may not sign in until `until`, after too many failures."""

    __tablename__ = "sign_in_locks"
    key_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    until: Mapped[dt.datetime] = mapped_column(index=True)
