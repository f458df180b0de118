"""The query and export path, end to end: the one function the API and the CLI both call (REQ-5).

`run_query` takes a caller's SQL and answers with a stream of bytes in the asked format:

1. the entries the SQL reads (`referenced_entries`, the rewrite's own resolution);
2. `access.decide` — deny unless a rule allows (REQ-14/17/26/27); a refusal is an `AccessDenied`;
3. `rewrite` — the policy subqueries, masks and filters; a refusal is a `PolicyViolation`;
4. `SandboxedEngine.run` over exactly the Parquet files of each entry's current version, with the
   decision's pseudonym keys as request variables;
5. an `export` writer, batch by batch.

Records under a flagged objection (REQ-12) are marked: the entry's policy gets a `disputed`
predicate (`pubdata.gateway.disputed`), row-level answers carry the ``_disputed`` column, and every
answer that read such an entry says ``X-Pubdata-Disputed: <entry>=<records>``, counting the flagged
records among the rows the caller may see (and ``disputed`` in the JSON metadata and the audit event).

Every call is one audit event (REQ-40), written when the stream ends, because only then are the row
count and the SHA-256 of the bytes sent known; a refusal at any step is one event too, with the
sentence the caller saw and a ``reason_kind`` the outside-purpose report selects on (REQ-41). The
SQL appears in the log only as a fingerprint: SHA-256 of the parsed query printed back in DuckDB
SQL, so spacing, comments and keyword case do not change it.

Data subjects (REQ-41) are indexed for every answer that served their records, masked or not
(`served_subjects`): the rewrite carries each row-level answer's keyed subject hashes out as hidden
columns, dropped before the first byte is written, and served columns whose lineage includes a raw
identity number or credit code are hashed from their values. The event's ``fields`` and
``served_fields`` and the ``X-Pubdata-Masked`` header follow the same lineage (`trace_lineage`), so
renaming a column does not hide what it carries; ``subjects_aggregated`` names the entries whose
subjects an aggregated answer could not attribute row by row.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import itertools
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import duckdb
import pyarrow as pa
from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload
from sqlglot import exp

from pubdata import audit
from pubdata.db.models import CatalogEntry
from pubdata.errors import InputError, PubdataError
from pubdata.gateway.access import AccessDenied, decide
from pubdata.gateway.disputed import DISPUTED_HEADER, count_disputed, flagged_records, with_disputed
from pubdata.gateway.engine import QueryError, QueryFailed, QueryStream, SandboxedEngine
from pubdata.gateway.export import ExportFormat, ExportJob, get_format, one_line
from pubdata.gateway.export_types import UnsupportedColumn
from pubdata.gateway.policy_summary import (
    SUBJECT_KINDS,
    PolicySummary,
    header_value,
    policy_headers,
    summarise,
)
from pubdata.gateway.policy_types import PolicyViolation, QueryLimits
from pubdata.gateway.quality_flags import any_flagged, with_quality_flags
from pubdata.gateway.query_audit import CURRENT, audited
from pubdata.gateway.referenced import referenced_entries
from pubdata.gateway.rewrite import rewrite
from pubdata.gateway.rewrite.parse_single_query import parse_single_query
from pubdata.gateway.roles import NotAuthorised, Principal, Scope
from pubdata.gateway.served_subjects import (
    SubjectIndex,
    aggregated_subjects,
    served_fields,
    subject_columns,
    with_subjects,
)
from pubdata.messages import text
from pubdata.store.delta import DatasetStore
from pubdata.workflow.usage import count_use
from pubdata.workspace import Workspace

#: The event a streamed answer writes before its first byte (see `_Call.open`).
STREAM_OPEN = audit.STREAM_OPEN
#: The action of a preview (the entry page's sample rows): no purpose stated, not counted as use.
PREVIEW = "preview"


@dataclass
class Served:
    """What left the platform; complete once the body has been read to its end."""

    rows: int = 0
    truncated: bool = False
    result_hash: str = ""
    #: ``ok``, ``failed`` (a trailer ended the stream) or ``aborted`` (the reader went away).
    outcome: str = "pending"
    error: str | None = None


@dataclass
class QueryResponse:
    """The answer: iterate `body` (once) to send it; `served` is filled in as it goes."""

    format: ExportFormat
    headers: dict[str, str]
    body: Iterator[bytes]
    served: Served
    filename: str

    @property
    def media_type(self) -> str:
        return self.format.media_type


def sql_fingerprint(sql: str) -> str:
    """SHA-256 of the normalised SQL (of the text with its white space folded if it does not parse)."""
    try:
        normal = parse_single_query(sql).sql("duckdb")
    except PolicyViolation:
        normal = " ".join(sql.split())
    return hashlib.sha256(normal.encode("utf-8")).hexdigest()


# --- the audit event of a call ----------------------------------------------------------------


@dataclass
class _Call:
    """One call's audit facts, gathered along the path and written once."""

    workspace: Workspace
    principal: Principal
    action: str
    detail: dict[str, Any]
    entries: tuple[str, ...] = ()
    #: Whether the call's event is written (`query_audit.audited` writes it if nothing else did).
    recorded: bool = False

    def __post_init__(self) -> None:
        CURRENT.set(self)

    def record(
        self, outcome: str, subject_hashes: pa.Array | frozenset[str] = frozenset(), **more: Any
    ) -> None:
        """The single place a query is audited: `record_access` indexes the subjects it served."""
        self.recorded = True
        detail = {**self.detail, "entries": list(self.entries), **more}
        with self.workspace.sessions() as session, session.begin():
            audit.record_access(
                session,
                self.principal.user.login,
                self.action,
                ",".join(self.entries),
                outcome,
                (),
                subject_hashes=subject_hashes,
                home=self.workspace.home,
                **detail,
            )
            if outcome == "ok" and self.action != PREVIEW:  # REQ-23: answers served whole, not previews
                org, rows = self.principal.organisation, more["rows"]
                count_use(session, self.entries, org, self.action, rows, self.workspace.clock())

    def refuse(self, error: PubdataError, kind: str) -> PubdataError:
        failure: dict[str, Any] = {"failure_kind": error.kind.value} if isinstance(error, QueryFailed) else {}
        self.record("refused", reason=str(error), reason_kind=kind, decision="refused", **failure)
        return error

    def open(self) -> None:
        """Record that a streamed answer starts, before its first byte leaves.

        The call's own event is written when the stream ends; a process killed in between would
        otherwise leave data served with no trace. The closing event names this one
        (``opened_event``), so `audit.unfinished_streams` lists the streams that never closed.
        """
        detail = {**self.detail, "entries": list(self.entries), "access_action": self.action}
        with self.workspace.sessions() as session, session.begin():
            opened = audit.record(
                session, self.principal.user.login, STREAM_OPEN, ",".join(self.entries), "ok", **detail
            )
        self.detail["opened_event"] = opened.id


# --- the path -----------------------------------------------------------------------------------


def _row_cap(fmt: ExportFormat, max_rows: int | None) -> int | None:
    cap = fmt.default_rows if max_rows is None else max_rows
    if cap is not None and cap < 1:
        raise InputError(text("max_rows must be at least 1, not {cap}", cap=cap))
    if cap is not None and fmt.max_rows is not None and cap > fmt.max_rows:
        raise InputError(
            text(
                "format {format} answers at most {rows} rows; ask for fewer or use a bulk format",
                format=fmt.name,
                rows=fmt.max_rows,
            )
        )
    return cap


def _load(session: Session, codes: tuple[str, ...]) -> dict[str, CatalogEntry]:
    query = (
        select(CatalogEntry)
        .where(func.lower(CatalogEntry.code).in_(codes))
        .options(selectinload(CatalogEntry.fields), selectinload(CatalogEntry.provider))
    )
    return {e.code.lower(): e for e in session.scalars(query)}


@audited
def run_query(
    workspace: Workspace,
    principal: Principal,
    sql: str,
    purpose: str | None,
    application: str,
    format: str = "json",
    *,
    engine: SandboxedEngine,
    now: dt.datetime | None = None,
    max_rows: int | None = None,
    batch_rows: int | None = None,
    bom: bool | None = None,
    csv_raw: bool = False,
    offset: int = 0,
    channel: str = "api",
    action: str | None = None,
) -> QueryResponse:
    """Decide, rewrite, run and start writing `sql`; raises (audited) on any refusal before the first byte.

    `max_rows` defaults to the format's page (json 1 000, xlsx 100 000) and is unlimited for streamed
    formats; `offset` skips rows of the answer (json paging). Refusals: `NotAuthorised` (token scope),
    `AccessDenied`, `PolicyViolation`, `QueryError` / `QueryTimeout`. `purpose` is None only for a
    `PREVIEW` (``action``), which states none and is not counted as use.
    """
    now = now or workspace.clock()
    try:
        fmt, unknown = get_format(format), None
    except InputError as refusal:  # audited below, once the call exists
        fmt, unknown = get_format("json"), refusal
    if purpose is None and action != PREVIEW:
        raise InputError(text("state the purpose of the request"))
    org = principal.organisation
    call = _Call(
        workspace,
        principal,
        action or ("query" if not fmt.bulk else f"export.{fmt.name}"),
        {
            "organisation": org.name if org is not None else None,
            "application": application,
            "purpose": purpose,
            "format": fmt.name,
            "channel": channel,
            "token_id": principal.token_id,
            "sql_fingerprint": sql_fingerprint(sql),
        },
    )
    if unknown is not None:
        raise call.refuse(unknown, "invalid")
    if offset < 0:
        raise InputError(text("offset must be 0 or more, not {offset}", offset=offset))
    cap = _row_cap(fmt, max_rows)
    try:
        principal.require(scope=Scope.EXPORT if fmt.bulk else Scope.QUERY)
    except NotAuthorised as refusal:
        raise call.refuse(refusal, "scope") from None
    try:
        call.entries = referenced_entries(sql)
    except PolicyViolation as refusal:
        raise call.refuse(refusal, "sql") from None
    settings = (
        workspace.settings.for_tenant(org.division_code) if org is not None else workspace.settings.default
    )
    limit = None if cap is None else offset + cap + 1
    denied: AccessDenied | None = None
    with workspace.sessions() as session:
        try:
            decision = decide(
                session,
                principal,
                application,
                purpose,
                call.entries,
                now,
                settings,
                workspace.home,
                row_limit=limit,
            )
        except AccessDenied as refusal:
            session.rollback()
            denied = refusal
        else:
            entries = _load(session, call.entries)
            flagged = flagged_records(session, entries)
    if denied is not None:
        raise call.refuse(denied, denied.rule.value) from None
    grants = [g for g in decision.grants.values() if g is not None]
    if grants and purpose is not None:
        call.detail["purpose"] = grants[0].purpose  # the stated purpose matched it (REQ-17)
        call.detail["stated_purpose"] = purpose
        call.detail["grant_id"], call.detail["grant_purpose"] = grants[0].id, grants[0].purpose
    elif grants:  # a preview reads through the grant, but claims none of its purpose
        call.detail["grant_id"] = grants[0].id
    call.detail["decision"] = "allowed"
    limits = QueryLimits(settings.query_max_joins, settings.query_max_generated_bytes)
    decision = replace(decision, policy=replace(decision.policy, limits=limits))
    call.detail["reason"] = "; ".join(decision.reasons.values())
    if decision.assessment is not None:
        call.detail["assessment_id"] = decision.assessment.id
    store = DatasetStore(workspace.data_dir, workspace.sessions)
    files = {code: store.file_uris(entry) for code, entry in entries.items()}
    try:
        policy = with_subjects(with_disputed(decision.policy, entries, flagged), entries)
        policy = with_quality_flags(policy, {code for code, held in files.items() if any_flagged(held)})
        result = rewrite(sql, policy)
    except PolicyViolation as refusal:
        raise call.refuse(refusal, "sql") from None
    summary = summarise(decision, result, entries)
    call.detail.update(
        fields={c: list(v) for c, v in result.columns.items()},
        served_fields=served_fields(result, summary.masked),
        policy_versions=summary.versions,
        grant_ids=[g for g in summary.grants.values() if g is not None],
        masked=summary.masked,
        filtered=summary.filtered,
    )
    tables: dict[str, list[str]] = {}
    for code in result.tables:
        if not files[code]:
            raise call.refuse(
                QueryError(text("entry {code} holds no data yet", code=entries[code].code)), "no_data"
            )
        tables[decision.policy.tables[code].internal_name] = files[code]
    enforced = result.sql
    run = functools.partial(engine.run, source_sql=sql)  # failures may name what the sender wrote
    if offset:
        page = exp.Subquery(this=result.expression, alias=exp.TableAlias(this=exp.to_identifier("__page")))
        enforced = exp.select("*").from_(page).offset(offset).sql("duckdb")
    try:
        variables = dict(decision.variables)
        if result.subject_columns:  # the engine hashes each served row's subject (REQ-41)
            variables.update(audit.subject_hash_variables(workspace.home))
        # Flagged records among the rows this caller may see, not the whole entry's (REQ-12).
        read = [c for c in result.tables if c in flagged]
        disputed = count_disputed(engine, policy, read, tables, variables)
        if disputed:
            call.detail["disputed"] = disputed
        stream = run(enforced, tables, variables, max_rows=cap, batch_rows=batch_rows)
    except QueryError as failure:
        raise call.refuse(failure, "engine") from None
    try:  # the engine gives the schema before the first batch: refuse what the format cannot hold
        fmt.check(stream.schema)
    except UnsupportedColumn as refusal:
        stream.close()
        raise call.refuse(refusal, "format") from None
    try:
        first = next(stream, None)
    except QueryError as failure:
        raise call.refuse(failure, "engine") from None
    subjects = SubjectIndex(
        workspace,
        stream.schema,
        subject_columns(stream.schema, result, summary.raw_subject_fields),
        result.subject_columns,
    )
    if aggregated := aggregated_subjects(policy, result):
        call.detail["subjects_aggregated"] = aggregated
    batches = itertools.chain([first] if first is not None else [], stream)
    served = Served()
    meta: dict[str, Any] = {"offset": offset, "next_offset": None, "policy": summary.as_json()}
    if disputed:
        meta["disputed"] = disputed

    def truncated() -> bool:
        if stream.truncated and cap is not None:
            meta["next_offset"] = offset + cap
        return stream.truncated

    job = ExportJob(
        subjects.schema, _tapped(batches, subjects), csv_raw=csv_raw, bom=bom, meta=meta, truncated=truncated
    )
    if not fmt.bounded:  # bounded formats are built whole before their first byte is sent
        call.open()
    body = _serve(fmt, job, stream, served, subjects, call)
    headers = policy_headers(summary)
    if disputed:
        headers[DISPUTED_HEADER] = header_value(disputed)
    if fmt.bounded:
        head = next(body, b"")  # builds the whole answer: the cap and truncation are known now
        body = itertools.chain([head], body)
        headers["X-Pubdata-Truncated"] = str(stream.truncated).lower()
        headers["X-Pubdata-Rows"] = str(stream.rows)
    filename = f"query.{fmt.extension}"
    if fmt.bulk:
        headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return QueryResponse(fmt, headers, body, served, filename)


def _tapped(batches: Iterator[pa.RecordBatch], subjects: SubjectIndex) -> Iterator[pa.RecordBatch]:
    for batch in batches:
        yield subjects.add(batch)  # indexed, and the hidden subject columns dropped


def _serve(
    fmt: ExportFormat,
    job: ExportJob,
    stream: QueryStream,
    served: Served,
    subjects: SubjectIndex,
    call: _Call,
) -> Iterator[bytes]:
    """The body; audits the call when it ends, however it ends."""
    digest = hashlib.sha256()
    served.outcome = "aborted"
    try:
        try:
            for chunk in fmt.write(job):
                if chunk:
                    digest.update(chunk)
                    yield chunk
            served.outcome = "ok"
        except (PubdataError, pa.ArrowException, duckdb.Error, OSError) as failure:
            # Only the platform's own sentences are repeated: a library's may quote the enforced SQL.
            said = str(failure) if isinstance(failure, PubdataError) else "the answer could not be written"
            served.outcome, served.error = "failed", one_line(said)
            if fmt.bounded:
                raise
            trailer = fmt.failure(served.error)
            digest.update(trailer)
            yield trailer
        except Exception:  # the unforeseen ends the body; the event says so
            served.outcome, served.error = "error", "internal error"
            raise
    finally:
        stream.close()
        subjects.close()
        served.rows, served.truncated, served.result_hash = stream.rows, stream.truncated, digest.hexdigest()
        extra = {"error": served.error} if served.error else {}
        call.record(
            served.outcome,
            subjects.hashes,
            rows=served.rows,
            truncated=served.truncated,
            result_hash=served.result_hash,
            subjects_indexed=len(subjects.hashes),
            **extra,
        )


__all__ = [
    "SUBJECT_KINDS",
    "PolicySummary",
    "QueryResponse",
    "Served",
    "policy_headers",
    "run_query",
    "sql_fingerprint",
    "subject_columns",
    "summarise",
]
