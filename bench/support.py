"""The gateway benchmarks' world: one person-level entry of N rows, a grant to read it, a token.

Built once per size under the bench's work directory through the platform's own services
(catalogue, store, identities, grants) and reused by later runs: generating and storing 10 M rows
takes longer than the measurements themselves. ``bench-world.json`` marks a finished build; a
directory without it is rebuilt from scratch.

Every row lies in 嘉兴市 (3304), at one of its known villages, and the grant's region filter is
嘉兴市, so the filter (length, prefix and membership in the known divisions) is evaluated on every
row and passes all of them: the enforced query and the hand-written raw one answer the
same rows (masked on one side), and a selective filter cannot make the gateway look faster than a
query that reads everything. The grant leaves de-identification to the defaults (REQ-27), which
mask exactly three columns: ``id_number`` (first 6 + last 4), ``name`` (surname) and ``mobile``.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa

from pubdata.catalog.classes import FieldType, OpenClass, OrgType, PiiKind, ShareClass, UpdateCycle, WriteMode
from pubdata.catalog.service import create_entry, get_entry, publish_entry, register_organisation
from pubdata.catalog.specs import EntrySpec, FieldSpec, OrganisationSpec
from pubdata.db.models import utcnow
from pubdata.divisions import divisions, villages
from pubdata.gateway.grants import grant_access
from pubdata.gateway.identity import create_application, create_user, issue_token
from pubdata.gateway.roles import Role, Scope
from pubdata.identifiers import make_uscc
from pubdata.store.delta import DatasetStore
from pubdata.workspace import Workspace

ENTRY = "bench_insured_persons"
APPLICATION = "bench_union_care"
PURPOSE = "困难职工帮扶核对"
LOGIN = "bench.consumer"
PROVIDER = "嘉兴市人力资源和社会保障局"
CONSUMER = "嘉兴市总工会"
REGION = "3304"
#: The columns the default rules mask for this entry, in the order the entry lists them.
MASKED = ("id_number", "name", "mobile")
_MARKER = "bench-world.json"
_BATCH_ROWS = 262_144


@dataclass(frozen=True)
class BenchWorld:
    """A built workspace: where it is, how many rows its entry holds, and the consumer's token."""

    workspace: Workspace
    rows: int
    token: str

    @property
    def home(self) -> Path:
        return self.workspace.home

    def file_uris(self) -> list[str]:
        """The Parquet files of the entry's current version: what both sides of P1 read."""
        with self.workspace.sessions() as session:
            entry = get_entry(session, ENTRY)
        return DatasetStore(self.workspace.data_dir, self.workspace.sessions).file_uris(entry)


def bench_world(home: Path, rows: int) -> BenchWorld:
    """The world of `rows` rows at `home`, built unless a finished build of that size is there."""
    marker = home / _MARKER
    if marker.exists():
        facts = json.loads(marker.read_text("utf-8"))
        if facts.get("rows") == rows:
            # `init` upgrades a world built under an older schema in place; data files are kept.
            return BenchWorld(Workspace.init(home), rows, facts["token"])
    shutil.rmtree(home, ignore_errors=True)
    workspace = Workspace.init(home)
    token = _register(workspace)
    _store_rows(workspace, rows)
    marker.write_text(json.dumps({"rows": rows, "token": token}), "utf-8")
    return BenchWorld(workspace, rows, token)


def _organisation(name: str, org_type: OrgType, body: str) -> OrganisationSpec:
    return OrganisationSpec(
        name=name,
        org_type=org_type,
        uscc=make_uscc("11", "330400", body),
        division_code="330400000000",
        head_name="负责人",
        security_officer_name="安全员",
    )


def _entry_spec() -> EntrySpec:
    fields = [
        FieldSpec("id_number", "身份证号", level=4, pii_kind=PiiKind.ID_NUMBER, validator="id_number"),
        FieldSpec("name", "姓名", level=2, pii_kind=PiiKind.NAME),
        FieldSpec("mobile", "手机号码", level=3, pii_kind=PiiKind.MOBILE, validator="mobile"),
        FieldSpec("division_code", "行政区划代码", level=1, pii_kind=PiiKind.NONE, validator="division_code"),
        FieldSpec("amount", "缴费基数", data_type=FieldType.DECIMAL, level=1, pii_kind=PiiKind.NONE),
    ]
    return EntrySpec(
        code=ENTRY,
        name="参保人员缴费信息",
        provider=PROVIDER,
        fields=fields,
        abstract="嘉兴市参保人员的缴费基数",
        category_class="基础信息",
        region_code="330400000000",
        share_class=ShareClass.RESTRICTED,
        share_conditions="按职责使用",
        legal_basis="《社会保险法》",
        open_class=OpenClass.PROHIBITED,
        update_cycle=UpdateCycle.MONTHLY,
    )


def _register(workspace: Workspace) -> str:
    """Provider, consumer, entry, application, grant, user and token; returns the token."""
    settings = workspace.settings.default
    now = utcnow()
    with workspace.sessions() as session, session.begin():
        register_organisation(session, _organisation(PROVIDER, OrgType.STATE_ORGAN, "BENCH001"), "bench")
        register_organisation(session, _organisation(CONSUMER, OrgType.AUTHORISED_ORG, "BENCH002"), "bench")
        create_entry(session, _entry_spec(), "bench", settings)
        publish_entry(session, ENTRY, "bench", settings)
        create_application(
            session,
            APPLICATION,
            name="职工帮扶系统",
            organisation=CONSUMER,
            purpose=PURPOSE,
            system_owner="系统负责人",
            actor="bench",
        )
        grant_access(
            session,
            organisation=CONSUMER,
            application=APPLICATION,
            entry_code=ENTRY,
            fields=[f.name for f in _entry_spec().fields],
            region_prefix=REGION,
            region_field="division_code",
            purpose=PURPOSE,
            legal_basis="《中华人民共和国工会法》第六条",
            valid_from=now - dt.timedelta(days=1),
            valid_until=now + dt.timedelta(days=settings.max_token_days),
            actor="bench",
            settings=settings,
            now=now,
        )
        create_user(
            session, LOGIN, roles=[Role.CONSUMER], organisation=CONSUMER, password=None, actor="bench"
        )
        issued = issue_token(
            session, LOGIN, [Scope.QUERY, Scope.EXPORT], settings.max_token_days, "bench", settings
        )
    return issued.token


def _generated(rows: int) -> Iterator[pa.RecordBatch]:
    """ID-shaped numbers, names, mobiles, 嘉兴 division codes and amounts 0–10 000, from DuckDB."""
    counties = [c for c in divisions().county_codes(include_abolished=False) if c.startswith(REGION)]
    con = duckdb.connect()
    con.execute("CREATE TABLE counties AS SELECT unnest($1::VARCHAR[]) AS code", [counties])
    con.execute("CREATE TABLE c AS SELECT row_number() OVER (ORDER BY code) - 1 AS k, code FROM counties")
    # Known village codes: the region filter admits only divisions the shipped table knows.
    places = sorted(code for code in villages().codes() if code.startswith(REGION))
    con.execute(
        "CREATE TABLE v AS SELECT ordinality - 1 AS k, code "
        "FROM unnest($1::VARCHAR[]) WITH ORDINALITY AS u(code)",
        [places],
    )
    relation = con.sql(
        f"""
        SELECT
          c.code || strftime(DATE '1950-01-01' + (hash(i) % 25000)::INT, '%Y%m%d')
            || lpad((i % 1000)::VARCHAR, 3, '0') || substr('0123456789X', (hash(i * 11) % 11)::INT + 1, 1)
            AS id_number,
          substr('王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗', (i % 20)::INT + 1, 1)
            || substr('伟芳娜敏静丽强磊军洋勇艳杰娟涛明超霞平刚华建国红梅', (hash(i * 7) % 26)::INT + 1, 1)
            AS name,
          '1' || (3 + i % 7)::VARCHAR || lpad((hash(i) % 1000000000)::VARCHAR, 9, '0') AS mobile,
          v.code AS division_code,
          ((hash(i * 3) % 1000000) / 100.0)::DECIMAL(38, 6) AS amount
        FROM range({int(rows)}) t(i) JOIN c ON c.k = i % {len(counties)} JOIN v ON v.k = i % {len(places)}
        """
    )
    yield from relation.to_arrow_reader(_BATCH_ROWS)


def _store_rows(workspace: Workspace, rows: int) -> None:
    store = DatasetStore(workspace.data_dir, workspace.sessions)
    with workspace.sessions() as session:
        entry = get_entry(session, ENTRY)
    store.write(entry, _generated(rows), WriteMode.REPLACE, operator="bench")
