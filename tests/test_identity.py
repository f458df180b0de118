"""Identities of the gateway: roles (REQ-4), argon2id passwords, hashed scoped expiring tokens,
consuming applications, their audit trail (REQ-40), the CLI, the migration and the demo accounts."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import inspect, select, text
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from pubdata.audit import verify_chain
from pubdata.catalog.classes import OrgType
from pubdata.catalog.service import register_organisation
from pubdata.catalog.specs import OrganisationSpec
from pubdata.cli.main import app
from pubdata.clock import Clock
from pubdata.db.models import ApiToken, AuditEvent, User
from pubdata.db.session import head_revision, make_engine, upgrade
from pubdata.errors import InputError, NotFound, PubdataError, RuleViolation
from pubdata.gateway import identity
from pubdata.gateway.identity import (
    NotAuthenticated,
    NotAuthorised,
    authenticate_token,
    create_application,
    create_user,
    deactivate_user,
    issue_token,
    login,
    revoke_token,
    verify_password,
)
from pubdata.gateway.roles import Role, Scope
from pubdata.identifiers import make_uscc
from pubdata.settings import Settings
from pubdata.workspace import Workspace

#: Cheap argon2id parameters so that tests hash in microseconds; the algorithm is the same.
FAST = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
PASSWORD = "Correct-Horse-电池-Staple"
SETTINGS = Settings()
runner = CliRunner()

DEPARTMENT = OrganisationSpec(
    name="嘉兴市数据局",
    org_type=OrgType.STATE_ORGAN,
    uscc=make_uscc("11", "330400", "JX000001"),
    division_code="330400000000",
    short_name="嘉兴数据局",
    is_competent_department=True,
)
AGENCY = OrganisationSpec(
    name="嘉兴市总工会",
    org_type=OrgType.AUTHORISED_ORG,
    uscc=make_uscc("81", "330400", "JX000002"),
    division_code="330400000000",
    short_name="嘉兴总工会",
)


def _register(workspace: Workspace) -> Workspace:
    with workspace.sessions() as session, session.begin():
        register_organisation(session, DEPARTMENT, "test")
        register_organisation(session, AGENCY, "test")
    return workspace


@pytest.fixture
def home(workspace: Workspace) -> Workspace:
    """A workspace with a competent department and a consuming agency registered."""
    return _register(workspace)


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workspace]:
    """One workspace for property tests, which hypothesis runs many times per test."""
    workspace = _register(Workspace.init(tmp_path_factory.mktemp("shared") / "home"))
    yield workspace
    workspace.engine.dispose()


def _consumer(session: Session, name: str = "wang.fang", **kwargs: Any) -> User:
    return create_user(
        session,
        name,
        roles=kwargs.pop("roles", [Role.CONSUMER]),
        organisation=kwargs.pop("organisation", "嘉兴总工会"),
        password=kwargs.pop("password", PASSWORD),
        actor="admin",
        hasher=FAST,
        **kwargs,
    )


def _audit_text(workspace: Workspace) -> str:
    """Every column of every audit event, as one string to search for leaked secrets."""
    with workspace.sessions() as session:
        rows = session.scalars(select(AuditEvent).order_by(AuditEvent.id)).all()
        return json.dumps(
            [[e.actor, e.action, e.target, e.outcome, e.detail] for e in rows],
            ensure_ascii=False,
            default=str,
        )


def _events(workspace: Workspace, action: str) -> list[tuple[str, str, str]]:
    with workspace.sessions() as session:
        query = select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)
        return [(e.actor, e.target, e.outcome) for e in session.scalars(query)]


# --- roles (REQ-4) -------------------------------------------------------------------------------


@pytest.mark.req("REQ-4", "roles")
def test_the_seven_roles_of_the_regulation_have_chinese_labels_and_parse_either_way() -> None:
    assert {r.value for r in Role} == {
        "competent_department",
        "provider",
        "consumer",
        "open_data_user",
        "security_officer",
        "auditor",
        "platform_admin",
    }
    for role in Role:
        assert any("\u4e00" <= ch <= "\u9fff" for ch in role.label), role
        assert Role.parse(role.label) is role and Role.parse(f" {role.value} ") is role
    with pytest.raises(InputError, match="not one of"):
        Role.parse("superuser")


@pytest.mark.req("REQ-4", "roles")
def test_a_user_holds_several_roles_and_the_principal_reports_them(home: Workspace) -> None:
    with home.sessions() as session, session.begin():
        create_user(
            session,
            "Zhou.Ming",
            roles=[Role.COMPETENT_DEPARTMENT, Role.CONSUMER, Role.CONSUMER],
            organisation="嘉兴数据局",
            password=PASSWORD,
            actor="admin",
            hasher=FAST,
        )
    with home.sessions() as session, session.begin():
        caller = login(session, "zhou.ming", PASSWORD, hasher=FAST)
    assert caller.roles == {Role.COMPETENT_DEPARTMENT, Role.CONSUMER}
    assert caller.organisation is not None and caller.organisation.name == "嘉兴市数据局"
    assert caller.has_role(Role.CONSUMER) and caller.has_role(Role.AUDITOR, Role.CONSUMER)
    assert not caller.has_role(Role.AUDITOR, Role.PLATFORM_ADMIN)
    caller.require(Role.CONSUMER)
    with pytest.raises(NotAuthorised, match="auditor"):
        caller.require(Role.AUDITOR)


@pytest.mark.req("REQ-4", "roles")
def test_role_rules_competent_department_and_organisationless_users(home: Workspace) -> None:
    with home.sessions() as session, session.begin():
        with pytest.raises(RuleViolation, match="not a competent department"):
            _consumer(session, "x1", roles=[Role.COMPETENT_DEPARTMENT])
        with pytest.raises(RuleViolation, match="only an open-data user"):
            _consumer(session, "x2", roles=[Role.AUDITOR], organisation=None)
        with pytest.raises(InputError, match="at least one role"):
            _consumer(session, "x3", roles=[])
        with pytest.raises(NotFound):
            _consumer(session, "x4", organisation="no such office")
        person = _consumer(session, "citizen", roles=[Role.OPEN_DATA_USER], organisation=None)
        assert person.organisation is None
        with pytest.raises(PubdataError, match="taken"):
            _consumer(session, "CITIZEN")
        with pytest.raises(InputError, match="not a login name"):
            _consumer(session, "has space")
        with pytest.raises(InputError, match="at least 10"):
            _consumer(session, "short.pw", password="abc")


# --- passwords -----------------------------------------------------------------------------------


def test_argon2id_round_trip_wrong_password_and_no_password(home: Workspace) -> None:
    with home.sessions() as session, session.begin():
        user = _consumer(session)
        assert user.password_hash is not None and user.password_hash.startswith("$argon2id$")
        assert PASSWORD not in user.password_hash
        assert verify_password(user, PASSWORD, FAST)
        assert not verify_password(user, PASSWORD + "x", FAST)
        assert not verify_password(user, "", FAST)
        keyless = _consumer(session, "token.only", password=None)
        assert keyless.password_hash is None
        assert not verify_password(keyless, PASSWORD, FAST)


def test_a_hash_made_with_old_parameters_is_upgraded_at_the_next_login(home: Workspace) -> None:
    stronger = PasswordHasher(time_cost=2, memory_cost=16, parallelism=1)
    with home.sessions() as session, session.begin():
        old_hash = _consumer(session).password_hash
    assert old_hash is not None and "m=8,t=1" in old_hash
    with home.sessions() as session, session.begin(), pytest.raises(NotAuthenticated):
        login(session, "wang.fang", "wrong password!", hasher=stronger)
    with home.sessions() as session:
        assert session.scalar(select(User.password_hash)) == old_hash  # a failure changes nothing
    with home.sessions() as session, session.begin():
        login(session, "wang.fang", PASSWORD, hasher=stronger)
    with home.sessions() as session, session.begin():
        new_hash = session.scalar(select(User.password_hash))
        assert new_hash != old_hash and new_hash is not None and "m=16,t=2" in new_hash
        login(session, "wang.fang", PASSWORD, hasher=stronger)
        assert session.scalar(select(User.password_hash)) == new_hash  # no rehash when current


def test_login_failures_give_one_message_and_are_audited_after_the_rollback(home: Workspace) -> None:
    with home.sessions() as session, session.begin():
        _consumer(session)
        _consumer(session, "gone.away")
        deactivate_user(session, "gone.away", "admin")
    messages = set()
    for name, password in [("wang.fang", "not the password"), ("nobody", PASSWORD), ("gone.away", PASSWORD)]:
        with pytest.raises(NotAuthenticated) as refused, home.sessions() as session, session.begin():
            login(session, name, password, hasher=FAST)
        messages.add(str(refused.value))
    assert len(messages) == 1
    with home.sessions() as session, session.begin():
        caller = login(session, "Wang.Fang", PASSWORD, hasher=FAST)
    assert caller.token_id is None and caller.allows(Scope.QUERY)
    assert _events(home, "user.login") == [
        ("wang.fang", "wang.fang", "refused"),
        ("nobody", "nobody", "refused"),
        ("gone.away", "gone.away", "refused"),
        ("wang.fang", "wang.fang", "ok"),
    ]
    with home.sessions() as session:
        assert session.scalar(select(User.last_login_at).where(User.login == "wang.fang")) is not None


# --- tokens --------------------------------------------------------------------------------------


def test_token_lifecycle_issue_authenticate_expire_revoke(home: Workspace) -> None:
    issued_at = dt.datetime(2026, 3, 1, 8, 0, tzinfo=dt.UTC)
    with home.sessions() as session, session.begin():
        _consumer(session)
        issued = issue_token(
            session, "wang.fang", [Scope.QUERY, Scope.EXPORT], 30, "admin", SETTINGS, now=issued_at
        )
    token, public_id = issued.token, issued.row.public_id
    prefix, public, secret = token.split("_", 2)
    assert (prefix, public) == ("pd", public_id) and len(secret) == 43
    with home.sessions() as session:
        row = session.scalar(select(ApiToken))
        assert row is not None and row.secret_sha256 == hashlib.sha256(token.encode()).hexdigest()
        stored = json.dumps([str(getattr(row, c.key)) for c in inspect(ApiToken).columns])
        assert secret not in stored
    inside = issued_at + dt.timedelta(days=29, hours=23)
    with home.sessions() as session, session.begin():
        caller = authenticate_token(session, token, inside)
    assert caller.user.login == "wang.fang" and caller.token_id == public_id
    assert caller.scopes == {Scope.QUERY, Scope.EXPORT} and caller.roles == {Role.CONSUMER}
    assert caller.organisation is not None and caller.organisation.division_code == "330400000000"
    with pytest.raises(NotAuthorised, match="catalog:read"):
        caller.require(Role.CONSUMER, Scope.CATALOG_READ)
    with home.sessions() as session:
        assert session.scalar(select(ApiToken.last_used_at)) is not None
    with pytest.raises(NotAuthenticated), home.sessions() as session, session.begin():
        authenticate_token(session, token, issued_at + dt.timedelta(days=30))
    with home.sessions() as session, session.begin():
        revoke_token(session, public_id, "admin")
        revoke_token(session, public_id, "admin")  # idempotent, audited once
    with pytest.raises(NotAuthenticated), home.sessions() as session, session.begin():
        authenticate_token(session, token, inside)
    assert [outcome for *_, outcome in _events(home, "token.revoke")] == ["ok"]


def test_every_kind_of_bad_token_gets_the_same_answer(home: Workspace) -> None:
    with home.sessions() as session, session.begin():
        _consumer(session)
        _consumer(session, "leaver")
        good = issue_token(session, "wang.fang", [Scope.QUERY], 5, "admin", SETTINGS).token
        leaver = issue_token(session, "leaver", [Scope.QUERY], 5, "admin", SETTINGS).token
        deactivate_user(session, "leaver", "admin")
    head, tail = good[:-1], good[-1]
    wrong_secret = head + ("A" if tail != "A" else "B")
    other_id = "pd_00000000_" + good.split("_", 2)[2]
    messages = set()
    for bad in [wrong_secret, other_id, leaver, good[:20], "", "Bearer " + good, good + "x"]:
        with pytest.raises(NotAuthenticated) as refused, home.sessions() as session, session.begin():
            authenticate_token(session, bad)
        messages.add(str(refused.value))
    assert messages == {str(NotAuthenticated())}
    refused_targets = [target for _, target, outcome in _events(home, "token.authenticate")]
    assert refused_targets[0] == good.split("_")[1] and "malformed" in refused_targets


def test_the_secret_is_compared_by_digest_in_constant_time(
    home: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[str, str]] = []
    real: Callable[[str, str], bool] = hmac.compare_digest

    def recording(a: str, b: str) -> bool:
        seen.append((a, b))
        return real(a, b)

    with home.sessions() as session, session.begin():
        _consumer(session)
        token = issue_token(session, "wang.fang", [Scope.QUERY], 5, "admin", SETTINGS).token
    monkeypatch.setattr(hmac, "compare_digest", recording)
    with home.sessions() as session, session.begin():
        authenticate_token(session, token)
    with pytest.raises(NotAuthenticated), home.sessions() as session, session.begin():
        authenticate_token(session, token[:-2] + "zz")
    with pytest.raises(NotAuthenticated), home.sessions() as session, session.begin():
        authenticate_token(session, "pd_ffffffff_" + token.split("_", 2)[2])  # unknown id: still compared
    assert len(seen) == 3
    assert all(len(a) == len(b) == 64 for a, b in seen)
    assert seen[0][0] == seen[0][1] == hashlib.sha256(token.encode()).hexdigest()


def test_issuing_checks_expiry_scopes_roles_and_state(home: Workspace) -> None:
    with home.sessions() as session, session.begin():
        _consumer(session)
        for days in (0, -1, SETTINGS.max_token_days + 1):
            with pytest.raises(InputError, match="max_token_days"):
                issue_token(session, "wang.fang", [Scope.QUERY], days, "admin", SETTINGS)
        assert issue_token(session, "wang.fang", [Scope.QUERY], SETTINGS.max_token_days, "a", SETTINGS)
        with pytest.raises(InputError, match="max_token_days"):
            issue_token(session, "wang.fang", [Scope.QUERY], 8, "a", Settings(max_token_days=7))
        with pytest.raises(RuleViolation, match="platform_admin"):
            issue_token(session, "wang.fang", [Scope.ADMIN], 5, "admin", SETTINGS)
        with pytest.raises(RuleViolation, match="auditor"):
            issue_token(session, "wang.fang", [Scope.AUDIT_READ], 5, "admin", SETTINGS)
        with pytest.raises(InputError, match="at least one scope"):
            issue_token(session, "wang.fang", [], 5, "admin", SETTINGS)
        with pytest.raises(NotFound):
            issue_token(session, "nobody", [Scope.QUERY], 5, "admin", SETTINGS)
        deactivate_user(session, "wang.fang", "admin")
        with pytest.raises(PubdataError, match="deactivated"):
            issue_token(session, "wang.fang", [Scope.QUERY], 5, "admin", SETTINGS)


@settings(max_examples=40, deadline=None)
@given(
    junk=st.text(max_size=80)
    | st.builds(lambda i, s: f"pd_{i}_{s}", st.text("0123456789abcdef", min_size=8, max_size=8), st.text())
)
def test_no_string_but_the_issued_token_authenticates(shared: Workspace, junk: str) -> None:
    with shared.sessions() as session, session.begin():
        if session.scalar(select(User.id).where(User.login == "prop.user")) is None:
            _consumer(session, "prop.user")
    with pytest.raises(NotAuthenticated), shared.sessions() as session, session.begin():
        authenticate_token(session, junk)


# --- audit (REQ-40) -------------------------------------------------------------------------------


def test_every_identity_change_is_audited_and_no_secret_reaches_audit_or_logs(
    home: Workspace, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with home.sessions() as session, session.begin():
        _consumer(session)
        issued = issue_token(session, "wang.fang", [Scope.QUERY], 5, "admin", SETTINGS)
        create_application(
            session,
            "union_aid",
            name="困难职工帮扶系统",
            organisation="嘉兴总工会",
            purpose="核定困难职工帮扶对象",
            system_owner="杨德明 0573-0000",
            actor="admin",
        )
    with home.sessions() as session, session.begin():
        login(session, "wang.fang", PASSWORD, hasher=FAST)
        authenticate_token(session, issued.token)
    with pytest.raises(NotAuthenticated), home.sessions() as session, session.begin():
        login(session, "wang.fang", PASSWORD + "!", hasher=FAST)
    # One character changed, never to itself (a token may already end in "Q").
    forged = issued.token[:-1] + ("Q" if issued.token[-1] != "Q" else "R")
    with pytest.raises(NotAuthenticated), home.sessions() as session, session.begin():
        authenticate_token(session, forged)
    with home.sessions() as session, session.begin():
        revoke_token(session, issued.row.public_id, "admin")
    actions = [(a, o) for a, _, o in _audit_rows(home)]
    for expected in [
        ("user.create", "ok"),
        ("token.issue", "ok"),
        ("application.create", "ok"),
        ("user.login", "ok"),
        ("user.login", "refused"),
        ("token.authenticate", "refused"),
        ("token.revoke", "ok"),
    ]:
        assert expected in actions
    secret = issued.token.split("_", 2)[2]
    recorded = _audit_text(home) + caplog.text
    assert "wang.fang" in recorded  # the search is over the real text
    for clear in (PASSWORD, PASSWORD + "!", issued.token, secret, forged.split("_", 2)[2]):
        assert clear not in recorded
    with home.sessions() as session:
        assert verify_chain(session)[0]


@pytest.mark.req("REQ-40", "grants-refusals")
def test_refusals_by_a_rule_are_audited_with_their_reason_despite_the_rollback(home: Workspace) -> None:
    with home.sessions() as session, session.begin():
        _consumer(session)
    attempts: list[Callable[[Session], object]] = [
        lambda s: _consumer(s, "li.si", roles=[Role.COMPETENT_DEPARTMENT]),
        lambda s: issue_token(s, "wang.fang", [Scope.ADMIN], 5, "admin", SETTINGS),
        lambda s: create_application(
            s, "aid", name="x", organisation="嘉兴总工会", purpose="", system_owner="y", actor="admin"
        ),
    ]
    for attempt in attempts:
        with pytest.raises(RuleViolation), home.sessions() as session, session.begin():
            attempt(session)
    with home.sessions() as session:
        refused = session.scalars(select(AuditEvent).where(AuditEvent.outcome == "refused")).all()
        assert [(e.action, e.target, e.detail["req"]) for e in refused] == [
            ("user.create", "li.si", "REQ-4"),
            ("token.issue", "wang.fang", "REQ-4"),
            ("application.create", "aid", "REQ-15"),
        ]
        assert "not a competent department" in refused[0].detail["reason"]
        assert session.scalar(select(User.id).where(User.login == "li.si")) is None
        assert verify_chain(session)[0]


def _audit_rows(workspace: Workspace) -> list[tuple[str, str, str]]:
    with workspace.sessions() as session:
        return [(e.action, e.target, e.outcome) for e in session.scalars(select(AuditEvent))]


# --- applications (REQ-15/17) --------------------------------------------------------------------


def test_an_application_states_purpose_and_owner(home: Workspace) -> None:
    with home.sessions() as session, session.begin():
        kwargs: dict[str, Any] = {"name": "帮扶", "organisation": "嘉兴总工会", "actor": "admin"}
        with pytest.raises(RuleViolation, match="purpose"):
            create_application(session, "aid", purpose=" ", system_owner="杨德明", **kwargs)
        with pytest.raises(InputError, match="application code"):
            create_application(session, "Aid App", purpose="帮扶", system_owner="杨德明", **kwargs)
        made = create_application(session, "aid", purpose="帮扶", system_owner="杨德明", **kwargs)
        assert made.organisation.name == "嘉兴市总工会" and made.active
        with pytest.raises(PubdataError, match="taken"):
            create_application(session, "aid", purpose="帮扶", system_owner="杨德明", **kwargs)
        assert not identity.deactivate_application(session, "aid", "admin").active
        assert [a.code for a in identity.list_applications(session)] == ["aid"]


# --- CLI -----------------------------------------------------------------------------------------


def _cli(*args: str, code: int = 0, stdin: str | None = None) -> str:
    result = runner.invoke(app, list(args), input=stdin)
    assert result.exit_code == code, result.output
    return result.output


def test_cli_users_tokens_and_apps(home: Workspace, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    h = ["--home", str(home.home)]
    _cli("users", "add", "Wang.Fang", "--org", "嘉兴总工会", "--role", "consumer", "--name", "王芳",
         "--password-stdin", *h, stdin=PASSWORD + "\n")  # fmt: skip
    prompted = _cli("users", "add", "li.lei", "--org", "嘉兴数据局", "--role", "公共数据主管部门",
                    "--role", "auditor", *h, stdin=f"{PASSWORD}\n{PASSWORD}\n")  # fmt: skip
    assert "li.lei" in prompted
    _cli("users", "add", "x", "--password", PASSWORD, *h, code=2)  # never an argument
    _cli("users", "add", "y", "--role", "auditor", "--password-stdin", *h, code=1, stdin=PASSWORD)
    users = json.loads(_cli("users", "list", "--json", *h))
    assert [(u["login"], u["roles"]) for u in users] == [
        ("li.lei", ["auditor", "competent_department"]),
        ("wang.fang", ["consumer"]),
    ]
    issue = ["tokens", "issue", "--user", "wang.fang", "--scope", "query", "--scope", "export"]
    issued = json.loads(_cli(*issue, "--days", "7", "--name", "nightly export", "--json", *h))
    token = issued["token"]
    plain = _cli("tokens", "issue", "--user", "li.lei", "--scope", "audit:read", "--days", "1", *h)
    assert "pd_" in plain and "not be shown again" in plain
    _cli("tokens", "issue", "--user", "wang.fang", "--scope", "admin", "--days", "1", *h, code=1)
    _cli("tokens", "issue", "--user", "wang.fang", "--scope", "query", "--days", "999", *h, code=2)
    listed = _cli("tokens", "list", "--json", *h) + _cli("tokens", "list", *h)
    assert issued["id"] in listed and token.split("_", 2)[2] not in listed and "pd_" not in listed
    mine = json.loads(_cli("tokens", "list", "--user", "wang.fang", "--json", *h))
    assert [(t["id"], t["scopes"]) for t in mine] == [(issued["id"], ["export", "query"])]
    with home.sessions() as session, session.begin():
        assert authenticate_token(session, token).user.display_name == "王芳"
    _cli("tokens", "revoke", issued["id"], *h)
    _cli("tokens", "revoke", "nope", *h, code=2)
    with pytest.raises(NotAuthenticated), home.sessions() as session, session.begin():
        authenticate_token(session, token)
    _cli("apps", "add", "union_aid", "--org", "嘉兴总工会", "--purpose", "帮扶", "--owner", "杨德明", *h)
    apps = json.loads(_cli("apps", "list", "--json", *h))
    assert apps == [
        {
            "code": "union_aid",
            "name": "union_aid",
            "organisation": "嘉兴市总工会",
            "purpose": "帮扶",
            "system_owner": "杨德明",
            "active": True,
        }
    ]
    assert "union_aid" in _cli("apps", "list", *h)
    _cli("apps", "deactivate", "union_aid", *h)
    _cli("users", "deactivate", "wang.fang", *h)
    assert "否" in _cli("users", "list", *h)
    with home.sessions() as session, session.begin(), pytest.raises(NotAuthenticated):
        login(session, "wang.fang", PASSWORD)
    assert PASSWORD not in _audit_text(home) + caplog.text and token not in _audit_text(home)


# --- migration -----------------------------------------------------------------------------------

IDENTITY_TABLES = {"users", "user_roles", "api_tokens", "applications"}


def test_migration_0002_upgrades_downgrades_and_upgrades_again_on_sqlite(tmp_path: Path) -> None:
    from alembic import command

    from pubdata.db.session import _alembic_config

    engine = make_engine(f"sqlite:///{tmp_path / 'm.db'}")
    upgrade(engine, "0001")
    assert not IDENTITY_TABLES & set(inspect(engine).get_table_names())
    upgrade(engine)
    assert set(inspect(engine).get_table_names()) >= IDENTITY_TABLES
    config = _alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0001")
    assert not IDENTITY_TABLES & set(inspect(engine).get_table_names())
    upgrade(engine)
    with engine.connect() as connection:
        assert connection.scalar(text("SELECT version_num FROM alembic_version")) == head_revision()
    engine.dispose()


def test_identities_on_postgresql(pg_workspace: Workspace) -> None:
    workspace = _register(pg_workspace)
    assert set(inspect(workspace.engine).get_table_names()) >= IDENTITY_TABLES
    with workspace.sessions() as session, session.begin():
        _consumer(session)
        issued = issue_token(session, "wang.fang", [Scope.QUERY], 5, "admin", SETTINGS)
    with workspace.sessions() as session, session.begin():
        assert authenticate_token(session, issued.token).roles == {Role.CONSUMER}
    with pytest.raises(NotAuthenticated), workspace.sessions() as session, session.begin():
        authenticate_token(session, issued.token + "x")
    with pytest.raises(NotAuthenticated), workspace.sessions() as session, session.begin():
        login(session, "wang.fang", "not the password", hasher=FAST)
    assert ("anonymous", issued.row.public_id, "refused") not in _events(workspace, "token.authenticate")
    assert _events(workspace, "token.authenticate") == [("anonymous", "malformed", "refused")]
    assert _events(workspace, "user.login") == [("wang.fang", "wang.fang", "refused")]
    with workspace.sessions() as session:
        assert verify_chain(session)[0]


# --- the demo ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory, pinned_clock: Clock) -> Iterator[Path]:
    from pubdata.demo import build_demo

    home = tmp_path_factory.mktemp("demo") / "home"
    build_demo(home, scale=0.02, clock=pinned_clock)
    yield home


@pytest.mark.req("REQ-4", "roles")
def test_demo_accounts_hold_a_user_and_a_working_token_for_every_role(
    demo: Path, pinned_clock: Clock
) -> None:
    path = demo / "demo-accounts.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    users = json.loads(path.read_text("utf-8"))["users"]
    assert {r for u in users for r in u["roles"]} == {r.value for r in Role}  # every role has an account
    workspace = Workspace.open(demo, clock=pinned_clock)
    by_role = {}
    for account in users:
        with workspace.sessions() as session, session.begin():
            caller = authenticate_token(session, account["token"], workspace.clock())
            by_role[account["roles"][0]] = caller.organisation.short_name if caller.organisation else None
            assert caller.token_id == account["token_id"]
            assert {s.value for s in caller.scopes} == set(account["scopes"])
            assert caller.roles == {Role(r) for r in account["roles"]}
    assert by_role["consumer"] == "嘉兴市总工会"
    assert by_role["competent_department"] == "省大数据局"
    assert by_role["open_data_user"] is None
    admin = next(u for u in users if u["roles"] == ["platform_admin"])
    with workspace.sessions() as session, session.begin():
        assert login(session, admin["login"], admin["password"]).has_role(Role.PLATFORM_ADMIN)
    with workspace.sessions() as session:
        hashes = " ".join(session.scalars(select(ApiToken.secret_sha256)))
    for account in users:
        assert account["token"] not in hashes and account["token"] not in _audit_text(workspace)
        assert account["password"] not in _audit_text(workspace)
    workspace.engine.dispose()
