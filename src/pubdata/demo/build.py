"""Build the demo province through the public paths a person's own commands take.

Nothing here writes a table directly: organisations and entries go through the catalogue service
(so the regulation's rules judge them, and one entry is really held back by REQ-25), files go
through `ingest_file` (so readers, validation, quarantine and the quality report are the real
ones). What the demo shows is therefore what the platform does.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pubdata.audit import write_checkpoint
from pubdata.catalog.service import create_entry, publish_entry, register_organisation
from pubdata.clock import Clock, system_clock
from pubdata.demo.cases import seed_cases
from pubdata.demo.generate import DemoFile, write_files
from pubdata.demo.world import APPLICATIONS, DRAFT_ON_PURPOSE, ENTRIES, ORGANISATIONS
from pubdata.divisions import divisions
from pubdata.errors import PubdataError, RuleViolation
from pubdata.gateway.identity import create_application, create_user, issue_token
from pubdata.gateway.roles import Role, Scope
from pubdata.ingest.pipeline import ingest_file
from pubdata.workflow.working_days import LOCAL_TZ
from pubdata.workspace import Workspace

Progress = Callable[[str, int, int], None]
ACTOR = "demo"
ACCOUNTS_FILE = "demo-accounts.json"
FILES_DIR = "demo-files"
#: Files `write_files` produces; only used to size the progress bar before they exist.
_EXPECTED_FILES = 19
_Q, _E, _C, _W = Scope.QUERY, Scope.EXPORT, Scope.CATALOG_READ, Scope.WORKFLOW
#: One account per REQ-4 role: login, display name, organisation (short name; None: a private
#: person), roles and the scopes of its token. The consumer is a city agency, so its region shows.
DEMO_USERS: tuple[tuple[str, str, str | None, tuple[Role, ...], tuple[Scope, ...]], ...] = (
    ("zj_dsj", "周明远", "省大数据局", (Role.COMPETENT_DEPARTMENT,), (_C, _Q, _W)),
    ("zj_gat", "蒋卫东", "省公安厅", (Role.PROVIDER,), (_C, _Q, _E, _W)),
    ("zj_rst", "许文静", "省人社厅", (Role.PROVIDER,), (_C, _Q, _E, _W)),
    ("jx_zgh", "杨德明", "嘉兴市总工会", (Role.CONSUMER,), (_C, _Q, _E, _W)),
    ("citizen", "李娜", None, (Role.OPEN_DATA_USER,), (_C, _Q)),
    ("zj_security", "陈思齐", "省大数据局", (Role.SECURITY_OFFICER,), (_C, Scope.AUDIT_READ, _W)),
    ("zj_auditor", "审计员", "省大数据局", (Role.AUDITOR,), (_C, Scope.AUDIT_READ)),
    ("zj_admin", "平台管理员", "省大数据局", (Role.PLATFORM_ADMIN,), (_C, Scope.ADMIN)),
)


@dataclass
class IngestedVersion:
    entry_code: str
    file: str
    version: int
    rows_read: int
    rows_written: int
    rows_rejected: int
    rows_flagged: int
    bad_rows_planted: int


@dataclass
class DemoSummary:
    home: Path
    entries: int
    organisations: int
    versions: int
    rows: int
    #: Rows the quality reports list as rejected or flagged.
    quality_issues: int
    elapsed: float
    #: Rows generated wrong on purpose; `quality_issues` should not be smaller.
    bad_rows_planted: int = 0
    published: int = 0
    #: Entries left in draft, with the refusal that holds each back.
    drafts: dict[str, str] = field(default_factory=dict)
    ingested: list[IngestedVersion] = field(default_factory=list)


def build_demo(
    home: Path, scale: float = 1.0, progress: Progress | None = None, clock: Clock = system_clock
) -> DemoSummary:
    """Create a workspace at `home` holding the demo province; `scale` multiplies person tables.

    `clock` is when the demo happens: its requests are filed, checked and escalated, and its tokens
    issued, relative to it — an app judging the demo must read the same clock, or "overdue" and
    "expired" drift with the day the demo was built.
    """
    started = time.perf_counter()
    if scale <= 0:
        raise PubdataError(f"scale must be positive, not {scale}")
    home = Path(home)
    if (home / ACCOUNTS_FILE).exists():
        raise PubdataError(f"{home} already holds a demo province: choose an empty --home")
    total = 4 + len(ENTRIES) + _EXPECTED_FILES
    done = 0

    def step(label: str) -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(label, done, total)

    workspace = Workspace.init(home, clock=clock)
    step("初始化工作区")
    settings = workspace.settings.default
    with workspace.sessions() as session, session.begin():
        for org in ORGANISATIONS:
            register_organisation(session, org.spec, ACTOR)
    step("登记公共管理和服务机构")

    drafts: dict[str, str] = {}
    for spec in ENTRIES:
        with workspace.sessions() as session, session.begin():
            create_entry(session, spec, ACTOR, settings)
        try:
            with workspace.sessions() as session, session.begin():
                publish_entry(session, spec.code, ACTOR, settings)
        except RuleViolation as refusal:
            if spec.code not in DRAFT_ON_PURPOSE:
                raise
            drafts[spec.code] = str(refusal)
        step(f"编目 {spec.name}")

    files = write_files(home / FILES_DIR, scale)
    total = 4 + len(ENTRIES) + len(files)
    step("生成各单位报送文件")

    # Birth dates are judged plausible against the demo's own day, not the wall's.
    today = clock().astimezone(LOCAL_TZ).date()
    ingested = [_ingest(workspace, demo_file, step, today) for demo_file in files]
    applications = _applications(workspace)
    users = _create_users(workspace, clock)
    cases = seed_cases(workspace, clock())
    step("登记使用应用，办理共享申请与异议")
    _write_accounts(home / ACCOUNTS_FILE, users, {"applications": applications, **cases})
    with workspace.sessions() as session, session.begin():
        # Sign the chain's end so that `pubdata audit verify` on a fresh demo has nothing unsigned.
        write_checkpoint(session, workspace.home)
    return DemoSummary(
        home=home,
        entries=len(ENTRIES),
        organisations=len(ORGANISATIONS),
        versions=len(ingested),
        rows=sum(v.rows_written for v in ingested),
        quality_issues=sum(v.rows_rejected + v.rows_flagged for v in ingested),
        elapsed=time.perf_counter() - started,
        bad_rows_planted=sum(f.bad_rows for f in files),
        published=len(ENTRIES) - len(drafts),
        drafts=drafts,
        ingested=ingested,
    )


def _ingest(
    workspace: Workspace, demo_file: DemoFile, step: Callable[[str], None], today: dt.date
) -> IngestedVersion:
    result = ingest_file(
        workspace,
        demo_file.entry_code,
        demo_file.path,
        operator=ACTOR,
        mode=demo_file.mode,
        sheet=demo_file.sheet,
        today=today,
        # Bad rows are planted on purpose; in a small demo they exceed the default share of 10 %.
        max_reject_ratio=0.5,
    )
    version = result.version
    step(f"入库 {demo_file.path.name}")
    return IngestedVersion(
        entry_code=demo_file.entry_code,
        file=demo_file.path.name,
        version=version.version,
        rows_read=version.rows_read,
        rows_written=version.rows_written,
        rows_rejected=version.rows_rejected,
        rows_flagged=version.rows_flagged,
        bad_rows_planted=demo_file.bad_rows,
    )


def accounts() -> list[dict[str, Any]]:
    """Who is who in the demo: the organisations with their roles and responsible persons."""
    provided: dict[str, list[str]] = {}
    for entry in ENTRIES:
        provided.setdefault(entry.provider, []).append(entry.code)
    listed = []
    for org in ORGANISATIONS:
        spec = org.spec
        listed.append(
            {
                "name": spec.name,
                "short_name": spec.short_name,
                "uscc": spec.uscc,
                "division_code": spec.division_code,
                "division": divisions().get(spec.division_code).name,
                "org_type": spec.org_type.value,
                "role": org.roles[0],
                "roles": list(org.roles),
                "head": spec.head_name,
                "security_officer": spec.security_officer_name,
                "entries": provided.get(spec.name, []),
            }
        )
    return listed


def _applications(workspace: Workspace) -> list[dict[str, Any]]:
    """The consuming applications of the demo, registered through the checked public path."""
    listed: list[dict[str, Any]] = []
    with workspace.sessions() as session, session.begin():
        for app in APPLICATIONS:
            create_application(
                session,
                app.code,
                name=app.name,
                organisation=app.organisation,
                purpose=app.purpose,
                system_owner=app.system_owner,
                actor=ACTOR,
            )
            listed.append({"code": app.code, "name": app.name, "organisation": app.organisation})
    return listed


def _create_users(workspace: Workspace, clock: Clock) -> list[dict[str, Any]]:
    """A user and a token per role; the clear password and token go only to the accounts file."""
    created = []
    settings = workspace.settings.default
    with workspace.sessions() as session, session.begin():
        for login, name, org, roles, scopes in DEMO_USERS:
            password = secrets.token_urlsafe(12)
            create_user(
                session,
                login,
                roles=roles,
                organisation=org,
                password=password,
                actor=ACTOR,
                display_name=name,
            )
            issued = issue_token(
                session, login, scopes, settings.max_token_days, ACTOR, settings, name="demo", now=clock()
            )
            created.append(
                {
                    "login": login,
                    "display_name": name,
                    "organisation": org,
                    "roles": [r.value for r in roles],
                    "role_labels": [r.label for r in roles],
                    "password": password,
                    "token": issued.token,
                    "token_id": issued.row.public_id,
                    "scopes": list(issued.row.scopes),
                    "expires_at": issued.row.expires_at.isoformat(),
                }
            )
    return created


def _write_accounts(path: Path, users: list[dict[str, Any]], sharing: dict[str, Any] | None = None) -> None:
    facts = {"organisations": accounts(), "users": users, **(sharing or {})}
    text = json.dumps(facts, ensure_ascii=False, indent=2)
    tmp = path.with_suffix(".tmp")
    tmp.touch(mode=0o600)  # it holds clear passwords and tokens: readable by the owner only
    tmp.write_text(text + "\n", "utf-8")
    tmp.replace(path)
